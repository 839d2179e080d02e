"""``GET /health`` (503 with ``Retry-After`` while the start-up models load, then 200) and ``GET /metrics``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from .state import ServerState


async def health(request: Request) -> Response:
    state: ServerState = request.app.state.server
    loaded = sorted(state.holders)
    if not state.ready.is_set():
        return JSONResponse({"status": "loading", "loaded": loaded}, 503, headers={"Retry-After": "1"})
    return JSONResponse({"status": "ok", "loaded": loaded})


async def metrics(request: Request) -> Response:
    state: ServerState = request.app.state.server
    state.observe_sequences()
    return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4")

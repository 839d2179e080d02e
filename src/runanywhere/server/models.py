"""Model endpoints: ``GET /v1/models`` (capabilities and state) and management.

``POST /v1/models/{id}/pull`` streams download progress as server-sent events
(leaving cancels the download), ``DELETE /v1/models/{id}`` removes it from the
store (409 while it is loaded or pinned: a model in use is never removed),
``POST /v1/models/{id}/load`` and ``/unload``. Only catalog models, never paths.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import ModelDownloadProgress, ModelInfo, SDKError, TextToSpeech
from ..core.bridge import Channel, run_in_thread
from .errors import APIError, error_payload
from .state import ServerState, capabilities
from .streaming import event_stream, unless_disconnected


def _state(request: Request) -> ServerState:
    server: ServerState = request.app.state.server
    return server


def describe(state: ServerState, info: ModelInfo) -> dict[str, Any]:
    """One model as ``/v1/models`` lists it: OpenAI's fields plus capabilities and state."""
    if info.id in state.holders:
        status = "loaded"
    elif info.id in state.downloading:
        status = "downloading"
    else:
        status = {"in-memory": "stored", "stored": "stored", "packaged": "available", "remote": "remote",
                  "missing": "missing"}[info.status]
    described = {"id": info.id, "object": "model", "created": 0, "owned_by": "runanywhere",
                 "name": info.entry.name, "category": info.entry.category.value,
                 "capabilities": capabilities(info.entry), "state": status,
                 "size_bytes": info.entry.size_bytes, "default": info.entry.is_default}
    holder = state.holders.get(info.id)
    if isinstance(holder, TextToSpeech) and holder.is_loaded:
        described["voices"] = list(holder.speakers)  # a loaded voice model's speakers, for the Speak tab
    return described


async def list_models(request: Request) -> Response:
    state = _state(request)
    return JSONResponse({"object": "list", "data": [describe(state, i) for i in state.library.list_models()]})


def _info(state: ServerState, request: Request) -> ModelInfo:
    model_id = request.path_params["model_id"]
    if model_id not in state.library.catalog:
        raise APIError(404, f"the model {model_id!r} does not exist; GET /v1/models lists them", param="model",
                       code="model_not_found")
    return state.library.info(model_id)


async def get_model(request: Request) -> Response:
    state = _state(request)
    return JSONResponse(describe(state, _info(state, request)))


async def pull_model(request: Request) -> Response:
    state = _state(request)
    model_id = _info(state, request).id
    progress: Channel[dict[str, Any]] = Channel()

    def report(event: ModelDownloadProgress) -> None:
        progress.put({"status": "downloading", "file": event.file, "stage": event.stage,
                      "bytes_downloaded": event.bytes_downloaded, "total_bytes": event.total_bytes,
                      "progress": event.progress})

    async def pull() -> None:
        state.downloading.add(model_id)
        try:
            local = await state.library.apull(model_id, progress=report)
            progress.put({"status": "done", "model": model_id, "path": str(local.path)})
        except SDKError as exc:
            progress.put(error_payload(exc)[1])
        finally:
            state.downloading.discard(model_id)
            progress.close()

    task = asyncio.ensure_future(pull())

    async def events() -> AsyncIterator[dict[str, Any]]:
        try:
            async for item in progress:
                yield item
        finally:
            task.cancel()  # the client left: the download's token is cancelled

    return event_stream(events())


async def delete_model(request: Request) -> Response:
    state = _state(request)
    model_id = _info(state, request).id
    if model_id in state.holders:
        raise APIError(409, f"{model_id} is loaded; unload it first (POST /v1/models/{model_id}/unload)",
                       code="model_in_use")
    freed = await run_in_thread(lambda _token: state.library.delete(model_id), name=f"delete-{model_id}")
    return JSONResponse({"id": model_id, "object": "model", "deleted": True, "freed_bytes": freed})


async def load_model(request: Request) -> Response:
    state = _state(request)
    model_id = _info(state, request).id
    await unless_disconnected(request, state.load(model_id))
    return JSONResponse(describe(state, state.library.info(model_id)))


async def unload_model(request: Request) -> Response:
    state = _state(request)
    model_id = _info(state, request).id
    unloaded = await state.unload(model_id)
    return JSONResponse({**describe(state, state.library.info(model_id)), "unloaded": unloaded})

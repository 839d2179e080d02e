"""``create_app(config)``: the Starlette app with every endpoint, behind the security middleware.

Routes: ``/health``, ``/metrics``, ``/v1/models`` (and management), ``/v1/chat/completions``,
``/v1/completions``, ``/v1/embeddings``, ``/v1/audio/{transcriptions,translations,speech}``, and
the ``/v1/realtime`` WebSocket when :mod:`runanywhere.server.realtime` provides it (see
:func:`realtime_routes`). Every error leaves in OpenAI's JSON error shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import EventBus, InvalidStateError, ModelLibrary, SDKError
from . import audio, chat, completions, embeddings, health, models
from .config import ServerConfig
from .errors import APIError, error_response
from .security import SecurityMiddleware
from .state import ServerState
from .webapp import app_routes, static_routes

_log = logging.getLogger("runanywhere.server")


def realtime_routes(state: ServerState) -> list[BaseRoute]:
    """The hook where the ``/v1/realtime`` WebSocket is mounted, when :mod:`runanywhere.server.realtime` exists.

    That package (built separately) gives ``realtime_route(engines)``, where ``engines`` is a
    ``RealtimeEngines`` or a factory it calls on a thread when a client connects. The factory here
    asks the serving loop for the server's own default voice stack (:meth:`ServerState.voice_stack`),
    so HTTP and realtime share loaded models and their queues; the route sits behind the same
    security middleware (Host, Origin and API key are checked on WebSocket scopes too).
    """
    try:
        from .realtime import RealtimeEngines, realtime_route  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return []

    def engines() -> Any:
        if state.loop is None:
            raise InvalidStateError("the server is not serving yet")
        stt, llm, tts, vad = asyncio.run_coroutine_threadsafe(state.voice_stack(), state.loop).result()
        return RealtimeEngines(stt, llm, tts, vad)

    return [realtime_route(engines)]


def create_app(config: ServerConfig | None = None, *, library: ModelLibrary | None = None,
               events: EventBus | None = None) -> Starlette:
    """The server app; ``library`` and ``events`` replace the default model library and a fresh event bus."""
    config = config or ServerConfig()
    state = ServerState(config, library, events)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state.loop = asyncio.get_running_loop()
        preloading = asyncio.ensure_future(state.preload())  # serving meanwhile: /health says 503 until done
        try:
            yield
        finally:
            preloading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await preloading
            await state.close()

    routes = [
        Route("/health", health.health),
        Route("/metrics", health.metrics),
        Route("/v1/models", models.list_models),
        Route("/v1/models/{model_id:str}", models.get_model),
        Route("/v1/models/{model_id:str}", models.delete_model, methods=["DELETE"]),
        Route("/v1/models/{model_id:str}/pull", models.pull_model, methods=["POST"]),
        Route("/v1/models/{model_id:str}/load", models.load_model, methods=["POST"]),
        Route("/v1/models/{model_id:str}/unload", models.unload_model, methods=["POST"]),
        Route("/v1/chat/completions", chat.chat_completions, methods=["POST"]),
        Route("/v1/completions", completions.completions, methods=["POST"]),
        Route("/v1/embeddings", embeddings.embeddings, methods=["POST"]),
        Route("/v1/audio/transcriptions", audio.transcriptions, methods=["POST"]),
        Route("/v1/audio/translations", audio.translations, methods=["POST"]),
        Route("/v1/audio/speech", audio.speech, methods=["POST"]),
        *realtime_routes(state),
        *app_routes(state.library),  # the web app's own endpoints (/app/...), then its files at /
        *static_routes(),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(SecurityMiddleware, config=config), Middleware(_Counted)],
                    exception_handlers={SDKError: _sdk_error, HTTPException: _http_error, Exception: _crash})
    app.state.server = state
    return app


async def _sdk_error(request: Request, exc: Exception) -> Response:
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):
        return error_response(exc)
    code = "not_found" if exc.status_code == 404 else "method_not_allowed" if exc.status_code == 405 else None
    return error_response(APIError(exc.status_code, str(exc.detail), code=code))


async def _crash(request: Request, exc: Exception) -> Response:
    _log.exception("error serving %s %s", request.method, request.url.path)
    return error_response(exc)


class _Counted:
    """Counts each HTTP response by path and status for ``/metrics``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = scope["app"].state.server.metrics

        async def counting(message: Any) -> None:
            if message["type"] == "http.response.start":
                metrics.count(getattr(scope.get("route"), "path", "unmatched"), message["status"])
            await send(message)

        await self.app(scope, receive, counting)

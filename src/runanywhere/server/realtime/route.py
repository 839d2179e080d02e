"""The ``/v1/realtime`` WebSocket route: one :class:`RealtimeSession` per connection, for Starlette apps.

Connect as ``openai``'s realtime client does: ``ws://HOST/v1/realtime?model=...``. Server events go
out through one sender task, fed from any thread through the core bridge's channel; a client that
sends ``OpenAI-Beta: realtime=v1`` gets the beta protocol's names for the events that were renamed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...core.bridge import Channel, run_in_thread
from ...core.errors import SDKError
from .config import RealtimeEngines
from .protocol import RealtimeProtocolError
from .session import RealtimeSession

if TYPE_CHECKING:
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

BETA_NAMES = {
    "response.output_audio.delta": "response.audio.delta", "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "response.output_text.delta": "response.text.delta", "response.output_text.done": "response.text.done",
    "conversation.item.added": "conversation.item.created"}
"""GA server event -> the beta name, for clients that ask for the beta protocol."""

DEFAULT_MODEL = "runanywhere-voice"

EngineSource = RealtimeEngines | Callable[[], RealtimeEngines]


def realtime_route(engines: EngineSource, path: str = "/v1/realtime") -> WebSocketRoute:
    """The route to mount: ``engines`` are shared by every connection, or made by a factory (called on a
    thread, so it may load models) when a client connects."""
    from starlette.routing import WebSocketRoute

    async def endpoint(websocket: WebSocket) -> None:
        await _serve(websocket, engines)

    return WebSocketRoute(path, endpoint, name="realtime")


async def _serve(websocket: WebSocket, source: EngineSource) -> None:
    await websocket.accept()
    beta = "realtime=v1" in websocket.headers.get("openai-beta", "")
    outgoing: Channel[dict[str, Any]] = Channel()
    sender = asyncio.create_task(_send_all(websocket, outgoing, beta))
    session: RealtimeSession | None = None
    try:
        engines = source if isinstance(source, RealtimeEngines) else await run_in_thread(
            lambda _token: source(), name="realtime-engines")
        session = RealtimeSession(engines, outgoing.put, websocket.query_params.get("model") or DEFAULT_MODEL)
        session.start()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            session.handle(text if text is not None else message.get("bytes") or b"")
    except SDKError as exc:  # the engines could not be made: say why, then close
        outgoing.put(RealtimeProtocolError(exc.message, protocol_code="server_error").to_event())
    finally:
        if session is not None:
            session.close()
        outgoing.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sender, timeout=5)
        with contextlib.suppress(Exception):
            await websocket.close()


async def _send_all(websocket: WebSocket, outgoing: Channel[dict[str, Any]], beta: bool) -> None:
    """Every server event, in order, until the channel closes or the client is gone."""
    async for event in outgoing:
        if beta:
            event = {**event, "type": BETA_NAMES.get(event["type"], event["type"])}
        try:
            await websocket.send_text(json.dumps(event))
        except Exception:  # the client left: the receive loop ends the session
            return

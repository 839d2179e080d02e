"""Responses that stop their work when the client leaves: server-sent events, audio streams, plain awaits.

Starlette only notices a disconnect when a write fails, which during a long
prefill (nothing written yet) is too late. Here the request's channel is
watched the whole time; on ``http.disconnect`` the producing task is
cancelled, which cancels the engine's token (llama.cpp's abort callback, so
prefill included).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from ..core.errors import SDKError
from .errors import APIError, error_payload

T = TypeVar("T")


class ClientGone(APIError):
    """The client disconnected before the answer was ready; its work was cancelled."""

    def __init__(self) -> None:
        super().__init__(499, "the client disconnected", code="client_closed_request")


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await ``work``, cancelling it (and raising :class:`ClientGone`) if the client disconnects first."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request.receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    raise ClientGone()


class WatchedStreamingResponse(StreamingResponse):
    """A streaming response whose body iterator is cancelled as soon as the client disconnects.

    ``release`` runs once the response is over, however it ends (a queue place, say).
    """

    def __init__(self, content: AsyncIterable[bytes], *, media_type: str, headers: dict[str, str] | None = None,
                 release: Callable[[], None] | None = None) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._watched(receive, send)
        finally:
            if self.release is not None:
                self.release()

    async def _watched(self, receive: Receive, send: Send) -> None:
        streaming = asyncio.ensure_future(self.stream_response(send))
        watcher = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({streaming, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            if not streaming.done():
                streaming.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await streaming
        if streaming.done() and not streaming.cancelled() and streaming.exception() is not None:
            raise streaming.exception()  # type: ignore[misc]


def sse_data(payload: Any) -> bytes:
    """One server-sent event carrying JSON (or the literal ``[DONE]``)."""
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {text}\n\n".encode()


def event_stream(events: AsyncIterable[Any], *, done: bool = True,
                 release: Callable[[], None] | None = None) -> WatchedStreamingResponse:
    """Server-sent events from JSON payloads, ending with ``data: [DONE]`` when ``done``; ``release`` runs
    when the stream ends in any way."""

    async def body() -> AsyncIterator[bytes]:
        try:
            async for payload in events:
                yield sse_data(payload)
        except SDKError as exc:  # the status is sent already: the error becomes the stream's last event
            yield sse_data(error_payload(exc)[1])
            return
        if done:
            yield sse_data("[DONE]")

    return WatchedStreamingResponse(body(), media_type="text/event-stream", release=release,
                                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


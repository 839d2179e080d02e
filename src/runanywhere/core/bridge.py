"""The one thread-to-asyncio bridge: worker threads hand items and results to an event loop.

A worker thread never waits for an async consumer and no thread waits on its
behalf: each item or outcome is handed over with ``loop.call_soon_threadsafe``
(as :meth:`EventBus.stream` does), so any number of awaiting tasks cost no
thread of the default executor. Cancelling an awaiting task cancels the work's
:class:`CancelToken`, and the engine sees it at its next check.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar, cast

from .cancel import CancelToken
from .errors import CancelledError

T = TypeVar("T")
_CLOSED = object()
_EMPTY = object()


class Channel(Generic[T]):
    """Items from a producer thread to one consumer, which reads them blocking or with ``async for``."""

    def __init__(self) -> None:
        self._items: deque[Any] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None

    def put(self, item: T) -> None:
        """Hand over one item (any thread; never blocks)."""
        self._push(item)

    def close(self) -> None:
        """No more items: the consumer's loop ends after the ones already put."""
        self._push(_CLOSED)

    def _push(self, item: Any) -> None:
        with self._ready:
            self._items.append(item)
            self._ready.notify()
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            _wake(*waiter)

    def _take(self) -> Any:
        """The next item, or _EMPTY; the end mark stays, so every later read ends too (lock held)."""
        if not self._items:
            return _EMPTY
        return self._items[0] if self._items[0] is _CLOSED else self._items.popleft()

    def drain(self) -> list[T]:
        """The items already handed over, taken at once without waiting (a consumer that fell behind catches up
        in one step); the end mark stays for the reading loop."""
        with self._ready:
            taken = []
            while (item := self._take()) is not _EMPTY and item is not _CLOSED:
                taken.append(cast(T, item))
            return taken

    def __iter__(self) -> Iterator[T]:
        while True:
            with self._ready:
                while (item := self._take()) is _EMPTY:
                    self._ready.wait()
            if item is _CLOSED:
                return
            yield item

    async def __aiter__(self) -> AsyncIterator[T]:
        loop = asyncio.get_running_loop()
        while True:
            with self._ready:
                item = self._take()
                if item is _EMPTY:
                    woken: asyncio.Future[None] = loop.create_future()
                    self._waiter = (loop, woken)
            if item is _EMPTY:
                await woken
                continue
            if item is _CLOSED:
                return
            yield cast(T, item)


def _wake(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        loop.call_soon_threadsafe(_settle, future)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def await_future(future: concurrent.futures.Future[T], cancel: CancelToken | None = None) -> T:
    """Await a thread's future without a thread waiting for it; cancelling the task cancels ``cancel``."""
    try:
        return await asyncio.shield(asyncio.wrap_future(future))
    except asyncio.CancelledError:
        if cancel is not None:
            cancel.cancel()
        raise


async def run_in_thread(fn: Callable[[CancelToken], T], cancel: CancelToken | None = None, *, name: str) -> T:
    """Run ``fn(cancel)`` on a thread of its own (not the default executor) and await its result.

    For blocking work that has no model worker (downloads, file hashing): the
    thread does the work itself; cancelling the task cancels the token.
    """
    token = cancel or CancelToken()
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn(token))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=work, name=f"runanywhere-{name}", daemon=True).start()
    return await await_future(future, token)


def iterate_blocking(source: AsyncIterable[T], loop: asyncio.AbstractEventLoop, cancel: CancelToken) -> Iterator[T]:
    """Read an async iterable from a worker thread: each next item is awaited on ``loop``.

    The worker (which consumes the items) waits for the producer, never the
    other way round; cancelling ``cancel`` stops the wait with :class:`CancelledError`.
    """
    iterator = source.__aiter__()
    waiting: list[concurrent.futures.Future[T]] = []

    def stop_waiting() -> None:
        for pending in waiting:
            pending.cancel()

    cancel.on_cancel(stop_waiting)
    while True:
        future = asyncio.run_coroutine_threadsafe(_next(iterator), loop)
        waiting[:] = [future]
        if cancel.cancelled:
            future.cancel()
        try:
            yield future.result()
        except StopAsyncIteration:
            return
        except concurrent.futures.CancelledError as exc:
            raise CancelledError("reading the async source was cancelled") from exc


async def _next(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()

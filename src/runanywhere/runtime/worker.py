"""A thread that owns an engine: jobs run one at a time, in the order they were submitted.

Blocking calls wait for their job; async twins await it through the
:mod:`~runanywhere.core.bridge` (no thread waits for them); streaming jobs hand
items back through a :class:`~runanywhere.core.bridge.Channel` as they are
produced. Cancelling an awaiting task or closing a stream cancels the job's
token, and the engine sees it at its next check.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from ..core.bridge import Channel, await_future
from ..core.cancel import CancelToken

T = TypeVar("T")
ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class EngineWorker:
    """One worker thread per loaded model, so the engine is never touched concurrently."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"runanywhere-{name}")
        self._tokens: set[CancelToken] = set()
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self._executor.submit(fn, *args)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        return self.submit(fn, *args).result()

    async def acall(self, fn: Callable[[CancelToken], T], cancel: CancelToken) -> T:
        """Run ``fn(cancel)`` on the worker; cancelling the awaiting task cancels the token."""
        return await await_future(self.submit(self._tracked, fn, cancel), cancel)

    def _tracked(self, fn: Callable[[CancelToken], T], cancel: CancelToken) -> T:
        with self._lock:
            self._tokens.add(cancel)
        try:
            return fn(cancel)
        finally:
            with self._lock:
                self._tokens.discard(cancel)

    def cancel_running(self) -> None:
        """Cancel the job in progress (queued jobs still run)."""
        with self._lock:
            tokens = list(self._tokens)
        for token in tokens:
            token.cancel()

    def stream(self, produce: Callable[[CancelToken, Callable[[Any], None]], T],
               cancel: CancelToken, *, deliver: bool = True) -> Stream[T]:
        """Run ``produce(cancel, emit)`` on the worker; iterate the returned :class:`Stream`.

        With ``deliver=False`` emitted items are dropped at the source (a caller that only wants the
        result then costs the worker nothing per item, and no consumer thread wakes per token).
        """
        items: Channel[Any] = Channel()
        emit = items.put if deliver else _discard

        def job() -> T:
            try:
                return self._tracked(lambda c: produce(c, emit), cancel)
            finally:
                items.close()

        return Stream(items, self.submit(job), cancel)

    def close(self, *, wait: bool = True) -> None:
        """Stop the thread; ``wait=False`` lets it end after its last job (also safe from that job)."""
        self.cancel_running()
        self._executor.shutdown(wait=wait)


def _discard(item: Any) -> None:
    pass


class Stream(Generic[T]):
    """Items produced by a worker job, then its return value in :attr:`result`."""

    def __init__(self, items: Channel[Any], future: Future[T], cancel: CancelToken) -> None:
        self._items = items
        self._future = future
        self.cancel_token = cancel
        self._finished = False

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self._items
            self._finished = True
            self._future.result()  # re-raise the job's error here, in the consumer
        finally:
            if not self._finished:
                self.cancel_token.cancel()  # the consumer stopped early: stop the engine too

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for item in self._items:
                yield item
            self._finished = True
            await await_future(self._future)
        finally:
            if not self._finished:
                self.cancel_token.cancel()

    def cancel(self) -> None:
        self.cancel_token.cancel()

    def drain(self) -> list[Any]:
        """The items produced but not yet read, taken now without waiting (read them after the current one)."""
        return self._items.drain()

    @property
    def result(self) -> T:
        """The job's result; waits for the job to finish."""
        return self._future.result()

    def wait(self) -> T:
        for _ in self:
            pass
        return self.result

    async def await_result(self) -> T:
        """Async twin of :meth:`wait`: the items are dropped, the result awaited on the loop."""
        async for _ in self:
            pass
        return self._future.result()


class ResultStream(Generic[ItemT, ResultT]):
    """The public face of a :class:`Stream`: typed items as they come, then :attr:`result`.

    Breaking out of the loop, :meth:`cancel`, or cancelling an ``async for`` stops the work.
    """

    def __init__(self, stream: Stream[ResultT]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[ItemT]:
        return iter(self._stream)

    def __aiter__(self) -> AsyncIterator[ItemT]:
        return self._stream.__aiter__()

    def cancel(self) -> None:
        self._stream.cancel()

    def drain(self) -> list[ItemT]:
        """The items produced but not yet read, without waiting: a consumer that fell behind takes them in one go
        (the server writes them as one event instead of one per token)."""
        return self._stream.drain()

    @property
    def cancelled(self) -> bool:
        return self._stream.cancel_token.cancelled

    @property
    def result(self) -> ResultT:
        """The finished work's result; waits for it."""
        return self._stream.result

    async def aresult(self) -> ResultT:
        """Async twin of :attr:`result`: the rest of the items are skipped, the result awaited."""
        return await self._stream.await_result()

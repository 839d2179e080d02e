"""Cancellation: one token passed all the way down to the engines."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .errors import CancelledError, SDKErrorCode

_log = logging.getLogger("runanywhere.cancel")


class CancelToken:
    """A thread-safe flag that long work polls, with callbacks fired on cancel.

    Engines check :attr:`cancelled` between chunks (bytes, tokens, segments) and
    stop; ``raise_if_cancelled`` turns it into a :class:`CancelledError`.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            self._call(callback)

    def on_cancel(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once when cancelled (at once if it already is)."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return
        self._call(callback)

    def child(self) -> CancelToken:
        """A token cancelled with this one that can also be cancelled on its own (one step of a longer job)."""
        token = CancelToken()
        self.on_cancel(token.cancel)
        return token

    @staticmethod
    def _call(callback: Callable[[], None]) -> None:
        # One failing callback must not keep the others from stopping their work.
        try:
            callback()
        except Exception:
            _log.exception("cancel callback %r failed", callback)

    def wait(self, timeout: float | None = None) -> bool:
        """Sleep until cancelled or ``timeout`` elapses; True when cancelled."""
        return self._event.wait(timeout)

    def raise_if_cancelled(
        self, what: str = "operation", code: SDKErrorCode = SDKErrorCode.CANCELLED
    ) -> None:
        if self._event.is_set():
            raise CancelledError(f"{what} was cancelled", code=code)

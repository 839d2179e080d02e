"""Cross-process file locks (``flock``) for the model store.

An exclusive lock serialises pulls of one model across processes; a shared
lock is a *pin*: while any process holds it, eviction and deletion (which need
the exclusive lock, without waiting) leave the model alone.

A store on a read-only, not writable or full disk is still readable: an
existing lock file is locked through a read-only descriptor, and a lock file
that cannot be created there is not enforced (nothing can be written there anyway).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

from ..core.cancel import CancelToken
from ..core.errors import SDKErrorCode, StorageError
from ..core.logging import SDKLogger
from .diskio import is_full, is_unwritable, storage_error

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: locks only hold within the process
    fcntl = None  # type: ignore[assignment]

_POLL_S = 0.05
_UNENFORCED = -1  # the descriptor of a lock whose file this file system cannot hold
_log = SDKLogger("FileLock")
_warned: set[Path] = set()  # unenforced lock files already reported (once each per process)


def _open(path: Path) -> int:
    """A descriptor to lock ``path`` through, or ``_UNENFORCED`` where the lock file cannot exist."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if not (is_unwritable(exc) or is_full(exc)):
            raise storage_error(exc, f"create the lock file {path.name}", path) from exc
    try:
        return os.open(path, os.O_RDONLY)  # flock works on a read-only descriptor
    except FileNotFoundError:
        if path not in _warned:
            _warned.add(path)
            _log.warning("%s cannot be created (the disk is read-only or full): going on without that lock", path)
        return _UNENFORCED
    except OSError as exc:
        raise storage_error(exc, f"open the lock file {path.name}", path) from exc


class FileLock:
    """A lock on ``path`` (created if needed), shared or exclusive, blocking or not."""

    def __init__(self, path: Path, *, shared: bool = False) -> None:
        self.path = path
        self.shared = shared
        self._fd: int | None = None
        self._thread_lock = threading.Lock()

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free right now; True on success."""
        if not self._thread_lock.acquire(blocking=False):
            return False
        try:
            fd = _open(self.path)
        except BaseException:
            self._thread_lock.release()
            raise
        if fcntl is not None and fd != _UNENFORCED:
            mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                self._thread_lock.release()
                return False
        self._fd = fd
        if not self.shared and fd != _UNENFORCED:  # who holds it, for whoever waits (a pin has many: not recorded)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.ctime()}".encode(), 0)
        return True

    def holder(self) -> str | None:
        """Who holds this exclusive lock, as its holder recorded it (None when unknown)."""
        with contextlib.suppress(OSError):
            text = self.path.read_text(encoding="utf-8", errors="replace").strip()
            return text or None
        return None

    def acquire(self, *, timeout: float | None = None, cancel: CancelToken | None = None) -> None:
        """Wait for the lock, polling so that ``cancel`` and ``timeout`` are honoured."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.try_acquire():
            if cancel is not None:
                cancel.raise_if_cancelled(f"waiting for {self.path.name}")
            if deadline is not None and time.monotonic() >= deadline:
                holder = self.holder() or "another process"
                raise StorageError(
                    f"timed out after {timeout:g} s waiting for {self.path.name}, held by {holder}; if that process "
                    f"is stuck, stop it (its lock ends with it) or raise the lock timeout",
                    code=SDKErrorCode.COMPONENT_BUSY, details={"lock": str(self.path), "holder": holder},
                )
            time.sleep(_POLL_S)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        if fd != _UNENFORCED:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        self._thread_lock.release()

    def __enter__(self) -> FileLock:
        if not self.held:  # a pin is handed out already held
            self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

"""In-memory model directories, for when the disk or the quota cannot hold a model.

On Linux they live in ``/dev/shm`` (RAM-backed tmpfs), so engines open them as
ordinary files and multi-file models keep their directory layout; elsewhere a
temporary directory stands in. They are removed on release, at exit, and when
a later process finds one whose owner is gone.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

_PREFIX = "runanywhere-mem-"


def _root() -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class MemoryDirs:
    """RAM-backed directories owned by this process, one per model."""

    def __init__(self) -> None:
        self._dirs: dict[str, Path] = {}
        self._lock = threading.Lock()
        atexit.register(self.release_all)

    def create(self, model_id: str) -> Path:
        self._remove_stale()
        path = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-{model_id}-", dir=_root()))
        with self._lock:
            old = self._dirs.pop(model_id, None)
            self._dirs[model_id] = path
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return path

    def release(self, model_id: str) -> None:
        with self._lock:
            path = self._dirs.pop(model_id, None)
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)

    def release_all(self) -> None:
        for model_id in list(self._dirs):
            self.release(model_id)

    @staticmethod
    def _remove_stale() -> None:
        for path in _root().glob(f"{_PREFIX}*"):
            with contextlib.suppress(ValueError, IndexError):
                pid = int(path.name[len(_PREFIX):].split("-", 1)[0])
                if pid != os.getpid() and not _pid_alive(pid):
                    shutil.rmtree(path, ignore_errors=True)

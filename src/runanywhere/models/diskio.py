"""Writing to the store's disk: atomic JSON files, and OS errors told apart (read-only, full, denied).

A write that fails never leaves its temporary file behind, and the error that
reaches the caller is a typed :class:`StorageError` that says what to do.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from ..core.errors import InsufficientStorageError, SDKError, SDKErrorCode, StorageError

_UNWRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
_FULL = (errno.ENOSPC, errno.EDQUOT)
TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{32}\.tmp$")  # what write_json_atomic leaves if killed mid-write


def is_unwritable(exc: OSError) -> bool:
    """The file system refuses writes here (read-only, or no permission): reading may still work."""
    return exc.errno in _UNWRITABLE


def is_full(exc: OSError) -> bool:
    """The disk (or the user's disk quota) has no room left."""
    return isinstance(exc, InsufficientStorageError) or exc.errno in _FULL


def storage_error(exc: OSError, action: str, path: Path, *, write: bool = True) -> StorageError:
    """``exc`` (from trying to ``action`` at ``path``; ``write``: a write) as a typed error naming cause and remedy."""
    if isinstance(exc, StorageError):
        return exc
    details = {"path": str(path), "errno": exc.errno}
    if exc.errno == errno.EROFS:
        return StorageError(f"cannot {action}: {path} is on a read-only file system; remount it read-write or "
                            "point RUNANYWHERE_HOME at a writable folder", code=SDKErrorCode.FILE_WRITE_FAILED,
                            details=details)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return StorageError(f"cannot {action}: permission denied on {path}; fix its permissions or point "
                            "RUNANYWHERE_HOME at a folder you own",
                            code=SDKErrorCode.FILE_WRITE_FAILED if write else SDKErrorCode.STORAGE_ERROR,
                            details=details)
    if exc.errno in _FULL:
        return InsufficientStorageError(f"cannot {action}: the disk holding {path} is full; free space (delete "
                                        "models, `runanywhere models clean`) or move RUNANYWHERE_HOME",
                                        details=details)
    return StorageError(f"cannot {action} ({path}): {exc.strerror or exc}", details=details)


def make_dirs(path: Path, action: str) -> None:
    """``mkdir -p path``, failing with a typed error that says why."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, action, path) from exc


def list_dir(directory: Path) -> list[Path]:
    """The entries of ``directory``, sorted; none when it is missing, not a folder or unreadable."""
    try:
        return sorted(directory.iterdir())
    except OSError:
        return []


def write_json_atomic(path: Path, data: Any, *, action: str) -> None:
    """Replace ``path`` with ``data`` as JSON, all or nothing; a failure removes the temporary file."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, SDKError):
            raise storage_error(exc, action, path) from exc
        raise

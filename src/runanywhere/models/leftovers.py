"""What killed pulls and interrupted deletions leave in the store, and removing it without harming live work.

- partial downloads, ``staging/<id>/`` (finished files, ``.part`` files and their
  sidecars): a later pull of ``<id>`` resumes them; guarded by that model's pull lock;
- the scratch folder of a derived file being made, ``staging/.derive-<hex>.<id>``:
  guarded by the same pull lock;
- half-deleted models, ``models/.trash-<id>-<hex>``, and the temporary files of an
  atomic write (``.manifest.json.<hex>.tmp``, ``models/<id>/..runanywhere.json.<hex>.tmp``):
  only ever made under the manifest lock, which whoever removes them holds.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import InvalidInputError
from .catalog import check_model_id
from .diskio import TEMP_NAME, list_dir, storage_error
from .locks import FileLock

PARTIAL = "partial download"
SCRATCH = "unfinished derived file"
TRASH = "half-deleted model"
TEMPORARY = "temporary file"
TRASH_PREFIX = ".trash-"
SCRATCH_PREFIX = ".derive-"


@dataclass(frozen=True)
class Leftover:
    """One abandoned file or folder: what it is, its size, and whose pull lock guards it (None: the manifest's)."""

    path: Path
    kind: str
    size_bytes: int
    model_id: str | None = None

    @property
    def resumable(self) -> bool:
        """A partial download with bytes that a later pull of its model would continue."""
        return self.kind == PARTIAL and self.size_bytes > 0


@dataclass(frozen=True)
class CleanReport:
    """What a clean removed, and what it left because a live pull in some process holds its lock."""

    removed: tuple[Leftover, ...] = ()
    in_use: tuple[Leftover, ...] = ()

    @property
    def freed_bytes(self) -> int:
        return sum(item.size_bytes for item in self.removed)


def find_leftovers(home: Path, models_dir: Path, staging_dir: Path) -> list[Leftover]:
    """Every leftover in the store at ``home`` (nothing is touched)."""
    found = [Leftover(p, TEMPORARY, _size(p)) for p in list_dir(home) if TEMP_NAME.match(p.name)]
    for path in list_dir(models_dir):
        if path.name.startswith(TRASH_PREFIX):
            found.append(Leftover(path, TRASH, _size(path)))
        elif path.is_dir() and not path.is_symlink():
            found.extend(Leftover(p, TEMPORARY, _size(p)) for p in list_dir(path) if TEMP_NAME.match(p.name))
    for path in list_dir(staging_dir):
        if path.name.startswith(SCRATCH_PREFIX):
            owner = path.name[len(SCRATCH_PREFIX):].partition(".")[2]
            found.append(Leftover(path, SCRATCH, _size(path), _model_id(owner)))
        else:
            found.append(Leftover(path, PARTIAL, _size(path), _model_id(path.name)))
    return found


def in_use(item: Leftover, pull_lock: Callable[[str], FileLock]) -> bool:
    """True when a live pull (in any process) holds the lock that guards ``item``."""
    if item.model_id is None:
        return False
    lock = pull_lock(item.model_id)
    if not lock.try_acquire():
        return True
    lock.release()
    return False


def remove_leftovers(items: Iterable[Leftover], pull_lock: Callable[[str], FileLock]) -> CleanReport:
    """Remove ``items`` (the caller holds the manifest lock); one whose pull lock is held is left alone.

    A removal the disk refuses raises a typed :class:`StorageError`.
    """
    removed: list[Leftover] = []
    busy: list[Leftover] = []
    for item in items:
        lock = pull_lock(item.model_id) if item.model_id is not None else None
        if lock is not None and not lock.try_acquire():
            busy.append(item)
            continue
        try:
            _remove(item.path)
        finally:
            if lock is not None:
                lock.release()
        removed.append(item)
    return CleanReport(tuple(removed), tuple(busy))


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except FileNotFoundError:
        return  # gone already (another clean got there first)
    except OSError as exc:
        raise storage_error(exc, f"remove the leftover {path.name}", path) from exc


def _size(path: Path) -> int:
    """Bytes under ``path`` (links are not followed)."""
    if not path.is_dir() or path.is_symlink():
        try:
            return path.lstat().st_size
        except OSError:
            return 0
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total


def _model_id(name: str) -> str | None:
    try:
        return check_model_id(name)
    except InvalidInputError:
        return None

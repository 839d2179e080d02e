"""The on-disk model store: one directory per model, a manifest, quota and LRU eviction.

Layout under ``home``::

    models/<id>/...            the model's files, plus .runanywhere.json (its record)
    models/<id>/derived/...    files made from the model (a converted GGUF ...): in its
                               size and quota, pinned, evicted and deleted with it
    manifest.json              index of stored models with last-used times
    staging/<id>/              downloads in progress (kept to resume across processes)
    locks/<id>.pull|.pin       cross-process locks

A model enters ``models/`` only complete and verified, by renaming its staging
directory, so a reader never sees a half-written model. Each model's record
file is the source of truth; the manifest is an index that is rebuilt from
them when it is missing, corrupt or of the wrong shape, never silently dropping a model.

Reading never needs writing: on a read-only or full disk stored models still
list, verify and load; bookkeeping (the last-used time, a rebuilt manifest)
that cannot be written is logged and skipped, and what must write (pull,
delete, clean) fails with a typed :class:`StorageError` that names the cause.
Leftovers of killed pulls and deletions (see :mod:`.leftovers`) are counted in
:meth:`ModelStore.info`; those no pull can resume are removed when the store is
first opened in a process, and :meth:`ModelStore.clean` removes them all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from ..core.errors import (
    InsufficientStorageError,
    InvalidStateError,
    ModelNotFoundError,
    SDKError,
    StorageError,
    StoreCorruptError,
)
from ..core.events import EventBus, ModelDeleted, ModelEvicted, ModelQuotaExceeded
from ..core.logging import SDKLogger
from .catalog import check_model_id
from .diskio import TEMP_NAME, list_dir, make_dirs, storage_error, write_json_atomic
from .leftovers import (
    SCRATCH_PREFIX,
    TRASH_PREFIX,
    CleanReport,
    Leftover,
    find_leftovers,
    in_use,
    remove_leftovers,
)
from .locks import FileLock
from .records import check_record

RECORD_NAME = ".runanywhere.json"
DERIVED_DIR = "derived"
_MANIFEST_VERSION = 1
_log = SDKLogger("ModelStore")


@dataclass(frozen=True)
class StoredFile:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class StoredModel:
    """A complete model in the store (or held in memory when the disk was full)."""

    id: str
    name: str
    category: str
    engine: str
    format: str
    path: Path
    files: tuple[StoredFile, ...]
    source: str
    stored_at: float
    last_used_at: float
    in_memory: bool = False
    derived: tuple[StoredFile, ...] = ()

    @property
    def size_bytes(self) -> int:
        """The model's files and the files derived from it."""
        return sum(f.size for f in self.files) + sum(f.size for f in self.derived)

    def file_path(self, relative: str) -> Path:
        return self.path / relative

    def to_record(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        data["files"] = [asdict(f) for f in self.files]
        data["derived"] = [asdict(f) for f in self.derived]
        return data

    @classmethod
    def from_record(cls, data: dict[str, Any], path: Path) -> StoredModel:
        return cls(
            id=data["id"],
            name=data.get("name", data["id"]),
            category=data.get("category", "unknown"),
            engine=data.get("engine", "unknown"),
            format=data.get("format", "unknown"),
            path=path,
            files=tuple(StoredFile(f["path"], f["size"], f["sha256"]) for f in data["files"]),
            source=data.get("source", "unknown"),
            stored_at=float(data.get("stored_at", 0.0)),
            last_used_at=float(data.get("last_used_at", data.get("stored_at", 0.0))),
            in_memory=bool(data.get("in_memory", False)),
            derived=tuple(StoredFile(f["path"], f["size"], f["sha256"]) for f in data.get("derived", ())),
        )


@dataclass(frozen=True)
class EvictionPlan:
    """Which models eviction would delete (least recently used first) and what it frees."""

    needed_bytes: int
    available_bytes: int
    models: tuple[StoredModel, ...]
    freed_bytes: int
    fits: bool

    @property
    def model_ids(self) -> list[str]:
        return [m.id for m in self.models]


@dataclass(frozen=True)
class VerifyReport:
    model_id: str
    ok: bool
    checked_files: int
    mismatched: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class StorageInfo:
    home: Path
    used_bytes: int
    quota_bytes: int | None
    disk_free_bytes: int
    model_count: int
    reclaimable_bytes: int = 0  # leftovers of killed pulls and deletions that `clean()` would remove


@dataclass
class RecoveryReport:
    """What the last manifest rebuild did; empty when the manifest was sound."""

    corrupt_manifest_moved_to: Path | None = None
    recovered: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)  # records of the wrong shape, rebuilt (also in recovered)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The file's SHA-256 hex digest; a file that cannot be read is a :class:`StorageError` naming it."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    except OSError as exc:
        raise storage_error(exc, "read the file to check its hash", path, write=False) from exc
    return digest.hexdigest()


@contextlib.contextmanager
def _bookkeeping(what: str) -> Iterator[None]:
    """Bookkeeping a reader does on the side: a disk that refuses it is logged, never fatal."""
    try:
        yield
    except StorageError as exc:
        _log.warning("could not %s (%s); going on without it", what, exc.message)


class ModelStore:
    """Stores complete models under ``home`` with a quota and cross-process safety."""

    def __init__(self, home: Path, *, quota_bytes: int | None = None, events: EventBus | None = None) -> None:
        self.home = Path(home)
        self.quota_bytes = quota_bytes
        self.events = events or EventBus.shared
        self.models_dir = self.home / "models"
        self.staging_dir = self.home / "staging"
        self.locks_dir = self.home / "locks"
        self.manifest_path = self.home / "manifest.json"
        self.last_recovery = RecoveryReport()
        self._memory: dict[str, StoredModel] = {}
        self._opened = False  # leftovers no pull can resume are swept on the first look at the manifest

    # ----------------------------------------------------------------- locks
    def pull_lock(self, model_id: str) -> FileLock:
        """Exclusive lock held while a model is being pulled into the store."""
        check_model_id(model_id)
        return FileLock(self.locks_dir / f"{model_id}.pull")

    def pin(self, model_id: str) -> FileLock:
        """A shared lock, already held: while it is, the model is never evicted or deleted."""
        check_model_id(model_id)
        lock = FileLock(self.locks_dir / f"{model_id}.pin", shared=True)
        lock.acquire()
        return lock

    def is_pinned(self, model_id: str) -> bool:
        check_model_id(model_id)
        probe = FileLock(self.locks_dir / f"{model_id}.pin")
        if probe.try_acquire():
            probe.release()
            return False
        return True

    @contextlib.contextmanager
    def _exclusive_unpinned(self, model_id: str) -> Iterator[None]:
        """Hold the pin lock exclusively (no one can pin meanwhile) or raise if pinned."""
        check_model_id(model_id)
        probe = FileLock(self.locks_dir / f"{model_id}.pin")
        if not probe.try_acquire():
            raise InvalidStateError(
                f"model {model_id!r} is in use (loaded or pinned); unload it before deleting it",
                details={"model_id": model_id},
            )
        try:
            yield
        finally:
            probe.release()

    # -------------------------------------------------------------- manifest
    def _manifest_lock(self) -> FileLock:
        return FileLock(self.locks_dir / "manifest.lock")

    def _load_index(self) -> dict[str, dict[str, Any]]:
        """Read the manifest and reconcile it with the model directories (lock held)."""
        if not self._opened:
            self._opened = True
            self._sweep()
        index, moved = self._read_manifest()
        report = RecoveryReport(corrupt_manifest_moved_to=moved)
        for model_id, record in list(index.items()):
            try:
                check_record(record, model_id)
            except StoreCorruptError as exc:
                _log.warning("%s; rebuilding it", exc.message)
                del index[model_id]
                report.malformed.append(model_id)
        reconciled = self._reconcile(index, report)
        if moved is not None or report.recovered or report.dropped:
            self.last_recovery = report
            with _bookkeeping("save the rebuilt manifest"):
                self._save_index(reconciled)
        return reconciled

    def _read_manifest(self) -> tuple[dict[str, Any], Path | None]:
        """The manifest's models (empty when there is none) and where a corrupt one was moved."""
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
                raise ValueError("manifest has no 'models' mapping")
            return dict(data["models"]), None
        except FileNotFoundError:
            return {}, None
        except (ValueError, OSError) as exc:
            moved = self.manifest_path.with_name(f"manifest.json.corrupt-{int(time.time() * 1000)}")
            try:
                os.replace(self.manifest_path, moved)
            except OSError as err:
                _log.warning("manifest %s is unreadable (%s) and cannot be moved aside (%s); rebuilding it in "
                             "memory", self.manifest_path, exc, err)
                return {}, None
            _log.warning("manifest %s is corrupt (%s); moved to %s and rebuilding", self.manifest_path, exc, moved)
            return {}, moved

    def _reconcile(self, index: dict[str, Any], report: RecoveryReport) -> dict[str, dict[str, Any]]:
        on_disk = {p.name for p in list_dir(self.models_dir) if p.is_dir() and not p.name.startswith(".")}
        out = {mid: rec for mid, rec in index.items() if mid in on_disk}
        report.dropped.extend(sorted(set(index) - on_disk))
        for model_id in sorted(on_disk - set(index)):
            out[model_id] = self._recover_record(model_id)
            report.recovered.append(model_id)
        return out

    def _recover_record(self, model_id: str) -> dict[str, Any]:
        """The model's own record file, or (if that is lost or malformed) a record made by hashing its files."""
        directory = self.models_dir / model_id
        record_file = directory / RECORD_NAME
        with contextlib.suppress(OSError, ValueError):  # unreadable, not JSON, or malformed (StoreCorruptError)
            return check_record(json.loads(record_file.read_text(encoding="utf-8")), model_id)
        _log.warning("model %s has no readable record; rebuilding it from its files", model_id)
        found = [
            StoredFile(p.relative_to(directory).as_posix(), p.stat().st_size, sha256_file(p))
            for p in sorted(directory.rglob("*"))
            if p.is_file() and p.name != RECORD_NAME and not TEMP_NAME.match(p.name)
        ]
        derived = tuple(f for f in found if f.path.startswith(f"{DERIVED_DIR}/"))
        now = time.time()
        model = StoredModel(model_id, model_id, "unknown", "unknown", "unknown", directory,
                            tuple(f for f in found if f not in derived), "recovered", now, now, derived=derived)
        with _bookkeeping(f"save the rebuilt record of {model_id}"):
            write_json_atomic(record_file, model.to_record(), action=f"save the record of {model_id}")
        return model.to_record()

    def _sweep(self) -> None:
        """Remove the leftovers no pull can resume (half-deleted models, temporary files, scratch); lock held."""
        items = [i for i in find_leftovers(self.home, self.models_dir, self.staging_dir) if not i.resumable]
        if not items:
            return
        with _bookkeeping("remove the leftovers of earlier runs"):
            report = remove_leftovers(items, self.pull_lock)
            for item in report.removed:
                _log.info("removed %s %s (%d bytes)", item.kind, item.path, item.size_bytes)

    def _save_index(self, index: dict[str, dict[str, Any]]) -> None:
        make_dirs(self.home, "create the model store")
        write_json_atomic(self.manifest_path, {"version": _MANIFEST_VERSION, "models": index},
                          action="save the store's manifest")

    @contextlib.contextmanager
    def _index(self) -> Iterator[dict[str, dict[str, Any]]]:
        """Read-modify-write the manifest under the cross-process manifest lock."""
        with self._manifest_lock():
            index = self._load_index()
            before = json.dumps(index, sort_keys=True)
            yield index
            if json.dumps(index, sort_keys=True) != before:
                self._save_index(index)

    # --------------------------------------------------------------- queries
    def models(self) -> list[StoredModel]:
        with self._index() as index:
            disk = [StoredModel.from_record(rec, self.models_dir / mid) for mid, rec in index.items()]
        return sorted(disk + list(self._memory.values()), key=lambda m: m.id)

    def get(self, model_id: str) -> StoredModel | None:
        check_model_id(model_id)
        if model_id in self._memory:
            return self._memory[model_id]
        with self._index() as index:
            record = index.get(model_id)
        return StoredModel.from_record(record, self.models_dir / model_id) if record else None

    def require(self, model_id: str) -> StoredModel:
        model = self.get(model_id)
        if model is None:
            raise ModelNotFoundError(
                f"model {model_id!r} is not in the store; pull it first (`runanywhere models pull {model_id}`)",
                details={"model_id": model_id},
            )
        return model

    def used_bytes(self) -> int:
        return sum(m.size_bytes for m in self.models() if not m.in_memory)

    def disk_free_bytes(self) -> int:
        probe = self.home
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        return shutil.disk_usage(probe).free

    def info(self) -> StorageInfo:
        models = self.models()
        return StorageInfo(
            home=self.home,
            used_bytes=sum(m.size_bytes for m in models if not m.in_memory),
            quota_bytes=self.quota_bytes,
            disk_free_bytes=self.disk_free_bytes(),
            model_count=len(models),
            reclaimable_bytes=sum(i.size_bytes for i in self.leftovers() if not in_use(i, self.pull_lock)),
        )

    def leftovers(self) -> list[Leftover]:
        """What killed pulls and deletions left behind (partial downloads, half-deleted models, temporary files)."""
        return find_leftovers(self.home, self.models_dir, self.staging_dir)

    def clean(self) -> CleanReport:
        """Remove every leftover, partial downloads included, except those a live pull (any process) holds."""
        with self._manifest_lock():  # half-deleted models and temporary files are only made under it
            return remove_leftovers(self.leftovers(), self.pull_lock)

    # --------------------------------------------------------------- changes
    def commit(self, model: StoredModel, staging: Path) -> StoredModel:
        """Move a complete staging directory into the store as ``model`` (atomic rename)."""
        target = self.models_dir / check_model_id(model.id)
        stored = replace(model, path=target)
        write_json_atomic(staging / RECORD_NAME, stored.to_record(), action=f"store {model.id}")
        make_dirs(self.models_dir, f"store {model.id}")
        with self._index() as index:
            if target.exists():
                self._remove_dir(target)
            try:
                os.replace(staging, target)
            except OSError as exc:
                raise storage_error(exc, f"store {model.id}", target) from exc
            index[model.id] = stored.to_record()
        return stored

    def keep_in_memory(self, model: StoredModel) -> StoredModel:
        """Register a model whose files live in memory (the disk or quota could not hold it)."""
        stored = replace(model, in_memory=True)
        self._memory[model.id] = stored
        return stored

    def add_derived(self, model_id: str, name: str, make: Callable[[Path], None]) -> Path:
        """A file derived from a stored model, at ``<model>/derived/<name>``: made once, then reused.

        ``make(path)`` writes it; it joins the model's record (its size, its
        verification, its pin, its eviction and deletion). A file the quota
        cannot hold even after evicting other unpinned models is deleted and
        raises :class:`InsufficientStorageError`. The caller holds the model's pull lock.
        """
        check_model_id(model_id)
        model = self.require(model_id)
        relative = f"{DERIVED_DIR}/{name}"
        target = model.file_path(relative)
        if any(f.path == relative for f in model.derived) and target.is_file():
            return target
        base = model.path if model.in_memory else self.staging_dir
        scratch = base / f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:8]}.{model_id}"  # guarded by the model's pull lock
        try:
            scratch.mkdir(parents=True, exist_ok=True)
            made = scratch / PurePosixPath(name).name
            make(made)
            size = made.stat().st_size
            if not model.in_memory:
                self.ensure_space(size, for_model=model_id)
            entry = StoredFile(relative, size, sha256_file(made))
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(made, target)
        except OSError as exc:
            if isinstance(exc, SDKError):
                raise
            raise storage_error(exc, f"make {relative} for {model_id}", target) from exc
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        derived = (*(f for f in model.derived if f.path != relative), entry)
        if model.in_memory:
            self._memory[model_id] = replace(self._memory[model_id], derived=derived)
            return target
        with self._index() as index:
            record = {**index.get(model_id, model.to_record()), "derived": [asdict(f) for f in derived]}
            write_json_atomic(model.path / RECORD_NAME, record, action=f"record {relative} of {model_id}")
            index[model_id] = record
        return target

    def touch(self, model_id: str) -> None:
        """Mark a model as just used (the LRU clock); a disk that cannot record it is only logged."""
        check_model_id(model_id)
        if model_id in self._memory:
            self._memory[model_id] = replace(self._memory[model_id], last_used_at=time.time())
            return
        with _bookkeeping(f"record that {model_id} was used"), self._index() as index:
            if model_id in index:
                index[model_id] = {**index[model_id], "last_used_at": time.time()}

    def delete(self, model_id: str) -> int:
        """Delete a stored model; refuses a pinned one. Returns the bytes freed."""
        check_model_id(model_id)
        if self._memory.pop(model_id, None) is not None:
            return 0
        with self._exclusive_unpinned(model_id):
            freed = self._delete_unlocked(model_id)
        self.events.emit(ModelDeleted(model_id=model_id, freed_bytes=freed))
        return freed

    def _delete_unlocked(self, model_id: str) -> int:
        with self._index() as index:
            record = index.pop(model_id, None)
            if record is None:
                raise ModelNotFoundError(f"model {model_id!r} is not in the store", details={"model_id": model_id})
            self._remove_dir(self.models_dir / model_id)
        return sum(int(f["size"]) for f in (*record["files"], *record.get("derived", ())))

    def clear(self) -> list[str]:
        """Delete every unpinned model; returns the ids deleted."""
        deleted = []
        for model in self.models():
            with contextlib.suppress(InvalidStateError):
                self.delete(model.id)
                deleted.append(model.id)
        return deleted

    def _remove_dir(self, directory: Path) -> None:
        """Move a model's folder aside (atomic) and delete it; what a crash leaves is swept on the next open."""
        trash = directory.with_name(f"{TRASH_PREFIX}{directory.name}-{uuid.uuid4().hex[:8]}")
        try:
            os.replace(directory, trash)
        except OSError as exc:
            raise storage_error(exc, f"delete {directory.name}", directory) from exc
        shutil.rmtree(trash, ignore_errors=True)

    def verify(self, model_id: str) -> VerifyReport:
        """Re-hash every file of a stored model against its record."""
        model = self.require(model_id)
        missing, mismatched = [], []
        for f in (*model.files, *model.derived):
            path = model.file_path(f.path)
            if not path.is_file():
                missing.append(f.path)
            elif path.stat().st_size != f.size or sha256_file(path) != f.sha256:
                mismatched.append(f.path)
        return VerifyReport(model_id, not (missing or mismatched), len(model.files) + len(model.derived),
                            tuple(mismatched), tuple(missing))

    # -------------------------------------------------------------- eviction
    def plan_eviction(self, needed_bytes: int, *, exclude: Iterable[str] = ()) -> EvictionPlan:
        """Which unpinned models to delete, least recently used first, so ``needed_bytes`` fit.

        Space is the quota (when set) and the free disk, whichever is tighter.
        """
        models = [m for m in self.models() if not m.in_memory]
        used = sum(m.size_bytes for m in models)
        available = self.disk_free_bytes()
        if self.quota_bytes is not None:
            available = min(available, self.quota_bytes - used)
        skip = set(exclude)
        chosen: list[StoredModel] = []
        freed = 0
        for model in sorted(models, key=lambda m: m.last_used_at):
            if available + freed >= needed_bytes:
                break
            if model.id in skip or self.is_pinned(model.id):
                continue
            chosen.append(model)
            freed += model.size_bytes
        return EvictionPlan(needed_bytes, max(available, 0), tuple(chosen), freed,
                            available + freed >= needed_bytes)

    def evict(self, plan: EvictionPlan) -> int:
        """Carry out a plan; a model pinned since planning is skipped. Returns bytes freed."""
        freed = 0
        for model in plan.models:
            try:
                with self._exclusive_unpinned(model.id):
                    size = self._delete_unlocked(model.id)
            except (InvalidStateError, ModelNotFoundError):
                continue
            freed += size
            _log.info("evicted %s (%d bytes)", model.id, size)
            self.events.emit(ModelEvicted(model_id=model.id, model_name=model.name, freed_bytes=size))
        return freed

    def ensure_space(self, needed_bytes: int, *, for_model: str) -> EvictionPlan:
        """Evict as planned when ``needed_bytes`` do not fit; raise when they never can."""
        plan = self.plan_eviction(needed_bytes, exclude=[for_model])
        if plan.models and plan.fits:
            self.evict(plan)
        if not plan.fits:
            self.events.emit(ModelQuotaExceeded(model_id=for_model, available_bytes=plan.available_bytes,
                                                needed_bytes=needed_bytes))
            raise InsufficientStorageError(
                f"{for_model} needs {needed_bytes} bytes but only {plan.available_bytes + plan.freed_bytes} "
                "can be made free (quota or disk) even after evicting every unpinned model",
                details={"plan": plan},
            )
        return plan

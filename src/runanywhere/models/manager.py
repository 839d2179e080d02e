"""ModelManager: resolve a model id or path to local files, pulling into the store when needed.

Sources are tried in order: an installed Python package that ships the files,
the mirror (a directory or a base URL), then the public URL. Strict offline
mode drops every network source.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any
from urllib.parse import urlparse

import httpx

from .._version import __version__
from ..core.bridge import run_in_thread
from ..core.cancel import CancelToken
from ..core.config import SDKConfig
from ..core.engines import WEIGHTS
from ..core.errors import (
    ArchiveError,
    ChecksumMismatchError,
    DownloadError,
    InsufficientStorageError,
    InvalidInputError,
    ModelFormatError,
    ModelNotFoundError,
    NetworkError,
    OfflineModeError,
    SDKError,
    SDKFileNotFoundError,
)
from ..core.events import (
    EventBus,
    ModelDownloadCompleted,
    ModelDownloadFailed,
    ModelDownloadProgress,
    ModelDownloadStarted,
    ModelRegistered,
)
from ..core.logging import SDKLogger
from ..core.sdk import RunAnywhere
from .archives import extract_archive
from .catalog import Catalog, ModelCategory, ModelEntry, ModelFile, id_from_name
from .diskio import is_full, storage_error
from .downloader import FetchResult, FileProgress, HttpFetcher, NotAtSource, copy_local
from .leftovers import CleanReport
from .locks import FileLock
from .memory import MemoryDirs
from .store import EvictionPlan, ModelStore, StorageInfo, StoredFile, StoredModel, VerifyReport, sha256_file

_log = SDKLogger("ModelManager")
_PARTIAL = ".partial"
_MODEL_SUFFIXES = {".gguf", ".onnx", ".bin", ".safetensors", ".tar", ".gz", ".bz2", ".zip"}
ProgressCallback = Callable[[ModelDownloadProgress], None]


@dataclass(frozen=True)
class LocalModel:
    """A model ready for an engine: its directory, its files on this machine, and which file plays which role.

    ``roles`` come from the catalog entry (a file's ``role``, an archive's
    ``contents`` globs); a model given by the path of one file has that file as
    its ``weights``, and a directory given by path has no roles.
    """

    id: str
    path: Path
    files: tuple[Path, ...]
    entry: ModelEntry | None = None
    in_memory: bool = False
    roles: Mapping[str, Path] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", MappingProxyType(dict(self.roles)))

    def file(self, role: str) -> Path:
        """The file that plays ``role`` (``weights``, ``mmproj``, ``config``, ``tokens`` ...).

        A role the model does not have is a :class:`ModelFormatError` that lists the files present.
        """
        found = self.roles.get(role)
        if found is None:
            present = ", ".join(_relative(f, self.path) for f in self.files[:20]) or "none"
            more = f" and {len(self.files) - 20} more" if len(self.files) > 20 else ""
            raise ModelFormatError(
                f"{self.id} has no {role!r} file; its files: {present}{more}",
                details={"model_id": self.id, "role": role, "roles": sorted(self.roles),
                         "files": [_relative(f, self.path) for f in self.files]})
        return found

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def main_file(self) -> Path:
        """The weights file (see :meth:`file`)."""
        return self.file(WEIGHTS)


def _relative(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix() if path.is_relative_to(base) and path != base else path.name


def model_roles(entry: ModelEntry, directory: Path, files: Iterable[Path]) -> dict[str, Path]:
    """Which of a model's files plays which role: the entry's listed roles, then its archives' globs."""
    roles = {role: directory / path for role, path in entry.file_roles().items()}
    relative = {f: PurePosixPath(_relative(f, directory)) for f in files}
    for role, glob in entry.content_roles().items():
        depth = len(PurePosixPath(glob).parts)  # a whole-path match: '*' never crosses a '/'
        matches = [f for f, rel in relative.items() if len(rel.parts) == depth and rel.match(glob)]
        if len(matches) == 1:  # none or several: file(role) reports it with the files present
            roles[role] = matches[0]
    return roles


@dataclass(frozen=True)
class ModelInfo:
    """A catalog entry with its state on this machine."""

    entry: ModelEntry
    stored: StoredModel | None
    packaged: bool

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def status(self) -> str:
        """``stored``, ``in-memory``, ``packaged`` (installable offline) or ``remote``; an entry registered with a
        ``local_path`` is ``stored`` where it is (``missing`` once that path is gone), never ``remote``."""
        if self.stored is not None:
            return "in-memory" if self.stored.in_memory else "stored"
        if self.entry.local_path is not None:
            return "stored" if self.entry.local_path.exists() else "missing"
        return "packaged" if self.packaged else "remote"


@dataclass(frozen=True)
class _Source:
    label: str
    fetch: Callable[[Path, FileProgress, CancelToken | None], FetchResult]
    network: bool


def _package_dir(name: str) -> Path | None:
    """Where an installed package lives, found without importing (and running) it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _local_source(label: str, parts: list[Path]) -> _Source:
    def fetch(dest: Path, progress: FileProgress, cancel: CancelToken | None) -> FetchResult:
        return copy_local(parts, dest, progress=progress, cancel=cancel)

    return _Source(label, fetch, False)


class _Progress:
    """Aggregates per-file progress into throttled ``model.downloadProgress`` events."""

    def __init__(self, model_id: str, total: int | None, events: EventBus,
                 callback: ProgressCallback | None, interval_s: float = 0.1) -> None:
        self.model_id, self.total, self.events, self.callback = model_id, total, events, callback
        self.interval_s = interval_s
        self.completed = 0
        self._last = 0.0

    def file(self, name: str, stage: str) -> FileProgress:
        def report(done: int, file_total: int | None) -> None:
            now = time.monotonic()
            if done != file_total and now - self._last < self.interval_s:
                return
            self._last = now
            overall = self.completed + done
            event = ModelDownloadProgress(
                model_id=self.model_id, file=name, stage=stage, bytes_downloaded=overall,
                total_bytes=self.total, file_bytes=done, file_total_bytes=file_total,
                progress=min(overall / self.total, 1.0) if self.total else None,
            )
            self.events.emit(event)
            if self.callback is not None:
                self.callback(event)
        return report


def model_name(model: str | os.PathLike[str]) -> str:
    """A model argument as text (a catalog id or a path); anything else is an InvalidInputError."""
    if not isinstance(model, str | os.PathLike):
        raise InvalidInputError(f"a model is a catalog id or a path, got {type(model).__name__}")
    return os.fspath(model)


class ModelLibrary:
    """Catalog + store: list, pull, resolve, pin, verify and delete models.

    ``ModelManager`` is the default instance, bound to ``RunAnywhere.config``;
    create others with an explicit :class:`SDKConfig` (another home, a mirror).
    """

    def __init__(self, config: SDKConfig | None = None, *, catalog: Catalog | None = None,
                 events: EventBus | None = None) -> None:
        self._config = config
        self._catalog = catalog
        self.events = events or EventBus.shared
        self._store: ModelStore | None = None
        self._memory = MemoryDirs()

    # ------------------------------------------------------------- plumbing
    @property
    def config(self) -> SDKConfig:
        return self._config if self._config is not None else RunAnywhere.config

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            catalog = Catalog.builtin()
            for path in self.config.catalog_files:
                catalog.load_json(path)
            self._catalog = catalog
        return self._catalog

    @property
    def store(self) -> ModelStore:
        config = self.config
        store = self._store
        if store is None or store.home != config.home or store.quota_bytes != config.storage_quota_bytes:
            store = self._store = ModelStore(config.home, quota_bytes=config.storage_quota_bytes,
                                             events=self.events)
        return store

    # -------------------------------------------------------------- catalog
    def register(self, entry: ModelEntry | dict[str, Any]) -> ModelEntry:
        """Add (or replace) a catalog entry; a dict takes the ``catalog.json`` shape."""
        registered = self.catalog.register(entry)
        self.events.emit(ModelRegistered(count=1))
        return registered

    def register_file(self, path: str | Path) -> list[ModelEntry]:
        """Register every entry of a JSON catalog file."""
        entries = self.catalog.load_json(path)
        self.events.emit(ModelRegistered(count=len(entries)))
        return entries

    def get(self, model_id: str) -> ModelEntry:
        return self.catalog.get(model_id)

    def info(self, model_id: str) -> ModelInfo:
        entry = self.catalog.get(model_id)
        return ModelInfo(entry, self.store.get(model_id), self._packaged(entry))

    def list_models(self, category: ModelCategory | str | None = None) -> list[ModelInfo]:
        """Every catalog entry with its local state, optionally of one category."""
        stored = {m.id: m for m in self.store.models()}
        wanted = ModelCategory(category) if category is not None else None
        return [
            ModelInfo(e, stored.get(e.id), self._packaged(e))
            for e in self.catalog
            if wanted is None or e.category == wanted
        ]

    def defaults(self) -> list[ModelEntry]:
        """The models ``make demo`` puts in the store: one per capability, all offline-installable."""
        return [e for e in self.catalog if e.is_default]

    # ------------------------------------------------------------ resolving
    def resolve(self, model: str | os.PathLike[str], *, cancel: CancelToken | None = None,
                progress: ProgressCallback | None = None) -> LocalModel:
        """Local files for a catalog id (pulled on first use) or a path to a model file/dir."""
        text = model_name(model)
        if text in self.catalog:
            return self.pull(text, cancel=cancel, progress=progress)
        path = Path(text).expanduser()
        if path.exists():
            if path.is_dir():
                return LocalModel(path.name, path, tuple(sorted(p for p in path.rglob("*") if p.is_file())))
            return LocalModel(path.stem, path, (path,), roles={WEIGHTS: path})
        if os.sep in text or "/" in text or path.suffix in _MODEL_SUFFIXES:
            raise SDKFileNotFoundError(f"model file not found: {path}", details={"path": str(path)})
        return self.pull(text, cancel=cancel, progress=progress)  # unknown id: ModelNotFoundError

    def pull(self, model_id: str, *, cancel: CancelToken | None = None,
             progress: ProgressCallback | None = None, force: bool = False) -> LocalModel:
        """Make sure a catalog model is complete in the store (or memory) and return it."""
        entry = self.catalog.get(model_id)
        if entry.local_path is not None:
            return self._local_entry(entry)
        store = self.store
        if not force and (found := store.get(model_id)) is not None:
            store.touch(model_id)
            return self._local(found, entry)
        with _locked(store.pull_lock(model_id), cancel, self.config.lock_timeout_s):
            # Another process may have finished the same pull while we waited.
            if not force and (found := store.get(model_id)) is not None:
                store.touch(model_id)
                return self._local(found, entry)
            return self._local(self._download(entry, cancel, progress), entry)

    def pull_defaults(self, *, cancel: CancelToken | None = None,
                      progress: ProgressCallback | None = None) -> list[LocalModel]:
        return [self.pull(e.id, cancel=cancel, progress=progress) for e in self.defaults()]

    # Async twins: the blocking work runs on a thread of its own (never the default executor);
    # cancelling the awaiting task cancels the token the download checks.
    async def aresolve(self, model: str | os.PathLike[str], *, cancel: CancelToken | None = None,
                       progress: ProgressCallback | None = None) -> LocalModel:
        """Async twin of :meth:`resolve`."""
        return await run_in_thread(lambda token: self.resolve(model, cancel=token, progress=progress), cancel,
                                   name="resolve")

    async def apull(self, model_id: str, *, cancel: CancelToken | None = None,
                    progress: ProgressCallback | None = None, force: bool = False) -> LocalModel:
        """Async twin of :meth:`pull`."""
        return await run_in_thread(lambda token: self.pull(model_id, cancel=token, progress=progress, force=force),
                                   cancel, name=f"pull-{model_id}")

    async def apull_defaults(self, *, cancel: CancelToken | None = None,
                             progress: ProgressCallback | None = None) -> list[LocalModel]:
        """Async twin of :meth:`pull_defaults`."""
        return await run_in_thread(lambda token: self.pull_defaults(cancel=token, progress=progress), cancel,
                                   name="pull-defaults")

    def pin(self, model_id: str) -> FileLock:
        """Protect a stored model from eviction and deletion until ``release()`` (or ``with``)."""
        return self.store.pin(model_id)

    def derive(self, local: LocalModel, name: str, make: Callable[[Path], None], *,
               cancel: CancelToken | None = None) -> Path:
        """A file made from a model (a converted GGUF, say) once and kept in the store with it.

        A stored model keeps it in its own directory: counted in its size and
        the quota, pinned with it, evicted and deleted with it. A model given by
        path (outside the store) gets a store entry of its own for it, named
        after the model and its path. ``make(path)`` writes the file.
        """
        store = self.store
        in_store = local.entry is not None and local.entry.local_path is None
        digest = hashlib.sha256(os.fsencode(local.path.resolve())).hexdigest()[:8]
        owner = local.id if in_store else f"{id_from_name(local.id)}.{digest}"
        with _locked(store.pull_lock(owner), cancel, self.config.lock_timeout_s):
            if not in_store and store.get(owner) is None:
                staging = store.staging_dir / owner
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
                now = time.time()
                store.commit(StoredModel(owner, f"derived from {local.path}", "derived", "unknown", "unknown",
                                         staging, (), "derived", now, now), staging)
            return store.add_derived(owner, name, make)

    # ----------------------------------------------------------- the store
    def delete(self, model_id: str) -> int:
        self._memory.release(model_id)
        return self.store.delete(model_id)

    def clear(self) -> list[str]:
        return self.store.clear()

    def verify(self, model_id: str) -> VerifyReport:
        return self.store.verify(model_id)

    async def averify(self, model_id: str) -> VerifyReport:
        """Async twin of :meth:`verify` (hashing every file takes a while for a large model)."""
        return await run_in_thread(lambda _: self.verify(model_id), name=f"verify-{model_id}")

    def storage_info(self) -> StorageInfo:
        return self.store.info()

    def clean(self) -> CleanReport:
        """Remove what killed pulls and deletions left in the store (partial downloads included).

        A partial download that a live pull in any process is writing is left alone.
        """
        return self.store.clean()

    async def aclean(self) -> CleanReport:
        """Async twin of :meth:`clean`."""
        return await run_in_thread(lambda _: self.clean(), name="clean")

    def plan_eviction(self, needed_bytes: int, *, exclude: tuple[str, ...] = ()) -> EvictionPlan:
        return self.store.plan_eviction(needed_bytes, exclude=exclude)

    # ------------------------------------------------------------ internals
    def _packaged(self, entry: ModelEntry) -> bool:
        return bool(entry.files) and all(
            f.package and all(_package_dir(p.package) is not None for p in f.package) for f in entry.files
        )

    def _local(self, stored: StoredModel, entry: ModelEntry) -> LocalModel:
        files = tuple(stored.file_path(f.path) for f in stored.files)
        if not any(f.archive for f in entry.files):
            files = tuple(stored.file_path(f.path) for f in entry.files)  # the catalog's order
        return LocalModel(stored.id, stored.path, files, entry, stored.in_memory,
                          model_roles(entry, stored.path, files))

    def _local_entry(self, entry: ModelEntry) -> LocalModel:
        path = entry.local_path
        if path is None:
            raise ModelNotFoundError(f"model {entry.id!r} names no local path")
        if not path.exists():
            raise SDKFileNotFoundError(f"model {entry.id!r} points to {path}, which does not exist")
        if not path.is_dir():
            return LocalModel(entry.id, path, (path,), entry, roles={WEIGHTS: path})
        files = tuple(path / f.path for f in entry.files)
        if any(f.archive for f in entry.files):  # the archives' contents, already extracted there
            files = tuple(sorted(p for p in path.rglob("*") if p.is_file()))
        return LocalModel(entry.id, path, files, entry, roles=model_roles(entry, path, files))

    def _sources(self, entry: ModelEntry, file: ModelFile) -> list[_Source]:
        sources: list[_Source] = []
        if file.package:
            dirs = [_package_dir(p.package) for p in file.package]
            if all(d is not None for d in dirs):
                parts = [d / p.path for d, p in zip(dirs, file.package, strict=True) if d is not None]
                sources.append(_local_source(f"package {file.package[0].package}", parts))
        mirror = self.config.mirror
        if mirror:
            scheme = urlparse(mirror).scheme
            if scheme in ("http", "https"):
                url = f"{mirror.rstrip('/')}/{entry.id}/{file.path}"
                sources.append(self._http_source(f"mirror {url}", url, file.size))
            else:
                base = Path(urlparse(mirror).path if scheme == "file" else mirror).expanduser()
                local = base / entry.id / file.path
                sources.append(_local_source(f"mirror {local}", [local]))
        elif file.url:  # a mirror replaces the public hosts
            sources.append(self._http_source(file.url, file.url, file.size))
        return sources

    def _http_source(self, label: str, url: str, size: int | None) -> _Source:
        def fetch(dest: Path, progress: FileProgress, cancel: CancelToken | None) -> FetchResult:
            config = self.config
            with httpx.Client(timeout=config.timeout_s, follow_redirects=True,
                              headers={"User-Agent": f"runanywhere-python/{__version__}"}) as client:
                fetcher = HttpFetcher(client, max_retries=config.max_retries, backoff_s=config.retry_backoff_s,
                                      stall_timeout_s=config.stall_timeout_s, deadline_s=config.download_deadline_s)
                return fetcher.fetch(url, dest, progress=progress, cancel=cancel, expected_size=size)
        return _Source(label, fetch, True)

    def _download(self, entry: ModelEntry, cancel: CancelToken | None,
                  progress: ProgressCallback | None) -> StoredModel:
        store = self.store
        started = time.monotonic()
        self.events.emit(ModelDownloadStarted(model_id=entry.id, total_bytes=entry.size_bytes,
                                              source=self._describe_sources(entry)))
        staging = store.staging_dir / entry.id
        try:
            try:
                needed = entry.stored_bytes or entry.memory_bytes or 0
                if needed:
                    store.ensure_space(needed, for_model=entry.id)
                staging.mkdir(parents=True, exist_ok=True)
                files = self._fetch_all(entry, staging, cancel, progress)
                stored = store.commit(self._record(entry, staging, files), staging)
            except OSError as exc:  # StorageError and NetworkError are OSErrors too
                if not is_full(exc):
                    if isinstance(exc, SDKError):
                        raise
                    raise storage_error(exc, f"write {entry.id} into the store", store.home) from exc
                shutil.rmtree(staging, ignore_errors=True)
                if not self.config.memory_fallback:
                    raise InsufficientStorageError(
                        f"no room for {entry.id} in {store.home}: {exc}; free space, raise the quota, "
                        "or allow memory_fallback") from exc
                _log.warning("no room for %s on disk (%s); keeping it in memory for this process", entry.id, exc)
                memory_dir = self._memory.create(entry.id)
                try:
                    files = self._fetch_all(entry, memory_dir, cancel, progress)
                except BaseException:
                    self._memory.release(entry.id)
                    raise
                stored = store.keep_in_memory(self._record(entry, memory_dir, files))
        except SDKError as exc:
            if isinstance(exc, ArchiveError | ChecksumMismatchError):
                shutil.rmtree(staging, ignore_errors=True)  # bad bytes: nothing worth resuming
            self.events.emit(ModelDownloadFailed(model_id=entry.id, error=str(exc)))
            raise
        self.events.emit(ModelDownloadCompleted(
            model_id=entry.id, size_bytes=stored.size_bytes, local_path=str(stored.path),
            duration_s=time.monotonic() - started))
        return stored

    @staticmethod
    def _record(entry: ModelEntry, path: Path, files: list[StoredFile]) -> StoredModel:
        now = time.time()
        return StoredModel(entry.id, entry.name, entry.category.value, entry.engine, entry.format, path,
                           tuple(files), "catalog", now, now)

    def _describe_sources(self, entry: ModelEntry) -> str:
        first = entry.files[0]
        return ", ".join(s.label for s in self._sources(entry, first)) or "none"

    def _fetch_all(self, entry: ModelEntry, target: Path, cancel: CancelToken | None,
                   progress: ProgressCallback | None) -> list[StoredFile]:
        tracker = _Progress(entry.id, entry.size_bytes, self.events, progress)
        partial_dir = target / _PARTIAL
        stored: list[StoredFile] = []
        for file in entry.files:
            final = target / file.path
            if not file.archive and final.is_file() and file.size in (None, final.stat().st_size):
                digest = sha256_file(final)  # completed (and checked) by an earlier, interrupted pull
                if file.sha256 in (None, digest):
                    stored.append(StoredFile(file.path, final.stat().st_size, digest))
                    tracker.completed += final.stat().st_size
                    continue
            part = partial_dir / (file.path + ".part")
            part.parent.mkdir(parents=True, exist_ok=True)
            result = self._fetch_one(entry, file, part, tracker, cancel)
            _check(entry, file, part, result)
            if file.archive:
                room = self._room(target, staged=sum(f.size for f in stored))
                stored.extend(self._extract(file, part, target, tracker, room))
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(part, final)
                stored.append(StoredFile(file.path, result.size, result.sha256))
            tracker.completed += result.size
        shutil.rmtree(partial_dir, ignore_errors=True)
        return stored

    def _fetch_one(self, entry: ModelEntry, file: ModelFile, part: Path, tracker: _Progress,
                   cancel: CancelToken | None) -> FetchResult:
        sources = self._sources(entry, file)
        if self.config.offline:
            sources = [s for s in sources if not s.network]
            if not sources:
                hint = f"`pip install {' '.join(entry.pip)}` or " if entry.pip else ""
                absent = [p.package for p in file.package if _package_dir(p.package) is None]
                which = f" ({file.path} is joined from packages; not installed: {', '.join(absent)})" \
                    if absent and len(file.package) > 1 else ""
                raise OfflineModeError(
                    f"{entry.id} is not in the store and offline mode forbids downloading it{which}; "
                    f"{hint}set a mirror directory (RUNANYWHERE_MIRROR) that holds it",
                    details={"model_id": entry.id, "missing_packages": absent})
        if not sources:
            raise DownloadError(f"{entry.id}: no source for {file.path} (no package, mirror or URL)",
                                details={"model_id": entry.id, "file": file.path})
        failures: list[str] = []
        last: NotAtSource | NetworkError | None = None
        for source in sources:
            stage = "downloading" if source.network else "copying"
            try:
                return source.fetch(part, tracker.file(file.path, stage), cancel)
            except (NotAtSource, NetworkError) as exc:
                failures.append(f"{source.label}: {exc.message}")
                last = exc
                _log.warning("%s", failures[-1])
        if isinstance(last, NotAtSource):
            raise ModelNotFoundError(
                f"{entry.id}/{file.path} was found at none of its sources: " + "; ".join(failures),
                details={"model_id": entry.id, "attempts": failures, **(last.details or {})},
            ) from last
        if last is None:
            raise ModelNotFoundError(f"{entry.id}/{file.path} has no source to download it from")
        raise last

    def _extract(self, file: ModelFile, part: Path, target: Path, tracker: _Progress,
                 room: int) -> list[StoredFile]:
        """Unpack a downloaded archive into ``target`` within its limits (see ``extract_archive``), then drop it."""
        tracker.file(file.path, "extracting")(0, None)
        archive = part.with_name(PurePosixPath(file.path).name)  # errors name the archive, not its .part
        os.replace(part, archive)
        extracted = extract_archive(archive, target, max_bytes=file.unpacked_size, room_bytes=room,
                                    max_ratio=self.config.archive_max_ratio)
        archive.unlink()
        return extracted

    def _room(self, target: Path, *, staged: int) -> int:
        """Bytes an archive may expand to in ``target``: the free disk and, in the store, what the quota leaves."""
        room = shutil.disk_usage(target).free
        store = self.store
        if store.quota_bytes is not None and target.is_relative_to(store.staging_dir):
            room = min(room, store.quota_bytes - store.used_bytes() - staged)
        return room


def _check(entry: ModelEntry, file: ModelFile, part: Path, result: FetchResult) -> None:
    """Verify size and sha256 before the file may enter the store; a bad file is deleted."""
    problem = None
    if file.size is not None and result.size != file.size:
        problem = f"size {result.size} bytes, expected {file.size}"
    elif file.sha256 is not None and result.sha256 != file.sha256:
        problem = f"sha256 {result.sha256}, expected {file.sha256}"
    if problem:
        part.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"{entry.id}/{file.path} failed verification ({problem}); nothing was stored",
            details={"model_id": entry.id, "file": file.path, "sha256": result.sha256, "size": result.size})


@contextmanager
def _locked(lock: FileLock, cancel: CancelToken | None, timeout_s: float | None = None) -> Iterator[None]:
    if not lock.try_acquire():
        _log.info("waiting for %s, held by %s", lock.path.name, lock.holder() or "another process")
        lock.acquire(cancel=cancel, timeout=timeout_s)
    try:
        yield
    finally:
        lock.release()


ModelManager = ModelLibrary()

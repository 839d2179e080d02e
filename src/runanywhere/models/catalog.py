"""The model catalog: what each known model is, and every place its files can come from.

A :class:`ModelEntry` names its files; each :class:`ModelFile` may be found in an
installed Python package (possibly split in parts), on a mirror, or at a public
URL. The built-in entries live in ``catalog.json``; users add their own with
:meth:`Catalog.register` or a JSON file of the same shape.
"""

from __future__ import annotations

import enum
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any

from ..core.engines import WEIGHTS
from ..core.errors import ConfigurationError, InvalidInputError, ModelNotFoundError, SDKError

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_model_id(model_id: object, *, error: type[SDKError] = InvalidInputError) -> str:
    """``model_id`` if it is safe to become a file name in the store (no path, no NUL), else ``error``.

    Every place an id meets the file system (catalog entries, the store's directories and locks) checks it here.
    """
    if not isinstance(model_id, str) or not _ID.match(model_id):
        raise error(f"invalid model id {model_id!r}: use letters, digits, '.', '_' or '-', starting with a letter "
                    "or digit (at most 128)", details={"model_id": repr(model_id)})
    return model_id


def id_from_name(name: str) -> str:
    """A valid model id made from any name (a file's stem): other characters become '_'."""
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:100].lstrip("._-")
    return slug or "model"


_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


class ModelCategory(str, enum.Enum):
    LANGUAGE = "language"
    SPEECH_RECOGNITION = "speech-recognition"
    SPEECH_SYNTHESIS = "speech-synthesis"
    AUDIO = "audio"
    VISION = "vision"
    MULTIMODAL = "multimodal"
    EMBEDDING = "embedding"
    IMAGE_GENERATION = "image-generation"


@dataclass(frozen=True)
class PackagePart:
    """A file inside an installed Python package (``package`` is its import name)."""

    package: str
    path: str


@dataclass(frozen=True)
class ModelFile:
    """One file of a model, stored at ``path`` inside the model's directory.

    ``package`` lists the installed-package parts whose concatenation is the
    file; ``archive`` files are extracted into the model directory and not kept.
    ``role`` says what the file is to an engine (``weights``, ``mmproj``,
    ``config``, ``tokens``, ``encoder``, ``decoder``, ``vae``, ``voice`` ...);
    an archive's ``contents`` give roles to extracted files by glob
    (``("encoder", "*-encoder.onnx")``), matched against whole paths inside the
    model (an archive's single top directory is stripped on extraction). An
    archive's ``unpacked_size`` (bytes of its contents) bounds its extraction
    and is what the store makes room for.
    """

    path: str
    url: str | None = None
    size: int | None = None
    sha256: str | None = None
    package: tuple[PackagePart, ...] = ()
    archive: bool = False
    role: str | None = None
    contents: tuple[tuple[str, str], ...] = ()
    unpacked_size: int | None = None

    def __post_init__(self) -> None:
        pure = PurePosixPath(self.path)
        if not self.path or pure.is_absolute() or ".." in pure.parts or "\\" in self.path:
            raise ConfigurationError(f"model file path must be relative and inside the model: {self.path!r}")
        roles = ([self.role] if self.role is not None else []) + [role for role, _ in self.contents]
        if bad := [role for role in roles if not isinstance(role, str) or not _ROLE.match(role)]:
            raise ConfigurationError(f"{self.path}: a role is a short lower-case name, got {bad[0]!r}")
        if self.archive and self.role is not None:
            raise ConfigurationError(f"{self.path}: an archive is not kept; give its contents roles instead")
        if self.contents and not self.archive:
            raise ConfigurationError(f"{self.path}: only an archive has contents; give the file itself a role")
        if any(not isinstance(glob, str) or not glob for _, glob in self.contents):
            raise ConfigurationError(f"{self.path}: every content role needs a glob pattern")
        if self.sha256 is not None:
            object.__setattr__(self, "sha256", self.sha256.lower())
            if not _SHA256.match(self.sha256.lower()):
                raise ConfigurationError(f"not a sha256 hex digest for {self.path}: {self.sha256!r}")
        if self.size is not None and self.size < 0:
            raise ConfigurationError(f"negative size for {self.path}")
        if self.unpacked_size is not None:
            if not self.archive:
                raise ConfigurationError(f"{self.path}: only an archive has an unpacked_size")
            if isinstance(self.unpacked_size, bool) or not isinstance(self.unpacked_size, int) \
                    or self.unpacked_size < 0:
                raise ConfigurationError(f"{self.path}: unpacked_size must be a whole number of bytes, at least 0")


@dataclass(frozen=True)
class ModelEntry:
    """A catalog entry: identity, what it is for, and where its files come from."""

    id: str
    name: str
    category: ModelCategory
    format: str
    engine: str
    files: tuple[ModelFile, ...]
    license: str | None = None
    memory_bytes: int | None = None
    tags: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()
    local_path: Path | None = None
    description: str = ""

    def __post_init__(self) -> None:
        check_model_id(self.id, error=ConfigurationError)
        object.__setattr__(self, "category", ModelCategory(self.category))
        if not self.files and self.local_path is None:
            raise ConfigurationError(f"model {self.id!r} lists no files and no local path")
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            raise ConfigurationError(f"model {self.id!r} lists a file twice")
        roles = [f.role for f in self.files if f.role] + [role for f in self.files for role, _ in f.contents]
        if len(set(roles)) != len(roles):
            raise ConfigurationError(f"model {self.id!r} gives a role to two files")

    def file_roles(self) -> dict[str, str]:
        """Role -> path of the listed (non-archive) files; the first file is the weights unless a role says."""
        roles = {f.role: f.path for f in self.files if f.role and not f.archive}
        declared = roles.keys() | {role for f in self.files for role, _ in f.contents}
        plain = [f for f in self.files if not f.archive]
        if WEIGHTS not in declared and plain:
            roles[WEIGHTS] = plain[0].path
        return roles

    def content_roles(self) -> dict[str, str]:
        """Role -> glob of files extracted from the entry's archives."""
        return {role: glob for f in self.files if f.archive for role, glob in f.contents}

    @property
    def size_bytes(self) -> int | None:
        """Sum of the declared file sizes, None when any is unknown."""
        return _total(f.size for f in self.files)

    @property
    def stored_bytes(self) -> int | None:
        """What the model takes in the store: archives as their declared unpacked size; None when unknown."""
        return _total(f.unpacked_size if f.unpacked_size is not None else f.size for f in self.files)

    @property
    def is_default(self) -> bool:
        return "default" in self.tags

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelEntry:
        """Build an entry from the JSON shape of ``catalog.json``."""
        try:
            files = tuple(
                ModelFile(
                    path=f["path"],
                    url=f.get("url"),
                    size=f.get("size"),
                    sha256=f.get("sha256"),
                    package=tuple(PackagePart(p["package"], p["path"]) for p in f.get("package", ())),
                    archive=bool(f.get("archive", False)),
                    role=f.get("role"),
                    contents=tuple(dict(f.get("contents", {})).items()),
                    unpacked_size=f.get("unpacked_size"),
                )
                for f in data.get("files", ())
            )
            local = data.get("local_path")
            return cls(
                id=data["id"],
                name=data.get("name", data["id"]),
                category=ModelCategory(data["category"]),
                format=data["format"],
                engine=data["engine"],
                files=files,
                license=data.get("license"),
                memory_bytes=data.get("memory_bytes"),
                tags=tuple(data.get("tags", ())),
                pip=tuple(data.get("pip", ())),
                local_path=Path(local).expanduser() if local else None,
                description=data.get("description", ""),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, ConfigurationError):
                raise
            raise ConfigurationError(
                f"invalid catalog entry {data.get('id', '?') if isinstance(data, Mapping) else data!r}: {exc!r}"
            ) from exc

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "category": self.category.value,
            "format": self.format,
            "engine": self.engine,
            "license": self.license,
            "memory_bytes": self.memory_bytes,
            "tags": list(self.tags),
            "pip": list(self.pip),
            "files": [_file_to_dict(f) for f in self.files],
        }
        if self.local_path is not None:
            out["local_path"] = str(self.local_path)
        if self.description:
            out["description"] = self.description
        return out


def _total(sizes: Iterable[int | None]) -> int | None:
    known = list(sizes)
    return None if any(s is None for s in known) else sum(s for s in known if s is not None)


def _file_to_dict(f: ModelFile) -> dict[str, Any]:
    out: dict[str, Any] = {"path": f.path}
    for key in ("url", "size", "sha256", "unpacked_size"):
        if getattr(f, key) is not None:
            out[key] = getattr(f, key)
    if f.package:
        out["package"] = [{"package": p.package, "path": p.path} for p in f.package]
    if f.archive:
        out["archive"] = True
    if f.role is not None:
        out["role"] = f.role
    if f.contents:
        out["contents"] = dict(f.contents)
    return out


@dataclass
class Catalog:
    """A thread-safe registry of model entries keyed by id."""

    _entries: dict[str, ModelEntry] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def builtin(cls) -> Catalog:
        """The built-in catalog: the reference SDK's models plus the offline ones."""
        text = resources.files(__package__).joinpath("catalog.json").read_text(encoding="utf-8")
        catalog = cls()
        catalog.register_many(ModelEntry.from_dict(d) for d in json.loads(text)["models"])
        return catalog

    def register(self, entry: ModelEntry | Mapping[str, Any], *, replace: bool = True) -> ModelEntry:
        if not isinstance(entry, ModelEntry):
            entry = ModelEntry.from_dict(entry)
        with self._lock:
            if not replace and entry.id in self._entries:
                raise ConfigurationError(f"model {entry.id!r} is already registered")
            self._entries[entry.id] = entry
        return entry

    def register_many(self, entries: Iterable[ModelEntry | Mapping[str, Any]]) -> list[ModelEntry]:
        return [self.register(e) for e in entries]

    def load_json(self, path: str | Path) -> list[ModelEntry]:
        """Register every entry of a JSON file: ``{"models": [...]}`` or a bare list."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError covers bad JSON and non-UTF-8 bytes
            raise ConfigurationError(f"cannot read model catalog {path}: {exc}") from exc
        items = data.get("models") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ConfigurationError(f"{path}: expected a list of models or {{'models': [...]}}")
        return self.register_many(items)

    def get(self, model_id: str) -> ModelEntry:
        with self._lock:
            entry = self._entries.get(model_id)
        if entry is None:
            raise ModelNotFoundError(
                f"unknown model {model_id!r}; `runanywhere models list` shows the catalog, "
                "or register it with ModelManager.register(...)",
                details={"model_id": model_id, "suggestions": self.suggest(model_id)},
            )
        return entry

    def default(self, category: ModelCategory | str) -> ModelEntry:
        """The entry tagged ``default`` for a category: what a feature loads when given no model."""
        wanted = ModelCategory(category)
        found = next((e for e in self if e.is_default and e.category == wanted), None)
        if found is None:
            raise ModelNotFoundError(f"the catalog marks no default {wanted.value} model; name one",
                                     details={"category": wanted.value})
        return found

    def suggest(self, model_id: str) -> list[str]:
        needle = model_id.lower()
        return [i for i in self.ids() if needle in i.lower() or i.lower() in needle][:5]

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def __contains__(self, model_id: object) -> bool:
        with self._lock:
            return model_id in self._entries

    def __iter__(self) -> Iterator[ModelEntry]:
        with self._lock:
            return iter(list(self._entries.values()))

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

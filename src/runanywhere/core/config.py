"""SDK configuration: one frozen record, from arguments and ``RUNANYWHERE_*`` variables."""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigurationError
from .validation import positive_int, positive_number

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*((?:[kmgt]i?)?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
# An archive that expands to more than this many times its own size is refused as an archive bomb
# (model weights barely compress; zeros compress about 1000 times).
ARCHIVE_MAX_RATIO = 200.0


class Environment(str, enum.Enum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


def parse_size(value: int | float | str) -> int:
    """Bytes from ``1048576``, ``2e9``, ``"500MB"``, ``"2GiB"`` or ``"1.5g"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not value >= 0 or value == float("inf"):
            raise ConfigurationError(f"a size must be a finite number of bytes, at least 0: {value}")
        return int(value)
    match = _SIZE.match(value) if isinstance(value, str) else None
    if not match:
        raise ConfigurationError(
            f"cannot read {value!r} as a size; write bytes or a number with a unit like '500MB' or '2GiB'"
        )
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    base = _UNITS[unit[:1]]
    if "i" in unit:
        base = 1024 ** "bkmgt".index(unit[0]) if unit[0] != "b" else 1
    return int(number * base)


def default_home() -> Path:
    return Path(os.environ.get("RUNANYWHERE_HOME") or Path.home() / ".runanywhere").expanduser()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class SDKConfig:
    """Where models live and how they may be fetched.

    ``home`` holds the model store (``RUNANYWHERE_HOME``, default ``~/.runanywhere``).
    ``mirror`` is a base URL or a directory that replaces the public hosts: a
    model's file ``F`` of model ``ID`` is read from ``{mirror}/{ID}/{F}``.
    ``offline`` refuses every network request. ``catalog_files`` are JSON
    catalogs of extra models (``RUNANYWHERE_CATALOG``, ``os.pathsep``-separated). ``storage_quota_bytes`` caps the
    store; older unpinned models are evicted (least recently used first) to fit.
    ``timeout_s`` bounds each network wait; a download that gains less than 64 KiB in
    ``stall_timeout_s`` is a timeout, and ``download_deadline_s`` (None: none) bounds a whole file.
    A pull waits at most ``lock_timeout_s`` for another process pulling the same model.
    An archive may expand to at most ``archive_max_ratio`` times its packed size (an archive bomb guard).
    """

    home: Path = field(default_factory=default_home)
    environment: Environment = Environment.DEVELOPMENT
    debug: bool = False
    offline: bool = False
    mirror: str | None = None
    storage_quota_bytes: int | None = None
    memory_fallback: bool = True
    max_retries: int = 3
    retry_backoff_s: float = 0.5
    timeout_s: float = 30.0
    stall_timeout_s: float = 60.0
    download_deadline_s: float | None = None
    lock_timeout_s: float = 1800.0
    archive_max_ratio: float = ARCHIVE_MAX_RATIO
    catalog_files: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "home", Path(self.home).expanduser())
        if self.home.exists() and not self.home.is_dir():
            raise ConfigurationError(f"the model store's home {self.home} is a file, not a folder; point "
                                     "RUNANYWHERE_HOME (or home=) at a folder", details={"home": str(self.home)})
        files: Any = self.catalog_files
        if isinstance(files, (str, os.PathLike)):  # one file, not an iterable of characters
            files = (files,)
        object.__setattr__(self, "catalog_files", tuple(Path(p).expanduser() for p in files))
        try:
            object.__setattr__(self, "environment", Environment(self.environment))
        except ValueError:
            choices = ", ".join(e.value for e in Environment)
            raise ConfigurationError(f"unknown environment {self.environment!r}; use one of: {choices}") from None
        if self.storage_quota_bytes is not None:
            object.__setattr__(self, "storage_quota_bytes", parse_size(self.storage_quota_bytes))
        positive_int("max_retries", self.max_retries, allow_zero=True, error=ConfigurationError)
        positive_number("timeout_s", self.timeout_s, error=ConfigurationError)
        positive_number("stall_timeout_s", self.stall_timeout_s, error=ConfigurationError)
        positive_number("lock_timeout_s", self.lock_timeout_s, error=ConfigurationError)
        positive_number("archive_max_ratio", self.archive_max_ratio, error=ConfigurationError)
        if self.download_deadline_s is not None:
            positive_number("download_deadline_s", self.download_deadline_s, error=ConfigurationError)

    @classmethod
    def from_env(cls, **overrides: Any) -> SDKConfig:
        """Defaults, then ``RUNANYWHERE_*`` variables, then explicit ``overrides`` (None = unset)."""
        values: dict[str, Any] = {}
        if os.environ.get("RUNANYWHERE_OFFLINE"):
            values["offline"] = _env_flag("RUNANYWHERE_OFFLINE")
        if os.environ.get("RUNANYWHERE_MIRROR"):
            values["mirror"] = os.environ["RUNANYWHERE_MIRROR"]
        if os.environ.get("RUNANYWHERE_CATALOG"):
            values["catalog_files"] = tuple(p for p in os.environ["RUNANYWHERE_CATALOG"].split(os.pathsep) if p)
        if os.environ.get("RUNANYWHERE_QUOTA"):
            values["storage_quota_bytes"] = parse_size(os.environ["RUNANYWHERE_QUOTA"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigurationError(f"unknown configuration option(s): {', '.join(sorted(unknown))}")
        return cls(**values)

    def with_options(self, **changes: Any) -> SDKConfig:
        return replace(self, **changes)

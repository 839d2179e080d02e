"""Checking a stored model's record (its manifest entry or its own record file) before it is trusted.

A record is JSON that a crash, a disk error or a hand edit may have bent out of
shape; the store reads only records that pass :func:`check_record` and rebuilds
the others from the model's files. Unknown extra keys are allowed (and kept).
"""

from __future__ import annotations

import math
import re
from pathlib import PurePosixPath
from typing import Any

from ..core.errors import StoreCorruptError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TEXT_FIELDS = ("name", "category", "engine", "format", "source")
_TIME_FIELDS = ("stored_at", "last_used_at")


def check_record(data: object, model_id: str) -> dict[str, Any]:
    """``data`` as the record of ``model_id`` when its shape is right, else a :class:`StoreCorruptError`."""
    problems = _problems(data, model_id)
    if problems or not isinstance(data, dict):
        raise StoreCorruptError(f"the record of model {model_id!r} is malformed: {'; '.join(problems)}",
                                details={"model_id": model_id, "problems": problems})
    return data


def _problems(data: object, model_id: str) -> list[str]:
    if not isinstance(data, dict):
        return [f"a record is a JSON object, not {type(data).__name__}"]
    problems = [] if data.get("id") == model_id else [f"its id is {data.get('id')!r}"]
    if "files" not in data:
        problems.append("it has no 'files'")
    for key in ("files", "derived"):
        files = data.get(key, [])
        if not isinstance(files, list):
            problems.append(f"{key!r} is a {type(files).__name__}, not a list")
        else:
            problems.extend(f"{key}[{i}]: {p}" for i, entry in enumerate(files) for p in _file_problems(entry))
    problems.extend(f"{k!r} is not text" for k in _TEXT_FIELDS if k in data and not isinstance(data[k], str))
    problems.extend(f"{k!r} is not a finite number" for k in _TIME_FIELDS if k in data and not _finite(data[k]))
    if "in_memory" in data and not isinstance(data["in_memory"], bool):
        problems.append("'in_memory' is not true or false")
    return problems


def _file_problems(entry: object) -> list[str]:
    if not isinstance(entry, dict):
        return [f"a file is a JSON object, not {type(entry).__name__}"]
    problems = []
    path = entry.get("path")
    if not isinstance(path, str) or not _safe_relative(path):
        problems.append(f"path {path!r} is not a relative path inside the model's folder")
    size = entry.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        problems.append(f"size {size!r} is not a byte count")
    digest = entry.get("sha256")
    if not isinstance(digest, str) or not _SHA256.match(digest):
        problems.append(f"sha256 {digest!r} is not a hex digest")
    return problems


def _safe_relative(path: str) -> bool:
    parts = PurePosixPath(path).parts
    return bool(parts) and "\x00" not in path and not PurePosixPath(path).is_absolute() and ".." not in parts


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)

"""A job's inputs, read one at a time: audio files from a directory or glob, texts from JSONL, CSV or Parquet.

Each input has a stable ``id`` (the audio file's path; a text row's ``id`` column, else its 1-based row number),
so a resumed job can tell what it already did. A row that cannot be read (not JSON, no text in the column) is
an input with an ``error``: the job records it as that row's result and goes on.
"""

from __future__ import annotations

import csv
import glob
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import InvalidInputError, SDKError, SDKFileNotFoundError

AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3"})
TABLE_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".parquet")
PARQUET_BATCH = 1024


@dataclass(frozen=True)
class JobInput:
    """One thing to process: its ``id``, its ``value`` (an audio path or a text), or why it cannot be read."""

    id: str
    value: str
    error: str = ""


def read_inputs(source: str, *, audio: bool, column: str) -> Iterator[JobInput]:
    """The inputs named by ``source``: audio files (``audio``) or the ``column`` of a text table."""
    if not isinstance(source, str) or not source.strip():
        raise InvalidInputError("the input must be a directory, a glob, or a .jsonl/.csv/.parquet file")
    return _audio_files(source) if audio else _table_rows(Path(source), column)


def _audio_files(source: str) -> Iterator[JobInput]:
    path = Path(source).expanduser()
    if any(c in source for c in "*?["):
        found = sorted(glob.glob(str(path), recursive=True))
        files = [Path(f) for f in found if Path(f).is_file()]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    elif path.is_file():
        files = [path]
    else:
        raise SDKFileNotFoundError(f"no such audio file or directory: {source}")
    if not files:
        raise InvalidInputError(f"{source} names no audio files ({', '.join(sorted(AUDIO_SUFFIXES))})")
    for file in files:
        yield JobInput(str(file), str(file))


def _table_rows(path: Path, column: str) -> Iterator[JobInput]:
    if not path.is_file():
        raise SDKFileNotFoundError(f"no such input file: {path}")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InvalidInputError(f"{path.name}: texts come from {', '.join(TABLE_SUFFIXES)} files")
    rows = _parquet(path) if suffix == ".parquet" else _csv(path) if suffix == ".csv" else _jsonl(path)
    for number, row in rows:
        yield _text_input(number, row, column)


def _text_input(number: int, row: Any, column: str) -> JobInput:
    if not isinstance(row, dict):
        return JobInput(str(number), "", f"row {number} is not an object: {str(row)[:80]}")
    ident = row.get("id")
    key = str(ident) if isinstance(ident, str | int) and not isinstance(ident, bool) else str(number)
    value = row.get(column)
    if not isinstance(value, str):
        return JobInput(key, "", f"row {number} has no text in column {column!r}")
    if not value.strip():
        return JobInput(key, value, f"row {number}: the text in column {column!r} is empty")
    return JobInput(key, value)


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                yield number, f"not JSON ({exc})"


def _csv(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            yield from enumerate(csv.DictReader(fh), start=1)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInputError(f"{path.name} is not a UTF-8 CSV file: {exc}") from None


def _parquet(path: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
    except (OSError, ValueError) as exc:  # pyarrow: ArrowInvalid is a ValueError
        raise InvalidInputError(f"{path.name} is not a Parquet file: {exc}") from None
    number = 0
    for batch in table.iter_batches(batch_size=PARQUET_BATCH):
        for row in batch.to_pylist():
            number += 1
            yield number, row


def count_inputs(source: str, *, audio: bool) -> int | None:
    """How many inputs ``source`` holds (None when it cannot be read: :func:`read_inputs` says why)."""
    try:
        if audio:
            return sum(1 for _ in _audio_files(source))
        path = Path(source)
        if path.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        return sum(1 for _ in _table_rows(path, ""))
    except (SDKError, OSError, ValueError):  # a bad source is reported, with its reason, when it is read
        return None

"""Where a job's rows go: JSONL (one row per line, flushed as it comes) or Parquet, and what a resume skips.

A job killed mid-write leaves at most a partial last JSONL line; resuming cuts it off, so every input is in
the output exactly once. Parquet cannot be appended to: a resumed Parquet job reads the rows already written
and writes them again, with the new ones, into a new file that replaces the old one when the job ends.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import InvalidInputError, StorageError
from .spec import JobKind
from .work import Row

PARQUET_GROUP = 256
FORMATS = (".jsonl", ".ndjson", ".parquet")


def check_output(path: Path) -> None:
    """Refuse an output whose format is unknown or whose folder does not exist."""
    if path.suffix.lower() not in FORMATS:
        raise InvalidInputError(f"the output must be a .jsonl or .parquet file, got {path.name}")
    if not path.parent.is_dir():
        raise InvalidInputError(f"the output's folder does not exist: {path.parent}")


def done_ids(path: Path) -> set[str]:
    """The ids of the rows already in ``path`` (empty when it does not exist)."""
    return {row["id"] for row in _existing(path)}


def _existing(path: Path) -> list[Row]:
    if not path.exists():
        return []
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (OSError, ValueError) as exc:  # pyarrow: ArrowInvalid is a ValueError
            raise StorageError(f"{path} is not a readable Parquet file ({exc}); move it away to start over") from None
        return [_from_parquet(row) for row in table.to_pylist()]
    rows = []
    with path.open("rb") as fh:
        for raw in fh:
            if raw.endswith(b"\n"):
                rows.append(json.loads(raw))
    return rows


class RowWriter:
    """Writes a ``kind`` job's rows to ``path``: appended when ``resume``, else a fresh file."""

    def __init__(self, path: Path, kind: JobKind, *, resume: bool) -> None:
        self.path, self.kind = path, kind
        self.parquet = path.suffix.lower() == ".parquet"
        if self.parquet:
            self._pending: list[Row] = _existing(path) if resume else []
            self._tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            self._writer: Any = None
        else:
            if resume:
                _cut_partial_line(path)
            self._fh = path.open("ab" if resume else "wb")

    def write(self, row: Row) -> None:
        if not self.parquet:
            self._fh.write(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
            self._fh.flush()
            return
        self._pending.append(row)
        if len(self._pending) >= PARQUET_GROUP:
            self._flush_parquet()

    def close(self) -> None:
        """Finish the file: the JSONL synced, the Parquet file complete and moved into place."""
        if not self.parquet:
            os.fsync(self._fh.fileno())
            self._fh.close()
            return
        self._flush_parquet()
        if self._writer is None:  # no rows at all: still a valid, empty file
            self._open_parquet()
        self._writer.close()
        os.replace(self._tmp, self.path)

    def _open_parquet(self) -> None:
        import pyarrow.parquet as pq

        self._writer = pq.ParquetWriter(self._tmp, _schema(self.kind))

    def _flush_parquet(self) -> None:
        import pyarrow as pa

        if not self._pending:
            return
        if self._writer is None:
            self._open_parquet()
        schema = self._writer.schema
        self._writer.write_table(pa.Table.from_pylist([_to_parquet(row, schema.names) for row in self._pending],
                                                      schema=schema))
        self._pending = []


def _cut_partial_line(path: Path) -> None:
    """Drop a last line that a killed job left unfinished."""
    if not path.exists():
        return
    with path.open("rb+") as fh:
        data = fh.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            fh.truncate(end)


# Parquet columns: nested values (segments, error, metrics) as JSON text; the embedding as a list of floats.
_NESTED = ("error", "segments", "metrics")


def _to_parquet(row: Row, names: list[str]) -> Row:
    return {k: json.dumps(row[k]) if k in _NESTED and row.get(k) is not None else row.get(k) for k in names}


def _from_parquet(row: Row) -> Row:
    return {k: json.loads(v) if k in _NESTED and isinstance(v, str) else v for k, v in row.items() if v is not None
            or k in ("error",)}


_RESULTS = {JobKind.TRANSCRIBE: ("text", "language", "segments"), JobKind.EMBED: ("embedding",),
            JobKind.GENERATE: ("text", "finish_reason"), JobKind.SPEAK: ("audio_path", "duration_ms")}


def _schema(kind: JobKind) -> Any:
    import pyarrow as pa

    types = {"ok": pa.bool_(), "embedding": pa.list_(pa.float32()), "duration_ms": pa.float64()}
    names = ("id", "input", "ok", "error", *_RESULTS[kind], "metrics")
    return pa.schema([(name, types.get(name, pa.string())) for name in names])

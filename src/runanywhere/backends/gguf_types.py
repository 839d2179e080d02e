"""Which ggml tensor types a GGUF file holds, read from its header alone (no weights, no vocabulary kept).

llama.cpp picks some matrix kernels by tensor type; the batch context needs to know the types before
it loads a model (see :data:`llamacpp_batch.ROW_COUNT_VARIANT_REPACKS`). gguf-py's reader parses every
value of the header into arrays (seconds for a 150k-token vocabulary); this walks past them.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

#: The first 4 bytes of every GGUF file.
MAGIC = b"GGUF"
#: Byte sizes of GGUF's fixed-size value types (uint8 .. float64), by type id; 8 is a string, 9 an array.
_SCALAR_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_STRING, _ARRAY = 8, 9
#: Far more than any real model has: a header claiming more is not a model header.
_MAX_COUNT = 1 << 24


class _Header:
    """A cursor over a GGUF header; every read is bounds-checked (``struct.error`` past the end)."""

    def __init__(self, data: mmap.mmap) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return int(value)

    def count(self) -> int:
        value = self.take("<Q")
        if value > _MAX_COUNT:
            raise struct.error(f"count {value} is out of range")
        return value

    def skip_string(self) -> None:
        length = self.take("<Q")
        self.at += length
        if self.at > len(self.data):
            raise struct.error("string runs past the end")

    def skip_value(self, kind: int) -> None:
        if kind == _STRING:
            self.skip_string()
        elif kind == _ARRAY:
            item, n = self.take("<I"), self.count()
            if item in _SCALAR_SIZES:
                self.at += _SCALAR_SIZES[item] * n
            else:
                for _ in range(n):
                    self.skip_value(item)
        elif kind in _SCALAR_SIZES:
            self.at += _SCALAR_SIZES[kind]
        else:
            raise struct.error(f"unknown value type {kind}")


def tensor_types(path: Path) -> frozenset[int]:
    """The ggml types (``ggml_type`` ids) of the tensors in the GGUF at ``path``; empty when its header
    cannot be read (llama.cpp then says what is wrong when it loads the file)."""
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            if data[:4] != MAGIC:
                return frozenset()
            header = _Header(data)
            header.at = 8  # magic, version
            n_tensors, n_kv = header.count(), header.count()
            for _ in range(n_kv):
                header.skip_string()
                header.skip_value(header.take("<I"))
            types = set()
            for _ in range(n_tensors):
                header.skip_string()
                dims = header.take("<I")
                header.at += 8 * dims
                types.add(header.take("<I"))
                header.at += 8  # the data offset
            return frozenset(types)
    except (OSError, ValueError, struct.error):
        return frozenset()

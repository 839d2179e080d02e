"""sherpa-onnx's ``tokens.txt`` for Moonshine, derived from the model's own ``tokenizer.bin``.

Moonshine ships its vocabulary as ``tokenizer.bin``: one entry per token id,
in id order, each a length and then that many bytes. A length byte of 0 is
an empty token, 1..127 is the length itself, and a first byte of 128 or more
starts a two-byte length ``(second * 128) + first - 128``. sherpa-onnx reads
``tokens.txt`` instead: one line per id, ``base64(token bytes) id`` (bytes, so
that byte-fallback tokens and the ``▁`` word marker survive as they are).
"""

from __future__ import annotations

import base64
from pathlib import Path

from ...core.errors import ModelFormatError, SDKFileNotFoundError

_MAX_TOKENIZER_BYTES = 16 * 10**6  # Moonshine's are about 250 kB


def read_tokenizer_bin(path: Path) -> list[bytes]:
    """The token byte strings of a Moonshine ``tokenizer.bin``, index = token id."""
    if not path.is_file():
        raise SDKFileNotFoundError(f"Moonshine tokenizer not found: {path}")
    if path.stat().st_size > _MAX_TOKENIZER_BYTES:
        raise ModelFormatError(f"{path.name} is too large to be a Moonshine tokenizer.bin")
    data = path.read_bytes()
    tokens: list[bytes] = []
    pos = 0
    while pos < len(data):
        length, pos = data[pos], pos + 1
        if length >= 128:
            if pos >= len(data):
                raise ModelFormatError(f"{path.name} is truncated: a two-byte token length is cut off")
            length, pos = data[pos] * 128 + length - 128, pos + 1
        if pos + length > len(data):
            raise ModelFormatError(f"{path.name} is truncated or not a Moonshine tokenizer.bin "
                                   f"(token {len(tokens)} runs past the end)")
        tokens.append(data[pos:pos + length])
        pos += length
    if len(tokens) < 3 or tokens[1:3] != [b"<s>", b"</s>"]:
        raise ModelFormatError(f"{path.name} is not a Moonshine tokenizer.bin (ids 1 and 2 must be <s> and </s>)")
    return tokens


def write_tokens_txt(tokenizer_bin: Path, out: Path) -> None:
    """Write sherpa-onnx's ``tokens.txt`` for a Moonshine ``tokenizer.bin``."""
    tokens = read_tokenizer_bin(tokenizer_bin)
    out.write_text("".join(f"{base64.b64encode(token).decode('ascii')} {i}\n" for i, token in enumerate(tokens)),
                   encoding="ascii")


def count_tokens(tokens_txt: Path) -> int:
    """How many ids a ``tokens.txt`` gives, checking each line is ``symbol id`` with ids 0, 1, 2 ... in order."""
    if not tokens_txt.is_file():
        raise SDKFileNotFoundError(f"tokens file not found: {tokens_txt}")
    try:
        lines = tokens_txt.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ModelFormatError(f"{tokens_txt.name} is not a sherpa-onnx tokens.txt (not UTF-8 text)") from exc
    for expected, line in enumerate(lines):
        _, _, number = line.rpartition(" ")
        if number != str(expected):
            raise ModelFormatError(f"{tokens_txt.name} line {expected + 1} is not '<symbol> {expected}': {line[:60]!r}")
    return len(lines)

"""Derive whisper.cpp's ggml model file from a CTranslate2 Whisper model (``model.bin``, format 6).

Why: no registry ships a ggml Whisper model, but the CTranslate2 packages hold the same weights. whisper.cpp
reads its legacy ggml file: the magic, eleven int32 hyper-parameters, the mel filter bank, the vocabulary
(length-prefixed bytes) and the tensors (rank, name length, type, dims innermost first, name, data). The
CTranslate2 file names the same tensors differently and fuses the self-attention q/k/v and the cross-attention
k/v; they are split here. Whisper's key projection has no bias: the fused bias's key slice is dropped (a key
bias shifts every score of a query equally, which softmax ignores). Matrices stay f16; vectors, the conv
biases (as [n, 1]) and the positional embeddings are f32, as whisper.cpp's own converter writes them.

The source is memory-mapped and each tensor is written before the next is read; the result goes to a
temporary file that is fsynced and renamed, so a failed, cancelled or corrupt conversion leaves nothing.
"""

from __future__ import annotations

import functools
import math
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..core.cancel import CancelToken
from ..core.errors import ModelFormatError, SDKFileNotFoundError
from ..core.logging import SDKLogger
from .convert import read_json, write_atomically

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["Ct2Model", "convert_whisper_to_ggml", "mel_filters"]

_log = SDKLogger("Convert")

_GGML_MAGIC = 0x67676D6C  # "ggml"
_CT2_VERSION = 6
_CT2_ITEM = {0: "<f4", 1: "<i1", 2: "<i2", 3: "<i4", 4: "<f2", 5: "<u2"}  # CTranslate2's DataType ids
_BPE_TOKENS = 50257  # Whisper's byte-level BPE ids; whisper.cpp names the special tokens after them itself
_SAMPLE_RATE, _N_FFT = 16000, 400
_REDO = "; delete the model and pull it again, or re-install its package"


@dataclass(frozen=True)
class _Variable:
    shape: tuple[int, ...]
    dtype: int
    start: int
    end: int


class Ct2Model:
    """A CTranslate2 ``model.bin`` whose variable index is parsed and checked once; data stays memory-mapped."""

    def __init__(self, path: Path) -> None:
        import numpy as np

        self.path = path
        size = path.stat().st_size
        if size < 16:
            raise ModelFormatError(f"{path} is truncated: {size} bytes, not a CTranslate2 model{_REDO}")
        self._map: NDArray[np.uint8] = np.memmap(path, dtype=np.uint8, mode="r")
        try:
            self.spec, self.variables = self._parse()
        except (struct.error, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"{path} is truncated or not a CTranslate2 model ({exc}){_REDO}") from exc

    def _parse(self) -> tuple[str, dict[str, _Variable]]:
        buf, size = self._map.data, len(self._map)
        (version,) = struct.unpack_from("<I", buf, 0)
        if version != _CT2_VERSION:
            raise ModelFormatError(f"{self.path}: CTranslate2 format version {version}, only {_CT2_VERSION} is read")
        spec, at = _string(buf, 4)
        _revision, count = struct.unpack_from("<II", buf, at)
        at += 8
        variables = {}
        for _ in range(count):
            name, at = _string(buf, at)
            (rank,) = struct.unpack_from("<B", buf, at)
            shape = struct.unpack_from(f"<{rank}I", buf, at + 1)
            dtype, nbytes = struct.unpack_from("<BI", buf, at + 1 + 4 * rank)
            at += 1 + 4 * rank + 5
            if dtype not in _CT2_ITEM or nbytes != math.prod(shape) * int(_CT2_ITEM[dtype][-1]):
                raise ModelFormatError(f"{self.path}: variable {name!r} has {nbytes} bytes for {list(shape)}")
            if at + nbytes > size:
                raise ModelFormatError(
                    f"{self.path} is truncated: {name!r} ends at byte {at + nbytes} of {size}{_REDO}")
            variables[name] = _Variable(tuple(shape), dtype, at, at + nbytes)
            at += nbytes
        return spec, variables

    def array(self, name: str) -> NDArray[Any]:
        """A variable as a read-only view of the map (f16 or f32 for weights)."""
        var = self.variables.get(name)
        if var is None:
            raise ModelFormatError(f"{self.path} has no variable {name!r}")
        return self._map[var.start:var.end].view(_CT2_ITEM[var.dtype]).reshape(var.shape)

    def scalar(self, name: str) -> int:
        """An integer variable (``encoder/num_heads``...)."""
        value = self.array(name)
        if value.size != 1:
            raise ModelFormatError(f"{self.path}: {name!r} is not a scalar")
        return int(value.reshape(()))

    def layers(self, stack: str) -> int:
        """How many ``<stack>/layer_N`` blocks the model has."""
        found = {int(m.group(1)) for n in self.variables if (m := re.match(rf"{stack}/layer_(\d+)/", n))}
        if found != set(range(len(found))):
            raise ModelFormatError(f"{self.path}: {stack} layers {sorted(found)} are not numbered 0..n-1")
        return len(found)


def _string(buf: Any, at: int) -> tuple[str, int]:
    """A CTranslate2 string: uint16 length (with the trailing NUL), then the UTF-8 bytes."""
    (length,) = struct.unpack_from("<H", buf, at)
    if length == 0 or at + 2 + length > len(buf):
        raise ModelFormatError("a string in model.bin runs past the end of the file")
    return bytes(buf[at + 2:at + 1 + length]).decode("utf-8"), at + 2 + length


# --------------------------------------------------------------------------------------------- what is written
@dataclass(frozen=True)
class _Hyper:
    n_vocab: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int
    n_mels: int

    @classmethod
    def of(cls, model: Ct2Model) -> _Hyper:
        if model.spec != "WhisperSpec":
            raise ModelFormatError(f"{model.path} holds a {model.spec}, not a Whisper model (WhisperSpec)")
        audio_state, n_mels, _ = model.array("encoder/conv1/weight").shape
        n_vocab, text_state = model.array("decoder/embeddings/weight").shape
        return cls(n_vocab, model.array("encoder/position_encodings/encodings").shape[0], audio_state,
                   model.scalar("encoder/num_heads"), model.layers("encoder"),
                   model.array("decoder/position_encodings/encodings").shape[0], text_state,
                   model.scalar("decoder/num_heads"), model.layers("decoder"), n_mels)


Producer = Callable[[], "NDArray[Any]"]

_BLOCK_PARTS = {"attn_ln": "self_attention/layer_norm", "attn.out": "self_attention/linear_1",
                "mlp_ln": "ffn/layer_norm", "mlp.0": "ffn/linear_0", "mlp.2": "ffn/linear_1"}
_CROSS_PARTS = {"cross_attn_ln": "attention/layer_norm", "cross_attn.query": "attention/linear_0",
                "cross_attn.out": "attention/linear_2"}


def _tensors(model: Ct2Model, hp: _Hyper) -> Iterator[tuple[str, Producer]]:
    """(whisper.cpp tensor name, its data) for every tensor whisper.cpp loads: the encoder's, then the decoder's."""
    def plain(ct2: str, ggml: str) -> Iterator[tuple[str, Producer]]:
        if f"{ct2}/weight" in model.variables:
            yield f"{ggml}.weight", lambda: model.array(f"{ct2}/weight")
            if f"{ct2}/bias" in model.variables:
                yield f"{ggml}.bias", lambda: model.array(f"{ct2}/bias")
        else:  # a layer norm
            yield f"{ggml}.weight", lambda: model.array(f"{ct2}/gamma")
            yield f"{ggml}.bias", lambda: model.array(f"{ct2}/beta")

    def fused(ct2: str, ggml: str, parts: tuple[str, ...], width: int) -> Iterator[tuple[str, Producer]]:
        for i, part in enumerate(parts):
            rows = slice(i * width, (i + 1) * width)
            yield f"{ggml}.{part}.weight", functools.partial(_rows, model, f"{ct2}/weight", rows)
            if part != "key":
                yield f"{ggml}.{part}.bias", functools.partial(_rows, model, f"{ct2}/bias", rows)

    yield "encoder.positional_embedding", lambda: model.array("encoder/position_encodings/encodings")
    for conv in ("conv1", "conv2"):
        yield f"encoder.{conv}.weight", functools.partial(model.array, f"encoder/{conv}/weight")
        yield f"encoder.{conv}.bias", functools.partial(_column, model, f"encoder/{conv}/bias")
    for i in range(hp.n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        yield from fused(f"{src}/self_attention/linear_0", f"{dst}.attn", ("query", "key", "value"), hp.n_audio_state)
        for ours, theirs in _BLOCK_PARTS.items():
            yield from plain(f"{src}/{theirs}", f"{dst}.{ours}")
    yield from plain("encoder/layer_norm", "encoder.ln_post")
    yield "decoder.positional_embedding", lambda: model.array("decoder/position_encodings/encodings")
    yield "decoder.token_embedding.weight", lambda: model.array("decoder/embeddings/weight")
    for i in range(hp.n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        yield from fused(f"{src}/self_attention/linear_0", f"{dst}.attn", ("query", "key", "value"), hp.n_text_state)
        yield from fused(f"{src}/attention/linear_1", f"{dst}.cross_attn", ("key", "value"), hp.n_text_state)
        for ours, theirs in {**_BLOCK_PARTS, **_CROSS_PARTS}.items():
            yield from plain(f"{src}/{theirs}", f"{dst}.{ours}")
    yield from plain("decoder/layer_norm", "decoder.ln")


def _rows(model: Ct2Model, name: str, rows: slice) -> NDArray[Any]:
    return model.array(name)[rows]


def _column(model: Ct2Model, name: str) -> NDArray[Any]:
    """A conv bias as whisper.cpp stores it: [n, 1]."""
    return model.array(name).reshape(-1, 1)


def _write_tensor(out: IO[bytes], name: str, data: NDArray[Any]) -> None:
    import numpy as np

    if data.dtype.kind != "f":
        raise ModelFormatError(f"tensor {name} is stored as {data.dtype}; only f16/f32 Whisper models convert")
    as_f16 = data.ndim >= 2 and not name.endswith((".bias", "positional_embedding"))
    raw = name.encode()
    out.write(struct.pack(f"<3i{data.ndim}i", data.ndim, len(raw), int(as_f16), *reversed(data.shape)))
    out.write(raw)
    out.write(np.ascontiguousarray(data, dtype="<f2" if as_f16 else "<f4").tobytes())


# ----------------------------------------------------------------------------------- mel filters, vocabulary
def mel_filters(n_mels: int) -> NDArray[np.float32]:
    """Whisper's mel filter bank, shape (n_mels, 201): Slaney-scale triangles, area-normalised (librosa's)."""
    import numpy as np

    def to_mel(hz: NDArray[np.float64]) -> NDArray[np.float64]:
        linear = hz * 3.0 / 200.0
        return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) * 27.0 / np.log(6.4), linear)

    def to_hz(mel: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.where(mel >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel - 15.0)), mel * 200.0 / 3.0)

    bins = np.fft.rfftfreq(_N_FFT, 1.0 / _SAMPLE_RATE)
    edges = to_hz(np.linspace(0.0, to_mel(np.array(_SAMPLE_RATE / 2.0)), n_mels + 2))
    ramps = edges[:, None] - bins[None, :]
    widths = np.diff(edges)
    lower, upper = -ramps[:-2] / widths[:-1, None], ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet, reversed: each printable stand-in character -> the byte it encodes."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = [b for b in range(256) if b not in kept]
    return {chr(b): b for b in kept} | {chr(256 + i): b for i, b in enumerate(shifted)}


def _vocabulary(tokenizer_json: Path) -> list[bytes]:
    """The bytes of BPE ids 0..50256, from the model's ``tokenizer.json``."""
    tokenizer = read_json(tokenizer_json)
    model = tokenizer.get("model") if isinstance(tokenizer, dict) else None
    vocab = model.get("vocab") if isinstance(model, dict) else None
    if not isinstance(vocab, dict):
        raise ModelFormatError(f"{tokenizer_json} is not a BPE tokenizer (no model.vocab)")
    by_id = {i: piece for piece, i in vocab.items() if isinstance(i, int)}
    by_id |= {t["id"]: t["content"] for t in tokenizer.get("added_tokens", []) if t.get("id") not in by_id}
    decoder = _byte_decoder()
    try:
        return [bytes(decoder[c] for c in by_id[i]) for i in range(_BPE_TOKENS)]
    except KeyError as exc:
        raise ModelFormatError(f"{tokenizer_json} is not Whisper's byte-level vocabulary: {exc!r} is missing") from exc


# ------------------------------------------------------------------------------------------------ convert
def convert_whisper_to_ggml(model_dir: Path, out_path: Path, *, cancel: CancelToken | None = None) -> Path:
    """Write whisper.cpp's ggml file for the CTranslate2 Whisper model in ``model_dir``; returns ``out_path``.

    ``model_dir`` holds ``model.bin`` (f16 or f32) and ``tokenizer.json``. A truncated or foreign source raises
    :class:`ModelFormatError` and leaves no output; ``cancel`` is checked between tensors.
    """
    model_dir, out_path = Path(model_dir), Path(out_path)
    for name in ("model.bin", "tokenizer.json"):
        if not (model_dir / name).is_file():
            raise SDKFileNotFoundError(f"{name} not found in {model_dir}: not a CTranslate2 Whisper model",
                                       details={"path": str(model_dir / name)})
    model = Ct2Model(model_dir / "model.bin")
    hp = _Hyper.of(model)
    tokens = _vocabulary(model_dir / "tokenizer.json")
    plan = list(_tensors(model, hp))

    def write(tmp: Path) -> None:
        with tmp.open("wb") as out:
            out.write(struct.pack("<12i", _GGML_MAGIC, hp.n_vocab, hp.n_audio_ctx, hp.n_audio_state, hp.n_audio_head,
                                  hp.n_audio_layer, hp.n_text_ctx, hp.n_text_state, hp.n_text_head, hp.n_text_layer,
                                  hp.n_mels, 1))
            filters = mel_filters(hp.n_mels)
            out.write(struct.pack("<2i", *filters.shape) + filters.astype("<f4").tobytes())
            out.write(struct.pack("<i", len(tokens)))
            out.write(b"".join(struct.pack("<i", len(t)) + t for t in tokens))
            for name, data in plan:
                if cancel is not None:
                    cancel.raise_if_cancelled("conversion")
                _write_tensor(out, name, data())

    write_atomically(out_path, write)
    _log.info("converted %s to whisper.cpp's ggml %s (%d tensors)", model_dir, out_path, len(plan))
    return out_path

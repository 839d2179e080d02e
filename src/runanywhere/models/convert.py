"""Convert a sentence-transformers BERT checkpoint (safetensors) into a GGUF that llama.cpp embeds with.

Why: embedding models such as all-MiniLM-L6-v2 are published in the Hugging Face layout (``config.json``,
``model.safetensors``, a WordPiece vocabulary, ``1_Pooling/config.json``), while llama.cpp, our embedding
engine, only reads GGUF. Converting needs neither torch nor transformers: the safetensors format is a
JSON header followed by raw little-endian arrays, so it is memory-mapped and read with numpy, and the GGUF
is written with the ``gguf`` package.

What is written follows llama.cpp's own ``convert_hf_to_gguf.py`` for ``BertModel``: architecture ``bert``,
its tensor names (``token_embd``, ``blk.N.attn_q`` ...), the hyper-parameters, non-causal attention, the
sentence-transformers pooling mode, and the WordPiece vocabulary in llama.cpp's "phantom space" form
(word-initial pieces get a leading ``▁``, ``##`` continuation pieces lose their prefix).

Tensors are streamed: each one is read from the map, converted and written before the next is touched,
so memory stays at about one tensor. The file is written to a temporary name in the destination
directory and renamed at the end, so a failed or cancelled conversion never leaves a partial ``.gguf``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np
import numpy.typing as npt

from ..core.cancel import CancelToken
from ..core.errors import (
    BackendNotAvailableError,
    ModelFormatError,
    SDKError,
    SDKErrorCode,
    SDKFileNotFoundError,
    StorageError,
)
from ..core.logging import SDKLogger

if TYPE_CHECKING:
    import gguf

__all__ = ["SUPPORTED_DTYPES", "SafetensorsFile", "convert_bert_to_gguf", "read_json", "write_atomically"]

_log = SDKLogger("Convert")

SUPPORTED_DTYPES = ("f32", "f16", "bf16", "q8_0")
"""Output types for the 2-D weights; norms, biases and the position/type tables always stay f32."""

# ---------------------------------------------------------------------------------------------------------
# safetensors
# ---------------------------------------------------------------------------------------------------------

# Every dtype the safetensors format defines, with its size in bytes (to validate the header).
_ST_ITEM_SIZE = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
_ST_FLOAT_DTYPES = ("F32", "F16", "BF16")
_MAX_HEADER_BYTES = 100 * 1024 * 1024


@dataclass(frozen=True)
class _TensorEntry:
    dtype: str
    shape: tuple[int, ...]
    start: int  # absolute byte offsets in the file
    end: int


class SafetensorsFile:
    """A safetensors file whose header is parsed and checked once and whose data is memory-mapped.

    :meth:`tensor` returns a float32 array: a read-only view into the map for F32 data (nothing is
    copied), a converted copy for F16 and BF16.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries = _read_safetensors_header(path)
        size = path.stat().st_size
        self._map: npt.NDArray[np.uint8] = np.memmap(path, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)

    def close(self) -> None:
        """Drop this object's reference to the map (arrays already handed out keep it alive)."""
        self._map = np.zeros(0, np.uint8)

    def names(self) -> list[str]:
        return list(self._entries)

    def shape(self, name: str) -> tuple[int, ...]:
        return self._entries[name].shape

    def tensor(self, name: str) -> npt.NDArray[np.float32]:
        entry = self._entries[name]
        if entry.dtype not in _ST_FLOAT_DTYPES:
            raise ModelFormatError(
                f"{self.path.name}: tensor {name!r} has dtype {entry.dtype}; only F32, F16 and BF16 are supported"
            )
        raw = self._map[entry.start : entry.end]
        if entry.dtype == "F32":
            return raw.view("<f4").reshape(entry.shape)
        if entry.dtype == "F16":
            return raw.view("<f2").astype(np.float32).reshape(entry.shape)
        widened = raw.view("<u2").astype(np.uint32) << 16  # BF16 is the top half of an F32
        return widened.view(np.float32).reshape(entry.shape)


def _read_safetensors_header(path: Path) -> dict[str, _TensorEntry]:
    size = path.stat().st_size
    with path.open("rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ModelFormatError(f"{path.name} is truncated: {size} bytes, not even a header length")
        header_len = int.from_bytes(prefix, "little")
        if header_len > min(size - 8, _MAX_HEADER_BYTES):
            raise ModelFormatError(f"{path.name} is truncated or not safetensors: header of {header_len} bytes")
        try:
            header = json.loads(f.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelFormatError(f"{path.name} has an unreadable safetensors header: {exc}") from exc
    if not isinstance(header, dict):
        raise ModelFormatError(f"{path.name}: safetensors header is not a JSON object")
    data_start = 8 + header_len
    return {
        name: _parse_entry(path, name, info, data_start, size)
        for name, info in header.items()
        if name != "__metadata__"
    }


def _parse_entry(path: Path, name: str, info: Any, data_start: int, size: int) -> _TensorEntry:
    if not isinstance(info, dict):
        raise ModelFormatError(f"{path.name}: header entry {name!r} is not an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in _ST_ITEM_SIZE:
        raise ModelFormatError(f"{path.name}: tensor {name!r} has unknown dtype {dtype!r}")
    if not _is_int_list(shape) or not _is_int_list(offsets) or len(offsets) != 2:
        raise ModelFormatError(f"{path.name}: tensor {name!r} has a malformed shape or data_offsets")
    begin, end = offsets
    if begin > end or (end - begin) != math.prod(shape) * _ST_ITEM_SIZE[dtype]:
        raise ModelFormatError(f"{path.name}: tensor {name!r} has {end - begin} bytes for shape {shape} {dtype}")
    if data_start + end > size:
        raise ModelFormatError(
            f"{path.name} is truncated: tensor {name!r} ends at byte {data_start + end} but the file has {size}"
        )
    return _TensorEntry(dtype, tuple(shape), data_start + begin, data_start + end)


def _is_int_list(value: Any) -> TypeGuard[list[int]]:
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


# ---------------------------------------------------------------------------------------------------------
# config, vocabulary, pooling
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _BertConfig:
    name: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise SDKFileNotFoundError(f"{path.name} not found in {path.parent}", details={"path": str(path)})
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path} is not valid JSON: {exc}") from exc


def _read_config(model_dir: Path) -> _BertConfig:
    raw = read_json(model_dir / "config.json")
    if not isinstance(raw, dict) or raw.get("model_type") != "bert":
        found = raw.get("model_type") if isinstance(raw, dict) else None
        raise ModelFormatError(f"{model_dir / 'config.json'}: model_type is {found!r}, only 'bert' can be converted")
    if raw.get("hidden_act", "gelu") != "gelu" or raw.get("position_embedding_type", "absolute") != "absolute":
        raise ModelFormatError("only BERT with gelu activation and absolute position embeddings is supported")
    try:
        cfg = _BertConfig(
            name=str(raw.get("_name_or_path") or model_dir.name),
            vocab_size=int(raw["vocab_size"]),
            hidden_size=int(raw["hidden_size"]),
            num_layers=int(raw["num_hidden_layers"]),
            num_heads=int(raw["num_attention_heads"]),
            intermediate_size=int(raw["intermediate_size"]),
            max_positions=int(raw["max_position_embeddings"]),
            type_vocab_size=int(raw.get("type_vocab_size", 2)),
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{model_dir / 'config.json'} lacks a BERT hyper-parameter: {exc}") from exc
    if min(cfg.vocab_size, cfg.hidden_size, cfg.num_layers, cfg.num_heads) <= 0 or cfg.hidden_size % cfg.num_heads:
        raise ModelFormatError(f"inconsistent BERT config: hidden_size {cfg.hidden_size}, heads {cfg.num_heads}")
    return cfg


@dataclass(frozen=True)
class _Vocab:
    tokens: list[str]  # already in llama.cpp's phantom-space form
    types: list[int]  # gguf.TokenType values
    special_ids: dict[str, int]  # bos (= CLS), eos and sep (= SEP), unk, pad, mask


_SPECIAL_DEFAULTS = {"cls": "[CLS]", "sep": "[SEP]", "unk": "[UNK]", "pad": "[PAD]", "mask": "[MASK]"}
_TOKEN_NORMAL, _TOKEN_CONTROL, _TOKEN_USER_DEFINED, _TOKEN_UNUSED = 1, 3, 4, 5


def _read_vocab(model_dir: Path, vocab_size: int) -> _Vocab:
    pieces, added = _read_wordpiece(model_dir)
    if len(pieces) > vocab_size:
        raise ModelFormatError(f"the vocabulary has {len(pieces)} tokens but config.json says vocab_size {vocab_size}")
    specials = _special_token_names(model_dir)
    ids = {piece: i for i, piece in enumerate(pieces)}
    special_ids = {}
    for role, piece in specials.items():
        if piece in ids:
            special_ids[role] = ids[piece]
        elif role in ("cls", "sep", "unk"):
            raise ModelFormatError(f"the vocabulary has no {role} token {piece!r}")
    control = set(specials.values()) | {piece for piece, special in added.items() if special}
    types = [_token_type(piece, control, added) for piece in pieces]
    tokens = [_phantom(piece, kind) for piece, kind in zip(pieces, types, strict=True)]
    padding = range(len(pieces), vocab_size)
    return _Vocab(tokens + [f"[PAD{i}]" for i in padding], types + [_TOKEN_UNUSED] * len(padding), special_ids)


def _read_wordpiece(model_dir: Path) -> tuple[list[str], dict[str, bool]]:
    """The WordPiece pieces in id order, and the added tokens (piece -> is special)."""
    tokenizer_json = model_dir / "tokenizer.json"
    tokenizer = read_json(tokenizer_json) if tokenizer_json.is_file() else {}
    added = {t["content"]: bool(t.get("special")) for t in tokenizer.get("added_tokens", []) if "content" in t}
    _warn_if_cased(tokenizer)
    vocab_txt = model_dir / "vocab.txt"
    if vocab_txt.is_file():
        return vocab_txt.read_text(encoding="utf-8").splitlines(), added
    model = tokenizer.get("model", {})
    if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        if not tokenizer_json.is_file():
            raise SDKFileNotFoundError(f"neither vocab.txt nor tokenizer.json found in {model_dir}")
        raise ModelFormatError(f"{tokenizer_json} is not a WordPiece tokenizer")
    by_id = sorted((int(i), piece) for piece, i in model["vocab"].items())
    if [i for i, _ in by_id] != list(range(len(by_id))):
        raise ModelFormatError(f"{tokenizer_json}: WordPiece ids are not contiguous from 0")
    return [piece for _, piece in by_id], added


def _warn_if_cased(tokenizer: dict[str, Any]) -> None:
    normalizer = tokenizer.get("normalizer") or {}
    if normalizer.get("type") == "BertNormalizer" and normalizer.get("lowercase") is False:
        _log.warning("the tokenizer is cased, but llama.cpp's WordPiece tokenizer lowercases all input")


def _special_token_names(model_dir: Path) -> dict[str, str]:
    names = dict(_SPECIAL_DEFAULTS)
    for filename in ("special_tokens_map.json", "tokenizer_config.json"):
        path = model_dir / filename
        data = read_json(path) if path.is_file() else {}
        if filename == "tokenizer_config.json" and data.get("do_lower_case") is False:
            _log.warning("do_lower_case is false, but llama.cpp's WordPiece tokenizer lowercases all input")
        for role in names:
            value = data.get(f"{role}_token")
            value = value.get("content") if isinstance(value, dict) else value
            if isinstance(value, str):
                names[role] = value
    return names


def _token_type(piece: str, control: set[str], added: dict[str, bool]) -> int:
    if piece in control:
        return _TOKEN_CONTROL
    return _TOKEN_USER_DEFINED if piece in added else _TOKEN_NORMAL


def _phantom(piece: str, kind: int) -> str:
    """llama.cpp's WordPiece form: a word start gets '▁', a '##' continuation loses its marker."""
    if kind == _TOKEN_CONTROL:
        return piece
    return piece[2:] if piece.startswith("##") else "\u2581" + piece


_POOLING_KEYS = {"pooling_mode_mean_tokens": 1, "pooling_mode_cls_token": 2, "pooling_mode_lasttoken": 3}
_UNSUPPORTED_POOLING = (
    "pooling_mode_max_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
)


def _read_pooling(model_dir: Path) -> int:
    """The gguf.PoolingType value (MEAN=1, CLS=2, LAST=3) of the sentence-transformers Pooling module."""
    path = model_dir / _pooling_dir(model_dir) / "config.json"
    if not path.is_file():
        _log.info("no sentence-transformers pooling config in %s: using mean pooling", model_dir)
        return 1
    config = read_json(path)
    if any(config.get(key) for key in _UNSUPPORTED_POOLING):
        raise ModelFormatError(f"{path}: llama.cpp supports only mean, CLS and last-token pooling")
    chosen = [value for key, value in _POOLING_KEYS.items() if config.get(key)]
    if len(chosen) != 1:
        raise ModelFormatError(f"{path}: expected exactly one of {', '.join(_POOLING_KEYS)} to be true")
    return chosen[0]


def _pooling_dir(model_dir: Path) -> str:
    modules_json = model_dir / "modules.json"
    modules = read_json(modules_json) if modules_json.is_file() else []
    for module in modules if isinstance(modules, list) else []:
        if isinstance(module, dict) and str(module.get("type", "")).endswith(".Pooling"):
            return str(module.get("path", "1_Pooling"))
    return "1_Pooling"


# ---------------------------------------------------------------------------------------------------------
# tensor plan
# ---------------------------------------------------------------------------------------------------------

_EMBEDDING_NAMES = {
    "embeddings.word_embeddings": "token_embd",
    "embeddings.token_type_embeddings": "token_types",
    "embeddings.position_embeddings": "position_embd",
    "embeddings.LayerNorm": "token_embd_norm",
}
_LAYER_NAMES = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
# llama.cpp keeps these 2-D tables in f32 whatever the file type (as its converter does).
_ALWAYS_F32 = ("position_embd.weight", "token_types.weight")


@dataclass(frozen=True)
class _PlannedTensor:
    gguf_name: str
    source_name: str
    shape: tuple[int, ...]
    qtype: int  # gguf.GGMLQuantizationType value


def _expected_tensors(cfg: _BertConfig) -> Iterator[tuple[str, str, tuple[int, ...]]]:
    """(HF tensor name, GGUF tensor name, shape) for every tensor llama.cpp's BERT graph needs."""
    h, ff = cfg.hidden_size, cfg.intermediate_size
    shapes = {
        "token_embd": (cfg.vocab_size, h), "token_types": (cfg.type_vocab_size, h),
        "position_embd": (cfg.max_positions, h), "token_embd_norm": (h,),
        "attn_q": (h, h), "attn_k": (h, h), "attn_v": (h, h), "attn_output": (h, h), "attn_output_norm": (h,),
        "ffn_up": (ff, h), "ffn_down": (h, ff), "layer_output_norm": (h,),
    }  # fmt: skip
    modules = list(_EMBEDDING_NAMES.items())
    for layer in range(cfg.num_layers):
        modules += [(f"encoder.layer.{layer}.{hf}", f"blk.{layer}.{ours}") for hf, ours in _LAYER_NAMES.items()]
    for hf, ours in modules:
        shape = shapes[ours.rsplit(".", 1)[-1]]
        yield f"{hf}.weight", f"{ours}.weight", shape
        if not ours.endswith(("token_embd", "token_types", "position_embd")):  # lookup tables have no bias
            yield f"{hf}.bias", f"{ours}.bias", shape[:1]


def _source_index(st: SafetensorsFile) -> dict[str, str]:
    """Normalised HF name -> name in the file (drops a 'bert.' prefix, maps gamma/beta to weight/bias)."""
    index = {}
    for name in st.names():
        key = name.removeprefix("bert.")
        if key.endswith(".gamma"):
            key = key.removesuffix(".gamma") + ".weight"
        elif key.endswith(".beta"):
            key = key.removesuffix(".beta") + ".bias"
        index[key] = name
    return index


def _plan_tensors(st: SafetensorsFile, cfg: _BertConfig, qtype: int) -> list[_PlannedTensor]:
    index = _source_index(st)
    plan = []
    for hf, ours, shape in _expected_tensors(cfg):
        source = index.get(hf)
        if source is None:
            raise ModelFormatError(f"{st.path.name} has no tensor {hf!r}")
        if st.shape(source) != shape:
            raise ModelFormatError(
                f"{st.path.name}: {source} has shape {list(st.shape(source))}, config implies {list(shape)}"
            )
        plan.append(_PlannedTensor(ours, source, shape, _tensor_qtype(ours, shape, qtype)))
    return plan


def _tensor_qtype(name: str, shape: tuple[int, ...], requested: int) -> int:
    import gguf

    f32, q8_0 = int(gguf.GGMLQuantizationType.F32), int(gguf.GGMLQuantizationType.Q8_0)
    if len(shape) < 2 or name in _ALWAYS_F32:
        return f32
    if requested == q8_0 and shape[-1] % gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_0][0]:
        return int(gguf.GGMLQuantizationType.F16)
    return requested


# ---------------------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------------------


def _import_gguf() -> None:
    try:
        import gguf  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendNotAvailableError("converting to GGUF needs the 'gguf' package: pip install gguf") from exc


def _parse_dtype(dtype: str) -> tuple[int, int]:
    """(GGMLQuantizationType, LlamaFileType) values for a dtype name."""
    import gguf

    table = {
        "f32": (gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
        "f16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
        "bf16": (gguf.GGMLQuantizationType.BF16, gguf.LlamaFileType.MOSTLY_BF16),
        "q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
    }
    if dtype.lower() not in table:
        raise ModelFormatError(f"unsupported dtype {dtype!r}; choose one of {', '.join(SUPPORTED_DTYPES)}")
    qtype, ftype = table[dtype.lower()]
    return int(qtype), int(ftype)


def _add_metadata(writer: gguf.GGUFWriter, cfg: _BertConfig, vocab: _Vocab, pooling: int, ftype: int) -> None:
    import gguf

    writer.add_type("model")
    writer.add_name(cfg.name)
    writer.add_file_type(ftype)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_context_length(cfg.max_positions)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_block_count(cfg.num_layers)
    writer.add_head_count(cfg.num_heads)
    writer.add_layer_norm_eps(cfg.layer_norm_eps)
    writer.add_causal_attention(False)
    writer.add_pooling_type(gguf.PoolingType(pooling))
    _add_tokenizer(writer, cfg, vocab)


def _add_tokenizer(writer: gguf.GGUFWriter, cfg: _BertConfig, vocab: _Vocab) -> None:
    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_type_count(cfg.type_vocab_size)
    ids = vocab.special_ids
    # Current llama.cpp/gguf spell CLS as BOS; SEP is both the separator and the end of a sequence.
    writer.add_bos_token_id(ids["cls"])
    writer.add_eos_token_id(ids["sep"])
    writer.add_sep_token_id(ids["sep"])
    writer.add_unk_token_id(ids["unk"])
    if "pad" in ids:
        writer.add_pad_token_id(ids["pad"])
    if "mask" in ids:
        writer.add_mask_token_id(ids["mask"])
    writer.add_add_bos_token(True)
    writer.add_add_sep_token(True)
    writer.add_add_eos_token(False)


def _nbytes(shape: tuple[int, ...], qtype: int) -> int:
    import gguf

    block, type_size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType(qtype)]
    return math.prod(shape) // block * type_size


def _encode(data: npt.NDArray[np.float32], qtype: int) -> npt.NDArray[Any]:
    import gguf

    return np.ascontiguousarray(gguf.quants.quantize(data, gguf.GGMLQuantizationType(qtype)))


def _write_gguf(
    path: Path,
    header: Callable[[gguf.GGUFWriter], None],
    plan: list[_PlannedTensor],
    st: SafetensorsFile,
    cancel: CancelToken | None,
) -> None:
    import gguf

    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    try:
        header(writer)
        for t in plan:
            writer.add_tensor_info(
                t.gguf_name,
                t.shape,
                np.dtype(np.float32),
                _nbytes(t.shape, t.qtype),
                gguf.GGMLQuantizationType(t.qtype),
            )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for t in plan:
            if cancel is not None:
                cancel.raise_if_cancelled("conversion")
            writer.write_tensor_data(_encode(st.tensor(t.source_name), t.qtype))
        writer.flush()
    finally:
        writer.close()


def write_atomically(out_path: Path, write: Callable[[Path], None]) -> None:
    """Run ``write`` on a temporary file next to ``out_path``, then rename it into place; clean up on failure."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".partial")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        tmp.chmod(0o644)
        os.replace(tmp, out_path)
    except SDKError:
        tmp.unlink(missing_ok=True)
        raise
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StorageError(f"could not write {out_path}: {exc}", code=SDKErrorCode.FILE_WRITE_FAILED) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def convert_bert_to_gguf(
    model_dir: Path, out_path: Path, *, dtype: str = "f16", cancel: CancelToken | None = None
) -> Path:
    """Convert a Hugging Face / sentence-transformers BERT directory into a llama.cpp GGUF.

    ``model_dir`` holds ``config.json``, ``model.safetensors``, ``vocab.txt`` or ``tokenizer.json``, and
    optionally ``1_Pooling/config.json`` (mean pooling when absent). ``dtype`` is the type of the 2-D
    weights: ``f32``, ``f16`` (default), ``bf16`` or ``q8_0``. ``cancel`` is checked between tensors.

    Returns ``out_path``. Raises :class:`SDKFileNotFoundError` for missing files, :class:`ModelFormatError`
    for anything that is not a convertible BERT checkpoint (the output then does not exist) and
    :class:`CancelledError` when cancelled.
    """
    model_dir, out_path = Path(model_dir), Path(out_path)
    if cancel is not None:
        cancel.raise_if_cancelled("conversion")
    _import_gguf()
    qtype, ftype = _parse_dtype(dtype)
    if not model_dir.is_dir():
        raise SDKFileNotFoundError(f"model directory {model_dir} does not exist", details={"path": str(model_dir)})
    cfg = _read_config(model_dir)
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        raise SDKFileNotFoundError(f"model.safetensors not found in {model_dir}", details={"path": str(weights)})
    st = SafetensorsFile(weights)
    try:
        vocab = _read_vocab(model_dir, cfg.vocab_size)
        pooling = _read_pooling(model_dir)
        plan = _plan_tensors(st, cfg, qtype)

        def header(writer: gguf.GGUFWriter) -> None:
            _add_metadata(writer, cfg, vocab, pooling, ftype)

        write_atomically(out_path, lambda tmp: _write_gguf(tmp, header, plan, st, cancel))
    finally:
        st.close()
    _log.info("converted %s to %s (%s, %d tensors)", model_dir, out_path, dtype, len(plan))
    return out_path

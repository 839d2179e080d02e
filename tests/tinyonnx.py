"""A random-weight offline transducer (Zipformer layout) that sherpa-onnx loads and runs, written without ``onnx``.

The ``onnx`` package is not installed, so the three graphs are encoded here as
protobuf by hand (``ModelProto``: opset 13, one graph, metadata). The inputs,
outputs and decoder metadata are the ones sherpa-onnx's ``OfflineTransducerModel``
reads: an encoder from 80-dim features ``x`` [N, T, 80] and ``x_lens`` [N] to
``encoder_out`` [N, T, C] and ``encoder_out_lens``; a decoder from the last
``context_size`` tokens ``y`` [N, 2] to ``decoder_out`` [N, C] with ``vocab_size``
and ``context_size`` in its metadata; a joiner from the two to ``logit``
[N, vocab]. Token 0 is the blank. Plumbing only: the text it writes means nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_FLOAT, _INT64 = 1, 7
WIDTH = 16
VOCABULARY = ["<blk>", *"abcdefghijklmnopqrstuvwxyz", "\u2581"]
"""The written model's tokens (id = index; 0 is the blank)."""


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: bytes | str | int) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, elem_type: int, dims: list[int | str]) -> bytes:
    shape = b"".join(_field(1, _field(2 if isinstance(d, str) else 1, d)) for d in dims)
    return _field(1, name) + _field(2, _field(1, _field(1, elem_type) + _field(2, shape)))


def _tensor(name: str, array: np.ndarray) -> bytes:
    kind = _FLOAT if array.dtype == np.float32 else _INT64
    return b"".join(_field(1, d) for d in array.shape) + _field(2, kind) + _field(8, name) + \
        _field(9, array.tobytes())


def _node(op: str, inputs: list[str], outputs: list[str], **ints: list[int] | int) -> bytes:
    out = b"".join(_field(1, i) for i in inputs) + b"".join(_field(2, o) for o in outputs) + _field(4, op)
    for name, value in ints.items():
        body = _field(1, name) + (_field(3, value) + _field(20, 2) if isinstance(value, int)
                                  else b"".join(_field(8, v) for v in value) + _field(20, 7))
        out += _field(5, body)
    return out


def _model(nodes: list[bytes], weights: dict[str, np.ndarray], inputs: list[bytes], outputs: list[bytes],
           metadata: dict[str, str]) -> bytes:
    graph = b"".join(_field(1, n) for n in nodes) + _field(2, "g") + \
        b"".join(_field(5, _tensor(k, v)) for k, v in weights.items()) + \
        b"".join(_field(11, i) for i in inputs) + b"".join(_field(12, o) for o in outputs)
    meta = b"".join(_field(14, _field(1, k) + _field(2, v)) for k, v in metadata.items())
    return _field(1, 8) + _field(8, _field(1, "") + _field(2, 13)) + _field(2, "runanywhere-tests") + \
        _field(7, graph) + meta


def write_transducer(directory: Path, *, seed: int = 0, metadata: bool = True) -> dict[str, Path]:
    """Write encoder.onnx, decoder.onnx, joiner.onnx and tokens.txt into ``directory``; their paths by role.

    ``metadata=False`` leaves out the decoder's ``vocab_size`` and ``context_size`` (sherpa-onnx exits on that).
    """
    rng = np.random.default_rng(seed)
    vocab = len(VOCABULARY)

    def weights(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    directory.mkdir(parents=True, exist_ok=True)
    graphs = {
        "encoder": _model(
            [_node("MatMul", ["x", "w"], ["h"]), _node("Tanh", ["h"], ["encoder_out"]),
             _node("Identity", ["x_lens"], ["encoder_out_lens"])],
            {"w": weights(80, WIDTH) * 0.1},
            [_value_info("x", _FLOAT, ["N", "T", 80]), _value_info("x_lens", _INT64, ["N"])],
            [_value_info("encoder_out", _FLOAT, ["N", "T", WIDTH]), _value_info("encoder_out_lens", _INT64, ["N"])],
            {"model_type": "zipformer2"}),
        "decoder": _model(
            [_node("Gather", ["embedding", "y"], ["e"]), _node("ReduceMean", ["e"], ["decoder_out"], axes=[1],
                                                                keepdims=0)],
            {"embedding": weights(vocab, WIDTH)},
            [_value_info("y", _INT64, ["N", 2])], [_value_info("decoder_out", _FLOAT, ["N", WIDTH])],
            {"vocab_size": str(vocab), "context_size": "2"} if metadata else {}),
        "joiner": _model(
            [_node("Add", ["encoder_out", "decoder_out"], ["s"]), _node("Tanh", ["s"], ["t"]),
             _node("MatMul", ["t", "w"], ["logit"])],
            {"w": weights(WIDTH, vocab)},
            [_value_info("encoder_out", _FLOAT, ["N", WIDTH]), _value_info("decoder_out", _FLOAT, ["N", WIDTH])],
            [_value_info("logit", _FLOAT, ["N", vocab])], {}),
    }
    paths = {}
    for role, data in graphs.items():
        paths[role] = directory / f"{role}.onnx"
        paths[role].write_bytes(data)
    paths["tokens"] = directory / "tokens.txt"
    paths["tokens"].write_text("".join(f"{token} {i}\n" for i, token in enumerate(VOCABULARY)), encoding="utf-8")
    return paths

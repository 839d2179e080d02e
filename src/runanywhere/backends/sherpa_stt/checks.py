"""Files checked before sherpa-onnx sees them: it ends the whole process (``exit(-1)``) on some bad models.

Each family's graphs are opened with onnxruntime here first; the checks below are Moonshine's and the
offline transducer's (:func:`check_transducer`).

A Moonshine v2 model is two onnxruntime graphs (``.ort`` or ``.onnx``): an
encoder from raw 16 kHz audio (``input_values``) to ``last_hidden_state``, and a
merged decoder (``input_ids``, ``encoder_hidden_states``, 4-d ``past_key_values.*``
in, ``logits`` over the vocabulary out). onnxruntime opens each graph here
(without optimising it, so the check is quick); a truncated file, a graph of
another kind, swapped roles or a ``tokens.txt`` of a vocabulary of another size become a
:class:`ModelFormatError` that names the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.errors import BackendNotAvailableError, ModelFormatError, SDKFileNotFoundError
from .. import require_engine

_VOCABULARY_PADDING = 1024  # a decoder may round its vocabulary up (base-en: 32,000 tokens, 32,768 logits)


@dataclass(frozen=True)
class GraphIO:
    """A graph's input names with their shapes, its output names with theirs, and its metadata."""

    inputs: dict[str, list[Any]]
    outputs: dict[str, list[Any]]
    metadata: dict[str, str]


def graph_io(path: Path, role: str) -> GraphIO:
    """Open ``path`` with onnxruntime (no optimisation) and read its inputs and outputs."""
    if not path.is_file():
        raise SDKFileNotFoundError(f"the model's {role} file is missing: {path}")
    ort = require_engine("onnxruntime")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4  # a bad file is reported by the error below, not on stderr
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
        raise ModelFormatError(f"{path.name} (the {role}) is not a readable ONNX/ORT model: "
                               f"{str(exc).splitlines()[0][:200]}") from exc
    return GraphIO({i.name: list(i.shape) for i in session.get_inputs()},
                   {o.name: list(o.shape) for o in session.get_outputs()},
                   dict(session.get_modelmeta().custom_metadata_map))


def check_moonshine(encoder: Path, decoder: Path, tokens: int) -> None:
    """Raise unless ``encoder`` and ``decoder`` are a Moonshine v2 pair whose vocabulary has ``tokens`` ids."""
    enc = graph_io(encoder, "encoder")
    if "mel" in enc.inputs:
        raise BackendNotAvailableError(
            f"{encoder.name} is a Whisper ONNX encoder (mel features in); this SDK runs only Moonshine v2 on "
            "sherpa-onnx: no Whisper ONNX weights were reachable to test an adapter. Use a faster-whisper model.")
    if "input_values" not in enc.inputs or "last_hidden_state" not in enc.outputs:
        raise ModelFormatError(f"{encoder.name} is not a Moonshine v2 encoder (inputs {list(enc.inputs)}, "
                               f"outputs {list(enc.outputs)}; expected input_values -> last_hidden_state)")
    dec = graph_io(decoder, "decoder")
    caches = [shape for name, shape in dec.inputs.items() if "key_values" in name]
    if not {"input_ids", "encoder_hidden_states"} <= dec.inputs.keys() or not caches \
            or any(len(shape) != 4 for shape in caches) or "logits" not in dec.outputs:
        raise ModelFormatError(f"{decoder.name} is not a Moonshine v2 merged decoder (inputs "
                               f"{list(dec.inputs)[:4]}...; expected input_ids, encoder_hidden_states and "
                               "4-d past_key_values in, logits out)")
    vocabulary = dec.outputs["logits"][-1]
    if isinstance(vocabulary, int) and not tokens <= vocabulary < tokens + _VOCABULARY_PADDING:
        raise ModelFormatError(f"the tokens file has {tokens} ids but {decoder.name} predicts {vocabulary}: "
                               "the tokenizer belongs to another model")


def check_transducer(encoder: Path, decoder: Path, joiner: Path, tokens: int) -> None:
    """Raise unless the three graphs have an offline transducer's inputs, outputs and decoder metadata.

    sherpa-onnx ends the process when the decoder lacks ``vocab_size`` or ``context_size``.
    """
    shapes = {role: (len(io.inputs), len(io.outputs)) for role, io in
              (("encoder", graph_io(encoder, "encoder")), ("joiner", graph_io(joiner, "joiner")))}
    dec = graph_io(decoder, "decoder")
    if shapes["encoder"] != (2, 2) or shapes["joiner"] != (2, 1) or (len(dec.inputs), len(dec.outputs)) != (1, 1):
        raise ModelFormatError("not an offline transducer: the encoder needs 2 inputs and 2 outputs (features, "
                               "lengths), the decoder 1 and 1, the joiner 2 inputs and 1 output")
    meta = {key: dec.metadata.get(key, "") for key in ("vocab_size", "context_size")}
    if not all(value.isdigit() and int(value) > 0 for value in meta.values()):
        raise ModelFormatError(f"{decoder.name} lacks the transducer metadata sherpa-onnx needs "
                               f"(vocab_size and context_size as positive numbers; found {meta})")
    if int(meta["vocab_size"]) != tokens:
        raise ModelFormatError(f"the tokens file has {tokens} ids but {decoder.name} has vocab_size "
                               f"{meta['vocab_size']}: the tokens belong to another model")

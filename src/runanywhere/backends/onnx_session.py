"""onnxruntime sessions as every ONNX engine here opens them: our thread count, sleeping idle threads, SDK errors.

Shared by the engines that run their own onnxruntime session (Piper, Kokoro,
ONNX embeddings); the engine module imports onnxruntime and passes it in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..core.errors import ModelFormatError
from .base import default_threads


def open_session(ort: Any, model: Path, threads: int | None) -> Any:
    """A CPU session for ``model``; a file onnxruntime cannot load is a :class:`ModelFormatError`."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: speech shares the CPU with the LLM and STT of a voice loop.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 4  # failures surface as exceptions (and SDK errors), not console noise
    try:
        return ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # InvalidProtobuf, Fail, NoSuchFile ...: all mean "not a usable ONNX model"
        raise ModelFormatError(f"onnxruntime cannot load {model.name}: {first_line(exc)}") from exc


def first_line(exc: BaseException) -> str:
    """The first line of an engine's error message (native errors can run to pages)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]

"""Speech recognition through sherpa-onnx: the model family follows the model's files, by role.

* ``encoder`` + ``decoder`` + ``tokens`` + ``vad``, with an encoder that reads raw
  audio (``input_values``): **Moonshine v2** (:mod:`.moonshine`), run and tested on the
  real tiny-en and base-en weights. ``tokens`` is derived from Moonshine's
  ``tokenizer.bin`` by :mod:`.tokens` (the speech-to-text feature keeps it in the store).
* ``encoder`` + ``decoder`` + ``joiner`` (offline Zipformer transducer), an encoder of
  mel features (Whisper ONNX), or one ``model`` (Paraformer, SenseVoice): refused with
  a :class:`BackendNotAvailableError` naming what would be needed. No weights of these
  formats are reachable, so no adapter for them was tested, and none is shipped.
"""

from __future__ import annotations

from typing import Any

from ...core.errors import BackendNotAvailableError, InvalidInputError
from ...core.validation import positive_int
from ..base import ModelFiles, default_threads
from .moonshine import MAX_UTTERANCE_S, MoonshineEngine
from .tokens import write_tokens_txt

__all__ = ["FAMILIES", "MAX_UTTERANCE_S", "MoonshineEngine", "check_family", "open_sherpa_stt",
           "write_tokens_txt"]

MOONSHINE_ROLES = ("encoder", "decoder", "tokens", "vad")
"""The roles of a Moonshine v2 model's files."""


def open_sherpa_stt(files: ModelFiles, *, threads: int | None = None, beam_size: int = 1,
                    **whisper_only: Any) -> MoonshineEngine:
    """The speech-recognition factory for sherpa-onnx models (see the module docs for the families).

    ``whisper_only`` takes the Whisper settings the feature passes to every engine
    (``compute_type``, ``min_window_s``); they mean nothing to these models.
    """
    if threads is not None:
        positive_int("threads", threads)
    if positive_int("beam_size", beam_size) != 1:
        raise InvalidInputError(f"sherpa-onnx speech models decode greedily here; beam_size must be 1, got {beam_size}")
    _refuse_unsupported(files)
    missing = [role for role in MOONSHINE_ROLES if not files.has_role(role)]
    if missing:
        raise _refused(files.id, f"not a Moonshine v2 model (no {', '.join(missing)} file; Moonshine needs "
                                 "encoder_model.ort, decoder_model_merged.ort and tokenizer.bin)")
    return MoonshineEngine(files.file("encoder"), files.file("decoder"), files.file("tokens"), files.file("vad"),
                           threads=threads or default_threads())


FAMILIES = ("moonshine-v2",)
"""The catalog ``format`` of the sherpa-onnx speech models this SDK runs."""


def check_family(model: str, family: str) -> None:
    """Refuse a catalog entry of a sherpa-onnx family (its ``format``) that no adapter here runs, before any pull."""
    if family not in FAMILIES:
        raise _refused(model, f"a {family!r} model")


def _refuse_unsupported(files: ModelFiles) -> None:
    """A clear error for the sherpa-onnx families no adapter here runs (known by their files' roles)."""
    family = ("an offline Zipformer transducer (encoder, decoder, joiner)" if files.has_role("joiner")
              else "a single-graph model such as Paraformer or SenseVoice (model, tokens)"
              if files.has_role("model") else None)
    if family is not None:
        raise _refused(files.id, family)


def _refused(model: str, what: str) -> BackendNotAvailableError:
    return BackendNotAvailableError(
        f"{model} is {what}; this SDK runs only Moonshine v2 on sherpa-onnx: no weights of that format were "
        "reachable to build and test an adapter. Use a Moonshine v2 model (moonshine-tiny-en) or a "
        "faster-whisper model.", details={"engine": "sherpa-onnx", "model": model})

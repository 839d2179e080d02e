"""Speech recognition through sherpa-onnx: the family is the catalog entry's ``format``, the files come by role.

* ``moonshine-v2``: **Moonshine v2**, run and tested on the real tiny-en and base-en
  weights, with files ``encoder``, ``decoder``, ``tokens`` and ``vad``. ``tokens`` is
  derived from Moonshine's ``tokenizer.bin`` by :mod:`.tokens` (the speech-to-text
  feature keeps it in the store, and gives a model directory named by path its roles
  from Moonshine's file names).
* ``zipformer-transducer``: an offline transducer (``encoder``, ``decoder``, ``joiner``,
  ``tokens``, ``vad``). No weights are reachable: it is tested on a random-weight model
  the test suite writes in the exact format sherpa-onnx reads (plumbing, not accuracy).
* Every other family sherpa-onnx knows (Whisper ONNX, Paraformer, SenseVoice) is refused
  with a :class:`BackendNotAvailableError`, by its catalog format before anything is
  downloaded, or by its encoder (mel features in, for Whisper) when named by path.

Both run in :class:`.engine.SherpaSpeechEngine`: utterances cut by Silero, one decode each.
"""

from __future__ import annotations

from typing import Any

from ...core.errors import BackendNotAvailableError, InvalidInputError
from ...core.validation import positive_int
from ..base import ModelFiles, default_threads
from .engine import MAX_UTTERANCE_S, SherpaSpeechEngine
from .families import build_moonshine, build_transducer
from .tokens import write_tokens_txt

__all__ = ["FAMILIES", "MAX_UTTERANCE_S", "SherpaSpeechEngine", "check_family", "open_sherpa_stt",
           "write_tokens_txt"]

MOONSHINE_ROLES = ("encoder", "decoder", "tokens", "vad")
"""The roles of a Moonshine v2 model's files (a transducer adds ``joiner``)."""


def open_sherpa_stt(files: ModelFiles, *, threads: int | None = None, beam_size: int = 1,
                    **whisper_only: Any) -> SherpaSpeechEngine:
    """The speech-recognition factory for sherpa-onnx models: a transducer when there is a ``joiner``, else Moonshine.

    ``whisper_only`` takes the Whisper settings the feature passes to every engine
    (``compute_type``, ``min_window_s``); they mean nothing to these models.
    """
    if threads is not None:
        positive_int("threads", threads)
    if positive_int("beam_size", beam_size) != 1:
        raise InvalidInputError(f"sherpa-onnx speech models decode greedily here; beam_size must be 1, got {beam_size}")
    missing = [role for role in MOONSHINE_ROLES if not files.has_role(role)]
    if missing:
        raise _refused(files.id, f"not a Moonshine v2 model or transducer (no {', '.join(missing)} file; Moonshine "
                                 "needs encoder_model.ort, decoder_model_merged.ort and tokenizer.bin)")
    threads = threads or default_threads()
    encoder, decoder, tokens = files.file("encoder"), files.file("decoder"), files.file("tokens")
    recognizer = (build_transducer(encoder, decoder, files.file("joiner"), tokens, threads=threads)
                  if files.has_role("joiner") else build_moonshine(encoder, decoder, tokens, threads=threads))
    return SherpaSpeechEngine(recognizer, files.file("vad"))


FAMILIES = ("moonshine-v2", "zipformer-transducer")
"""The catalog ``format`` of the sherpa-onnx speech models this SDK runs."""


def check_family(model: str, family: str) -> None:
    """Refuse a catalog entry of a sherpa-onnx family (its ``format``) that no adapter here runs, before any pull."""
    if family not in FAMILIES:
        raise _refused(model, f"a {family!r} model")


def _refused(model: str, what: str) -> BackendNotAvailableError:
    return BackendNotAvailableError(
        f"{model} is {what}; this SDK runs only Moonshine v2 and offline transducers on sherpa-onnx: no "
        "weights of that format were reachable to build and test an adapter. Use a Moonshine v2 model "
        "(moonshine-tiny-en) or a faster-whisper model.", details={"engine": "sherpa-onnx", "model": model})

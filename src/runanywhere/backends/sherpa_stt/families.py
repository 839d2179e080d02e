"""One builder per sherpa-onnx family: check the files (sherpa may ``exit(-1)`` on bad ones), then build the recognizer.

* Moonshine v2 (``encoder``, ``decoder``, ``tokens``): real tiny-en and base-en weights.
* Offline transducer, Zipformer layout (``encoder``, ``decoder``, ``joiner``, ``tokens``):
  no weights are reachable; the tests write a random-weight model in the exact format
  sherpa-onnx reads (``tests/tinyonnx.py``), so loading and decoding are tested, not accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...core.errors import ModelFormatError
from .. import require_engine
from .checks import check_moonshine, check_transducer
from .tokens import count_tokens


def build_moonshine(encoder: Path, decoder: Path, tokens: Path, *, threads: int) -> Any:
    """A checked Moonshine v2 recognizer."""
    check_moonshine(encoder, decoder, count_tokens(tokens))
    return _built(encoder.parent.name, lambda sherpa: sherpa.OfflineRecognizer.from_moonshine_v2(
        encoder=str(encoder), decoder=str(decoder), tokens=str(tokens), num_threads=threads))


def build_transducer(encoder: Path, decoder: Path, joiner: Path, tokens: Path, *, threads: int) -> Any:
    """A checked offline transducer recognizer (greedy search on 80-dim features at 16 kHz)."""
    check_transducer(encoder, decoder, joiner, count_tokens(tokens))
    return _built(encoder.parent.name, lambda sherpa: sherpa.OfflineRecognizer.from_transducer(
        encoder=str(encoder), decoder=str(decoder), joiner=str(joiner), tokens=str(tokens), num_threads=threads))


def _built(name: str, build: Any) -> Any:
    sherpa_onnx = require_engine("sherpa_onnx")
    try:
        return build(sherpa_onnx)
    except RuntimeError as exc:
        raise ModelFormatError(f"sherpa-onnx could not load the model {name}: {exc}") from exc

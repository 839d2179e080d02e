"""Kokoro-82M voices through kokoro-onnx: the one module that imports ``kokoro_onnx``.

Kokoro is one ONNX model with many named voices (style vectors in a ``.npz``);
kokoro-onnx phonemizes with the espeak-ng it bundles. We open the onnxruntime
session ourselves (thread count, sleeping idle threads) and hand it to
kokoro-onnx, whose session calls go through :class:`_AbortableSession` so a
cancel aborts the sentence running. Each piece of text the feature hands over
(a sentence or the first clause) is one ``create`` call, its edge silence
trimmed by kokoro-onnx and the pause its punctuation calls for appended, so
chunks join into evenly paced speech. Kokoro's output has no sampling noise:
the same text always gives the same audio.
"""

from __future__ import annotations

import contextlib
import math
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.cancel import CancelToken
from ..core.engines import WEIGHTS
from ..core.errors import BackendError, CancelledError, InvalidInputError, ModelFormatError, SDKFileNotFoundError
from . import require_engine
from .base import ModelFiles
from .onnx_session import first_line, open_session
from .piper import speakable

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

VOICES = "voices"
"""The role of the ``.npz`` of voice style vectors in a catalog entry."""
SAMPLE_RATE = 24000
MIN_SPEED, MAX_SPEED = 0.5, 2.0
"""The speeds the Kokoro graph was trained for (kokoro-onnx refuses others)."""
_STYLE_WIDTH = 256
_SENTENCE_PAUSE_S, _CLAUSE_PAUSE_S = 0.25, 0.1


def open_kokoro(files: ModelFiles, **options: Any) -> KokoroEngine:
    """The speech-synthesis factory: the catalog's ``weights`` (.onnx) and ``voices`` (.npz) files,
    or the one ``.onnx`` and one ``.npz`` in a folder (or beside a given ``.onnx``)."""
    if files.has_role(VOICES):
        return KokoroEngine(files.file(WEIGHTS), files.file(VOICES), **options)
    found = list(files.files or (files.path,))
    if not files.path.is_dir():  # one file given: its voices sit beside it
        found += [f for f in sorted(files.path.parent.glob("*.npz")) if f not in found]
    models, voices = ([f for f in found if f.suffix == suffix] for suffix in (".onnx", ".npz"))
    if len(models) != 1 or len(voices) != 1:
        raise ModelFormatError("a Kokoro voice is one .onnx model and one .npz of voices; found "
                               + (", ".join(f.name for f in found[:6]) or "no files"))
    return KokoroEngine(models[0], voices[0], **options)


class KokoroEngine:
    """One Kokoro model and its named voices: text in, float32 audio at 24 kHz out.

    ``lang`` is the espeak-ng language the text is read in (``en-us``, ``en-gb``, ...).
    ``variation`` is accepted for the feature's sake: Kokoro has no sampling noise to scale.
    """

    def __init__(self, model: Path, voices: Path, *, threads: int | None = None, variation: float = 1.0,
                 lang: str = "en-us") -> None:
        kokoro_onnx = require_engine("kokoro_onnx")
        ort = require_engine("onnxruntime")
        for path in (model, voices):
            if not path.is_file():
                raise SDKFileNotFoundError(f"Kokoro file not found: {path}", details={"path": str(path)})
        self._session = _AbortableSession(open_session(ort, model, threads), ort)
        if {i.name for i in self._session.get_inputs()} != {"tokens", "style", "speed"}:
            raise ModelFormatError(f"{model.name} is not a Kokoro model (its inputs are "
                                   f"{sorted(i.name for i in self._session.get_inputs())})")
        try:
            self.kokoro = kokoro_onnx.Kokoro.from_session(self._session, str(voices))
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise ModelFormatError(f"{voices.name} is not a .npz of Kokoro voices: {first_line(exc)}") from exc
        except RuntimeError as exc:  # espeak-ng failed to load
            raise BackendError(f"kokoro-onnx cannot start espeak-ng: {first_line(exc)}") from exc
        self.speakers: tuple[str, ...] = tuple(self.kokoro.get_voices())
        self.lang = lang
        self._check_voices(voices.name)
        self._probe(model.name)

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def num_speakers(self) -> int:
        return len(self.speakers)

    @property
    def speed_range(self) -> tuple[float, float]:
        return (MIN_SPEED, MAX_SPEED)

    def synthesize(self, text: str, *, speaker_id: int = 0, speed: float = 1.0,
                   cancel: CancelToken | None = None) -> Iterator[NDArray[np.float32]]:
        """Audio for ``text`` (one array; blank or unspeakable text: none), in voice ``speakers[speaker_id]``.

        ``speed`` is 0.5 to 2 (2 speaks twice as fast); cancelling aborts the
        run (``CancelledError``).
        """
        import numpy as np

        if not 0 <= speaker_id < len(self.speakers):
            raise InvalidInputError(f"speaker_id must be in 0..{len(self.speakers) - 1} "
                                    f"({', '.join(self.speakers)}), got {speaker_id!r}")
        if not (isinstance(speed, int | float) and math.isfinite(speed) and MIN_SPEED <= speed <= MAX_SPEED):
            raise InvalidInputError(f"Kokoro speaks at speed {MIN_SPEED} to {MAX_SPEED}, got {speed!r}")
        text = " ".join(speakable(text).split())
        if not any(c.isalnum() for c in text):
            return
        if cancel is not None:
            cancel.raise_if_cancelled("speech synthesis")
        audio = self._run(text, self.speakers[speaker_id], float(speed), cancel)
        if not len(audio):
            return
        pause = _SENTENCE_PAUSE_S if text.rstrip("\"')]}»”’").endswith((".", "!", "?", "…")) else _CLAUSE_PAUSE_S
        silence = np.zeros(int(pause * SAMPLE_RATE / speed), dtype=np.float32)
        yield np.concatenate([np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0), silence])

    def close(self) -> None:
        del self.kokoro, self._session

    # ------------------------------------------------------------ internals
    def _run(self, text: str, voice: str, speed: float, cancel: CancelToken | None) -> Any:
        with self._session.cancellable(cancel):
            try:
                audio, _ = self.kokoro.create(text, voice=voice, speed=speed, lang=self.lang)
            except Exception as exc:  # onnxruntime and kokoro-onnx errors share no base class beyond Exception
                if cancel is not None and cancel.cancelled:
                    raise CancelledError("speech synthesis was cancelled") from exc
                if isinstance(exc, ValueError) and "phonemes" in str(exc):
                    return _empty()  # nothing espeak-ng can voice (a lone symbol, say)
                raise BackendError(f"Kokoro failed to synthesize {text[:40]!r}: {first_line(exc)}") from exc
        return audio

    def _check_voices(self, name: str) -> None:
        """Every voice must be a table of style vectors of the model's width (one row per phoneme count)."""
        if not self.speakers:
            raise ModelFormatError(f"{name} holds no voices")
        for voice in self.speakers:
            shape = tuple(self.kokoro.voices[voice].shape)
            if len(shape) != 3 or shape[1:] != (1, _STYLE_WIDTH) or not shape[0]:
                raise ModelFormatError(f"{name}: voice {voice!r} has shape {shape}, not (n, 1, {_STYLE_WIDTH})")

    def _probe(self, name: str) -> None:
        """Speak one word: a model that loads but cannot run (a truncated graph, say) fails here."""
        try:
            self.kokoro.create("Hi.", voice=self.speakers[0], lang=self.lang)
        except Exception as exc:
            raise ModelFormatError(f"{name} does not run as a Kokoro model: {first_line(exc)}") from exc


class _AbortableSession:
    """An onnxruntime session whose runs a cancel token can abort: kokoro-onnx calls ``run(None, feeds)``."""

    def __init__(self, session: Any, ort: Any) -> None:
        self._inner = session
        self._ort = ort
        self._options: Any = None
        self._model_path = session._model_path  # kokoro-onnx's from_session reads it

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def run(self, outputs: Any, feeds: Any, run_options: Any = None) -> Any:
        return self._inner.run(outputs, feeds, run_options or self._options)

    @contextlib.contextmanager
    def cancellable(self, cancel: CancelToken | None) -> Iterator[None]:
        """While inside, runs use options that ``cancel`` terminates."""
        if cancel is not None:
            options = self._ort.RunOptions()
            cancel.on_cancel(lambda: setattr(options, "terminate", True))
            self._options = options
        try:
            yield
        finally:
            self._options = None


def _empty() -> NDArray[np.float32]:
    import numpy as np

    return np.zeros(0, dtype=np.float32)

"""Whisper through faster-whisper (CTranslate2): the one module that imports ``faster_whisper``.

:class:`WhisperEngine` wraps one loaded CTranslate2 Whisper model and is used
from one thread at a time (the feature's worker). It takes 16 kHz float32 mono
samples and yields plain :class:`RecognizedSegment` values. faster-whisper decodes
lazily, one 30 s window at a time, so long audio is never copied or loaded
twice, and the cancel token is checked between segments: a cancelled
transcription stops before the next window is decoded.

Defaults were measured on this project's 2-core x86 machine (44 s of speech):
greedy decoding (beam 1) gives the same word error rate as beam 5 on tiny.en
and is ~35 % faster; one CTranslate2 thread per physical core beats one thread.

Short audio gets a shorter encoder window. Whisper pads every input to 30 s
and its encoder cost grows faster than linearly with the window (tiny.en
here: 270 ms at 30 s, 96 ms at 20 s), so a 2 s voice command spent most of
its time encoding silence. The window is the audio plus 10 s of padding, at
least ``min_window_s`` (20 s). ``bench/speech_stt.py``: 30 spoken commands
take 198 ms instead of 338 ms at WER 0.062 vs 0.055 against their text, and
on clips of recorded speech the two transcripts differ by 1.6 % WER. A 10 s
window truncated some transcripts, so 20 s is the floor;
``min_window_s=None`` keeps Whisper's fixed 30 s.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.cancel import CancelToken
from ..core.engines import WEIGHTS
from ..core.errors import InvalidInputError, ModelFormatError, SDKFileNotFoundError
from ..core.validation import positive_int
from . import require_engine
from .base import ModelFiles, RecognizedSegment, RecognizedWord, default_threads

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_FULL_FRAMES = 3000  # Whisper's 30 s window, in 10 ms mel frames
_PAD_FRAMES = 1000  # padding kept after the audio in a shortened window (10 s)


def is_whisper_dir(path: Path) -> bool:
    """True for a CTranslate2 Whisper model directory (``model.bin`` + ``config.json``)."""
    return path.is_dir() and (path / "model.bin").is_file() and (path / "config.json").is_file()


def open_whisper(files: ModelFiles, **options: Any) -> WhisperEngine:
    """The speech-recognition factory: the directory of the model's ``weights`` (``model.bin``), or the one given."""
    directory = files.file(WEIGHTS).parent if files.has_role(WEIGHTS) else files.path
    return WhisperEngine(directory, **options)


class WhisperEngine:
    """One CTranslate2 Whisper model on the CPU."""

    def __init__(self, model_dir: Path, *, threads: int | None = None, compute_type: str = "int8",
                 beam_size: int = 1, min_window_s: int | None = 20) -> None:
        if not model_dir.exists():
            raise SDKFileNotFoundError(f"Whisper model not found: {model_dir}")
        if not is_whisper_dir(model_dir):
            raise ModelFormatError(f"{model_dir} is not a CTranslate2 Whisper model (needs model.bin and config.json)")
        positive_int("beam_size", beam_size)
        if threads is not None:
            positive_int("threads", threads)
        check_min_window(min_window_s)
        faster_whisper = require_engine("faster_whisper")
        supported = require_engine("ctranslate2").get_supported_compute_types("cpu")
        if compute_type not in supported:
            raise InvalidInputError(f"compute_type {compute_type!r} is not available on this CPU; "
                                    f"use one of {sorted(supported)}")
        self.threads = threads or default_threads()
        self.compute_type = compute_type
        self.beam_size = beam_size
        self.min_window_s = min_window_s
        try:
            self._model: Any = _windowed_model(faster_whisper)(
                str(model_dir), device="cpu", compute_type=compute_type, cpu_threads=self.threads, num_workers=1,
                local_files_only=True,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelFormatError(f"faster-whisper could not load {model_dir.name}: {exc}") from exc
        self.languages: tuple[str, ...] = tuple(self._model.supported_languages)

    @property
    def is_multilingual(self) -> bool:
        return len(self.languages) > 1

    def transcribe(self, samples: NDArray[np.float32], *, language: str | None, cancel: CancelToken,
                   prompt: str | None = None,
                   word_timestamps: bool = False) -> tuple[str, Iterator[RecognizedSegment]]:
        """Start decoding 16 kHz mono float32 ``samples``: (language, lazy segments).

        ``language=None`` means English for English-only models and detection
        for multilingual ones; ``prompt`` (the text before this audio) is Whisper's
        initial prompt; ``word_timestamps`` aligns each word (cross-attention, a little
        slower). Each window is decoded when the iterator reaches
        it; a cancelled token raises :class:`CancelledError` between segments.
        """
        cancel.raise_if_cancelled("transcription")
        self._model.window_frames = self.window_frames(len(samples))
        segments, info = self._model.transcribe(
            samples, language=language, beam_size=self.beam_size, vad_filter=False, initial_prompt=prompt,
            word_timestamps=word_timestamps,
        )
        cancel.raise_if_cancelled("transcription")  # language detection may have taken a while
        return str(info.language), _checked(segments, cancel)

    def window_frames(self, num_samples: int) -> int | None:
        """Mel frames the encoder sees for audio this long; None for Whisper's full 30 s window."""
        return window_frames(num_samples, self.min_window_s)

    def close(self) -> None:
        model, self._model = self._model, None
        if model is not None:
            model.model.unload_model()


def check_min_window(min_window_s: int | None) -> int | None:
    """``min_window_s`` when it is a whole number of seconds from 10 to 30, or None."""
    if min_window_s is not None and (isinstance(min_window_s, bool) or not isinstance(min_window_s, int)
                                     or not 10 <= min_window_s <= 30):
        raise InvalidInputError(f"min_window_s must be a whole number of seconds from 10 to 30, or None; "
                                f"got {min_window_s!r}")
    return min_window_s


def window_frames(num_samples: int, min_window_s: int | None) -> int | None:
    """Mel frames the encoder sees for audio this long: the audio plus 10 s, at least ``min_window_s``;
    None for Whisper's full 30 s window (also when ``min_window_s`` is None)."""
    if min_window_s is None:
        return None
    frames = max(min_window_s * 100, -(-num_samples // 160) + _PAD_FRAMES)
    return frames if frames < _FULL_FRAMES else None


@functools.cache
def _windowed_model(faster_whisper: Any) -> Any:
    """faster-whisper's model class, encoding only ``window_frames`` frames of each padded window.

    faster-whisper pads every window's features to 30 s before ``encode``; past
    ``window_frames`` they are known padding (the window only holds shorter
    audio), so cutting them there changes what the encoder attends to, not the audio.
    """

    class WindowedWhisperModel(faster_whisper.WhisperModel):  # type: ignore[misc]
        window_frames: int | None = None

        def encode(self, features: Any) -> Any:
            frames = self.window_frames
            if frames is not None and features.shape[-1] > frames:
                features = features[..., :frames]
            return super().encode(features)

    return WindowedWhisperModel


def _checked(segments: Iterator[Any], cancel: CancelToken) -> Iterator[RecognizedSegment]:
    try:
        for segment in segments:
            cancel.raise_if_cancelled("transcription")
            words = tuple(RecognizedWord(float(w.start), float(w.end), str(w.word), float(w.probability))
                          for w in segment.words or ())
            yield RecognizedSegment(float(segment.start), float(segment.end), str(segment.text),
                                    float(segment.avg_logprob), float(segment.no_speech_prob), words)
    finally:
        close = getattr(segments, "close", None)
        if close is not None:
            close()  # stop faster-whisper's generator: no further window is decoded


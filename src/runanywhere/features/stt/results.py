"""What a transcription produces: segments and the result with its metrics, decoded from 16 kHz samples."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...backends.base import SAMPLE_RATE, RecognizedSegment, SpeechRecognizer
from ...core.cancel import CancelToken
from .windows import sound_spans, windows

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Samples = NDArray[np.float32]

_CONTEXT_CHARS = 400  # the text before a window that Whisper gets as its prompt (it keeps at most 223 tokens)


@dataclass(frozen=True)
class Word:
    """One word, with start/end in seconds from the start of the audio and the model's probability for it."""

    start_s: float
    end_s: float
    text: str
    probability: float


@dataclass(frozen=True)
class Segment:
    """A stretch of the transcript, with start/end in seconds from the start of the audio; ``words``
    holds its words when word timestamps were asked for (``TranscribeOptions(word_timestamps=True)``)."""

    start_s: float
    end_s: float
    text: str
    confidence: float
    words: tuple[Word, ...] = ()

    def shifted(self, by_s: float) -> Segment:
        """The same segment ``by_s`` seconds later (its words too): a part's times placed in a whole."""
        words = tuple(Word(w.start_s + by_s, w.end_s + by_s, w.text, w.probability) for w in self.words)
        return Segment(self.start_s + by_s, self.end_s + by_s, self.text, self.confidence, words)


@dataclass(frozen=True)
class TranscriptionResult:
    """A finished transcription and its metrics.

    ``confidence`` is the segments' confidence weighted by their duration
    (0 without speech). ``processing_ms`` covers audio conversion and decoding,
    not time spent queued behind other work; ``real_time_factor`` is
    processing time over audio duration (below 1 is faster than real time).
    """

    text: str
    segments: tuple[Segment, ...]
    language: str | None
    confidence: float
    audio_duration_s: float
    processing_ms: float
    real_time_factor: float


def run_transcription(engine: SpeechRecognizer, audio: Iterable[Samples], language: str | None, cancel: CancelToken,
                      emit: Callable[[Any], None], *, word_timestamps: bool = False) -> TranscriptionResult:
    """Decode 16 kHz ``audio`` blocks on the engine's worker, emitting each :class:`Segment`.

    The blocks are read as decoding goes and decoded in bounded windows (see
    :mod:`.windows`), each with the text before it as Whisper's context, so
    memory does not grow with the audio's length; silence skips the engine.
    """
    started = time.perf_counter()
    segments: list[Segment] = []
    pieces: list[str] = []
    context, duration = "", 0
    for offset, window in windows(audio):
        duration = offset + len(window)
        for start, end in sound_spans(window):
            cancel.raise_if_cancelled("transcription")
            detected, decoded = engine.transcribe(window[start:end], language=language, cancel=cancel,
                                                  prompt=context or None, word_timestamps=word_timestamps)
            language = language or detected  # detected once, on the first speech
            at, length = (offset + start) / SAMPLE_RATE, (end - start) / SAMPLE_RATE
            for piece in decoded:
                segment = _placed(piece, at, length)
                segments.append(segment)
                pieces.append(piece.text)
                context = (context + piece.text)[-_CONTEXT_CHARS:]
                emit(segment)
    if language is None and not engine.is_multilingual:
        language = engine.languages[0]
    processing_ms = (time.perf_counter() - started) * 1000
    return summarise("".join(pieces).strip(), segments, language, duration / SAMPLE_RATE, processing_ms)


def _placed(piece: RecognizedSegment, at: float, length: float) -> Segment:
    """``piece`` (times within a span of ``length`` s) as a :class:`Segment` of the audio, its span starting at ``at``.

    Whisper's timestamps come in 20 ms steps and may point past the end: they are kept inside the span.
    """

    def place(start: float, end: float) -> tuple[float, float]:
        return at + min(start, length), at + min(max(start, end), length)

    words = tuple(Word(*place(w.start_s, w.end_s), w.text.strip(), w.probability) for w in piece.words)
    return Segment(*place(piece.start_s, piece.end_s), piece.text.strip(), piece.confidence, words)


def summarise(text: str, segments: Sequence[Segment], language: str | None, duration_s: float,
              processing_ms: float) -> TranscriptionResult:
    """A result with its overall confidence (duration-weighted) and real-time factor."""
    weights = [max(s.end_s - s.start_s, 0.0) for s in segments]
    if sum(weights) > 0:
        confidence = sum(w * s.confidence for w, s in zip(weights, segments, strict=True)) / sum(weights)
    else:
        confidence = sum(s.confidence for s in segments) / len(segments) if segments else 0.0
    rtf = processing_ms / 1000 / duration_s if duration_s > 0 else 0.0
    return TranscriptionResult(text, tuple(segments), language, confidence, duration_s, processing_ms, rtf)

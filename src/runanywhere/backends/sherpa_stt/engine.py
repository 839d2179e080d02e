"""Offline speech recognition through a sherpa-onnx ``OfflineRecognizer`` (Moonshine v2, transducers).

These are offline models: they decode one utterance at a time. Audio
longer than :data:`MAX_UTTERANCE_S` is cut into utterances first: Silero
(the model's ``vad`` file) finds the speech, neighbouring stretches of
speech are packed into pieces of at most that length (the pauses inside a
piece stay, the silence between pieces is dropped), and a piece that is still
too long is cut at its quietest 100 ms. Each piece is one segment, with its
times; the cancel token is checked between pieces.

Why the cuts (all families share them; they also bound each decode's memory):
sherpa-onnx 1.13.8 feeds Moonshine v2's decoder an attention mask at the
encoder's frame rate, which the graph expects at the audio's rate; past 384
encoder frames (9.27 s of audio) the decode fails and sherpa returns an empty
text (sherpa-onnx issue 3975). On 44 s in one piece Moonshine also appends a
stray "10." at the end.

sherpa-onnx reports no token probabilities for Moonshine (``ys_log_probs`` is
empty): a segment carries their mean when sherpa gives them, and otherwise a
log-probability of 0 and no-speech probability of 0, so its confidence reads
1.0, meaning "not measured" (the detector has already judged the piece speech).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...core.cancel import CancelToken
from ..base import SAMPLE_RATE, WINDOW_SIZE, RecognizedSegment, VadSettings, refuse_word_timestamps
from ..sherpa_vad import SileroVad

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Samples = NDArray[np.float32]

MAX_UTTERANCE_S = 9.25
"""Longest piece of audio decoded at once (sherpa-onnx 1.13.8 fails past 9.27 s: see the module docs)."""
_MAX_SAMPLES = int(MAX_UTTERANCE_S * SAMPLE_RATE)
_FRAME = SAMPLE_RATE // 10  # 100 ms, the step of a forced cut
# Utterances for Moonshine: cut at shorter pauses than a voice turn, and ask for a pause after 6 s of speech.
_VAD = VadSettings(min_silence_s=0.3, max_speech_s=6.0, speech_pad_s=0.25)


class SherpaSpeechEngine:
    """A loaded sherpa-onnx recognizer (English) on the CPU, with the Silero detector that cuts its utterances.

    ``recognizer`` is built (and its files checked) by the family's builder in :mod:`.families`.
    """

    languages: tuple[str, ...] = ("en",)
    is_multilingual = False

    def __init__(self, recognizer: Any, vad: Path) -> None:
        self._recognizer = recognizer
        self._vad = SileroVad(vad, _VAD)

    def transcribe(self, samples: Samples, *, language: str | None, cancel: CancelToken,
                   prompt: str | None = None, word_timestamps: bool = False) -> tuple[str, Iterator[RecognizedSegment]]:
        """(``"en"``, lazy segments) of 16 kHz mono float32 ``samples``; these models take no prompt."""
        refuse_word_timestamps("sherpa-onnx", word_timestamps)
        cancel.raise_if_cancelled("transcription")
        return "en", self._decode(samples, self.pieces(samples), cancel)

    def pieces(self, samples: Samples) -> list[tuple[int, int]]:
        """(start, end) sample ranges decoded one at a time, each at most :data:`MAX_UTTERANCE_S` long."""
        if len(samples) <= _MAX_SAMPLES:
            return [(0, len(samples))] if len(samples) else []
        packed: list[tuple[int, int]] = []
        for start, end in self._speech(samples):
            if packed and end - packed[-1][0] <= _MAX_SAMPLES:
                packed[-1] = (packed[-1][0], end)
            else:
                packed.append((max(start, packed[-1][1]) if packed else start, end))
        return [piece for start, end in packed for piece in _forced_cuts(samples, start, end)]

    def _speech(self, samples: Samples) -> list[tuple[int, int]]:
        """Silero's speech stretches of ``samples``, each widened by the detector's padding."""
        import numpy as np

        stream = self._vad.open_stream()
        try:
            for at in range(0, len(samples), WINDOW_SIZE):
                window = samples[at:at + WINDOW_SIZE]
                if len(window) < WINDOW_SIZE:
                    window = np.pad(window, (0, WINDOW_SIZE - len(window)))
                stream.accept(window)
            stream.flush()
            found = stream.take_segments()
        finally:
            stream.close()
        pad = int(_VAD.speech_pad_s * SAMPLE_RATE)
        return [(max(0, start - pad), min(len(samples), start + len(speech) + pad)) for start, speech in found]

    def _decode(self, samples: Samples, pieces: list[tuple[int, int]],
                cancel: CancelToken) -> Iterator[RecognizedSegment]:
        import math

        for start, end in pieces:
            cancel.raise_if_cancelled("transcription")
            stream = self._recognizer.create_stream()
            stream.accept_waveform(SAMPLE_RATE, samples[start:end])
            self._recognizer.decode_stream(stream)
            result = stream.result
            text = str(result.text).strip()
            if not text:
                continue
            logprobs = list(result.ys_log_probs)
            avg = sum(logprobs) / len(logprobs) if logprobs else 0.0
            yield RecognizedSegment(start / SAMPLE_RATE, end / SAMPLE_RATE, " " + text,
                                    avg if math.isfinite(avg) else 0.0, 0.0)

    def close(self) -> None:
        self._recognizer = None
        self._vad.close()


def _forced_cuts(samples: Samples, start: int, end: int) -> Iterator[tuple[int, int]]:
    """(start, end) pieces of at most ``_MAX_SAMPLES``, each cut at the quietest 100 ms of its second half."""
    import numpy as np

    while end - start > _MAX_SAMPLES:
        half = start + _MAX_SAMPLES // 2
        frames = samples[half:start + _MAX_SAMPLES]
        energy = np.square(frames[:len(frames) // _FRAME * _FRAME].reshape(-1, _FRAME)).sum(axis=1)
        cut = half + int(np.argmin(energy)) * _FRAME + _FRAME // 2
        yield start, cut
        start = cut
    if end > start:
        yield start, end

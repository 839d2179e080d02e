"""The self-echo guard: the agent's own voice, heard back through the microphone, must never become a turn.

Two checks: :class:`EchoGate` recognises input audio that copies the recent output (so the VAD is
given silence instead), and :func:`repeats` recognises a transcript made of the agent's recent words.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ...media.audio import resample
from ..tts import AudioChunk

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_WORD = re.compile(r"[a-z0-9']+")


class EchoGate:
    """Recognises input that is the agent's own output coming back (speakers into the microphone).

    The last ``window_ms`` of input is compared with the recent output by normalised cross-correlation:
    a copy of the output (at any delay) scores near 1, while a different utterance, even in the same
    voice, does not stay that similar over a window longer than a vowel.
    """

    def __init__(self, rate: int, threshold: float, window_s: float = 3.0, window_ms: int = 160) -> None:
        import numpy as np

        self.rate, self.threshold = rate, threshold
        self._recent = np.zeros(int(window_s * rate), dtype=np.float32)
        self._input = np.zeros(int(window_ms * rate / 1000), dtype=np.float32)
        self._quiet_after = 0.0  # monotonic time when the last output stops echoing

    def played(self, chunk: AudioChunk) -> None:
        """Remember ``chunk`` as output that may come back for a while."""
        import numpy as np

        audio = resample(chunk.audio_data, chunk.sample_rate, self.rate)
        self._recent = np.concatenate([self._recent, audio])[-len(self._recent):]
        self._quiet_after = time.monotonic() + len(audio) / self.rate + 0.5

    def is_echo(self, samples: NDArray[np.float32]) -> bool:
        """True when the latest input closely matches some stretch of recent output."""
        import numpy as np

        self._input = np.concatenate([self._input, samples])[-len(self._input):]
        if time.monotonic() > self._quiet_after or len(samples) == 0:
            return False
        probe = self._input
        energy = float(np.dot(probe, probe))
        if energy < 1e-6:
            return False
        n = len(self._recent) + len(probe)
        size = 1 << (n - 1).bit_length()
        corr = np.fft.irfft(np.fft.rfft(self._recent, size) * np.conj(np.fft.rfft(probe, size)), size)
        power = np.concatenate([[0.0], np.cumsum(self._recent.astype(np.float64) ** 2)])
        window = power[len(probe):] - power[: len(power) - len(probe)]  # energy of each aligned stretch
        score = np.abs(corr[: len(window)]) / np.sqrt(np.maximum(window, 1e-9) * energy)
        return bool(score.max(initial=0.0) >= self.threshold)


def repeats(text: str, replies: Iterable[str], overlap: float) -> bool:
    """True when at least ``overlap`` of the transcript's word trigrams come from the agent's ``replies``.

    Trigrams, not words: a user's new question shares words with the last answer
    ("what is the capital of Italy" after "... the capital of France"), an echo shares phrases.
    """
    heard = _words(text)
    spoken = _words(" ".join(replies))
    n = min(3, len(heard))
    if n == 0 or len(spoken) < n:
        return False
    said = {tuple(spoken[i:i + n]) for i in range(len(spoken) - n + 1)}
    grams = [tuple(heard[i:i + n]) for i in range(len(heard) - n + 1)]
    return sum(g in said for g in grams) / len(grams) >= overlap


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())

"""Long audio in bounded windows: memory and work per window stay the same whatever the audio's length.

Whisper's preparation (mel features of the whole input) costs tens of MB per
minute, so a long recording is never handed to the engine whole. The 16 kHz
stream is cut into windows of at most :data:`WINDOW_S`, each cut at the
quietest 100 ms of its last :data:`CUT_SEARCH_S` seconds (between words, not
inside one). Inside a window, stretches of digital silence (every sample below
:data:`SILENCE_LEVEL`, -60 dBFS, for :data:`GAP_S` or longer) are not
transcribed: Whisper only hallucinates on them ("you you you"), and skipping
them makes a mostly silent hour take seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from ...backends.base import SAMPLE_RATE

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Samples = NDArray[np.float32]

WINDOW_S = 60
"""Longest audio the engine gets at once (two of Whisper's 30 s windows)."""
CUT_SEARCH_S = 10
"""A window ends at the quietest point of its last this many seconds."""
SILENCE_LEVEL = 1e-3
"""Samples below this (-60 dBFS) are silence."""
GAP_S = 2.0
"""Silence at least this long is skipped; shorter pauses stay in the transcribed audio."""
_FRAME = SAMPLE_RATE // 10  # 100 ms
_PAD_FRAMES = 5  # 0.5 s of the silence around sound is kept with it


def windows(blocks: Iterable[Samples], *, window_s: float = WINDOW_S) -> Iterator[tuple[int, Samples]]:
    """(start sample, samples) of consecutive windows of the 16 kHz ``blocks``, each at most ``window_s`` long."""
    import numpy as np

    size, search = int(window_s * SAMPLE_RATE), int(min(CUT_SEARCH_S, window_s / 2) * SAMPLE_RATE)
    pending: list[Samples] = []
    held, start = 0, 0
    for block in blocks:
        pending.append(block)
        held += len(block)
        while held >= size:
            joined = np.concatenate(pending)
            cut = _quietest(joined[size - search: size]) + size - search
            yield start, joined[:cut]
            start, held, pending = start + cut, held - cut, [joined[cut:]]
    if held:
        yield start, np.concatenate(pending)


def sound_spans(samples: Samples) -> list[tuple[int, int]]:
    """(start, end) sample ranges of ``samples`` that are not long digital silence, with 0.5 s around them."""
    import numpy as np

    frames = -(-len(samples) // _FRAME)
    padded = np.zeros(frames * _FRAME, dtype=np.float32)
    padded[:len(samples)] = np.abs(samples)
    loud = np.flatnonzero(padded.reshape(frames, _FRAME).max(axis=1) >= SILENCE_LEVEL)
    if not len(loud):
        return []
    breaks = np.flatnonzero(np.diff(loud) > GAP_S * 10)
    starts, ends = loud[np.r_[0, breaks + 1]], loud[np.r_[breaks, len(loud) - 1]] + 1
    return [(max(0, int(s - _PAD_FRAMES) * _FRAME), min(len(samples), int(e + _PAD_FRAMES) * _FRAME))
            for s, e in zip(starts, ends, strict=True)]


def _quietest(samples: Samples) -> int:
    """The middle of the 100 ms stretch of ``samples`` with the least energy."""
    import numpy as np

    frames = len(samples) // _FRAME
    if frames == 0:
        return len(samples)
    energy = np.square(samples[:frames * _FRAME].reshape(frames, _FRAME)).sum(axis=1)
    return int(np.argmin(energy)) * _FRAME + _FRAME // 2

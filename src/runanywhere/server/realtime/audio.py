"""The protocol's audio: base64 PCM16 mono at 24 kHz on the wire, float32 at the engines' rates inside."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from ...core.errors import InvalidInputError
from ...media.audio import StreamResampler, to_pcm16

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

PROTOCOL_RATE = 24000
"""The sample rate of ``audio/pcm``, the one format this server speaks (both ways)."""


def decode_pcm16(text: str) -> NDArray[np.float32]:
    """Base64 little-endian PCM16 as float32 samples in [-1, 1]; bad base64 or a half sample is refused."""
    import numpy as np

    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError(f"audio is not valid base64: {exc}") from exc
    if len(data) % 2:
        raise InvalidInputError(f"PCM16 audio has 2 bytes a sample; got {len(data)} bytes")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def duration_ms(samples: int, rate: int = PROTOCOL_RATE) -> float:
    return samples * 1000.0 / rate


class AudioEncoder:
    """One reply's speech, chunk by chunk, as base64 PCM16 at 24 kHz (one resampler: seamless chunk edges)."""

    def __init__(self) -> None:
        self._resampler: StreamResampler | None = None
        self.samples_out = 0  # 24 kHz samples encoded so far

    def encode(self, samples: NDArray[np.float32], rate: int) -> str:
        """The next chunk (at ``rate``) as base64 PCM16 at 24 kHz; may be empty while the resampler fills up."""
        if self._resampler is None or self._resampler.from_rate != rate:
            self._resampler = StreamResampler(rate, PROTOCOL_RATE)
        return self._pack(self._resampler.push(samples))

    def finish(self) -> str:
        """What the resampler still holds, at the end of the reply."""
        resampler, self._resampler = self._resampler, None
        return "" if resampler is None else self._pack(resampler.finish())

    @property
    def sent_ms(self) -> float:
        return duration_ms(self.samples_out)

    def _pack(self, samples: NDArray[np.float32]) -> str:
        self.samples_out += len(samples)
        return base64.b64encode(to_pcm16(samples)).decode("ascii") if len(samples) else ""

"""Speech audio in the formats ``/v1/audio/speech`` offers.

``wav`` and ``pcm`` stream chunk by chunk (a WAV header with open-ended sizes,
then 16-bit samples; ``pcm`` is raw 16-bit at 24 kHz, as OpenAI's is). ``flac``,
``mp3`` and ``opus`` are encoded by libsndfile once the speech is complete: its
encoders rewrite their headers at the end, so their bytes cannot be sent early.
"""

from __future__ import annotations

import io
import struct
from typing import TYPE_CHECKING, Any

from ..media.audio import Audio, to_pcm16

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

PCM_RATE = 24000
STREAMED = {"wav": "audio/wav", "pcm": "audio/pcm"}
ENCODED = {"flac": ("FLAC", "PCM_16", "audio/flac"), "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
           "opus": ("OGG", "OPUS", "audio/ogg")}
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def formats() -> tuple[str, ...]:
    return (*STREAMED, *ENCODED)


def media_type(fmt: str) -> str:
    return STREAMED[fmt] if fmt in STREAMED else ENCODED[fmt][2]


def wav_header(sample_rate: int) -> bytes:
    """A 16-bit mono WAV header whose sizes say "to the end of the stream" (0xFFFFFFFF), for streaming."""
    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
            + b"data" + struct.pack("<I", 0xFFFFFFFF))


def pcm_chunk(samples: NDArray[np.float32], sample_rate: int, fmt: str) -> bytes:
    """One streamed chunk: 16-bit samples at the voice's rate (``wav``) or at 24 kHz (``pcm``)."""
    if fmt == "pcm" and sample_rate != PCM_RATE:
        samples = Audio(samples, sample_rate).resampled(PCM_RATE).samples
    return to_pcm16(samples)


def encode(samples: NDArray[np.float32], sample_rate: int, fmt: str) -> bytes:
    """The whole speech in ``flac``, ``mp3`` or ``opus`` (Opus only takes some rates: resampled to 24 kHz)."""
    import soundfile

    container, subtype, _ = ENCODED[fmt]
    if fmt == "opus" and sample_rate not in _OPUS_RATES:
        samples, sample_rate = Audio(samples, sample_rate).resampled(PCM_RATE).samples, PCM_RATE
    out: Any = io.BytesIO()
    soundfile.write(out, samples, sample_rate, format=container, subtype=subtype)
    return bytes(out.getvalue())

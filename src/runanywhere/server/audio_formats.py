"""Speech audio in the formats ``/v1/audio/speech`` offers, encoded chunk by chunk as it is synthesised.

``wav`` is a header with open-ended sizes, then 16-bit samples; ``pcm`` is raw
16-bit at 24 kHz, as OpenAI's is. ``flac``, ``mp3`` and ``opus`` (Ogg) come
from libsndfile writing into a file whose bytes are sent as they are written.
Its encoders seek back at the end to fill in their headers (FLAC's length and
checksum, LAME's Info frame); those bytes are gone by then, so the stream is
what a streaming encoder writes: FLAC with its length "unknown", MP3 with an
empty Info frame. MP3 is constant-bitrate (64 kb/s at 22.05 kHz), so a
decoder without the Info frame still finds its length from its size
(libsndfile reads a variable-bitrate one short); libsndfile cannot read such
a FLAC, so :func:`~runanywhere.media.audio.load_audio` gives it to FFmpeg.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Protocol

from ..media.audio import StreamResampler, to_pcm16

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

PCM_RATE = 24000
RAW = {"wav": "audio/wav", "pcm": "audio/pcm"}
ENCODED = {"flac": ("FLAC", "PCM_16", "audio/flac"), "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
           "opus": ("OGG", "OPUS", "audio/ogg")}
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
_SETTINGS: dict[str, dict[str, Any]] = {"mp3": {"bitrate_mode": "CONSTANT", "compression_level": 0.6}}


class ChunkEncoder(Protocol):
    """Audio in, chunk by chunk; each call returns the bytes ready to send (maybe none yet)."""

    def encode(self, samples: NDArray[np.float32]) -> bytes: ...
    def finish(self) -> bytes: ...


def formats() -> tuple[str, ...]:
    return (*RAW, *ENCODED)


def media_type(fmt: str) -> str:
    return RAW[fmt] if fmt in RAW else ENCODED[fmt][2]


def encoder(fmt: str, sample_rate: int) -> ChunkEncoder:
    """An encoder for ``fmt`` (one of :func:`formats`) of mono float32 audio at ``sample_rate``."""
    return _RawEncoder(fmt, sample_rate) if fmt in RAW else _SoundfileEncoder(fmt, sample_rate)


def wav_header(sample_rate: int) -> bytes:
    """A 16-bit mono WAV header whose sizes say "to the end of the stream" (0xFFFFFFFF), for streaming."""
    return (b"RIFF" + struct.pack("<I", 0xFFFFFFFF) + b"WAVE" + b"fmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
            + b"data" + struct.pack("<I", 0xFFFFFFFF))


class _RawEncoder:
    """16-bit samples: at the voice's rate after a streaming WAV header (``wav``), or at 24 kHz (``pcm``)."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        self._resampler = StreamResampler(sample_rate, PCM_RATE if fmt == "pcm" else sample_rate)
        self._head = wav_header(sample_rate) if fmt == "wav" else b""

    def encode(self, samples: NDArray[np.float32]) -> bytes:
        head, self._head = self._head, b""
        return head + to_pcm16(self._resampler.push(samples))

    def finish(self) -> bytes:
        return self._head + to_pcm16(self._resampler.finish())


class _SoundfileEncoder:
    """libsndfile's FLAC, MP3 or Ogg Opus encoder (Opus takes some rates only: others are resampled to 24 kHz)."""

    def __init__(self, fmt: str, sample_rate: int) -> None:
        import soundfile

        container, subtype, _ = ENCODED[fmt]
        rate = PCM_RATE if fmt == "opus" and sample_rate not in _OPUS_RATES else sample_rate
        self._resampler = StreamResampler(sample_rate, rate)
        self._out = _Outbox()
        self._file: Any = soundfile.SoundFile(self._out, "w", samplerate=rate, channels=1, format=container,
                                              subtype=subtype, **_SETTINGS.get(fmt, {}))

    def encode(self, samples: NDArray[np.float32]) -> bytes:
        resampled = self._resampler.push(samples)
        if len(resampled):
            self._file.write(resampled)
        return self._out.take()

    def finish(self) -> bytes:
        tail = self._resampler.finish()
        if len(tail):
            self._file.write(tail)
        self._file.close()
        return self._out.take()


class _Outbox:
    """A seekable file for libsndfile whose bytes are taken as they are written; a write over bytes already
    taken (an encoder filling in its header at the end) is dropped, as a stream cannot take them back."""

    def __init__(self) -> None:
        self._pending = bytearray()  # the bytes from offset ``_taken`` on, not taken yet
        self._taken = 0
        self._position = 0
        self._size = 0

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        start, end = self._position, self._position + len(chunk)
        if end > self._taken:
            keep = chunk[max(0, self._taken - start):]
            at = max(start, self._taken) - self._taken
            if len(self._pending) < at + len(keep):
                self._pending.extend(bytes(at + len(keep) - len(self._pending)))
            self._pending[at:at + len(keep)] = keep
        self._position, self._size = end, max(self._size, end)
        return len(chunk)

    def seek(self, offset: int, whence: int = 0) -> int:
        self._position = offset + (0, self._position, self._size)[whence]
        return self._position

    def tell(self) -> int:
        return self._position

    def read(self, size: int = -1) -> bytes:
        """Nothing to read back: the encoders here only write (and read nothing when told so)."""
        return b""

    def take(self) -> bytes:
        """The bytes written since the last take."""
        out = bytes(self._pending)
        self._taken += len(out)
        self._pending.clear()
        return out

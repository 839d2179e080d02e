"""Audio in and out: everything becomes ``numpy.float32`` mono in [-1, 1] with an explicit rate.

Engines want one format; users have many (int16 buffers, stereo, 44.1/48 kHz,
WAV/FLAC/OGG/MP3 files or bytes). :func:`load_audio` and :func:`to_mono_float32`
convert, :func:`resample` uses soxr's high-quality resampler (:class:`StreamResampler`
chunk by chunk, for live audio), and bad input
(NaN, a zero rate, an unreadable file) is a clear ``InvalidInputError``.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Union

from ..core.errors import InvalidInputError, SDKFileNotFoundError, StorageError
from ..core.validation import number_in_range

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Samples = NDArray[np.float32]

AudioSource = Union["Audio", "NDArray[Any]", bytes, str, os.PathLike[str]]
_UNKNOWN_LENGTH_BLOCK = 1 << 20  # samples read at a time from a file that does not say its length
_LENGTH_UNKNOWN = (1 << 63) - 1  # libsndfile's frame count for such a file


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples in [-1, 1] and their sample rate (Hz)."""

    samples: Samples
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    def resampled(self, sample_rate: int) -> Audio:
        if sample_rate == self.sample_rate:
            return self
        return Audio(resample(self.samples, self.sample_rate, sample_rate), sample_rate)


MIN_RATE, MAX_RATE = 1000, 384_000
"""Sample rates audio may have (Hz): below 1 kHz nothing is audible speech; above 384 kHz no device records."""


def check_rate(sample_rate: Any) -> int:
    """``sample_rate`` as an int when it is a whole number of Hz from :data:`MIN_RATE` to :data:`MAX_RATE`."""
    rate = number_in_range("sample_rate", sample_rate, MIN_RATE, MAX_RATE, unit=" Hz")
    if not rate.is_integer():
        raise InvalidInputError(f"sample_rate must be a whole number of Hz, got {sample_rate!r}")
    return int(rate)


def to_mono_float32(samples: Any) -> Samples:
    """Convert any numeric array to mono float32 in [-1, 1].

    Integers are scaled by their type's range (int16 / 32768 ...); 2-D input is
    treated as (frames, channels) or (channels, frames), whichever axis is
    shorter is the channels, and averaged; NaN or infinite samples are refused;
    floats beyond [-1, 1] are clipped.
    """
    return _mono(_as_frames(samples))


def _as_frames(samples: Any) -> Any:
    """``samples`` as a numeric array of frames, 1-D or (frames, channels), without copying; refuses the rest."""
    import numpy as np

    array = np.asarray(samples)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise InvalidInputError(f"audio must be numeric samples, got dtype {array.dtype}")
    if np.iscomplexobj(array):
        raise InvalidInputError("audio samples cannot be complex numbers")
    if array.ndim == 2:
        channel_axis = 1 if array.shape[1] <= array.shape[0] else 0
        if not 1 <= array.shape[channel_axis] <= 16:
            raise InvalidInputError(f"cannot tell the channels in an array of shape {array.shape}")
        return array if channel_axis == 1 else array.T
    if array.ndim != 1:
        raise InvalidInputError(f"audio must be 1-D (mono) or 2-D (channels), got shape {array.shape}")
    return array


def _mono(frames: Any) -> Samples:
    """Frames from :func:`_as_frames` as a new mono float32 array: ints scaled, channels averaged, clipped."""
    import numpy as np

    floating = np.issubdtype(frames.dtype, np.floating)
    if frames.ndim == 2:
        frames = (frames.astype(np.float64) if floating else _scale_int(frames)).mean(axis=1)
    elif not floating:
        frames = _scale_int(frames)
    out = np.array(frames, dtype=np.float32)  # a copy: the caller's buffer is never modified
    if out.size and not np.isfinite(out).all():
        raise InvalidInputError("audio contains NaN or infinite samples")
    return np.clip(out, -1.0, 1.0, out=out)


def _scale_int(array: Any) -> Any:
    import numpy as np

    if array.dtype == np.bool_:
        return array.astype(np.float64)
    info = np.iinfo(array.dtype)
    if info.min == 0:  # unsigned: centre first (uint8 WAV is offset by 128)
        return (array.astype(np.float64) - (info.max + 1) / 2) / ((info.max + 1) / 2)
    return array.astype(np.float64) / -info.min


def resample(samples: Samples, from_rate: int, to_rate: int) -> Samples:
    """High-quality resampling (soxr); returns the input unchanged when the rates match."""
    import numpy as np

    from_rate, to_rate = check_rate(from_rate), check_rate(to_rate)
    if from_rate == to_rate or len(samples) == 0:
        return np.asarray(samples, dtype=np.float32)
    import soxr

    return np.asarray(soxr.resample(samples, from_rate, to_rate, quality="HQ"), dtype=np.float32)


class StreamResampler:
    """Resample a stream chunk by chunk (soxr HQ): seamless chunk edges, the same samples as all at once.

    Equal rates pass the samples through untouched. :meth:`finish` returns the
    tail soxr still holds; after it the resampler is spent.
    """

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate, self.to_rate = check_rate(from_rate), check_rate(to_rate)
        self._stream: Any = None
        if self.from_rate != self.to_rate:
            import soxr

            self._stream = soxr.ResampleStream(self.from_rate, self.to_rate, 1, dtype="float32", quality="HQ")

    def push(self, samples: Samples) -> Samples:
        """The resampled samples of the next float32 mono chunk (possibly fewer, or none, while soxr fills up)."""
        if self._stream is None:
            return samples
        out: Samples = self._stream.resample_chunk(samples)
        return out

    def finish(self) -> Samples:
        """The last resampled samples, flushed from soxr's filter at the end of the stream."""
        import numpy as np

        empty = np.zeros(0, dtype=np.float32)
        if self._stream is None:
            return empty
        out: Samples = self._stream.resample_chunk(empty, last=True)
        return out


def load_audio(source: AudioSource, *, sample_rate: int | None = None, target_rate: int | None = None) -> Audio:
    """Read audio from an :class:`Audio`, an array (with ``sample_rate``), WAV/FLAC/OGG/MP3 bytes or a path.

    With ``target_rate`` the result is resampled to it.
    """
    if isinstance(source, Audio):
        audio = source
    elif isinstance(source, bytes | bytearray | memoryview | str | os.PathLike):
        handle = _open_file(source)
        audio = Audio(_join(_file_blocks(handle, handle.frames or _UNKNOWN_LENGTH_BLOCK)), int(handle.samplerate))
    else:
        if sample_rate is None:
            raise InvalidInputError("a raw sample array needs its sample_rate")
        audio = Audio(to_mono_float32(source), check_rate(sample_rate))
    return audio.resampled(check_rate(target_rate)) if target_rate is not None else audio


def _join(blocks: Iterator[Samples]) -> Samples:
    import numpy as np

    parts = list(blocks)
    return parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def audio_blocks(source: AudioSource, *, sample_rate: int | None = None, target_rate: int | None = None,
                 block_s: float = 10.0) -> Iterator[Samples]:
    """``source`` (anything :func:`load_audio` takes) as consecutive mono float32 blocks of about ``block_s``.

    Files are read, and everything converted and resampled (to ``target_rate``),
    block by block, so memory stays bounded by the block, not the audio's
    length. What can be checked is checked now (a missing or unreadable file,
    a missing rate, NaN samples in an array); the blocks are read as they are taken.
    """
    if isinstance(source, Audio):
        rate, blocks = source.sample_rate, _array_blocks(source.samples, int(block_s * source.sample_rate))
    elif isinstance(source, bytes | bytearray | memoryview | str | os.PathLike):
        handle = _open_file(source)
        rate = int(handle.samplerate)
        blocks = _file_blocks(handle, max(1, int(block_s * rate) // handle.channels))  # bounded for any channels
    else:
        if sample_rate is None:
            raise InvalidInputError("a raw sample array needs its sample_rate")
        rate, frames = check_rate(sample_rate), _as_frames(source)
        size = int(block_s * rate)
        for at in range(0, len(frames), size):  # refused before any work, one block's temporary at a time
            _mono(frames[at: at + size])
        blocks = _array_blocks(frames, size)
    return _resampled(blocks, rate, rate if target_rate is None else check_rate(target_rate))


def _array_blocks(frames: Any, size: int) -> Iterator[Samples]:
    for at in range(0, len(frames), size):
        yield _mono(frames[at: at + size])


def _open_file(source: bytes | bytearray | memoryview | str | os.PathLike[str]) -> Any:
    """A soundfile reader on audio bytes or a path, or FFmpeg's where libsndfile cannot read them (refused here
    when missing or unreadable)."""
    import soundfile

    if isinstance(source, bytes | bytearray | memoryview):
        target: Any = io.BytesIO(bytes(source))
        name = "the audio bytes"
    else:
        target = Path(source).expanduser()
        if not target.is_file():
            raise SDKFileNotFoundError(f"audio file not found: {target}")
        name = target.name
    try:
        handle = soundfile.SoundFile(target)
    except (RuntimeError, soundfile.LibsndfileError, TypeError, ValueError) as exc:
        handle = _open_with_ffmpeg(target, f"cannot read {name} as audio (WAV, FLAC, OGG or MP3): {exc}")
    if handle.frames == _LENGTH_UNKNOWN:  # a streamed FLAC: libsndfile opens it, then fails to read it
        handle.close()
        handle = _open_with_ffmpeg(target, f"cannot read {name}: it does not say its length")
    try:
        check_rate(handle.samplerate)
    except InvalidInputError as exc:
        handle.close()
        raise InvalidInputError(f"{name} says its {exc.message}") from exc
    return handle


def _open_with_ffmpeg(target: Any, problem: str) -> Any:
    """FFmpeg's reader on ``target`` (see :mod:`.ffmpeg_audio`); ``problem`` is raised when it cannot read it either."""
    from .ffmpeg_audio import FFmpegAudioReader

    if isinstance(target, io.BytesIO):
        target.seek(0)
    try:
        return FFmpegAudioReader(target)
    except ImportError:
        raise InvalidInputError(problem) from None
    except ValueError as exc:
        raise InvalidInputError(f"{problem}; nor can FFmpeg: {exc}") from None


def _file_blocks(handle: Any, size: int) -> Iterator[Samples]:
    with handle:
        while True:
            try:
                data = handle.read(size, dtype="float32", always_2d=True)
            except RuntimeError as exc:  # soundfile's LibsndfileError: a file that breaks off or is corrupt inside
                raise InvalidInputError(f"cannot read the audio past {handle.tell()} frames: {exc}") from exc
            if not len(data):
                return
            yield _mono(data)


def _resampled(blocks: Iterator[Samples], from_rate: int, to_rate: int) -> Iterator[Samples]:
    if from_rate == to_rate:
        yield from blocks
        return
    resampler = StreamResampler(from_rate, to_rate)
    for block in blocks:
        if len(out := resampler.push(block)):
            yield out
    if len(tail := resampler.finish()):
        yield tail


class SpokenAudio(Protocol):
    """Anything carrying ``audio_data`` and its ``sample_rate``: a TTS result or streamed chunk, a voice reply."""

    @property
    def audio_data(self) -> Samples: ...

    @property
    def sample_rate(self) -> int: ...


def save_wav(path: str | os.PathLike[str], audio: SpokenAudio | Audio | Any, sample_rate: int | None = None) -> Path:
    """Write 16-bit PCM mono WAV (atomically: a temp file renamed into place); returns the path.

    ``audio`` is a sample array with its ``sample_rate``, or an :class:`Audio`,
    a TTS ``SynthesisResult`` or ``AudioChunk`` (which carry their own rate).
    """
    import soundfile

    samples: Any
    own_rate: int | None
    if isinstance(audio, Audio):
        samples, own_rate = audio.samples, audio.sample_rate
    elif hasattr(audio, "audio_data") and hasattr(audio, "sample_rate"):
        samples, own_rate = audio.audio_data, audio.sample_rate
    else:
        samples, own_rate = audio, None
    if own_rate is not None and sample_rate is not None and sample_rate != own_rate:
        raise InvalidInputError(f"sample_rate {sample_rate!r} contradicts the audio's own rate {own_rate}")
    rate = own_rate if own_rate is not None else sample_rate
    if rate is None:
        raise InvalidInputError("save_wav needs the sample_rate of a raw sample array")
    out = Path(path)
    data = to_mono_float32(samples)
    rate = check_rate(rate)
    if out.is_dir():
        raise InvalidInputError(f"{out} is a directory; give a file name such as {out / 'speech.wav'}")
    if not out.parent.is_dir():
        raise SDKFileNotFoundError(f"cannot write {out}: the folder {out.parent} does not exist")
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        soundfile.write(tmp, data, rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, out)
    except (OSError, RuntimeError) as exc:  # soundfile's LibsndfileError is a RuntimeError
        raise StorageError(f"cannot write {out}: {exc}", details={"path": str(out)}) from exc
    finally:
        tmp.unlink(missing_ok=True)
    return out


def to_pcm16(samples: Any) -> bytes:
    """Little-endian 16-bit PCM bytes (for sockets, players and WAV writers)."""
    import numpy as np

    data = to_mono_float32(samples)
    return (np.round(data * 32767.0)).astype("<i2").tobytes()

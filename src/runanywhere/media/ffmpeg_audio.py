"""Audio that libsndfile cannot open, decoded by FFmpeg through PyAV (the decoder faster-whisper itself uses).

libsndfile refuses a FLAC stream whose length is "unknown" (what a streaming
encoder writes, ``/v1/audio/speech`` included) and containers it does not
know (M4A/AAC, WebM); FFmpeg reads them. The reader gives the part of
soundfile's ``SoundFile`` that :mod:`.audio` uses, as mono float32 at the
file's rate, decoded as it is read; its length is unknown until the end.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


class FFmpegAudioReader:
    """Mono float32 blocks of the first audio stream of ``target``; ``frames`` is 0 (unknown)."""

    channels = 1
    frames = 0

    def __init__(self, target: Path | io.BytesIO) -> None:
        """Opens ``target``; raises ``ImportError`` without PyAV and ``ValueError`` when FFmpeg cannot read it."""
        import av

        self._error: type[Exception] = av.error.FFmpegError
        try:
            container: Any = av.open(target if isinstance(target, io.BytesIO) else str(target))
            streams = container.streams.audio
        except self._error as exc:
            raise ValueError(str(exc)) from exc
        if not streams:
            container.close()
            raise ValueError("it holds no audio stream")
        self._container = container
        self.samplerate = int(streams[0].rate)
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self.samplerate)
        self._decoded: Any = self._container.decode(streams[0])
        self._pieces: list[NDArray[np.float32]] = []
        self._held = 0
        self._position = 0
        self._ended = False

    def read(self, size: int, dtype: str = "float32", always_2d: bool = True) -> NDArray[np.float32]:
        """Up to ``size`` samples as a (n, 1) float32 array; empty at the end. A corrupt stream raises RuntimeError."""
        import numpy as np

        while self._held < size and not self._ended:
            try:
                frame = next(self._decoded, None)
            except self._error as exc:
                raise RuntimeError(f"FFmpeg: {exc}") from exc
            self._ended = frame is None
            for out in self._resampler.resample(frame):
                samples = out.to_ndarray()[0].astype(np.float32)
                self._pieces.append(samples)
                self._held += len(samples)
        joined = np.concatenate(self._pieces) if self._pieces else np.zeros(0, np.float32)
        block, rest = joined[:size], joined[size:]
        self._pieces, self._held = ([rest] if len(rest) else []), len(rest)
        self._position += len(block)
        return block.reshape(-1, 1)

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> FFmpegAudioReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

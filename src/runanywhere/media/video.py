"""Frames from a camera or a video file, as RGB ``uint8`` arrays, for vision-language models.

:class:`VideoCapture` wraps OpenCV (``pip install 'runanywhere[vision]'``, imported on first use): a camera
index (``0``) or device path (``/dev/video0``), or a video file. ``capture_frame()`` reads the next frame,
``frames(every_s)`` yields frames at a set rate (video time for a file, wall time for a camera) and
``describe_every(seconds, prompt, model=VLM)`` asks a vision model about each: the live mode of the
reference demo. Any object with ``process(image, prompt, options)`` serves as the model.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from ..core.errors import (
    BackendNotAvailableError,
    InvalidInputError,
    InvalidStateError,
    SDKErrorCode,
    SDKFileNotFoundError,
)
from ..core.validation import positive_number

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

class Describer(Protocol):
    """What :meth:`VideoCapture.describe_every` asks: a vision-language model (``VLM`` is one)."""

    def process(self, image: Any, prompt: Any, options: Any = None) -> Any: ...
    async def aprocess(self, image: Any, prompt: Any, options: Any = None) -> Any: ...


@dataclass(frozen=True)
class FrameDescription:
    """One described frame: when it was taken (seconds from the start) and the model's result."""

    time_s: float
    frame: NDArray[np.uint8]
    result: Any


def _cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:
        raise BackendNotAvailableError("video and camera frames need OpenCV: pip install 'runanywhere[vision]'",
                                       details={"module": "cv2", "extra": "vision"}) from exc
    return cv2


class VideoCapture:
    """Reads RGB frames from a camera (``int`` index or ``/dev/video*``) or a video file; close it when done."""

    def __init__(self, source: int | str | os.PathLike[str] = 0) -> None:
        cv2 = _cv2()
        if isinstance(source, bool) or not isinstance(source, int | str | os.PathLike):
            raise InvalidInputError(f"a video source is a camera index or a path, not {type(source).__name__}")
        target: int | str = source if isinstance(source, int) else os.fspath(source)
        self.is_camera = isinstance(target, int) or target.startswith("/dev/video")
        if isinstance(target, str) and not self.is_camera and not Path(target).is_file():
            raise SDKFileNotFoundError(f"video file not found: {source}", details={"path": str(source)})
        self.source = source
        self._cap: Any = cv2.VideoCapture(target)
        if not self._cap.isOpened():
            self._cap.release()
            what = f"camera {source}" if self.is_camera else f"video file {source} (not a video OpenCV can read?)"
            raise InvalidInputError(f"could not open the {what}", code=SDKErrorCode.INVALID_INPUT,
                                    details={"source": str(source)})
        self._started = time.monotonic()
        self._last_s = 0.0

    @property
    def is_capturing(self) -> bool:
        return self._cap is not None and bool(self._cap.isOpened())

    @property
    def fps(self) -> float | None:
        """The frame rate the source reports (None when it reports none)."""
        value = float(self._open().get(_cv2().CAP_PROP_FPS) or 0.0)
        return value if value > 0 else None

    def capture_frame(self) -> NDArray[np.uint8] | None:
        """The next frame as an ``(H, W, 3)`` RGB array, or None at the end of a file."""
        cap, cv2 = self._open(), _cv2()
        ok, bgr = cap.read()
        if not ok:
            return None
        self._last_s = (float(cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000 if not self.is_camera
                        else time.monotonic() - self._started)
        import numpy as np

        rgb: NDArray[np.uint8] = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        return rgb

    async def acapture_frame(self) -> NDArray[np.uint8] | None:
        """Async twin of :meth:`capture_frame` (the read runs in a thread)."""
        return await asyncio.to_thread(self.capture_frame)

    def frames(self, every_s: float | None = None) -> Iterator[tuple[float, NDArray[np.uint8]]]:
        """``(time_s, frame)`` pairs: every frame, or the first at or after each multiple of ``every_s``
        seconds (video time for a file; wall time for a camera, whose frames in between are read and
        dropped, so each one yielded is fresh). A file ends at its end, a camera never."""
        step = positive_number("every_s", every_s) if every_s is not None else None
        due = 0.0
        while (frame := self.capture_frame()) is not None:
            now = self._last_s
            if step is None:
                yield now, frame
            elif now + 1e-6 >= due:
                yield now, frame
                due += step * (int((now - due) // step) + 1)

    async def aframes(self, every_s: float | None = None) -> AsyncIterator[tuple[float, NDArray[np.uint8]]]:
        """Async twin of :meth:`frames` (each read runs in a thread)."""
        frames = self.frames(every_s)
        while (item := await asyncio.to_thread(next, frames, None)) is not None:
            yield item

    def describe_every(self, seconds: float, prompt: Any, *, model: Describer,
                       options: Any = None) -> Iterator[FrameDescription]:
        """Ask ``model`` about one frame every ``seconds``: the live description mode."""
        for time_s, frame in self.frames(seconds):
            yield FrameDescription(time_s, frame, model.process(frame, prompt, options))

    async def adescribe_every(self, seconds: float, prompt: Any, *, model: Describer,
                              options: Any = None) -> AsyncIterator[FrameDescription]:
        """Async twin of :meth:`describe_every`."""
        async for time_s, frame in self.aframes(seconds):
            yield FrameDescription(time_s, frame, await model.aprocess(frame, prompt, options))

    def _open(self) -> Any:
        if self._cap is None:
            raise InvalidStateError("this VideoCapture is closed")
        return self._cap

    def close(self) -> None:
        """Release the camera or file (idempotent)."""
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def __enter__(self) -> VideoCapture:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

"""VideoCapture: frames from a video file the test writes with OpenCV, at a set rate; the camera path if possible."""

from __future__ import annotations

import asyncio
import glob
from pathlib import Path

import numpy as np
import pytest

from runanywhere import InvalidInputError, InvalidStateError, SDKFileNotFoundError, VideoCapture

from .tinyvlm import COLOURS, write_video


def near(frame: np.ndarray, rgb: tuple[int, int, int]) -> bool:
    return bool(np.abs(frame.reshape(-1, 3).mean(axis=0) - np.array(rgb)).max() < 20)


def test_frames_come_out_as_rgb_in_order(tmp_path: Path):
    video = write_video(tmp_path / "clip.avi", seconds=2, fps=5)
    with VideoCapture(video) as capture:
        assert capture.is_capturing and not capture.is_camera and capture.fps == pytest.approx(5.0)
        first = capture.capture_frame()
        assert first is not None and first.shape == (48, 64, 3) and first.dtype == np.uint8
        assert near(first, COLOURS[0])
        rest = list(capture.frames())
    assert len(rest) == 9 and near(rest[-1][1], COLOURS[1])
    assert [round(t, 1) for t, _ in rest[:2]] == [0.2, 0.4]


def test_frames_at_a_set_rate_follow_video_time(tmp_path: Path):
    video = write_video(tmp_path / "clip.avi", seconds=4, fps=10)
    with VideoCapture(video) as capture:
        picked = list(capture.frames(every_s=1.0))
    assert [round(t, 1) for t, _ in picked] == [0.0, 1.0, 2.0, 3.0]
    assert all(near(frame, COLOURS[i]) for i, (_, frame) in enumerate(picked))
    with VideoCapture(video) as capture:
        assert [round(t, 1) for t, _ in capture.frames(every_s=1.5)] == [0.0, 1.5, 3.0]


def test_async_frames_and_the_end_of_the_file(tmp_path: Path):
    video = write_video(tmp_path / "clip.avi", seconds=2, fps=2)

    async def read() -> tuple[list[float], object]:
        with VideoCapture(video) as capture:
            times = [t async for t, _ in capture.aframes(every_s=1.0)]
            return times, await capture.acapture_frame()

    times, after_end = asyncio.run(read())
    assert times == [0.0, 1.0] and after_end is None


@pytest.mark.parametrize(("source", "error", "words"), [
    ("missing.avi", SDKFileNotFoundError, "not found"),
    ("notes.avi", InvalidInputError, "could not open"),  # a text file named like a video
    (3.5, InvalidInputError, "camera index or a path"),
])
def test_bad_sources_are_clear_errors(tmp_path: Path, source: object, error: type[Exception], words: str):
    (tmp_path / "notes.avi").write_text("this is text")
    with pytest.raises(error, match=words):
        VideoCapture(tmp_path / source if isinstance(source, str) else source)  # type: ignore[arg-type]


def test_a_closed_capture_says_so(tmp_path: Path):
    video = write_video(tmp_path / "clip.avi", seconds=1, fps=2)
    capture = VideoCapture(video)
    capture.close()
    capture.close()
    with pytest.raises(InvalidStateError):
        capture.capture_frame()


def test_a_camera_that_is_not_there_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="camera 97"):
        VideoCapture(97)


def test_camera_frames_on_a_v4l2_loopback_device():
    devices = sorted(glob.glob("/dev/video*"))
    if not devices:
        pytest.skip("no V4L2 device here, and a v4l2loopback device cannot be created: that needs the kernel "
                    "module loaded on the host (modprobe v4l2loopback), which this container cannot do")
    with VideoCapture(devices[0]) as camera:
        frame = camera.capture_frame()
    assert frame is not None and frame.ndim == 3 and frame.shape[2] == 3

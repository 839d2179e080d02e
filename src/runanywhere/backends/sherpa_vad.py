"""Silero voice activity detection through sherpa-onnx: the one module that runs a VAD engine.

:class:`SileroVad` is a loaded Silero model (v4, v5 or v6 ONNX) plus its
settings; each :class:`SileroStream` is one ``sherpa_onnx.VoiceActivityDetector``
with its own state, fed one 512-sample window (32 ms at 16 kHz) at a time.
Feeding whole windows matters: sherpa ORs the speech decisions of all windows
in one ``accept_waveform`` call, so larger calls would blur segment ends.

sherpa-onnx ends the process (``exit(-1)``) on a model whose inputs are not a
Silero layout, so :func:`check_silero_onnx` reads the ONNX graph's input and
output names first and turns a wrong file into a :class:`ModelFormatError`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.engines import WEIGHTS
from ..core.errors import ModelFormatError, ModelNotLoadedError, SDKFileNotFoundError
from . import require_engine
from .base import SAMPLE_RATE, WINDOW_SIZE, ModelFiles, VadSettings

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

# sherpa-onnx runs Silero at 16 kHz only (other rates end the process), and v5/v6 in 512-sample windows only.
_MAX_MODEL_BYTES = 50 * 10**6  # Silero models are about 2 MB; anything this big is another model
_SILERO_IO = (
    (("input", "state", "sr"), ("output", "stateN")),  # v5, v6
    (("input", "sr", "h", "c"), ("output", "hn", "cn")),  # v4
)
_SPARE_DETECTORS = 2


def check_silero_onnx(path: Path) -> None:
    """Raise unless ``path`` is an ONNX graph with a Silero VAD's inputs and outputs, in sherpa's order."""
    if not path.is_file():
        raise SDKFileNotFoundError(f"VAD model file not found: {path}")
    if path.stat().st_size > _MAX_MODEL_BYTES:
        raise ModelFormatError(f"{path.name} is too large to be a Silero VAD model (about 2 MB)")
    try:
        inputs, outputs = _onnx_io_names(path.read_bytes())
    except (IndexError, ValueError) as exc:
        raise ModelFormatError(f"{path.name} is not a readable ONNX model: {exc}") from exc
    if (inputs, outputs) not in _SILERO_IO:
        raise ModelFormatError(
            f"{path.name} is not a Silero VAD model sherpa-onnx can run "
            f"(inputs {list(inputs)}, outputs {list(outputs)}; expected Silero v4, v5 or v6)")


def _onnx_io_names(data: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The graph inputs (without initializers, as onnxruntime reports them) and outputs of an ONNX model."""
    graph = next(((s, e) for number, wire, s, e in _fields(data, 0, len(data)) if number == 7 and wire == 2), None)
    if graph is None:
        raise ValueError("no graph")
    inputs: list[str] = []
    outputs: list[str] = []
    initializers: set[str] = set()
    for number, wire, start, end in _fields(data, *graph):
        if wire != 2:
            continue
        if number in (11, 12):  # ValueInfoProto: name is field 1
            name = _string_field(data, start, end, 1)
            (inputs if number == 11 else outputs).append(name)
        elif number == 5:  # TensorProto: name is field 8
            initializers.add(_string_field(data, start, end, 8))
    return tuple(n for n in inputs if n not in initializers), tuple(outputs)


def _string_field(data: bytes, start: int, end: int, field: int) -> str:
    for number, wire, s, e in _fields(data, start, end):
        if number == field and wire == 2:
            return data[s:e].decode("utf-8")
    return ""


def _fields(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Protobuf wire format: (field number, wire type, value start, value end) of each field."""
    pos = start
    while pos < end:
        key, pos = _varint(data, pos)
        wire = key & 7
        if wire == 0:
            _, value_end = _varint(data, pos)
        elif wire == 1:
            value_end = pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value_end = pos + length
        elif wire == 5:
            value_end = pos + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if value_end > end:
            raise ValueError("truncated")
        yield key >> 3, wire, pos, value_end
        pos = value_end


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("malformed varint")


def open_silero(files: ModelFiles, *, settings: VadSettings) -> SileroVad:
    """The voice-detection factory: a Silero ONNX model (its ``weights`` file) with ``settings``."""
    return SileroVad(files.file(WEIGHTS), settings)


class SileroVad:
    """A Silero model ready to run: hands out independent detector streams.

    Building a detector costs about 40 ms (it loads the ONNX session), so
    released streams keep their detector, reset, for the next one.
    """

    def __init__(self, path: Path, settings: VadSettings) -> None:
        check_silero_onnx(path)
        self.path = path
        self.settings = settings
        self._lock = threading.Lock()
        self._closed = False
        self._spare: list[Any] = [self._build()]  # built now, so that a bad model fails at load time
        self._streams: set[SileroStream] = set()

    def _build(self, settings: VadSettings | None = None) -> Any:
        settings = settings or self.settings
        sherpa_onnx = require_engine("sherpa_onnx")
        config = sherpa_onnx.VadModelConfig()
        config.silero_vad.model = str(self.path)
        config.silero_vad.threshold = settings.threshold
        config.silero_vad.min_silence_duration = settings.min_silence_s
        config.silero_vad.min_speech_duration = settings.min_speech_s
        config.silero_vad.max_speech_duration = settings.max_speech_s
        config.silero_vad.window_size = WINDOW_SIZE
        config.sample_rate = SAMPLE_RATE
        config.num_threads = settings.num_threads
        try:
            return sherpa_onnx.VoiceActivityDetector(config, buffer_size_in_seconds=settings.buffer_s)
        except RuntimeError as exc:
            raise ModelFormatError(f"sherpa-onnx could not load {self.path.name}: {exc}") from exc

    def open_stream(self, *, settings: VadSettings | None = None,
                    min_silence_s: float | None = None) -> SileroStream:
        """A detector with fresh state, independent of every other stream.

        ``settings`` (default: the model's) and ``min_silence_s`` apply to this stream only
        (e.g. a live session's own threshold, or a second detector that reports short pauses inside a turn).
        """
        settings = settings or self.settings
        if min_silence_s is not None:
            settings = replace(settings, min_silence_s=min_silence_s)
        with self._lock:
            if self._closed:
                raise ModelNotLoadedError("the VAD model was unloaded")
            detector = self._spare.pop() if self._spare and settings == self.settings else None
        stream = SileroStream(self, detector if detector is not None else self._build(settings), settings)
        with self._lock:
            self._streams.add(stream)
        return stream

    def _recycle(self, stream: SileroStream, detector: Any) -> None:
        detector.reset()
        with self._lock:
            self._streams.discard(stream)
            if not self._closed and len(self._spare) < _SPARE_DETECTORS and stream.settings == self.settings:
                self._spare.append(detector)

    def close(self) -> None:
        """Release every detector; open streams raise ModelNotLoadedError from now on.

        Streams are detached, not reset: a call in progress on another thread
        keeps its own reference to the detector and finishes on it.
        """
        with self._lock:
            self._closed = True
            streams, self._streams = list(self._streams), set()
            self._spare.clear()
        for stream in streams:
            stream._detector = None


class SileroStream:
    """One detector's state. Not thread-safe: the feature layer serialises calls on it."""

    def __init__(self, owner: SileroVad, detector: Any, settings: VadSettings) -> None:
        self._owner = owner
        self._detector: Any = detector
        self.settings = settings

    def _live(self) -> Any:
        detector = self._detector
        if detector is None:
            raise ModelNotLoadedError("this VAD stream is closed (or its model was unloaded)")
        return detector

    def accept(self, window: NDArray[np.float32]) -> bool:
        """Feed one window of ``WINDOW_SIZE`` samples; True while a speech segment is open."""
        detector = self._live()
        detector.accept_waveform(window.tolist())  # a list converts faster than an ndarray in pybind11
        return bool(detector.is_speech_detected())

    def open_segment_start(self) -> int:
        """Sample index where the open segment starts (the same ``start`` its segment will report)."""
        return int(self._live().current_segment.start)

    def open_segment_samples(self) -> NDArray[np.float32]:
        """The open segment's audio from its start up to the last window fed."""
        import numpy as np

        return np.asarray(self._live().current_segment.samples, dtype=np.float32)

    def take_segments(self) -> list[tuple[int, NDArray[np.float32]]]:
        """Completed segments as (start sample, samples), oldest first; removes them from the detector."""
        import numpy as np

        detector = self._live()
        out = []
        while not detector.empty():
            segment = detector.front
            out.append((int(segment.start), np.asarray(segment.samples, dtype=np.float32)))
            detector.pop()
        return out

    def flush(self) -> None:
        """Close the open segment at the last analysed sample (end of the stream)."""
        self._live().flush()

    def reset(self) -> None:
        """Forget everything: model state, history, queued segments; sample indices restart at 0."""
        self._live().reset()

    def close(self) -> None:
        """Give the detector back to the model (reset) for the next stream."""
        detector, self._detector = self._detector, None
        if detector is not None:
            self._owner._recycle(self, detector)

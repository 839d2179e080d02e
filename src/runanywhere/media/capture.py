"""Microphone capture: fixed-size float32 mono chunks as an iterator, async iterator or callback.

The reference SDK's ``AudioCapture`` (Web Audio) becomes a PortAudio input
stream through ``sounddevice`` (the optional ``audio`` extra, imported on first
use so ``import runanywhere`` works without it). Speech engines want 16 kHz
mono in steady chunks; devices deliver whatever block sizes and rates they
like. So the audio callback only copies each block into a hand-off queue (it
never blocks and never runs user code), and a worker thread downmixes,
resamples (soxr, streaming so chunk edges stay seamless), cuts exact
``chunk_size`` chunks, meters the level and hands them to a bounded queue
that drops the *oldest* chunk, and counts it, when the consumer falls behind:
a live voice loop wants the newest audio, and a slow consumer must never
stall the device.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..core.errors import BackendError, InvalidInputError, InvalidStateError
from ..core.logging import SDKLogger
from ..core.validation import positive_int
from .audio import StreamResampler, check_rate
from .devices import Device, pick_stream_rate, resolve_device, sounddevice

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Samples = NDArray[np.float32]

_log = SDKLogger("AudioCapture")


@dataclass(frozen=True)
class CapturedAudio:
    """One chunk of captured audio (TTS output is :class:`~runanywhere.features.tts.AudioChunk`).

    ``samples`` is float32 mono in [-1, 1] at ``sample_rate``; ``level`` is its
    RMS in [0, 1]; ``timestamp_s`` is the stream position of its first sample,
    in seconds since :meth:`AudioCapture.start` (counted in samples, so it is
    exact and unaffected by dropped chunks or a busy machine); ``index``
    numbers the chunks of one capture from 0.
    """

    samples: Samples
    sample_rate: int
    level: float
    timestamp_s: float
    index: int

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


ChunkCallback = Callable[[CapturedAudio], None]
LevelCallback = Callable[[float], None]


class AudioCapture:
    """Record from an input device in chunks of ``chunk_size`` samples at ``sample_rate`` Hz.

    Use it as an iterator (``for chunk in capture:``), an async iterator
    (``async for chunk in capture:``), with callbacks (``start(on_chunk=...,
    on_level=...)``) or by polling (:meth:`read`, :meth:`drain`). Iterating a
    capture that is not running starts it, and stops it again when the loop
    ends; a loop over a running capture ends when :meth:`stop` is called and
    the queued chunks are used up. ``with AudioCapture() as mic:`` starts the
    capture and stops it on exit.

    If the device cannot record at ``sample_rate`` (or ``device_sample_rate``
    is given), it records at the device's rate and resamples. ``channels > 1``
    are averaged to mono. At most ``max_queued_chunks`` wait for the consumer;
    past that the oldest is dropped and ``dropped_chunks`` counts it. Every
    chunk has ``chunk_size`` samples, except the last one after :meth:`stop`,
    which carries the remainder.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        chunk_size: int = 1600,
        channels: int = 1,
        device: Device = None,
        *,
        max_queued_chunks: int = 100,
        device_sample_rate: int | None = None,
        latency: float | str | None = None,
    ) -> None:
        self.sample_rate = check_rate(sample_rate)
        self.chunk_size = positive_int("chunk_size", chunk_size)
        self.channels = positive_int("channels", channels)
        self.max_queued_chunks = positive_int("max_queued_chunks", max_queued_chunks)
        self.latency = latency
        self._sd = sounddevice()
        info = resolve_device(device, "input")
        if self.channels > int(info["max_input_channels"]):
            raise InvalidInputError(
                f"device {info['name']!r} records at most {info['max_input_channels']} channels, {self.channels} asked"
            )
        self.device: int = int(info["index"])
        self.device_name: str = str(info["name"])
        if device_sample_rate is not None:
            self._device_rate = check_rate(device_sample_rate)
        else:
            self._device_rate = pick_stream_rate(
                self._sd, "input", self.device, self.sample_rate, self.channels, float(info["default_samplerate"])
            )

        self._control = threading.RLock()  # start/stop/close, one at a time
        self._cond = threading.Condition()  # guards the chunk queue and the state below
        self._chunks: deque[CapturedAudio] = deque()
        self._capturing = False
        self._closed = False
        self._level = 0.0
        self._dropped = 0
        self._overflows = 0
        self._error: str | None = None
        self._async_waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._stream: Any = None
        self._worker: threading.Thread | None = None
        self._raw: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.on_chunk: ChunkCallback | None = None
        self.on_level: LevelCallback | None = None

    # --- state -------------------------------------------------------------------------

    @property
    def actual_sample_rate(self) -> int:
        """The rate the device records at (chunks are resampled from it to ``sample_rate``)."""
        return self._device_rate

    @property
    def is_capturing(self) -> bool:
        return self._capturing

    @property
    def current_level(self) -> float:
        """RMS level of the newest chunk, 0..1 (0 before the first chunk)."""
        return self._level

    @property
    def dropped_chunks(self) -> int:
        """Chunks thrown away because the queue was full (the consumer was too slow)."""
        return self._dropped

    @property
    def input_overflows(self) -> int:
        """Blocks in which PortAudio reported lost input (the device overran)."""
        return self._overflows

    @property
    def error(self) -> str | None:
        """Why the stream ended on its own (device lost, server gone), else None."""
        return self._error

    @property
    def queued_chunks(self) -> int:
        with self._cond:
            return len(self._chunks)

    @property
    def buffered_duration_s(self) -> float:
        """Seconds of audio waiting in the queue."""
        with self._cond:
            return sum(len(c.samples) for c in self._chunks) / self.sample_rate

    # --- start / stop ------------------------------------------------------------------

    def start(self, on_chunk: ChunkCallback | None = None, on_level: LevelCallback | None = None) -> None:
        """Open the device and start recording; callbacks run on the capture's worker thread.

        Starting a running capture only replaces the callbacks given. A new
        capture clears the queue and counts ``index``/``timestamp_s`` from 0.
        """
        with self._control:
            if self._closed:
                raise InvalidStateError("this AudioCapture is closed")
            if on_chunk is not None:
                self.on_chunk = on_chunk
            if on_level is not None:
                self.on_level = on_level
            if self._capturing:
                return
            self._release()  # a stream that ended on its own (device lost) is closed before a new one
            sd = self._sd
            raw: queue.SimpleQueue[Any] = queue.SimpleQueue()

            def callback(indata: Any, frames: int, time_info: Any, status: Any) -> None:
                # PortAudio's thread: copy and hand off, nothing else (no locks, no user code).
                if status.input_overflow:
                    self._overflows += 1
                raw.put(indata.copy())

            def finished() -> None:
                raw.put(None)  # stream ended, by stop() or on its own: the worker flushes and exits

            try:
                stream = sd.InputStream(
                    samplerate=self._device_rate,
                    channels=self.channels,
                    dtype="float32",
                    device=self.device,
                    latency=self.latency,
                    callback=callback,
                    finished_callback=finished,
                )
            except (sd.PortAudioError, ValueError) as exc:
                raise BackendError(
                    f"Microphone access failed: cannot open {self.device_name!r} at {self._device_rate} Hz: {exc}",
                    details={"device": self.device, "sample_rate": self._device_rate},
                ) from exc
            with self._cond:
                self._chunks.clear()
                self._level = 0.0
                self._error = None
                self._capturing = True
            self._raw = raw
            self._stream = stream
            self._worker = threading.Thread(target=self._work, args=(raw,), name="runanywhere-capture", daemon=True)
            self._worker.start()
            try:
                stream.start()
            except sd.PortAudioError as exc:
                stream.close(ignore_errors=True)
                raw.put(None)
                self._worker.join()
                self._stream = self._worker = None
                raise BackendError(f"Microphone access failed: cannot start {self.device_name!r}: {exc}") from exc

    def stop(self) -> None:
        """Stop recording. Chunks already queued stay readable; the remainder comes as a last short chunk."""
        with self._control:
            self._release()

    def _release(self) -> None:
        with self._control:
            stream, worker = self._stream, self._worker
            self._stream = None
            if stream is not None:
                stream.stop(ignore_errors=True)
                stream.close(ignore_errors=True)
                self._raw.put(None)  # in case PortAudio did not call the finished callback
            if worker is not None and worker is not threading.current_thread():
                worker.join()
                self._worker = None

    def close(self) -> None:
        """Stop and refuse later starts."""
        self.stop()
        self._closed = True

    def __enter__(self) -> AudioCapture:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- reading -----------------------------------------------------------------------

    def read(self, timeout: float | None = None) -> CapturedAudio | None:
        """The oldest queued chunk, waiting up to ``timeout`` seconds (forever if None).

        Returns None on time-out, or at once when the capture is stopped and
        nothing is queued.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._chunks or not self._capturing, timeout):
                return None
            return self._chunks.popleft() if self._chunks else None

    def drain(self) -> Samples:
        """All queued audio as one float32 array (empty if none), removing it from the queue."""
        import numpy as np

        with self._cond:
            chunks = list(self._chunks)
            self._chunks.clear()
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate([c.samples for c in chunks]).astype(np.float32, copy=False)

    def clear(self) -> None:
        """Drop the queued chunks."""
        with self._cond:
            self._chunks.clear()

    def __iter__(self) -> Iterator[CapturedAudio]:
        owned = not self._capturing
        if owned:
            self.start()
        try:
            while True:
                chunk = self.read()
                if chunk is None:
                    return
                yield chunk
        finally:
            if owned:
                self.stop()

    def __aiter__(self) -> AsyncIterator[CapturedAudio]:
        return self._aiterate()

    async def _aiterate(self) -> AsyncIterator[CapturedAudio]:
        owned = not self._capturing
        if owned:
            self.start()
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._cond:
            self._async_waiters.add(waiter)
        try:
            while True:
                waiter[1].clear()  # before looking, so a chunk that lands meanwhile still wakes us
                with self._cond:
                    chunk = self._chunks.popleft() if self._chunks else None
                    ended = chunk is None and not self._capturing
                if chunk is not None:
                    yield chunk
                elif ended:
                    return
                else:
                    await waiter[1].wait()
        finally:
            with self._cond:
                self._async_waiters.discard(waiter)
            if owned:
                self.stop()

    # --- the worker --------------------------------------------------------------------

    def _work(self, raw: queue.SimpleQueue[Any]) -> None:
        """Turn device blocks into chunks until the stream ends (None in ``raw``)."""
        import numpy as np

        resampler = StreamResampler(self._device_rate, self.sample_rate)
        pending: list[Samples] = []
        pending_len = 0
        index = 0
        block: Any = None
        try:
            while True:
                block = raw.get()
                last = block is None
                if last:
                    mono = resampler.finish()
                else:
                    mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
                    mono = resampler.push(np.ascontiguousarray(mono, dtype=np.float32))
                if len(mono):
                    pending.append(mono)
                    pending_len += len(mono)
                while pending_len >= self.chunk_size or (last and pending_len):
                    joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
                    size = min(self.chunk_size, pending_len)
                    self._emit(np.clip(joined[:size], -1.0, 1.0), index)
                    index += 1
                    rest = joined[size:]
                    pending, pending_len = ([rest], len(rest)) if len(rest) else ([], 0)
                if last:
                    return
        except Exception as exc:  # a bug here must end the iterators, not leave them hanging
            _log.error("capture worker failed: %r", exc)
            self._error = f"capture worker failed: {exc!r}"
        finally:
            if self._stream is not None and not self._error and block is None:
                self._error = "the input stream ended on its own (device or audio server lost?)"
            with self._cond:
                self._capturing = False
                self._cond.notify_all()
                self._wake_async()

    def _emit(self, samples: Samples, index: int) -> None:
        import numpy as np

        level = min(1.0, float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))) if len(samples) else 0.0
        chunk = CapturedAudio(
            samples=samples,
            sample_rate=self.sample_rate,
            level=level,
            timestamp_s=index * self.chunk_size / self.sample_rate,
            index=index,
        )
        with self._cond:
            if len(self._chunks) >= self.max_queued_chunks:
                self._chunks.popleft()
                self._dropped += 1
            self._chunks.append(chunk)
            self._level = level
            self._cond.notify_all()
            self._wake_async()
        _log.call_safely(self.on_chunk, chunk, what="on_chunk callback")
        _log.call_safely(self.on_level, level, what="on_level callback")

    def _wake_async(self) -> None:
        """Wake every ``async for`` waiting on this capture (called with ``_cond`` held)."""
        for loop, event in list(self._async_waiters):
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                self._async_waiters.discard((loop, event))

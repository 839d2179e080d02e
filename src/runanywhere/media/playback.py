"""Speaker output: a queue of float32 clips played back to back, with stop, volume and a finished callback.

The reference SDK's ``AudioPlayback`` (Web Audio) becomes a PortAudio output
stream through ``sounddevice`` (the optional ``audio`` extra, imported on first
use). :meth:`AudioPlayback.play` only queues: clips (e.g. TTS chunks as they
are synthesised) play gap-free one after the other, so a voice loop can queue
the next sentence while the current one sounds. :meth:`AudioPlayback.stop`
drops the queue *and* what is already buffered in the device, which is what
barge-in needs (the user talks over the assistant).

Once the queue runs dry the stream plays a little silence so the last real
samples get through the device's buffers, then ends; only then is playback
finished (``on_finished``, ``playback.completed``, :meth:`wait`). PortAudio's
thread runs only the fill callback; events and ``on_finished`` run on a small
notifier thread, so user code can call :meth:`play` from ``on_finished``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
from collections import deque
from collections.abc import Callable
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

from ..core.errors import BackendError, InvalidInputError, InvalidStateError
from ..core.events import EventBus, PlaybackCompleted, PlaybackStarted
from ..core.logging import SDKLogger
from .audio import Audio, check_rate, load_audio, resample, to_mono_float32
from .devices import Device, pick_stream_rate, resolve_device, sounddevice

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Samples = NDArray[np.float32]

_log = SDKLogger("AudioPlayback")

_TAIL_MARGIN_S = 0.05
"""Silence played after the last sample, on top of the stream's latency, so the device's buffers drain."""

_LEAD_IN_S = 0.02
"""Silence played when the stream (re)starts: ALSA's pulse plugin loses the first few ms of a new stream."""


def _check_volume(volume: Any) -> float:
    if isinstance(volume, bool) or not isinstance(volume, int | float) or not 0.0 <= float(volume) <= 1.0:
        raise InvalidInputError(f"volume must be a number from 0.0 to 1.0, got {volume!r}")
    return float(volume)


class AudioPlayback:
    """Play float32 mono audio on an output device at ``sample_rate`` Hz.

    ``play(samples, sample_rate=None)`` queues a clip (int16, stereo and other
    rates are converted; ``sample_rate`` defaults to the player's) and returns
    at once. Playback runs from the first queued clip until the queue is empty;
    clips queued meanwhile extend it. ``playback.started`` is emitted when it
    starts (``duration_ms`` of the first clip), ``playback.completed`` when it
    ends (``duration_ms`` played; ``interrupted`` after :meth:`stop`), and
    ``on_finished()`` is called when queued audio has played to its end (not
    after :meth:`stop`). ``played_samples`` counts samples (at
    ``stream_sample_rate``) handed to the device since creation.

    If the device cannot play at ``sample_rate`` the stream runs at the
    device's default rate and clips are resampled. ``with AudioPlayback() as
    player:`` waits for queued audio on a normal exit (at most its duration
    plus 10 s), stops at once on an exception, and closes the device.
    """

    def __init__(
        self,
        sample_rate: int = 22050,
        volume: float = 1.0,
        device: Device = None,
        *,
        on_finished: Callable[[], None] | None = None,
        latency: float | str | None = None,
        events: EventBus | None = None,
    ) -> None:
        import numpy as np

        self._np = np
        self.sample_rate = check_rate(sample_rate)
        self._volume = _check_volume(volume)
        self.latency = latency
        self.on_finished = on_finished
        self._events = events or EventBus.shared
        self._sd: ModuleType = sounddevice()
        info = resolve_device(device, "output")
        self.device: int = int(info["index"])
        self.device_name: str = str(info["name"])
        self._stream_rate = pick_stream_rate(
            self._sd, "output", self.device, self.sample_rate, 1, float(info["default_samplerate"])
        )

        self._control = threading.RLock()  # play/stop/close/restart, one at a time; never taken by PortAudio
        self._lock = threading.Lock()  # the state the fill callback shares; held only briefly
        self._queue: deque[Samples] = deque()
        self._offset = 0  # samples of the queue's head already played
        self._playing = False  # a playback (first play() until idle) is under way
        self._running = False  # the PortAudio stream is started and has not finished
        self._aborting = False
        self._pad = 0  # silence to play after the last sample, set when the stream opens
        self._pad_left: int | None = None
        self._lead = 0  # silence to play when the stream starts, set when it opens
        self._lead_left = 0
        self._played = 0
        self._session_played = 0
        self._underflows = 0
        self._idle = threading.Event()
        self._idle.set()
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._stream: Any = None
        self._closed = False
        self._notices: queue.SimpleQueue[tuple[str, int] | None] = queue.SimpleQueue()
        self._notifier: threading.Thread | None = None

    # --- state -------------------------------------------------------------------------

    @property
    def stream_sample_rate(self) -> int:
        """The rate the device plays at (clips are resampled to it)."""
        return self._stream_rate

    @property
    def is_playing(self) -> bool:
        return self._playing

    @property
    def volume(self) -> float:
        return self._volume

    @property
    def played_samples(self) -> int:
        """Samples (at ``stream_sample_rate``) handed to the device; they sound one output latency later."""
        return self._played

    @property
    def queued_samples(self) -> int:
        """Samples (at ``stream_sample_rate``) waiting to be handed to the device."""
        with self._lock:
            return sum(len(q) for q in self._queue) - self._offset

    @property
    def output_latency_s(self) -> float | None:
        """PortAudio's output latency of the open stream (None before the first play)."""
        return None if self._stream is None else float(self._stream.latency)

    @property
    def output_underflows(self) -> int:
        """Blocks in which PortAudio reported that the device ran dry (audible glitches)."""
        return self._underflows

    def set_volume(self, volume: float) -> None:
        """Set the gain, 0.0 (silent) to 1.0 (as given); applies to audio not yet handed to the device."""
        value = _check_volume(volume)
        with self._lock:
            self._volume = value

    # --- play / stop -------------------------------------------------------------------

    def play(self, samples: Audio | Any, sample_rate: int | None = None) -> None:
        """Queue a clip and return; playback starts now if idle, else after the clips before it.

        ``samples`` is an array (at ``sample_rate``, default the player's), an
        :class:`~runanywhere.media.audio.Audio`, or WAV/FLAC/OGG/MP3 bytes or a path.
        """
        if isinstance(samples, bytearray | memoryview):
            samples = bytes(samples)
        if isinstance(samples, Audio | bytes | str | os.PathLike):
            audio = load_audio(samples)
            data, rate = audio.samples, audio.sample_rate
        else:
            data = to_mono_float32(samples)
            rate = check_rate(self.sample_rate if sample_rate is None else sample_rate)
        data = resample(data, rate, self._stream_rate)
        if len(data) == 0:
            return
        with self._control:
            if self._closed:
                raise InvalidStateError("this AudioPlayback is closed")
            stream = self._open()
            with self._lock:
                self._queue.append(data)
                self._pad_left = None
                new_playback = not self._playing
                if new_playback:
                    self._playing = True
                    self._session_played = 0
                    self._idle.clear()
                start = not self._running
            if start:
                try:
                    self._start_stream(stream)
                except self._sd.PortAudioError as exc:
                    self._reset(interrupted=False, emit=False)
                    raise BackendError(f"Audio output failed: cannot start {self.device_name!r}: {exc}") from exc
            if new_playback:
                self._events.emit(
                    PlaybackStarted(duration_ms=len(data) * 1000.0 / self._stream_rate, sample_rate=self._stream_rate)
                )

    def stop(self) -> None:
        """Stop at once: drop the queue and what the device has buffered. No ``on_finished`` call."""
        with self._control:
            self._reset(interrupted=True, emit=True)

    def _reset(self, *, interrupted: bool, emit: bool) -> None:
        with self._lock:
            self._queue.clear()
            self._offset = 0
            self._pad_left = None
            was_playing, played, running = self._playing, self._session_played, self._running
            self._aborting = True
        if running and self._stream is not None:
            self._stream.abort(ignore_errors=True)  # Pa_AbortStream: discards the device's buffers
        with self._lock:
            self._aborting = False
            self._running = False
            self._playing = False
        if was_playing and emit:
            self._events.emit(
                PlaybackCompleted(duration_ms=played * 1000.0 / self._stream_rate, interrupted=interrupted)
            )
        with self._lock:
            self._set_idle()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until nothing is playing (or ``timeout`` seconds); True if idle."""
        return self._idle.wait(timeout)

    async def until_done(self) -> None:
        """Await the end of playback without blocking the event loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._idle.is_set():
                return
            self._async_waiters.append((loop, future))
        try:
            await future
        finally:
            with self._lock:
                if (loop, future) in self._async_waiters:
                    self._async_waiters.remove((loop, future))

    def close(self) -> None:
        """Stop, release the device and the notifier thread; later :meth:`play` calls fail."""
        with self._control:
            if self._closed:
                return
            self._reset(interrupted=True, emit=True)
            self._closed = True
            stream, self._stream = self._stream, None
            if stream is not None:
                stream.close(ignore_errors=True)
            notifier, self._notifier = self._notifier, None
        if notifier is not None:
            self._notices.put(None)
            if notifier is not threading.current_thread():
                notifier.join()

    dispose = close  # the reference SDK's name

    def __enter__(self) -> AudioPlayback:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            # Bounded: a stream whose device or server vanished may never report its end.
            self.wait(self.queued_samples / self._stream_rate + 10.0)
        self.close()

    # --- the stream --------------------------------------------------------------------

    def _open(self) -> Any:
        """The output stream, opened on first use (with ``_control`` held)."""
        if self._stream is None:
            sd = self._sd
            try:
                self._stream = sd.OutputStream(
                    samplerate=self._stream_rate,
                    channels=1,
                    dtype="float32",
                    device=self.device,
                    latency=self.latency,
                    callback=self._fill,
                    finished_callback=self._finished,
                )
            except (sd.PortAudioError, ValueError) as exc:
                raise BackendError(
                    f"Audio output failed: cannot open {self.device_name!r} at {self._stream_rate} Hz: {exc}",
                    details={"device": self.device, "sample_rate": self._stream_rate},
                ) from exc
            self._pad = int(self._stream_rate * (float(self._stream.latency) + _TAIL_MARGIN_S))
            self._lead = int(self._stream_rate * _LEAD_IN_S)
        if self._notifier is None:
            self._notifier = threading.Thread(target=self._notify_loop, name="runanywhere-playback", daemon=True)
            self._notifier.start()
        return self._stream

    def _fill(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio's callback: copy queued audio (times the volume) into ``outdata``; never blocks long."""
        if status.output_underflow:
            self._underflows += 1
        out = outdata[:, 0]
        written = 0
        with self._lock:
            volume = self._volume
            if self._lead_left > 0:  # a fresh stream: silence first, so a lost first block loses no audio
                written = min(frames, self._lead_left)
                out[:written] = 0.0
                self._lead_left -= written
                frames_lead = written
            else:
                frames_lead = 0
            while written < frames and self._queue:
                head = self._queue[0]
                take = min(frames - written, len(head) - self._offset)
                self._np.multiply(head[self._offset : self._offset + take], volume, out=out[written : written + take])
                written += take
                self._offset += take
                if self._offset >= len(head):
                    self._queue.popleft()
                    self._offset = 0
            self._played += written - frames_lead
            self._session_played += written - frames_lead
            if written < frames:
                out[written:] = 0.0
                if self._pad_left is None:
                    self._pad_left = self._pad
                self._pad_left -= frames - written
                if self._pad_left <= 0:
                    raise self._sd.CallbackStop  # PortAudio plays this block, then calls _finished

    def _finished(self) -> None:
        """PortAudio's finished callback: the stream ended by itself, or was aborted/stopped."""
        with self._lock:
            if self._aborting or not self._running:
                return  # stop() or play()'s restart handles it
            self._running = False
            if self._queue:  # play() queued audio while the stream was winding down: start it again
                self._running = True
                notice = ("restart", 0)
            elif self._playing:
                self._playing = False
                notice = ("completed", self._session_played)
            else:
                return
        self._notices.put(notice)

    def _notify_loop(self) -> None:
        """Run events, ``on_finished`` and stream restarts off PortAudio's thread."""
        while True:
            notice = self._notices.get()
            if notice is None:
                return
            kind, played = notice
            if kind == "restart":
                self._restart()
                continue
            self._events.emit(PlaybackCompleted(duration_ms=played * 1000.0 / self._stream_rate))
            _log.call_safely(self.on_finished, what="on_finished callback")
            with self._lock:
                if not self._playing:
                    self._set_idle()

    def _restart(self) -> None:
        with self._control:
            with self._lock:
                go = self._running and bool(self._queue) and self._stream is not None
            if not go:
                return
            try:
                self._start_stream(self._stream)
            except self._sd.PortAudioError as exc:
                _log.error("cannot restart the output stream: %r", exc)
                self._reset(interrupted=True, emit=True)

    def _start_stream(self, stream: Any) -> None:
        """(Re)start the stream (``_control`` held); after it ended by itself PortAudio wants a stop first."""
        with self._lock:
            self._aborting = True  # the stop below must not look like the end of playback to _finished
        try:
            stream.stop(ignore_errors=True)
        finally:
            with self._lock:
                self._aborting = False
                self._running = True
                self._lead_left = self._lead
        stream.start()

    def _set_idle(self) -> None:
        """Mark idle and wake the waiters (``_lock`` held)."""
        self._idle.set()
        waiters, self._async_waiters = self._async_waiters, []
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # a closed loop has nobody waiting any more
                loop.call_soon_threadsafe(_resolve, future)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

"""Voice activity detection: where speech starts and ends, in seconds, in a live stream or a file.

``VAD`` (a :class:`VoiceActivityDetector`) loads Silero through sherpa-onnx and
keeps one default stream; :meth:`VoiceActivityDetector.create_session` gives
more independent streams (several microphones at once) and
:meth:`VoiceActivityDetector.detect` analyses a whole file without touching any
live stream. Unlike the reference SDK, segment times are seconds (not sample
indices), any number of callbacks can listen, and chunks of any size and rate
give the same segments (input is resampled to 16 kHz and fed in 32 ms windows).

Why inline and not on a worker thread: a 32 ms window costs the engine about
0.13 ms and this module about 0.02 ms more (validation, buffering, edges),
while a round trip to a worker thread costs about 0.02 ms on its own and wakes
a second thread every 32 ms. The work is too short to need cancelling, and a
stream's state belongs to the stream, not to the model. So the model's
lifecycle is the shared :class:`ModelHolder`'s (resolved, pinned, loaded on
its worker, released on ``unload()`` and at shutdown), but chunks are
processed on the caller's thread, under one lock per stream. Activity
callbacks run on that thread too, after the lock is released, so they may
call back into the stream (e.g. ``pop_speech_segment()``); keep them short.
"""

from __future__ import annotations

import enum
import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..backends.base import SAMPLE_RATE, WINDOW_SIZE, VadSettings, VoiceDetector, VoiceStream
from ..backends.registry import VOICE_DETECTORS
from ..core.cancel import CancelToken
from ..core.errors import InvalidInputError
from ..core.events import EventBus, SDKEvent, VADSpeechEnded, VADSpeechStarted
from ..core.logging import SDKLogger
from ..core.validation import with_overrides
from ..media.audio import AudioSource, StreamResampler, check_rate, load_audio, to_mono_float32
from ..models.catalog import ModelCategory
from ..models.manager import ModelLibrary, ProgressCallback
from ..runtime.holder import ModelHolder

if TYPE_CHECKING:  # numpy is imported on first use, keeping `import runanywhere` light
    import numpy as np
    from numpy.typing import NDArray

_log = SDKLogger("VAD")
MAX_QUEUED_SEGMENTS = 256  # unpopped segments kept per stream; older ones are dropped with a warning


class SpeechActivity(str, enum.Enum):
    """A speech edge (the reference's ``'ongoing'`` is ``process_samples``' return value instead).

    ``PAUSED`` and ``RESUMED`` come only from sessions created with ``pause_s``:
    a short silence inside open speech (the turn may be ending) and speech
    coming back before the segment ended.
    """

    STARTED = "started"
    ENDED = "ended"
    PAUSED = "paused"
    RESUMED = "resumed"


@dataclass(frozen=True)
class SpeechActivityChange:
    """What a speech-activity callback receives: speech started or ended ``time_s`` into ``stream``."""

    activity: SpeechActivity
    time_s: float
    stream: str


ActivityCallback = Callable[[SpeechActivityChange], None]


@dataclass(frozen=True, eq=False)
class SpeechSegment:
    """One stretch of speech: its start and end in seconds from the start of the stream, and its audio.

    ``samples`` are float32 mono at ``sample_rate`` (16 kHz, the detector's
    rate, whatever rate was fed), ready for speech-to-text.
    """

    start_s: float
    end_s: float
    samples: NDArray[np.float32]
    sample_rate: int = SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


class _Listeners:
    """Activity callbacks: any number, each removed by the function ``add`` returns."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: tuple[tuple[object, ActivityCallback], ...] = ()  # replaced, never mutated

    def add(self, callback: ActivityCallback) -> Callable[[], None]:
        if not callable(callback):
            raise InvalidInputError(f"the speech-activity callback must be callable, got {callback!r}")
        token = object()  # one function registered twice is two subscriptions
        with self._lock:
            self._entries = (*self._entries, (token, callback))

        def unsubscribe() -> None:
            with self._lock:
                self._entries = tuple(e for e in self._entries if e[0] is not token)

        return unsubscribe

    def notify(self, change: SpeechActivityChange) -> None:
        for _, callback in self._entries:
            _log.call_safely(callback, change, what="speech-activity callback")


class VADSession:
    """One audio stream's detection state: feed chunks, get activity callbacks and speech segments.

    Thread-safe; create one per audio source with
    :meth:`VoiceActivityDetector.create_session`, or use ``VAD``'s own.
    Times count from the first sample fed (or the last :meth:`reset`).
    """

    # The detector counts samples in int32 (overflow after 37 h at 16 kHz), so past this many it is
    # reset during silence and an offset keeps the times running.
    rollover_samples = 2**30

    def __init__(self, stream: VoiceStream, *, name: str, input_rate: int, events: EventBus | None,
                 listeners: _Listeners | None = None, pause_stream: VoiceStream | None = None) -> None:
        import numpy as np

        self.name = name
        self._stream = stream
        self._pause = pause_stream  # a second detector with a shorter silence: pauses inside a segment
        self._pause_active = False
        self._paused = False  # the open segment is in a pause that may end it
        self._pause_end = 0  # where that pause starts, in the detector's samples
        self._input_rate = input_rate
        self._events = events
        self._listeners = listeners or _Listeners()
        self._lock = threading.Lock()
        self._pending: NDArray[np.float32] = np.zeros(0, dtype=np.float32)  # less than one window
        self._resampler: StreamResampler | None = None
        self._segments: deque[SpeechSegment] = deque()
        self._active = False
        self._open_start = 0  # where the open segment starts, in the detector's samples
        self._hard_max = int(stream.settings.hard_max_speech_s * SAMPLE_RATE)
        self._fed = 0  # 16 kHz samples given to the detector since its last reset
        self._offset = 0  # 16 kHz samples of the stream before that reset
        # Pre-roll: the audio just before a detected start joins its segment (see VadSettings.speech_pad_s).
        # ``_recent`` holds the latest input, ending at stream sample ``_recent_end``; it reaches back far
        # enough to cover the detector's lag from a segment's start to noticing it (min_speech_s + windows).
        self._pad = int(stream.settings.speech_pad_s * SAMPLE_RATE)
        self._recent_keep = self._pad + int((stream.settings.min_speech_s + 0.5) * SAMPLE_RATE)
        self._recent: NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        self._recent_end = 0
        self._open_pad: NDArray[np.float32] = self._recent  # the open segment's pre-roll
        self._last_end = 0  # stream sample where the last segment ended: a pre-roll never reaches before it

    # ---------------------------------------------------------------- feeding
    def process_samples(self, chunk: Any, sample_rate: int | None = None) -> bool:
        """Feed a chunk of any size (default rate: the one given at load); True while speech is active.

        int16, stereo and other rates are converted; NaN or infinite samples,
        a non-numeric array or a bad rate raise :class:`InvalidInputError`.
        """
        rate = self._input_rate if sample_rate is None else check_rate(sample_rate)
        samples = to_mono_float32(chunk)
        with self._lock:
            changes = self._feed(self._resample(samples, rate))
            active = self._active
        self._announce(changes)
        return active

    def flush(self) -> None:
        """End of the stream: the open speech segment (if any) ends now and is queued.

        The detector then starts afresh, but times keep counting, so the
        stream may continue.
        """
        with self._lock:
            changes: list[SpeechActivityChange] = []
            if self._resampler is not None:
                changes = self._feed(self._resampler.finish())
                self._resampler = None
            self._stream.flush()
            end_s = self._collect()
            if self._active:
                self._active = False
                changes.append(self._change(SpeechActivity.ENDED, end_s))
            self._restart_detector()
        self._announce(changes)

    def reset(self) -> None:
        """Forget everything (open speech, queued segments, buffered audio); times restart at 0."""
        with self._lock:
            self._stream.reset()
            self._pending = self._empty()
            self._resampler = None
            self._segments.clear()
            self._active = False
            self._fed = self._offset = 0
            self._recent = self._open_pad = self._empty()
            self._recent_end = self._last_end = 0
            if self._pause is not None:
                self._pause.reset()
                self._pause_active = self._paused = False

    # ---------------------------------------------------------------- results
    @property
    def is_speech_active(self) -> bool:
        return self._active

    @property
    def elapsed_s(self) -> float:
        """Stream time of the last analysed sample (what segment and activity times count up to)."""
        return (self._offset + self._fed) / SAMPLE_RATE

    def open_segment(self) -> SpeechSegment | None:
        """The speech segment still open, as it stands: up to the pause in it, if any, else up to now.

        None when no speech is open. A caller may start work on it at a
        ``PAUSED`` change, before the VAD's silence has ended the segment.
        """
        with self._lock:
            if not self._active:
                return None
            samples = self._stream.open_segment_samples()
            if self._paused:
                samples = samples[: max(0, self._pause_end - self._open_start)]
            return self._segment(self._open_start, samples)

    def pop_speech_segment(self) -> SpeechSegment | None:
        """The oldest finished segment not yet popped, or None."""
        with self._lock:
            return self._segments.popleft() if self._segments else None

    def segments(self) -> Iterator[SpeechSegment]:
        """Pop every finished segment, oldest first."""
        while (segment := self.pop_speech_segment()) is not None:
            yield segment

    def on_speech_activity(self, callback: ActivityCallback) -> Callable[[], None]:
        """Call ``callback(change)`` when speech starts and ends; returns a function that unsubscribes."""
        return self._listeners.add(callback)

    # ---------------------------------------------------------------- lifecycle
    def close(self) -> None:
        """Give the detector back to the model; the session cannot be used afterwards."""
        with self._lock:
            self._stream.close()
            if self._pause is not None:
                self._pause.close()

    def __enter__(self) -> VADSession:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---------------------------------------------------------------- internals (lock held)
    @staticmethod
    def _empty() -> NDArray[np.float32]:
        import numpy as np

        return np.zeros(0, dtype=np.float32)

    def _resample(self, samples: NDArray[np.float32], rate: int) -> NDArray[np.float32]:
        import numpy as np

        resampler = self._resampler
        drained = None
        if resampler is not None and resampler.from_rate != rate:  # the rate changed: finish the old one
            drained = resampler.finish()
            self._resampler = resampler = None
        if rate != SAMPLE_RATE:
            if resampler is None:
                self._resampler = resampler = StreamResampler(rate, SAMPLE_RATE)
            samples = resampler.push(samples)
        return samples if drained is None else np.concatenate([drained, samples])

    def _feed(self, samples: NDArray[np.float32]) -> list[SpeechActivityChange]:
        import numpy as np

        data = np.concatenate([self._pending, samples]) if self._pending.size else samples
        whole = len(data) - len(data) % WINDOW_SIZE
        if self._pad and whole:  # all of this call's input, so that a start found in it has its pre-roll
            self._recent = np.concatenate([self._recent, data[:whole]])
            self._recent_end = self._offset + self._fed + whole
        changes = []
        for start in range(0, whole, WINDOW_SIZE):
            active = self._stream.accept(data[start:start + WINDOW_SIZE])
            self._fed += WINDOW_SIZE
            if active and self._active and self._fed - self._open_start >= self._hard_max:
                self._stream.flush()  # speech without a pause for too long: cut here, the next window reopens
                active = False
            if active != self._active:
                self._active = active
                self._paused = False
                if active:
                    self._open_start = self._stream.open_segment_start()
                    self._open_pad = self._pre_roll(self._offset + self._open_start)
                    start_s = (self._offset + self._open_start - len(self._open_pad)) / SAMPLE_RATE
                    changes.append(self._change(SpeechActivity.STARTED, start_s))
                else:
                    changes.append(self._change(SpeechActivity.ENDED, self._collect()))
            if self._pause is not None:
                self._track_pause(self._pause, data[start:start + WINDOW_SIZE], changes)
        self._pending = data[whole:].copy()
        self._recent = self._recent[-self._recent_keep:]
        if not self._active and self._fed >= self.rollover_samples:
            self._restart_detector()
        return changes

    def _track_pause(self, pause: VoiceStream, window: NDArray[np.float32],
                     changes: list[SpeechActivityChange]) -> None:
        """Feed the pause detector; report a pause (and speech resuming) inside the open segment."""
        active = pause.accept(window)
        if active == self._pause_active:
            return
        self._pause_active = active
        if not active:
            ends = [start + len(samples) for start, samples in pause.take_segments()]
            if self._active and ends:
                self._paused, self._pause_end = True, ends[-1]
                changes.append(self._change(SpeechActivity.PAUSED, (self._offset + ends[-1]) / SAMPLE_RATE))
        elif self._paused:
            self._paused = False
            start_s = (self._offset + pause.open_segment_start()) / SAMPLE_RATE
            changes.append(self._change(SpeechActivity.RESUMED, start_s))

    def _pre_roll(self, start: int) -> NDArray[np.float32]:
        """The input just before stream sample ``start``: up to ``speech_pad_s``, not into the last segment."""
        base = self._recent_end - len(self._recent)  # the stream sample where ``_recent`` begins
        first = max(start - self._pad, self._last_end, base)
        if first >= start:
            return self._empty()
        pre_roll: NDArray[np.float32] = self._recent[first - base: start - base].copy()
        return pre_roll

    def _segment(self, start: int, samples: NDArray[np.float32]) -> SpeechSegment:
        """A segment from the detector's start index and audio, with the pre-roll when it is the open one's."""
        import numpy as np

        if start == self._open_start and len(self._open_pad):
            samples = np.concatenate([self._open_pad, samples])
            start -= len(self._open_pad)
        start_s = (self._offset + start) / SAMPLE_RATE
        return SpeechSegment(start_s, start_s + len(samples) / SAMPLE_RATE, samples)

    def _collect(self) -> float | None:
        """Queue the detector's finished segments; the end time of the last one."""
        end_s = None
        for start, samples in self._stream.take_segments():
            segment = self._segment(start, samples)
            end_s = segment.end_s
            self._last_end = self._offset + start + len(samples)
            if len(self._segments) == MAX_QUEUED_SEGMENTS:
                _log.warning("VAD stream %s: %d segments were never popped; dropping the oldest",
                             self.name, MAX_QUEUED_SEGMENTS)
                self._segments.popleft()
            self._segments.append(segment)
        return end_s

    def _change(self, activity: SpeechActivity, time_s: float | None) -> SpeechActivityChange:
        now_s = (self._offset + self._fed) / SAMPLE_RATE
        return SpeechActivityChange(activity, now_s if time_s is None else time_s, self.name)

    def _restart_detector(self) -> None:
        self._stream.reset()
        if self._pause is not None:  # both detectors count samples from the same point
            self._pause.reset()
            self._pause_active = self._paused = False
        self._offset += self._fed
        self._fed = 0

    def _announce(self, changes: list[SpeechActivityChange]) -> None:
        for change in changes:
            self._listeners.notify(change)
            if self._events is not None and change.activity in (SpeechActivity.STARTED, SpeechActivity.ENDED):
                event: SDKEvent = (VADSpeechStarted if change.activity is SpeechActivity.STARTED
                                   else VADSpeechEnded)(time_s=change.time_s, stream=change.stream)
                self._events.emit(event)


class VoiceActivityDetector(ModelHolder[VoiceDetector]):
    """Silero VAD: a default stream (``process_samples`` ...), ``create_session()`` for more, ``detect()`` for files.

    Thread-safe. ``on_speech_activity`` listeners belong to this object, so
    they survive a reload; ``VADSpeechStarted``/``VADSpeechEnded`` events for
    every stream (with its name) go to the event bus.
    """

    component = "vad"
    noun = "VAD model"
    category = ModelCategory.AUDIO

    def __init__(self, models: ModelLibrary | None = None, *, events: EventBus | None = None) -> None:
        super().__init__(models, events=events)
        self._listeners = _Listeners()  # outlive reloads: they belong to this object, not to one stream
        self._input_rate = SAMPLE_RATE
        self._default: tuple[VoiceDetector, VADSession] | None = None
        self._default_lock = threading.Lock()
        self._session_numbers = itertools.count(1)

    def load_model(self, model: str | os.PathLike[str] | None = None, settings: VadSettings | None = None, *,
                   sample_rate: int = SAMPLE_RATE, progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None, **overrides: Any) -> str:
        """Load a Silero VAD (catalog id or ``.onnx`` path; none: the catalog's default) with ``settings``
        (and/or their fields as keywords).

        ``threshold`` is the speech probability that counts as speech; speech
        shorter than ``min_speech_s`` is ignored and a segment ends after
        ``min_silence_s`` of silence; past ``max_speech_s`` a segment ends at
        the next short pause. Each segment starts ``speech_pad_s`` before the
        detected start, so that a softly spoken first word is not cut off.
        ``sample_rate`` is the rate ``process_samples``
        assumes when a call does not give one (Silero runs at 16 kHz; other
        rates are resampled). Returns the model id.
        """
        chosen, rate = with_overrides(settings or VadSettings(), overrides), check_rate(sample_rate)
        model_id = self._load(model, VOICE_DETECTORS, {"settings": chosen}, progress=progress, cancel=cancel)
        self._input_rate = rate
        return model_id

    async def aload_model(self, model: str | os.PathLike[str] | None = None, settings: VadSettings | None = None,
                          *, sample_rate: int = SAMPLE_RATE, progress: ProgressCallback | None = None,
                          cancel: CancelToken | None = None, **overrides: Any) -> str:
        """Async twin of :meth:`load_model`."""
        chosen, rate = with_overrides(settings or VadSettings(), overrides), check_rate(sample_rate)
        model_id = await self._aload(model, VOICE_DETECTORS, {"settings": chosen}, progress=progress, cancel=cancel)
        self._input_rate = rate
        return model_id

    @property
    def settings(self) -> VadSettings:
        return self.engine.settings

    # ---------------------------------------------------------------- the default stream
    def _session(self) -> VADSession:
        engine = self.engine
        with self._default_lock:
            if self._default is None or self._default[0] is not engine:
                session = VADSession(engine.open_stream(), name="default", input_rate=self._input_rate,
                                     events=self._events, listeners=self._listeners)
                self._default = (engine, session)
            return self._default[1]

    def process_samples(self, chunk: Any, sample_rate: int | None = None) -> bool:
        """Feed the default stream; True while speech is active (see :meth:`VADSession.process_samples`)."""
        return self._session().process_samples(chunk, sample_rate)

    def pop_speech_segment(self) -> SpeechSegment | None:
        return self._session().pop_speech_segment()

    def segments(self) -> Iterator[SpeechSegment]:
        return self._session().segments()

    def flush(self) -> None:
        self._session().flush()

    def reset(self) -> None:
        self._session().reset()

    @property
    def is_speech_active(self) -> bool:
        """True while the default stream is inside speech (False when no model is loaded)."""
        default, loaded = self._default, self._loaded
        if loaded is None or default is None or default[0] is not loaded.engine:
            return False
        return default[1].is_speech_active

    def on_speech_activity(self, callback: ActivityCallback) -> Callable[[], None]:
        """Listen to the default stream (it works before loading and across reloads); returns unsubscribe."""
        return self._listeners.add(callback)

    # ---------------------------------------------------------------- more streams, whole files
    def create_session(self, name: str | None = None, *, sample_rate: int | None = None,
                       pause_s: float | None = None, settings: VadSettings | None = None) -> VADSession:
        """An independent stream (its own state and callbacks; events go to this detector's bus).

        ``settings`` (default: the model's) apply to this stream only, e.g. a live session's own
        threshold and end-of-turn silence. With ``pause_s`` (shorter than ``min_silence_s``) a second
        detector reports ``PAUSED`` after that much silence inside speech and
        ``RESUMED`` when speech comes back: the turn may be ending, and
        :meth:`VADSession.open_segment` gives its audio before the VAD is sure.
        """
        rate = self._input_rate if sample_rate is None else check_rate(sample_rate)
        engine = self.engine
        chosen = settings or engine.settings
        if pause_s is not None and not 0.0 < pause_s < chosen.min_silence_s:
            raise InvalidInputError(f"pause_s must be positive and shorter than min_silence_s "
                                    f"({chosen.min_silence_s} s), got {pause_s!r}")
        pause = engine.open_stream(settings=chosen, min_silence_s=pause_s) if pause_s is not None else None
        return VADSession(engine.open_stream(settings=chosen), name=name or f"session-{next(self._session_numbers)}",
                          input_rate=rate, events=self._events, pause_stream=pause)

    def detect(self, audio: AudioSource, sample_rate: int | None = None) -> list[SpeechSegment]:
        """Speech segments of a whole recording (path, bytes, array or Audio), from a fresh state.

        Uses a detector of its own: live streams are not disturbed, and no
        activity callbacks or events fire.
        """
        engine = self.engine
        rate = self._input_rate if sample_rate is None else check_rate(sample_rate)
        clip = load_audio(audio, sample_rate=rate, target_rate=SAMPLE_RATE)
        with VADSession(engine.open_stream(), name="detect", input_rate=SAMPLE_RATE, events=None) as session:
            session.process_samples(clip.samples)
            session.flush()
            return list(session.segments())

    async def adetect(self, audio: AudioSource, sample_rate: int | None = None) -> list[SpeechSegment]:
        """Async twin of :meth:`detect`: it runs on the model's worker while the loop awaits."""
        worker = self._require().worker
        return await worker.acall(lambda _: self.detect(audio, sample_rate), CancelToken())


VAD = VoiceActivityDetector()

"""A live voice session that is fed audio and reports typed events: the turn decisions of a voice agent.

The caller pushes chunks (:meth:`VoiceSession.feed`), the VAD cuts the
user's turns, each is answered on a background thread by a turn runner (a
:class:`VoicePipeline`), and everything the session decides comes out as
:mod:`events <.events>` -- the reply's audio as :class:`VoiceAudioOut`, to be played:

* **barge-in**: user speech during a reply stops it at once (:class:`VoiceInterrupted`)
  and cancels generation; the reply is kept in the history marked interrupted;
* **self-echo guard**: input that correlates with the session's own recent
  output is gated (the VAD hears silence), and a transcript that repeats the
  agent's last words is dropped, so its own voice never becomes a turn;
* **early start**: from the first silent VAD window (a ``PAUSED`` change) the
  reply is prepared while the VAD still waits to be sure the turn has ended;
  it is heard only once the VAD agrees, and dropped if the user goes on speaking.
  The end-of-turn wait and the answer's preparation overlap instead of adding up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ...core.bridge import run_in_thread
from ...core.cancel import CancelToken
from ...core.errors import CancelledError
from ...core.logging import SDKLogger
from ...media.audio import AudioSource, StreamResampler, to_mono_float32
from ..vad import SpeechActivity, SpeechActivityChange, SpeechSegment
from .echo import EchoGate, repeats
from .events import (
    EventFeed,
    Listener,
    VoiceAudioOut,
    VoiceEvent,
    VoiceInterrupted,
    VoiceStateChanged,
    VoiceTurnAnswered,
    VoiceTurnFailed,
)
from .history import Conversation
from .pipeline import VoicePipelineCallbacks
from .results import PipelineState, VoiceTurnResult

_log = SDKLogger("VoiceSession")
_SAME_END_S = 0.1  # an early start counts for the VAD's segment when their ends are this close
_ANSWERING = (PipelineState.PROCESSING_STT, PipelineState.GENERATING_RESPONSE)


@dataclass(frozen=True)
class VoiceAgentOptions:
    """How a session listens and answers.

    ``realtime`` (read by :meth:`VoiceAgent.run`) paces iterator/file sources at the speed of
    sound (a live microphone paces itself), in chunks of ``chunk_ms``. ``early_start_s``: after
    this much silence in a turn the reply is prepared before the VAD has ended the turn (None:
    wait for the VAD; it must be shorter than the VAD's ``min_silence_s`` to have an effect).
    ``context_turns``: at most this many past exchanges are in the model's prompt (None: all; see
    :class:`Conversation` for how it is trimmed).
    """

    sample_rate: int = 16000
    chunk_ms: int = 32
    barge_in: bool = True
    echo_guard: bool = True
    echo_correlation: float = 0.85
    echo_word_overlap: float = 0.75
    realtime: bool = True
    early_start_s: float | None = 0.032
    context_turns: int | None = 8


class ActivityDetector(Protocol):
    """What a session needs of a VAD stream (a :class:`VADSession`; made with ``pause_s`` for early starts)."""

    @property
    def elapsed_s(self) -> float: ...

    def process_samples(self, chunk: Any, sample_rate: int | None = None) -> bool: ...

    def flush(self) -> None: ...

    def segments(self) -> Iterator[SpeechSegment]: ...

    def open_segment(self) -> SpeechSegment | None: ...

    def on_speech_activity(self, callback: Callable[[SpeechActivityChange], None]) -> Callable[[], None]: ...

    def close(self) -> None: ...


class TurnRunner(Protocol):
    """What a session needs to answer a turn (a :class:`VoicePipeline`)."""

    def process_turn(self, audio: AudioSource, sample_rate: int | None = None, *,
                     history: Sequence[Mapping[str, Any]] = (), callbacks: VoicePipelineCallbacks | None = None,
                     cancel: CancelToken | None = None, speech_end_at: float | None = None,
                     vad_delay_ms: float = 0.0,
                     accept_transcription: Callable[[str], bool] | None = None,
                     before_tools: Callable[[], None] | None = None) -> VoiceTurnResult: ...

    def prefill(self, history: Sequence[Mapping[str, Any]], *, cancel: CancelToken | None = None) -> int: ...


@dataclass
class _TurnState:
    """One reply: its cancel token, whether it is still held back (an early start the VAD has not
    confirmed), the events waiting for that, and where it was recorded."""

    token: CancelToken
    segment: SpeechSegment
    held: bool = False
    pending: list[VoiceEvent] = field(default_factory=list)
    dropped: bool = False  # an early start the user spoke through: never heard, never recorded
    cut: bool = False
    stage: PipelineState = PipelineState.IDLE  # the turn's own pipeline stage
    speech_end_at: float = 0.0  # perf_counter time of the end of the user's speech
    vad_delay_ms: float = 0.0
    started_at: float = field(default_factory=time.perf_counter)
    early_ms: float = 0.0  # how long before the VAD's end of turn the answer started
    first_out_at: float | None = None  # perf_counter time the first audio went out
    result: VoiceTurnResult | None = None
    recorded: tuple[int, int] | None = None  # (index in turns, index of its reply in history) once recorded
    output: threading.Lock = field(default_factory=threading.Lock)  # orders the turn's events
    decided: threading.Event = field(default_factory=threading.Event)  # released, or cancelled (dropped)


class VoiceSession:
    """Fed audio chunks, cuts turns with ``vad``, answers them with ``runner`` and emits what happens.

    Events go to ``on_event``, to :meth:`subscribe` listeners (both called on the session's threads:
    keep them quick) and to :meth:`events` streams. :meth:`feed` and :meth:`flush` are called from
    one thread at a time; :meth:`stop` from any. ``conversation`` carries the history across sessions.
    """

    def __init__(self, runner: TurnRunner, vad: ActivityDetector, *, options: VoiceAgentOptions | None = None,
                 conversation: Conversation | None = None, on_event: Listener | None = None) -> None:
        self.options = opts = options or VoiceAgentOptions()
        self.conversation = conversation or Conversation()
        self._runner, self._vad = runner, vad
        self._feed = EventFeed()
        if on_event is not None:
            self._feed.subscribe(on_event)
        self._gate = EchoGate(opts.sample_rate, opts.echo_correlation)
        self._stopped = threading.Event()
        self._resampler: StreamResampler | None = None
        self._turn: threading.Thread | None = None
        self._current: _TurnState | None = None
        self._speaking_until = 0.0  # until when (monotonic) the reply audio sent out is still being heard
        self._warming: CancelToken | None = None  # the prefill of a shortened context, while it runs
        self._state = PipelineState.IDLE
        self._lock = threading.Lock()
        self._unsubscribe = vad.on_speech_activity(self._on_activity)
        self._set_state(PipelineState.LISTENING)

    @property
    def state(self) -> PipelineState:
        """Where the session is: listening, transcribing/generating a turn, speaking, error, idle (closed)."""
        return self._state

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every event from now on; returns the unsubscribe function."""
        return self._feed.subscribe(listener)

    def events(self) -> AsyncIterator[VoiceEvent]:
        """The session's events from this call on, for ``async for`` (call it in a coroutine); ends at :meth:`close`."""
        return self._feed.stream()

    # ------------------------------------------------------------------ input
    def feed(self, samples: Any, sample_rate: int | None = None) -> None:
        """Hear one chunk of input (mono or multi-channel; ``sample_rate`` defaults to the session's).

        Turns the VAD ends start here; ignored once the session is stopped.
        """
        if self._stopped.is_set():
            return
        rate = self.options.sample_rate
        source_rate = rate if sample_rate is None else sample_rate
        if self._resampler is None or self._resampler.from_rate != source_rate:
            self._resampler = StreamResampler(source_rate, rate)  # one per input rate: seamless chunk edges
        chunk = self._resampler.push(to_mono_float32(samples))
        if not len(chunk):
            return  # the resampler is still filling its filter
        if self._state is PipelineState.PLAYING_TTS and time.monotonic() >= self._speaking_until:
            self._set_state(PipelineState.LISTENING)  # the reply has been heard (or cut)
        heard = chunk if not (self.options.echo_guard and self._gate.is_echo(chunk)) else chunk * 0.0
        self._vad.process_samples(heard)
        for segment in self._vad.segments():
            self._end_of_turn(segment, (self._vad.elapsed_s - segment.end_s) * 1000)

    def flush(self) -> None:
        """The input has ended: answer the speech still open (unless stopped) and wait until the last turn is done."""
        if not self._stopped.is_set():
            if self._resampler is not None:
                resampler, self._resampler = self._resampler, None
                self._vad.process_samples(resampler.finish())
            self._vad.flush()
            for segment in self._vad.segments():
                self._end_of_turn(segment, 0.0)
        self._join_turn()

    async def aflush(self) -> None:
        """Async twin of :meth:`flush`: waits for the last turn on a thread of its own, not the loop's executor."""
        await run_in_thread(lambda _token: self.flush(), name="voice-flush")

    def stop(self) -> None:
        """Stop listening: the reply in progress is cancelled and later input is ignored (any thread)."""
        self._stopped.set()
        self._interrupt(None)

    def close(self) -> None:
        """Release the VAD stream; the state becomes idle and :meth:`events` streams end."""
        self._unsubscribe()
        self._vad.close()
        self._set_state(PipelineState.IDLE)
        self._feed.close()

    def __enter__(self) -> VoiceSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- decisions
    def _on_activity(self, change: SpeechActivityChange) -> None:
        if change.activity is SpeechActivity.STARTED:
            if self.options.barge_in and time.monotonic() < self._speaking_until:
                _log.info("barge-in at %.2f s: the reply stops", change.time_s)
                self._interrupt(change.time_s)
        elif change.activity is SpeechActivity.PAUSED:  # the turn may be over: start answering, held back
            segment = self._vad.open_segment()
            if segment is not None:
                self._start_turn(segment, (self._vad.elapsed_s - segment.end_s) * 1000, held=True)
        elif change.activity is SpeechActivity.RESUMED:  # the user goes on: the early answer is wrong
            self._drop_early()

    def _end_of_turn(self, segment: SpeechSegment, delay_ms: float) -> None:
        """The VAD ended a turn: let the early start for it be heard, or answer it now."""
        with self._lock:
            early = self._current if self._current is not None and self._current.held else None
        if (early is not None and early.segment.start_s == segment.start_s
                and abs(early.segment.end_s - segment.end_s) <= _SAME_END_S):
            self._release(early, delay_ms)
            return
        self._drop_early()
        self._start_turn(segment, delay_ms)

    def _drop_early(self) -> None:
        with self._lock:
            early = self._current if self._current is not None and self._current.held else None
            if early is not None:
                early.dropped = True
                self._current = None
        if early is not None:
            early.token.cancel()

    def _release(self, state: _TurnState, delay_ms: float) -> None:
        """The VAD confirmed the early start: its events so far go out, and the rest as they come."""
        state.decided.set()
        with state.output:
            state.held = False
            now = time.perf_counter()
            state.speech_end_at = now - delay_ms / 1000
            state.vad_delay_ms, state.early_ms = delay_ms, (now - state.started_at) * 1000
            pending, state.pending = state.pending, []
            for event in pending:
                self._out(state, event)
            if state.result is not None:  # the whole reply was ready before the VAD was sure
                self._record(state)
            if state.first_out_at is None:  # nothing audible yet: the session is where the turn is
                self._set_state(state.stage if state.stage in _ANSWERING else PipelineState.LISTENING)

    def _out(self, state: _TurnState, event: VoiceEvent) -> None:
        """Emit one of the turn's events (``state.output`` held); audio counts as being heard from now."""
        if state.token.cancelled:  # after a barge-in, nothing more of this reply goes out
            return
        if isinstance(event, VoiceAudioOut):
            with self._lock:
                self._speaking_until = max(time.monotonic(), self._speaking_until) + event.chunk.duration_ms / 1000
            if state.first_out_at is None:
                state.first_out_at = time.perf_counter()
                self._set_state(PipelineState.PLAYING_TTS)
            self._gate.played(event.chunk)
        self._feed.emit(event)

    def _interrupt(self, time_s: float | None) -> None:
        """Cut the reply: cancel its generation if still running, tell the output to stop, and mark it
        interrupted (patching the history when the turn had already been recorded). A reply that
        was already said in full (and generated) is left as it is. ``time_s``: the barge-in's time."""
        turn = self._turn
        with self._lock:
            current = self._current
            in_progress = time.monotonic() < self._speaking_until or (
                current is not None and current.result is None and turn is not None and turn.is_alive())
            self._speaking_until = 0.0
            if current is not None and not current.cut and in_progress:
                current.cut = True
                if current.recorded is not None:
                    self.conversation.mark_interrupted(*current.recorded)
        if current is not None:
            current.token.cancel()
        if in_progress:
            self._feed.emit(VoiceInterrupted(time_s=self._vad.elapsed_s if time_s is None else time_s))

    def _start_turn(self, segment: SpeechSegment, delay_ms: float, *, held: bool = False) -> None:
        """Answer ``segment`` on a background thread; ``held`` keeps its events back until :meth:`_release`."""
        warming = self._warming
        if warming is not None:
            warming.cancel()  # a head start for this turn must not delay it
        self._join_turn()  # one turn at a time; a barge-in has already cancelled the previous one
        token = CancelToken()
        state = _TurnState(token, segment, held=held, vad_delay_ms=delay_ms,
                           speech_end_at=time.perf_counter() - delay_ms / 1000)
        if not held:
            state.decided.set()
        token.on_cancel(state.decided.set)
        with self._lock:
            self._current = state
        self._turn = threading.Thread(target=self._answer, args=(state,), name="runanywhere-voice-turn", daemon=True)
        self._turn.start()

    def _answer(self, state: _TurnState) -> None:
        """The turn's thread: run it, then record it (or report its failure)."""
        opts, token = self.options, state.token

        def on_event(event: VoiceEvent) -> None:
            if isinstance(event, VoiceStateChanged):
                state.stage = event.state
                self._follow(state, event.state)
            elif not isinstance(event, VoiceTurnAnswered | VoiceTurnFailed):  # the session reports those itself
                with state.output:
                    if state.held:
                        state.pending.append(event)
                    else:
                        self._out(state, event)

        def accept(text: str) -> bool:
            return not (opts.echo_guard and repeats(text, self.conversation.recent_replies(), opts.echo_word_overlap))

        def before_tools() -> None:  # an early start calls no tool until the VAD has confirmed its turn
            state.decided.wait()
            token.raise_if_cancelled("voice turn")

        try:
            result = self._runner.process_turn(
                state.segment.samples, state.segment.sample_rate, history=self.conversation.context(opts.context_turns),
                cancel=token, speech_end_at=state.speech_end_at, vad_delay_ms=state.vad_delay_ms,
                callbacks=VoicePipelineCallbacks(on_event=on_event), accept_transcription=accept,
                before_tools=before_tools)
        except CancelledError:
            return
        except Exception as exc:  # the session goes on listening
            _log.error("turn failed: %s", exc)
            state.decided.wait()  # an early start's failure counts once the VAD confirms its turn
            if not state.dropped:
                self._set_state(PipelineState.ERROR)
                self._feed.emit(VoiceTurnFailed(error=exc))
                self._set_state(PipelineState.LISTENING)
            return
        with state.output:
            state.result = result
            if not state.held:
                self._record(state)
        self._shorten_context()

    def _follow(self, state: _TurnState, stage: PipelineState) -> None:
        """Mirror the stage of a turn the VAD has ended (an early start is not heard, so not followed)."""
        if state.held or state.dropped or state.token.cancelled:
            return
        if stage in _ANSWERING:  # a failure is reported by the turn itself, with VoiceTurnFailed
            self._set_state(stage)
        elif stage is PipelineState.IDLE and state.first_out_at is None:  # the turn ended unanswered
            self._set_state(PipelineState.LISTENING)

    def _set_state(self, state: PipelineState) -> None:
        with self._lock:
            if state is self._state:
                return
            self._state = state
        self._feed.emit(VoiceStateChanged(state=state))

    def _shorten_context(self) -> None:
        """Trim the context after a turn and evaluate what is left into the model's cache now,
        while the reply plays, rather than at the start of the next turn."""
        limit = self.options.context_turns
        if not self.conversation.trim(limit):
            return
        self._warming = token = CancelToken()
        try:
            self._runner.prefill(self.conversation.context(limit), cancel=token)
        except CancelledError:
            pass  # the next turn began: it evaluates the context itself
        except Exception as exc:  # only a head start was lost
            _log.warning("could not prefill the shortened context: %s", exc)

    def _join_turn(self) -> None:
        turn = self._turn
        if turn is not None:
            turn.join()
            self._turn = None

    def _record(self, state: _TurnState) -> None:
        """Add a finished (and heard) turn to the conversation, with the session's own timing."""
        result = state.result
        if result is None or state.dropped or not result.speech_detected or (
                not result.response and not result.tool_calls and not result.interrupted):
            return
        first_audio_ms = None if state.first_out_at is None else (state.first_out_at - state.speech_end_at) * 1000
        result = replace(result, metrics=replace(
            result.metrics, vad_end_of_speech_delay_ms=state.vad_delay_ms,
            speech_end_to_first_audio_ms=first_audio_ms, early_start_ms=state.early_ms))
        with self._lock:
            if state.cut:
                result = replace(result, interrupted=True)
            state.recorded = self.conversation.record(result)
        self._feed.emit(VoiceTurnAnswered(result=result))

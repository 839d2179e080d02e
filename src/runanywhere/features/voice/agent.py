"""A continuous voice session: audio in, VAD-cut turns, spoken replies out, with barge-in.

The agent reads an audio source (a microphone through ``AudioCapture``, any
iterator or async iterator of chunks, or a file), lets the VAD cut the user's
turns, answers each with a :class:`VoicePipeline` on a background thread and
hands the reply's audio chunks to a sink (``AudioPlayback`` or a callback)
while it keeps listening:

* **barge-in**: user speech during a reply stops the reply's audio at once and
  cancels generation; the reply is kept in the history marked interrupted;
* **self-echo guard**: input that correlates with the agent's own recent
  output is gated (the VAD hears silence), and a transcript that repeats the
  agent's last words is dropped, so its own voice never becomes a turn;
* **early start**: from the first silent VAD window (``early_start_s``) the reply is
  prepared while the VAD still waits to be sure the turn has ended; it is
  heard only once the VAD agrees, and dropped if the user goes on speaking.
  The end-of-turn wait and the answer's preparation overlap instead of adding up.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import AsyncIterable, Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ...core.cancel import CancelToken
from ...core.errors import CancelledError
from ...core.logging import SDKLogger
from ...media.audio import load_audio, resample, to_mono_float32
from ..tts import AudioChunk
from ..vad import VAD, SpeechActivity, SpeechActivityChange, SpeechSegment, VADSession, VoiceActivityDetector
from .pipeline import PipelineState, VoicePipeline, VoicePipelineCallbacks, VoiceTurnResult

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_log = SDKLogger("VoiceAgent")
_WORD = re.compile(r"[a-z0-9']+")
_SAME_END_S = 0.1  # an early start counts for the VAD's segment when their ends are this close
_ANSWERING = (PipelineState.PROCESSING_STT, PipelineState.GENERATING_RESPONSE)
Sink = Callable[[AudioChunk], None]


@dataclass(frozen=True)
class VoiceAgentOptions:
    """How the session listens and answers.

    ``realtime`` paces iterator/file sources at the speed of sound (a live
    microphone paces itself). ``early_start_s``: after this much silence in
    a turn the reply is prepared before the VAD has ended the turn (None:
    wait for the VAD; it must be shorter than the VAD's ``min_silence_s``
    to have an effect). ``context_turns``: at most this many past exchanges
    are in the model's prompt (None: all; a long session then outgrows the
    context window); past it the older half is dropped at once, so the
    prompt's start, and with it the reusable KV cache, changes only every
    ``context_turns / 2`` turns.
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


@dataclass
class VoiceAgentCallbacks:
    """What a session reports while it runs. Called from the session's threads: keep them quick.

    ``on_state_change`` follows the session: ``listening`` (for the user),
    ``processingSTT`` and ``generatingResponse`` (a turn the VAD has ended is
    being answered), ``playingTTS`` (from the reply's first audio until it has
    been heard), ``error`` (a turn failed; listening follows), ``idle`` (the
    session is over). ``on_turn`` gets each turn once its reply is complete
    (generated and handed to the sink; a barge-in after that marks it
    interrupted in :attr:`VoiceAgent.turns`). ``on_error`` gets what made a
    turn fail; the session goes on listening.
    """

    on_state_change: Callable[[PipelineState], None] | None = None
    on_turn: Callable[[VoiceTurnResult], None] | None = None
    on_error: Callable[[BaseException], None] | None = None


@dataclass
class _TurnState:
    """One reply: its cancel token, whether it is still held back (an early start the VAD has not
    confirmed), the audio waiting for that, and where it was recorded."""

    token: CancelToken
    segment: SpeechSegment
    held: bool = False
    pending: list[AudioChunk] = field(default_factory=list)
    dropped: bool = False  # an early start the user spoke through: never heard, never recorded
    cut: bool = False
    speech_end_at: float = 0.0  # perf_counter time of the end of the user's speech
    vad_delay_ms: float = 0.0
    started_at: float = field(default_factory=time.perf_counter)
    early_ms: float = 0.0  # how long before the VAD's end of turn the answer started
    first_out_at: float | None = None  # perf_counter time the first audio went to the sink
    result: VoiceTurnResult | None = None
    recorded: int | None = None  # index in ``turns`` once recorded
    reply_at: int = -1  # index of its assistant message in ``history``
    output: threading.Lock = field(default_factory=threading.Lock)  # orders chunks to the sink
    decided: threading.Event = field(default_factory=threading.Event)  # released, or cancelled (dropped)


class _EchoGate:
    """Recognises input that is the agent's own output coming back (speakers into the microphone).

    The last ``window_ms`` of input is compared with the recent output by normalised cross-correlation:
    a copy of the output (at any delay) scores near 1, while a different utterance, even in the same
    voice, does not stay that similar over a window longer than a vowel.
    """

    def __init__(self, rate: int, threshold: float, window_s: float = 3.0, window_ms: int = 160) -> None:
        import numpy as np

        self.rate, self.threshold = rate, threshold
        self._recent = np.zeros(int(window_s * rate), dtype=np.float32)
        self._input = np.zeros(int(window_ms * rate / 1000), dtype=np.float32)
        self._quiet_after = 0.0  # monotonic time when the last output stops echoing

    def played(self, chunk: AudioChunk) -> None:
        import numpy as np

        audio = resample(chunk.audio_data, chunk.sample_rate, self.rate)
        self._recent = np.concatenate([self._recent, audio])[-len(self._recent):]
        self._quiet_after = time.monotonic() + len(audio) / self.rate + 0.5

    def is_echo(self, samples: NDArray[np.float32]) -> bool:
        """True when the latest input closely matches some stretch of recent output."""
        import numpy as np

        self._input = np.concatenate([self._input, samples])[-len(self._input):]
        if time.monotonic() > self._quiet_after or len(samples) == 0:
            return False
        probe = self._input
        energy = float(np.dot(probe, probe))
        if energy < 1e-6:
            return False
        n = len(self._recent) + len(probe)
        size = 1 << (n - 1).bit_length()
        corr = np.fft.irfft(np.fft.rfft(self._recent, size) * np.conj(np.fft.rfft(probe, size)), size)
        power = np.concatenate([[0.0], np.cumsum(self._recent.astype(np.float64) ** 2)])
        window = power[len(probe):] - power[: len(power) - len(probe)]  # energy of each aligned stretch
        score = np.abs(corr[: len(window)]) / np.sqrt(np.maximum(window, 1e-9) * energy)
        return bool(score.max(initial=0.0) >= self.threshold)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class VoiceAgent:
    """Runs voice turns over an audio stream; keeps the conversation and one metrics record per turn."""

    def __init__(self, pipeline: VoicePipeline | None = None, vad: VoiceActivityDetector | None = None, *,
                 options: VoiceAgentOptions | None = None, callbacks: VoiceAgentCallbacks | None = None) -> None:
        self.pipeline = pipeline or VoicePipeline()
        self.vad = vad or VAD
        self.options = options or VoiceAgentOptions()
        self.callbacks = callbacks or VoiceAgentCallbacks()
        self.history: list[dict[str, Any]] = []
        self.turns: list[VoiceTurnResult] = []
        self._stop = threading.Event()
        self._turn: threading.Thread | None = None
        self._current: _TurnState | None = None
        # Until when (monotonic) the reply audio handed to the sink is still being heard.
        self._speaking_until = 0.0
        self._stop_output: Callable[[], None] | None = None  # the sink's stop(), when it has one
        self._deliver: Sink = lambda chunk: None  # the session's sink, set by run()
        self._context_from = 0  # the first message of ``history`` that the model still sees
        self._warming: CancelToken | None = None  # the prefill of a shortened context, while it runs
        self._state = PipelineState.IDLE
        self._lock = threading.Lock()

    @property
    def state(self) -> PipelineState:
        """Where the session is (see :class:`VoiceAgentCallbacks`)."""
        return self._state

    def stop(self) -> None:
        """End the session after the current chunk (the reply in progress is cancelled)."""
        self._stop.set()
        self._interrupt()

    # ----------------------------------------------------------------- running
    def run(self, source: Iterable[Any] | str | Any, sink: Sink | Any = None) -> list[VoiceTurnResult]:
        """Listen to ``source`` until it ends (or :meth:`stop`) and answer each turn; returns the turns."""
        opts = self.options
        early = opts.early_start_s
        if early is not None and not early < self.vad.settings.min_silence_s:
            early = None
        session = self.vad.create_session(sample_rate=opts.sample_rate, pause_s=early)
        gate = _EchoGate(opts.sample_rate, opts.echo_correlation)
        self._deliver = self._sink(sink, gate)
        unsubscribe = session.on_speech_activity(lambda change: self._on_activity(change, session))
        fed = 0
        started = time.monotonic()
        self._set_state(PipelineState.LISTENING)
        try:
            for chunk in self._chunks(source):
                if self._stop.is_set():
                    break
                if self._state is PipelineState.PLAYING_TTS and time.monotonic() >= self._speaking_until:
                    self._set_state(PipelineState.LISTENING)  # the reply has been heard (or cut)
                fed += len(chunk)
                if opts.realtime and not self._live(source):  # a chunk exists once its last sample was said
                    time.sleep(max(0.0, started + fed / opts.sample_rate - time.monotonic()))
                heard = chunk if not (opts.echo_guard and gate.is_echo(chunk)) else chunk * 0.0
                session.process_samples(heard)
                for segment in session.segments():
                    self._end_of_turn(segment, (session.elapsed_s - segment.end_s) * 1000)
            session.flush()
            for segment in session.segments():
                self._end_of_turn(segment, 0.0)
            self._join_turn()
        finally:
            unsubscribe()
            session.close()
            self._set_state(PipelineState.IDLE)
        return list(self.turns)

    async def arun(self, source: AsyncIterable[Any] | Iterable[Any] | str,
                   sink: Sink | Any = None) -> list[VoiceTurnResult]:
        """Async twin of :meth:`run`: an async source is read on this loop, the session runs on a thread."""
        import asyncio

        if isinstance(source, AsyncIterable):
            source = _blocking(source, asyncio.get_running_loop())
        try:
            return await asyncio.to_thread(self.run, source, sink)
        except asyncio.CancelledError:
            self.stop()
            raise

    # ---------------------------------------------------------------- helpers
    def _chunks(self, source: Any) -> Iterator[NDArray[np.float32]]:
        rate, size = self.options.sample_rate, self.options.sample_rate * self.options.chunk_ms // 1000
        if isinstance(source, str | bytes) or hasattr(source, "__fspath__"):
            audio = load_audio(source, target_rate=rate).samples
            for at in range(0, len(audio), size):
                yield audio[at: at + size]
            return
        for chunk in source:
            samples = getattr(chunk, "samples", chunk)
            chunk_rate = getattr(chunk, "sample_rate", rate)
            yield resample(to_mono_float32(samples), chunk_rate, rate)

    @staticmethod
    def _live(source: Any) -> bool:
        from ...media.capture import AudioCapture  # light: sounddevice itself loads only on start()

        return isinstance(source, AudioCapture)

    def _sink(self, sink: Any, gate: _EchoGate) -> Sink:
        play = getattr(sink, "play", None)

        def deliver(chunk: AudioChunk) -> None:
            gate.played(chunk)
            if play is not None:
                play(chunk.audio_data, chunk.sample_rate)
            elif sink is not None:
                sink(chunk)

        self._stop_output = getattr(sink, "stop", None)
        return deliver

    def _on_activity(self, change: SpeechActivityChange, session: VADSession) -> None:
        if change.activity is SpeechActivity.STARTED:
            if self.options.barge_in and time.monotonic() < self._speaking_until:
                _log.info("barge-in at %.2f s: the reply stops", change.time_s)
                self._interrupt()
        elif change.activity is SpeechActivity.PAUSED:  # the turn may be over: start answering, held back
            segment = session.open_segment()
            if segment is not None:
                self._start_turn(segment, (session.elapsed_s - segment.end_s) * 1000, held=True)
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
        """The VAD confirmed the early start: its audio so far goes out, and the rest as it comes."""
        state.decided.set()
        with state.output:
            state.held = False
            now = time.perf_counter()
            state.speech_end_at = now - delay_ms / 1000
            state.vad_delay_ms, state.early_ms = delay_ms, (now - state.started_at) * 1000
            pending, state.pending = state.pending, []
            for chunk in pending:
                self._out(state, chunk)
            if state.result is not None:  # the whole reply was ready before the VAD was sure
                self._record(state)
            if state.first_out_at is None:  # nothing audible yet: the agent is where the turn is
                stage = self.pipeline.state
                self._set_state(stage if stage in _ANSWERING else PipelineState.LISTENING)

    def _out(self, state: _TurnState, chunk: AudioChunk) -> None:
        """Hand one chunk to the sink (``state.output`` held)."""
        if state.token.cancelled:  # after a barge-in, nothing more of this reply is heard
            return
        with self._lock:
            self._speaking_until = max(time.monotonic(), self._speaking_until) + chunk.duration_ms / 1000
        if state.first_out_at is None:
            state.first_out_at = time.perf_counter()
            self._set_state(PipelineState.PLAYING_TTS)
        self._deliver(chunk)

    def _interrupt(self) -> None:
        """Cut the reply: cancel its generation if still running, silence the output, and mark it
        interrupted (patching the history when the turn had already been recorded). A reply that
        was already said in full (and generated) is left as it is."""
        turn = self._turn
        with self._lock:
            current = self._current
            in_progress = time.monotonic() < self._speaking_until or (
                current is not None and current.result is None and turn is not None and turn.is_alive())
            self._speaking_until = 0.0
            if current is not None and not current.cut and in_progress:
                current.cut = True
                if current.recorded is not None:
                    self.turns[current.recorded] = replace(self.turns[current.recorded], interrupted=True)
                    self.history[current.reply_at]["interrupted"] = True
        if current is not None:
            current.token.cancel()
        if self._stop_output is not None:
            self._stop_output()

    def _start_turn(self, segment: SpeechSegment, delay_ms: float, *, held: bool = False) -> None:
        """Answer ``segment`` on a background thread; ``held`` keeps its audio back until :meth:`_release`."""
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

        def on_chunk(chunk: AudioChunk) -> None:
            with state.output:
                if state.held:
                    state.pending.append(chunk)
                else:
                    self._out(state, chunk)

        def accept(text: str) -> bool:
            return not (self.options.echo_guard and self._repeats_agent(text))

        def before_tools() -> None:  # an early start calls no tool until the VAD has confirmed its turn
            state.decided.wait()
            token.raise_if_cancelled("voice turn")

        def turn() -> None:
            try:
                result = self.pipeline.process_turn(
                    segment.samples, segment.sample_rate, history=self._context(), cancel=token,
                    speech_end_at=state.speech_end_at, vad_delay_ms=delay_ms,
                    callbacks=VoicePipelineCallbacks(on_audio_chunk=on_chunk,
                                                     on_state_change=lambda stage: self._follow(state, stage)),
                    accept_transcription=accept,
                    before_tools=before_tools)
            except CancelledError:
                return
            except Exception as exc:  # the session goes on listening
                _log.error("turn failed: %s", exc)
                state.decided.wait()  # an early start's failure counts once the VAD confirms its turn
                if not state.dropped:
                    self._set_state(PipelineState.ERROR)
                    _log.call_safely(self.callbacks.on_error, exc, what="on_error callback")
                    self._set_state(PipelineState.LISTENING)
                return
            with state.output:
                state.result = result
                if not state.held:
                    self._record(state)
            self._shorten_context()

        self._turn = threading.Thread(target=turn, name="runanywhere-voice-turn", daemon=True)
        self._turn.start()

    def _follow(self, state: _TurnState, stage: PipelineState) -> None:
        """Mirror the stage of a turn the VAD has ended (an early start is not heard, so not followed)."""
        if state.held or state.dropped or state.token.cancelled:
            return
        if stage in _ANSWERING:  # a failure is reported by the turn itself, with on_error
            self._set_state(stage)
        elif stage is PipelineState.IDLE and state.first_out_at is None:  # the turn ended unanswered
            self._set_state(PipelineState.LISTENING)

    def _set_state(self, state: PipelineState) -> None:
        with self._lock:
            if state is self._state:
                return
            self._state = state
        _log.call_safely(self.callbacks.on_state_change, state, what="on_state_change callback")

    def _context(self) -> list[dict[str, Any]]:
        """The past exchanges the model sees (see ``VoiceAgentOptions.context_turns``)."""
        with self._lock:
            self._trim()
            return [dict(m) for m in self.history[self._context_from:]]

    def _trim(self) -> bool:
        """Past ``context_turns`` exchanges, drop the older half from the model's view (lock held)."""
        limit = self.options.context_turns
        if limit is None or len(self.history) - self._context_from <= 2 * limit:
            return False
        self._context_from = len(self.history) - 2 * max(1, limit // 2)
        return True

    def _shorten_context(self) -> None:
        """Trim the context after a turn and evaluate what is left into the model's cache now,
        while the reply plays, rather than at the start of the next turn."""
        with self._lock:
            if not self._trim():
                return
            self._warming = token = CancelToken()
        system = {"role": "system", "content": self.pipeline.options.system_prompt}
        try:
            self.pipeline.llm.prefill([system, *self._context()], cancel=token)
        except CancelledError:
            pass  # the next turn began: it evaluates the context itself
        except Exception as exc:  # only a head start was lost
            _log.warning("could not prefill the shortened context: %s", exc)

    def _join_turn(self) -> None:
        turn = self._turn
        if turn is not None:
            turn.join()
            self._turn = None

    def _repeats_agent(self, text: str) -> bool:
        """True when most of the transcript's word trigrams come from the agent's recent replies.

        Trigrams, not words: a user's new question shares words with the last answer
        ("what is the capital of Italy" after "... the capital of France"), an echo shares phrases.
        """
        heard = _words(text)
        spoken = _words(" ".join(m["content"] for m in self.history[-4:] if m["role"] == "assistant"))
        n = min(3, len(heard))
        if n == 0 or len(spoken) < n:
            return False
        said = {tuple(spoken[i:i + n]) for i in range(len(spoken) - n + 1)}
        grams = [tuple(heard[i:i + n]) for i in range(len(heard) - n + 1)]
        return sum(g in said for g in grams) / len(grams) >= self.options.echo_word_overlap

    def _record(self, state: _TurnState) -> None:
        """Add a finished (and heard) turn to ``turns`` and ``history``, with the agent's own timing."""
        result = state.result
        if result is None or state.dropped or not result.speech_detected or (
                not result.response and not result.interrupted):
            return
        first_audio_ms = None if state.first_out_at is None else (state.first_out_at - state.speech_end_at) * 1000
        result = replace(result, metrics=replace(
            result.metrics, vad_end_of_speech_delay_ms=state.vad_delay_ms,
            speech_end_to_first_audio_ms=first_audio_ms, early_start_ms=state.early_ms))
        with self._lock:
            if state.cut:
                result = replace(result, interrupted=True)
            state.recorded = len(self.turns)
            self.turns.append(result)
            self.history.append({"role": "user", "content": result.transcription})
            reply: dict[str, Any] = {"role": "assistant", "content": result.response}
            if result.interrupted:
                reply["interrupted"] = True
            self.history.append(reply)
            state.reply_at = len(self.history) - 1
        _log.call_safely(self.callbacks.on_turn, result, what="on_turn callback")


def _blocking(source: AsyncIterable[Any], loop: Any) -> Iterator[Any]:
    import asyncio

    iterator = source.__aiter__()

    async def next_item() -> Any:
        return await iterator.__anext__()

    while True:
        try:
            yield asyncio.run_coroutine_threadsafe(next_item(), loop).result()
        except StopAsyncIteration:
            return

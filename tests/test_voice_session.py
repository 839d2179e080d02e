"""The voice session's turn decisions, without models: early start, release, drop, barge-in, echo, context window.

The session takes its VAD and its turn runner through small protocols. Here the VAD reports speech
activity from a script of times (as Silero would for some speech), and the turn runner answers from a
script of replies, reporting the events a :class:`VoicePipeline` reports. What is tested is the
session's own logic, which has no engine; tests/test_voice.py runs the same agent on the real models.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from runanywhere import (
    AudioChunk,
    CancelToken,
    Conversation,
    InvalidInputError,
    PipelineState,
    SpeechActivity,
    SpeechActivityChange,
    SpeechSegment,
    TranscriptionResult,
    TurnMetrics,
    VoiceAgentOptions,
    VoiceAudioOut,
    VoiceEvent,
    VoiceInterrupted,
    VoicePipelineCallbacks,
    VoicePipelineOptions,
    VoiceResponseDelta,
    VoiceSession,
    VoiceStateChanged,
    VoiceTranscription,
    VoiceTurnAnswered,
    VoiceTurnFailed,
    VoiceTurnResult,
)

RATE = 16000
CHUNK = 512  # 32 ms
S = SpeechActivity


class ScriptedVAD:
    """Reports the scripted ``(time_s, activity)`` changes as the fed audio reaches them; keeps what it was fed.

    A segment ends where the silence that ended it began (the last pause), as Silero's do.
    """

    def __init__(self, *script: tuple[float, SpeechActivity]) -> None:
        self._script = sorted(script)
        self._listeners: list[Callable[[SpeechActivityChange], None]] = []
        self.fed: list[np.ndarray] = []
        self._start: float | None = None
        self._pause: float | None = None
        self._ended: list[SpeechSegment] = []
        self.closed = False

    @property
    def elapsed_s(self) -> float:
        return sum(len(c) for c in self.fed) / RATE

    def process_samples(self, chunk: Any, sample_rate: int | None = None) -> bool:
        self.fed.append(np.asarray(chunk, dtype=np.float32))
        while self._script and self._script[0][0] <= self.elapsed_s:
            self._change(*self._script.pop(0))
        return self._start is not None

    def flush(self) -> None:
        if self._start is not None:
            self._change(self.elapsed_s, S.ENDED)

    def segments(self) -> Iterator[SpeechSegment]:
        while self._ended:
            yield self._ended.pop(0)

    def open_segment(self) -> SpeechSegment | None:
        return None if self._start is None else self._segment(self._start, self._pause or self.elapsed_s)

    def on_speech_activity(self, callback: Callable[[SpeechActivityChange], None]) -> Callable[[], None]:
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def close(self) -> None:
        self.closed = True

    def _change(self, at: float, activity: SpeechActivity) -> None:
        if activity is S.STARTED:
            self._start, self._pause = at, None
        elif activity is S.PAUSED:
            self._pause = at
        elif activity is S.RESUMED:
            self._pause = None
        elif self._start is not None:
            self._ended.append(self._segment(self._start, self._pause or at))
            self._start = self._pause = None
        for listener in list(self._listeners):
            listener(SpeechActivityChange(activity, at, "scripted"))

    def _segment(self, start: float, end: float) -> SpeechSegment:
        audio = np.concatenate(self.fed) if self.fed else np.zeros(0, np.float32)
        return SpeechSegment(start, end, audio[int(start * RATE):int(end * RATE)], RATE)


@dataclass
class Reply:
    """What one call of the scripted runner does: hears ``heard``, says each of ``said`` as one chunk."""

    heard: str
    said: tuple[str, ...] = ("Paris.",)
    chunk_s: float = 0.05
    until_cancelled: bool = False  # after the first chunk, goes on until the turn is cancelled
    tools: bool = False  # calls a tool (asks ``before_tools`` first) before answering
    fail: Exception | None = None
    audio: np.ndarray | None = None  # the first chunk's audio (default: a quiet tone)


@dataclass
class Call:
    """One call of the scripted runner, as it went."""

    history: int
    token: CancelToken
    accepted: bool | None = None
    tool_ran: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class ScriptedRunner:
    """Answers turns from a script of replies, reporting the events a :class:`VoicePipeline` reports."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.calls: list[Call] = []
        self.prefills: list[int] = []

    def process_turn(self, audio: Any, sample_rate: int | None = None, *,
                     history: Sequence[Mapping[str, Any]] = (), callbacks: VoicePipelineCallbacks | None = None,
                     cancel: CancelToken | None = None, speech_end_at: float | None = None,
                     vad_delay_ms: float = 0.0, accept_transcription: Callable[[str], bool] | None = None,
                     before_tools: Callable[[], None] | None = None) -> VoiceTurnResult:
        reply = self.replies[len(self.calls)]
        call = Call(len(history), cancel or CancelToken())
        self.calls.append(call)
        try:
            return self._answer(reply, call, len(audio) / (sample_rate or RATE),
                                (callbacks or VoicePipelineCallbacks()).handle, accept_transcription, before_tools)
        finally:
            call.done.set()

    def prefill(self, history: Sequence[Mapping[str, Any]], *, cancel: CancelToken | None = None) -> int:
        self.prefills.append(len(history))
        return 0

    def _answer(self, reply: Reply, call: Call, duration_s: float, emit: Callable[[VoiceEvent], None],
                accept: Callable[[str], bool] | None, before_tools: Callable[[], None] | None) -> VoiceTurnResult:
        token = call.token
        emit(VoiceStateChanged(state=PipelineState.PROCESSING_STT))
        if reply.fail is not None:
            emit(VoiceStateChanged(state=PipelineState.ERROR))
            emit(VoiceTurnFailed(error=reply.fail))
            raise reply.fail
        emit(VoiceTranscription(result=TranscriptionResult(reply.heard, (), "en", 1.0, duration_s, 10.0, 0.1)))
        call.accepted = accept is None or accept(reply.heard)
        if not call.accepted:
            return self._result(reply.heard, "", [], token, emit)
        emit(VoiceStateChanged(state=PipelineState.GENERATING_RESPONSE))
        if reply.tools:
            if before_tools is not None:
                before_tools()
            call.tool_ran = True
        chunks: list[AudioChunk] = []
        for index, text in enumerate(reply.said):
            if index == 1 and reply.until_cancelled:
                stopped = threading.Event()
                token.on_cancel(stopped.set)
                assert stopped.wait(10), "the turn was never cancelled"
            if token.cancelled:
                break
            emit(VoiceResponseDelta(text=text))
            audio = reply.audio if reply.audio is not None and index == 0 else tone(reply.chunk_s)
            chunks.append(AudioChunk(audio, RATE, text, index, index == len(reply.said) - 1))
            if index == 0:
                emit(VoiceStateChanged(state=PipelineState.PLAYING_TTS))
            emit(VoiceAudioOut(chunk=chunks[-1]))
        if not chunks:
            token.raise_if_cancelled("scripted turn")
        return self._result(reply.heard, " ".join(c.text for c in chunks), chunks, token, emit)

    @staticmethod
    def _result(heard: str, said: str, chunks: list[AudioChunk], token: CancelToken,
                emit: Callable[[VoiceEvent], None]) -> VoiceTurnResult:
        metrics = TurnMetrics(0.0, 10.0, 0.1, 5.0, 100.0, 3, 5.0, 0.1, 20.0, 30.0)
        audio = np.concatenate([c.audio_data for c in chunks]) if chunks else np.zeros(0, np.float32)
        result = VoiceTurnResult(heard, said, audio, RATE, metrics, interrupted=token.cancelled)
        emit(VoiceStateChanged(state=PipelineState.COOLDOWN))
        emit(VoiceTurnAnswered(result=result))
        emit(VoiceStateChanged(state=PipelineState.IDLE))
        return result


def tone(seconds: float) -> np.ndarray:
    return (0.1 * np.sin(np.arange(int(seconds * RATE)) * 0.05)).astype(np.float32)


class Harness:
    """A session on a scripted VAD and runner, with every event it emitted."""

    def __init__(self, vad: ScriptedVAD, runner: ScriptedRunner, **options: Any) -> None:
        self.vad, self.runner = vad, runner
        self.events: list[VoiceEvent] = []
        self.answered = threading.Semaphore(0)
        self.session = VoiceSession(runner, vad, options=VoiceAgentOptions(**options), on_event=self._note)

    def _note(self, event: VoiceEvent) -> None:
        self.events.append(event)
        if isinstance(event, VoiceTurnAnswered):
            self.answered.release()

    def feed_until(self, seconds: float, audio: np.ndarray | None = None) -> None:
        """Feed ``audio`` (default silence) in 32 ms chunks until the stream reaches ``seconds``."""
        at = 0
        while self.vad.elapsed_s < seconds - 1e-9:
            piece = np.zeros(CHUNK, np.float32) if audio is None else audio[at:at + CHUNK]
            if len(piece) == 0:
                break
            at += len(piece)
            self.session.feed(piece, RATE)

    def of(self, kind: type[VoiceEvent]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def states(self) -> list[PipelineState]:
        return [e.state for e in self.of(VoiceStateChanged)]

    def wait_answered(self) -> None:
        assert self.answered.acquire(timeout=10), "no turn was answered"


def test_an_early_start_is_held_until_the_vad_ends_the_turn_then_heard():
    vad = ScriptedVAD((0.2, S.STARTED), (1.0, S.PAUSED), (1.5, S.ENDED))
    runner = ScriptedRunner(Reply("What is the capital of France?", ("Paris", "is the capital.")))
    h = Harness(vad, runner)

    h.feed_until(1.2)  # the pause: the answer starts, held back
    assert len(runner.calls) == 1 and runner.calls[0].done.wait(10)
    assert not h.of(VoiceTranscription) and not h.of(VoiceAudioOut), "a held answer was heard"
    assert h.session.state is PipelineState.LISTENING

    h.feed_until(1.6)  # the VAD ends the turn: the held answer goes out at once
    h.wait_answered()
    assert len(runner.calls) == 1, "the confirmed early start was answered twice"
    assert [e.chunk.text for e in h.of(VoiceAudioOut)] == ["Paris", "is the capital."]
    assert [e.text for e in h.of(VoiceResponseDelta)] == ["Paris", "is the capital."]
    (answered,) = h.of(VoiceTurnAnswered)
    metrics = answered.result.metrics
    assert metrics.early_start_ms > 0
    assert metrics.vad_end_of_speech_delay_ms == pytest.approx(504, abs=1)  # ended at the 1.504 s chunk
    assert metrics.speech_end_to_first_audio_ms is not None and metrics.speech_end_to_first_audio_ms > 0
    assert h.session.conversation.history == [{"role": "user", "content": "What is the capital of France?"},
                                             {"role": "assistant", "content": "Paris is the capital."}]
    assert h.states() == [PipelineState.LISTENING, PipelineState.PLAYING_TTS]


def test_an_early_start_is_dropped_when_the_user_goes_on_and_calls_no_tool():
    vad = ScriptedVAD((0.2, S.STARTED), (1.0, S.PAUSED), (1.2, S.RESUMED), (2.0, S.PAUSED), (2.5, S.ENDED))
    runner = ScriptedRunner(Reply("My favourite colour is", ("Nice.",), tools=True),
                            Reply("My favourite colour is green, and yours?", ("Blue.",), tools=True))
    h = Harness(vad, runner)

    h.feed_until(1.1)
    assert len(runner.calls) == 1  # started at the pause, waiting to be sure before calling its tool
    h.feed_until(1.3)  # the user goes on: the early answer is dropped
    assert runner.calls[0].done.wait(10) and runner.calls[0].token.cancelled and not runner.calls[0].tool_ran
    h.feed_until(2.6)  # a second pause, then the VAD ends the turn: that answer is confirmed
    h.session.flush()

    assert len(runner.calls) == 2 and runner.calls[1].tool_ran and not runner.calls[1].token.cancelled
    assert [e.chunk.text for e in h.of(VoiceAudioOut)] == ["Blue."], "audio of a dropped answer was heard"
    assert [e.result.text for e in h.of(VoiceTranscription)] == ["My favourite colour is green, and yours?"]
    assert [e.result.transcription for e in h.of(VoiceTurnAnswered)] == ["My favourite colour is green, and yours?"]
    assert [m["role"] for m in h.session.conversation.history] == ["user", "assistant"]


def test_barge_in_cuts_the_reply_and_the_next_turn_is_answered():
    vad = ScriptedVAD((0.2, S.STARTED), (1.0, S.ENDED), (1.5, S.STARTED), (2.5, S.ENDED))
    runner = ScriptedRunner(Reply("Tell me a story.", ("Once upon a time", "there was a dragon."), chunk_s=5.0,
                                  until_cancelled=True),
                            Reply("What is two plus two?", ("Four.",)))
    h = Harness(vad, runner, early_start_s=None)

    h.feed_until(1.1)
    while not h.of(VoiceAudioOut):  # the reply is being heard (5 s of it)
        assert not runner.calls[0].done.wait(0.01), "the first turn ended before it was cut"
    h.feed_until(1.6)  # the user speaks over it
    assert runner.calls[0].done.wait(10) and runner.calls[0].token.cancelled, "generation went on"
    h.feed_until(2.6)
    h.session.flush()

    (cut,) = h.of(VoiceInterrupted)
    assert cut.time_s == 1.5
    after = h.events[h.events.index(cut):]
    assert not [e for e in after if isinstance(e, VoiceAudioOut) and e.chunk.text != "Four."]
    turns = h.session.conversation.turns
    assert [t.transcription for t in turns] == ["Tell me a story.", "What is two plus two?"]
    assert turns[0].interrupted and turns[0].response == "Once upon a time" and not turns[1].interrupted
    assert h.session.conversation.history[1] == {"role": "assistant", "content": "Once upon a time",
                                                 "interrupted": True}


def test_barge_in_after_the_reply_was_recorded_marks_it_interrupted():
    vad = ScriptedVAD((0.2, S.STARTED), (1.0, S.ENDED), (1.5, S.STARTED), (2.5, S.ENDED))
    runner = ScriptedRunner(Reply("Tell me a story.", ("A long one.",), chunk_s=5.0), Reply("Stop.", ("Okay.",)))
    h = Harness(vad, runner, early_start_s=None)

    h.feed_until(1.1)
    h.wait_answered()  # generated in full and recorded, but still being heard for 5 s
    assert not h.session.conversation.turns[0].interrupted
    h.feed_until(2.6)
    h.session.flush()

    assert len(h.of(VoiceInterrupted)) == 1
    turns = h.session.conversation.turns
    assert turns[0].interrupted and h.session.conversation.history[1].get("interrupted") is True
    assert [t.transcription for t in turns] == ["Tell me a story.", "Stop."]


def test_without_barge_in_speech_over_the_reply_does_not_cut_it():
    vad = ScriptedVAD((0.2, S.STARTED), (1.0, S.ENDED), (1.5, S.STARTED), (2.5, S.ENDED))
    runner = ScriptedRunner(Reply("Tell me a story.", ("A long one.",), chunk_s=5.0), Reply("Go on.", ("Okay.",)))
    h = Harness(vad, runner, early_start_s=None, barge_in=False)

    h.feed_until(2.6)
    h.session.flush()

    assert not h.of(VoiceInterrupted) and not any(t.interrupted for t in h.session.conversation.turns)
    assert len(h.session.conversation.turns) == 2


def test_the_agents_own_voice_is_gated_and_a_transcript_of_its_words_is_no_turn():
    reply_audio = np.random.default_rng(7).normal(0, 0.1, RATE).astype(np.float32)
    user_audio = np.random.default_rng(8).normal(0, 0.1, RATE // 2).astype(np.float32)
    vad = ScriptedVAD((0.2, S.STARTED), (1.0, S.ENDED), (3.0, S.STARTED), (3.6, S.ENDED), (4.0, S.STARTED),
                      (4.6, S.ENDED))
    runner = ScriptedRunner(Reply("What is the capital of France?", ("Paris is the capital of France.",),
                                  audio=reply_audio),
                            Reply("Paris is the capital of France."),  # the reply, heard back and transcribed
                            Reply("What is the capital of Italy?", ("Rome.",)))  # a new question sharing words
    h = Harness(vad, runner, early_start_s=None, barge_in=False)

    h.feed_until(1.1)
    h.wait_answered()
    before = len(vad.fed)
    h.feed_until(1.1 + 1.0, reply_audio)  # the speakers' sound comes back into the microphone
    echoed = vad.fed[before:]
    h.feed_until(2.6, user_audio)  # the user says something else
    spoken = vad.fed[before + len(echoed):]
    h.feed_until(4.7)
    h.session.flush()

    assert all(not chunk.any() for chunk in echoed), "the agent's own voice reached the VAD"
    assert all(chunk.any() for chunk in spoken), "the user's voice was gated as echo"
    assert [c.accepted for c in runner.calls] == [True, False, True]
    assert [t.transcription for t in h.session.conversation.turns] == [
        "What is the capital of France?", "What is the capital of Italy?"]


def test_without_the_echo_guard_the_agents_voice_reaches_the_vad():
    reply_audio = np.random.default_rng(7).normal(0, 0.1, RATE).astype(np.float32)
    vad = ScriptedVAD((0.2, S.STARTED), (1.0, S.ENDED))
    runner = ScriptedRunner(Reply("Hello?", ("Hello there.",), audio=reply_audio))
    h = Harness(vad, runner, early_start_s=None, echo_guard=False)

    h.feed_until(1.1)
    h.wait_answered()
    before = len(vad.fed)
    h.feed_until(2.1, reply_audio)

    assert all(chunk.any() for chunk in vad.fed[before:])


def test_states_follow_the_turn_and_a_failed_turn_is_reported_once_and_the_session_goes_on():
    vad = ScriptedVAD((0.2, S.STARTED), (1.0, S.ENDED), (2.0, S.STARTED), (2.5, S.ENDED))
    runner = ScriptedRunner(Reply("Hi.", fail=InvalidInputError("the voice was unloaded")), Reply("Hello?", ("Hi.",)))
    h = Harness(vad, runner, early_start_s=None)

    h.feed_until(1.1)
    assert runner.calls[0].done.wait(10)
    h.feed_until(2.6)
    h.wait_answered()
    threading.Event().wait(0.1)  # the 50 ms reply has been heard by now
    h.feed_until(2.7)
    h.session.close()

    (failed,) = h.of(VoiceTurnFailed)
    assert isinstance(failed.error, InvalidInputError)
    assert failed.to_json()["code"] == "INVALID_INPUT"
    assert h.states() == [PipelineState.LISTENING, PipelineState.PROCESSING_STT, PipelineState.ERROR,
                          PipelineState.LISTENING, PipelineState.PROCESSING_STT, PipelineState.GENERATING_RESPONSE,
                          PipelineState.PLAYING_TTS, PipelineState.LISTENING, PipelineState.IDLE]
    assert [t.transcription for t in h.session.conversation.turns] == ["Hello?"]  # nothing half-recorded
    assert vad.closed


def test_past_context_turns_the_model_sees_the_last_exchanges_and_they_are_prefilled():
    script = [(start + dt, activity) for start in (0.2, 2.2, 4.2, 6.2) for dt, activity in
              ((0.0, S.STARTED), (0.6, S.ENDED))]
    runner = ScriptedRunner(*(Reply(f"Question {n}?", (f"Answer {n}.",)) for n in range(4)))
    h = Harness(ScriptedVAD(*script), runner, early_start_s=None, context_turns=2, barge_in=False)

    for end in (1.0, 3.0, 5.0, 7.0):
        h.feed_until(end)
        h.wait_answered()
    h.session.flush()

    assert [c.history for c in runner.calls] == [0, 2, 4, 2]  # past two exchanges: the last one, then growing
    assert runner.prefills == [2]  # the shortened context was evaluated after the third turn
    assert len(h.session.conversation.history) == 8  # the conversation keeps everything


def test_stop_cuts_the_reply_and_later_input_is_ignored():
    vad = ScriptedVAD((0.2, S.STARTED), (1.0, S.ENDED), (1.5, S.STARTED), (2.0, S.ENDED))
    runner = ScriptedRunner(Reply("Tell me a story.", ("Once", "upon a time."), chunk_s=5.0, until_cancelled=True))
    h = Harness(vad, runner, early_start_s=None)

    h.feed_until(1.1)
    while not h.of(VoiceAudioOut):  # the turn's thread may not have reached the runner yet
        assert not (runner.calls and runner.calls[0].done.is_set())
        time.sleep(0.01)
    h.session.stop()
    fed = len(vad.fed)
    for _ in range(40):  # past the next scripted turn
        h.session.feed(np.zeros(CHUNK, np.float32), RATE)
    h.session.flush()

    assert runner.calls[0].done.is_set() and runner.calls[0].token.cancelled
    assert len(h.of(VoiceInterrupted)) == 1 and len(vad.fed) == fed and len(runner.calls) == 1


def test_stop_abandons_an_unfinished_turn_and_close_waits_for_it():
    """A stopped session (its source failed, say) drops the turn it was answering: nothing more of it goes
    out, it is not recorded, and once ``close`` returns the turn has ended and the state is idle."""
    vad = ScriptedVAD((0.2, S.STARTED), (1.0, S.ENDED))
    runner = ScriptedRunner(Reply("Tell me a story.", ("Once", "upon a time."), chunk_s=5.0, until_cancelled=True))
    h = Harness(vad, runner, early_start_s=None)

    h.feed_until(1.1)
    while not h.of(VoiceAudioOut):
        time.sleep(0.01)
    h.session.stop()
    said = len(h.of(VoiceAudioOut))
    h.session.close()

    assert runner.calls[0].done.is_set() and runner.calls[0].token.cancelled
    assert len(h.of(VoiceAudioOut)) == said == 1 and not h.of(VoiceTurnAnswered)
    assert h.session.conversation.history == [] and h.session.state is PipelineState.IDLE
    assert h.states()[-1] is PipelineState.IDLE


def test_a_listener_may_stop_and_close_the_session_from_the_turns_thread():
    vad = ScriptedVAD((0.2, S.STARTED), (1.0, S.ENDED))
    runner = ScriptedRunner(Reply("Hi.", ("Hello", "there."), until_cancelled=True))
    h = Harness(vad, runner, early_start_s=None)
    closed = threading.Event()

    def hang_up(event: VoiceEvent) -> None:  # e.g. a UI that ends the call when the reply starts
        if isinstance(event, VoiceAudioOut):
            h.session.stop()
            h.session.close()
            closed.set()

    h.session.subscribe(hang_up)
    for _ in range(40):  # 1.3 s; once stopped, the session ignores what it is fed
        h.session.feed(np.zeros(CHUNK, np.float32), RATE)

    assert closed.wait(10), "closing from the turn's own thread failed"
    assert runner.calls[0].done.wait(10) and runner.calls[0].token.cancelled
    assert h.session.state is PipelineState.IDLE and not h.of(VoiceTurnAnswered)


def test_options_out_of_range_are_refused():
    for bad in ({"sample_rate": 1}, {"sample_rate": 10**9}, {"chunk_ms": 0}, {"chunk_ms": 10**6},
                {"echo_correlation": float("nan")}, {"echo_word_overlap": 2.0}, {"early_start_s": -1.0},
                {"context_turns": 0}):
        with pytest.raises(InvalidInputError, match=next(iter(bad))):
            VoiceAgentOptions(**bad)
    for speed in (0.0, 1e-6, 100.0, float("inf")):
        with pytest.raises(InvalidInputError, match=r"speed must be a number from 0\.25 to 4"):
            VoicePipelineOptions(speed=speed)


def test_events_stream_to_asyncio_and_serialise_to_json():
    vad = ScriptedVAD((0.2, S.STARTED), (1.0, S.ENDED))
    runner = ScriptedRunner(Reply("What is the capital of France?", ("Paris.", "It is lovely.")))

    async def main() -> tuple[Harness, list[VoiceEvent]]:
        h = Harness(vad, runner, early_start_s=None)
        streamed = h.session.events()
        h.feed_until(1.1)
        await asyncio.to_thread(h.session.flush)
        h.session.close()
        return h, [event async for event in streamed]  # the stream ends when the session closes

    h, streamed = asyncio.run(main())

    assert streamed and all(a is b for a, b in zip(streamed, h.events[1:], strict=True))  # all after LISTENING
    wire = [json.loads(json.dumps(event.to_json())) for event in streamed]
    assert [w["type"] for w in wire] == [
        "voice.stateChanged", "voice.transcription", "voice.stateChanged", "voice.responseDelta",
        "voice.stateChanged", "voice.audio", "voice.responseDelta", "voice.audio", "voice.turnAnswered",
        "voice.stateChanged"]
    assert wire[-1]["state"] == "idle" and wire[1]["text"] == "What is the capital of France?"
    audio = [w for w in wire if w["type"] == "voice.audio"]
    pcm = np.frombuffer(base64.b64decode(audio[0]["audio"]), "<i2")
    assert audio[0]["encoding"] == "pcm16" and audio[0]["sample_rate"] == RATE and len(pcm) == audio[0]["samples"]
    assert np.abs(pcm / 32767 - tone(0.05)).max() < 1e-3
    answered = wire[-2]
    assert answered["response"] == "Paris. It is lovely." and "audio" not in answered
    assert answered["samples"] == 2 * len(tone(0.05)) and answered["metrics"]["stt_ms"] == 10.0


def test_a_conversation_trims_by_halves():
    conversation = Conversation()
    metrics = TurnMetrics(0.0, 1.0, 0.1, None, None, 0, None, None, None, 1.0)
    for n in range(5):
        conversation.record(VoiceTurnResult(f"q{n}", f"a{n}", np.zeros(0, np.float32), RATE, metrics))
    assert len(conversation.context(None)) == 10
    assert [m["content"] for m in conversation.context(4)] == ["q3", "a3", "q4", "a4"]
    assert not conversation.trim(4)  # two exchanges are in view: nothing to trim until there are five
    assert conversation.recent_replies() == ["a3", "a4"]


def test_voice_pipeline_options_embed_generation_options():
    options = VoicePipelineOptions(stream_tts=False).with_generation(temperature=0, max_tokens=12)
    assert options.generation.temperature == 0 and options.generation.max_tokens == 12 and not options.stream_tts
    assert VoicePipelineOptions().generation.max_tokens == 80  # the voice default, not the text default
    assert options.system_prompt == VoicePipelineOptions.DEFAULT_SYSTEM_PROMPT
    assert options.with_generation(system_prompt="Be brief.").system_prompt == "Be brief."
    with pytest.raises(InvalidInputError):
        options.with_generation(temprature=0)
    with pytest.raises(InvalidInputError):
        options.with_generation(max_tokens=0)


def test_feed_takes_any_layout_and_rate_and_refuses_bad_input():
    vad = ScriptedVAD()
    h = Harness(vad, ScriptedRunner())

    for _ in range(10):
        h.session.feed(np.full((1536, 2), 0.25, np.float32), 48000)  # 32 ms of stereo at 48 kHz
    heard = np.concatenate(vad.fed)  # resampled as one stream: soxr holds back only its filter's delay
    assert 9 * CHUNK <= len(heard) <= 10 * CHUNK and abs(float(heard[len(heard) // 2]) - 0.25) < 0.01
    for bad, rate in ((np.zeros(CHUNK, np.float32), 0), (np.full(CHUNK, np.nan, np.float32), RATE)):
        with pytest.raises(InvalidInputError):
            h.session.feed(bad, rate)

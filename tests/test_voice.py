"""The voice pipeline and agent with the real default models: Whisper tiny.en, SmolLM2, Piper, Silero."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from runanywhere import (
    AudioChunk,
    CancelledError,
    CancelToken,
    EventBus,
    InvalidInputError,
    ModelNotLoadedError,
    PipelineState,
    TextToSpeech,
    ToolCaller,
    ToolDefinition,
    VoiceAgent,
    VoiceAgentCallbacks,
    VoiceAgentOptions,
    VoiceAudioOut,
    VoiceEvent,
    VoicePipeline,
    VoicePipelineCallbacks,
    VoicePipelineOptions,
    VoiceResponseCompleted,
    VoiceResponseDelta,
    VoiceStateChanged,
    VoiceTranscription,
    VoiceTurnAnswered,
    VoiceTurnResult,
)
from runanywhere.media.audio import resample

from .wer import cer, wer

RATE = 16000


@pytest.fixture(scope="module")
def engines(voice_engines):
    return voice_engines


@pytest.fixture
def pipeline(engines):
    stt, llm, tts, _ = engines
    return VoicePipeline(stt=stt, llm=llm, tts=tts, options=greedy(40),
                         events=EventBus())


def greedy(max_tokens: int) -> VoicePipelineOptions:
    """The voice defaults, answering deterministically in at most ``max_tokens``."""
    return VoicePipelineOptions().with_generation(temperature=0, max_tokens=max_tokens)


def spoken(tts: TextToSpeech, text: str) -> np.ndarray:
    """A question as the user would say it: the Piper voice at 16 kHz."""
    result = tts.synthesize(text)
    return resample(result.audio_data, result.sample_rate, RATE)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


def chunks(audio: np.ndarray, size: int = 512) -> Iterator[np.ndarray]:
    for at in range(0, len(audio), size):
        yield audio[at:at + size]


def test_a_spoken_question_gets_a_spoken_answer(pipeline: VoicePipeline, engines):
    stt, _, tts, _ = engines
    question = np.concatenate([silence(0.3), spoken(tts, "What is the capital of France?"), silence(0.5)])
    states: list[PipelineState] = []
    tokens: list[str] = []
    chunks_heard: list[AudioChunk] = []
    callbacks = VoicePipelineCallbacks(on_state_change=states.append, on_response_token=tokens.append,
                                       on_audio_chunk=chunks_heard.append)

    result = pipeline.process_turn(question, RATE, callbacks=callbacks)

    assert wer("What is the capital of France?", result.transcription) == 0
    assert "paris" in result.response.lower()
    assert "".join(tokens).strip() == result.response
    assert states == [PipelineState.PROCESSING_STT, PipelineState.GENERATING_RESPONSE, PipelineState.PLAYING_TTS,
                      PipelineState.COOLDOWN, PipelineState.IDLE]
    # the reply audio says the reply text
    heard_back = stt.transcribe(result.audio, result.sample_rate)
    assert cer(result.response, heard_back.text) <= 0.15, (result.response, heard_back.text)
    assert chunks_heard and chunks_heard[0].index == 0 and chunks_heard[-1].is_final
    metrics = result.metrics
    assert metrics.speech_end_to_first_audio_ms is not None and metrics.speech_end_to_first_audio_ms > 0
    assert metrics.stt_ms > 0 and metrics.llm_time_to_first_token_ms and metrics.tts_time_to_first_audio_ms


def test_a_softly_spoken_first_word_is_not_cut_off(engines):
    """Silero notices a soft onset late (this "wh", faded in over 0.4 s, by 0.2 s; Piper's own "what" now and
    then): the segment keeps the audio before the detected start (``speech_pad_s``), and with it the first word."""
    stt, _, tts, vad = engines
    question = spoken(tts, "What color is the sky?")
    first_sound = int(np.flatnonzero(np.abs(question) > 0.01)[0])
    fade = int(0.4 * RATE)
    question[first_sound:first_sound + fade] *= np.linspace(0, 1, fade, dtype=np.float32)

    (segment,) = vad.detect(np.concatenate([silence(0.5), question, silence(1.0)]), RATE)

    assert segment.start_s <= 0.5 + first_sound / RATE
    heard = stt.transcribe(segment.samples, segment.sample_rate).text
    assert heard.lower().startswith("what"), heard


def test_a_typed_question_gets_a_spoken_answer_or_a_text_only_one(pipeline: VoicePipeline, engines):
    stt, llm, tts, _ = engines
    question = [{"role": "user", "content": "What is the capital of France?"}]

    spoken_reply = pipeline.respond(question)
    text_only = VoicePipeline(stt=stt, llm=llm, tts=tts, options=replace(greedy(40), speak=False)).respond(question)

    assert "paris" in spoken_reply.response.lower() and spoken_reply.transcription == question[0]["content"]
    assert cer(spoken_reply.response, stt.transcribe(spoken_reply.audio, spoken_reply.sample_rate).text) <= 0.15
    assert spoken_reply.metrics.stt_ms == 0  # nothing to transcribe
    assert text_only.response == spoken_reply.response and len(text_only.audio) == 0
    assert text_only.metrics.tts_real_time_factor is None  # no speech was synthesised
    with pytest.raises(InvalidInputError):
        pipeline.respond([*question, {"role": "assistant", "content": "Paris."}])  # nothing left to answer


def test_silence_is_no_turn(pipeline: VoicePipeline):
    result = pipeline.process_turn(silence(1.0), RATE)
    assert not result.speech_detected and result.response == "" and len(result.audio) == 0


def test_an_error_in_a_stage_reaches_on_error_and_the_pipeline_survives(pipeline: VoicePipeline):
    errors: list[BaseException] = []
    session = CancelToken()  # the caller's token, for several turns
    with pytest.raises(ValueError):
        pipeline.process_turn(np.full(1600, np.nan, dtype=np.float32), RATE, cancel=session,
                              callbacks=VoicePipelineCallbacks(on_error=errors.append))
    assert errors and pipeline.state is PipelineState.ERROR
    assert not session.cancelled  # the failed turn stopped its own stages, not the caller's other work
    assert not pipeline.process_turn(silence(0.5), RATE, cancel=session).speech_detected  # the next turn works


def test_cancel_stops_the_turn(pipeline: VoicePipeline, engines):
    _, _, tts, _ = engines
    question = np.concatenate([spoken(tts, "Tell me a long story about a dragon."), silence(0.3)])
    first_chunk = threading.Event()

    def on_chunk(chunk: AudioChunk) -> None:
        first_chunk.set()
        pipeline.cancel()

    result = pipeline.process_turn(question, RATE, callbacks=VoicePipelineCallbacks(on_audio_chunk=on_chunk))
    assert first_chunk.is_set() and result.interrupted


def test_the_async_twin_and_its_event_stream(pipeline: VoicePipeline, engines):
    """``aprocess_turn`` answers without blocking the loop; ``events()`` yields the typed events the callbacks get,
    in order, and each serialises to JSON (the reply's audio as base64 PCM16)."""
    _, _, tts, _ = engines
    question = np.concatenate([silence(0.3), spoken(tts, "What is the capital of France?"), silence(0.5)])
    called: list[type[VoiceEvent]] = []
    everything: list[VoiceEvent] = []
    callbacks = VoicePipelineCallbacks(
        on_state_change=lambda _: called.append(VoiceStateChanged),
        on_transcription=lambda _: called.append(VoiceTranscription),
        on_response_token=lambda _: called.append(VoiceResponseDelta),
        on_response_complete=lambda _: called.append(VoiceResponseCompleted),
        on_audio_chunk=lambda _: called.append(VoiceAudioOut),
        on_synthesis_complete=lambda _: called.append(VoiceTurnAnswered), on_event=everything.append)

    async def main() -> tuple[VoiceTurnResult, list[VoiceEvent]]:
        streamed: list[VoiceEvent] = []

        async def listen() -> None:
            async for event in pipeline.events():
                streamed.append(event)
                if isinstance(event, VoiceStateChanged) and event.state is PipelineState.IDLE:
                    return

        listener = asyncio.create_task(listen())
        await asyncio.sleep(0.1)  # subscribed before the turn starts
        result = await pipeline.aprocess_turn(question, RATE, callbacks=callbacks)
        await asyncio.wait_for(listener, 30)
        return result, streamed

    result, streamed = asyncio.run(main())

    assert "paris" in result.response.lower()
    kinds = [type(event) for event in streamed]
    assert kinds == called and len(streamed) == len(everything)
    assert all(a is b for a, b in zip(streamed, everything, strict=True))  # the same event objects everywhere
    assert kinds[:2] == [VoiceStateChanged, VoiceTranscription]
    assert kinds[-3:] == [VoiceStateChanged, VoiceTurnAnswered, VoiceStateChanged]
    assert {VoiceResponseDelta, VoiceAudioOut, VoiceResponseCompleted} <= set(kinds)
    wire = [json.loads(json.dumps(event.to_json())) for event in streamed]
    assert "".join(w["text"] for w in wire if w["type"] == "voice.responseDelta").strip() == result.response
    pcm = b"".join(base64.b64decode(w["audio"]) for w in wire if w["type"] == "voice.audio")
    assert len(pcm) == 2 * len(result.audio)
    assert np.abs(np.frombuffer(pcm, "<i2") / 32767 - result.audio).max() < 1e-3
    assert wire[-2]["transcription"] == result.transcription and wire[-2]["samples"] == len(result.audio)


def test_the_pipeline_prefills_a_conversation_and_its_async_twin_can_be_cancelled(pipeline: VoicePipeline):
    history = [{"role": "user", "content": "Remember the number 4711."},
               {"role": "assistant", "content": "I will remember 4711."}]
    first = asyncio.run(pipeline.aprefill(history))
    again = pipeline.prefill(history)
    assert first > 10 and again < first  # the exchange is in the cache now
    stopped = CancelToken()
    stopped.cancel()
    with pytest.raises(CancelledError):
        asyncio.run(pipeline.aprefill([*history, {"role": "user", "content": "And of Italy?"}], cancel=stopped))


def test_cancelling_the_awaiting_task_stops_the_turn(pipeline: VoicePipeline, engines):
    _, _, tts, _ = engines
    question = np.concatenate([spoken(tts, "Tell me a long story about a dragon."), silence(0.3)])
    done = threading.Event()
    finished: list[VoiceTurnResult] = []

    def on_synthesis_complete(turn: VoiceTurnResult) -> None:
        finished.append(turn)
        done.set()

    async def main() -> None:
        loop, speaking = asyncio.get_running_loop(), asyncio.Event()
        callbacks = VoicePipelineCallbacks(on_audio_chunk=lambda _: loop.call_soon_threadsafe(speaking.set),
                                           on_synthesis_complete=on_synthesis_complete)
        task = asyncio.create_task(pipeline.aprocess_turn(question, RATE, callbacks=callbacks))
        await speaking.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert done.wait(30), "the turn's worker thread never finished"  # it winds down on its own
    assert finished[0].interrupted, "the turn went on after its task was cancelled"


def test_the_agent_reads_an_async_source(engines):
    stt, llm, tts, vad = engines
    pipeline = VoicePipeline(stt=stt, llm=llm, tts=tts, options=greedy(30))
    agent = VoiceAgent(pipeline, vad, options=VoiceAgentOptions(barge_in=False, realtime=False))
    stream = np.concatenate([silence(0.3), spoken(tts, "What is the capital of France?"), silence(1.0)])

    async def microphone():
        for chunk in chunks(stream):
            await asyncio.sleep(0)
            yield chunk

    played: list[AudioChunk] = []
    (turn,) = asyncio.run(agent.arun(microphone(), played.append))

    assert wer("What is the capital of France?", turn.transcription) == 0
    assert "paris" in turn.response.lower() and played


def test_an_error_in_a_turn_reaches_on_error_and_the_session_goes_on(engines):
    stt, llm, tts, vad = engines
    pipeline = VoicePipeline(stt=stt, llm=llm, tts=tts, options=greedy(20))
    errors: list[BaseException] = []
    heard: list[str] = []

    def on_turn(turn: VoiceTurnResult) -> None:
        heard.append(turn.transcription)
        if len(heard) == 1:
            tts.unload()  # somebody unloads the voice: the next reply cannot be spoken

    def on_error(error: BaseException) -> None:
        errors.append(error)
        tts.load_voice("piper-en_US-joe-medium", variation=0)  # ...and the application puts it back

    states: list[PipelineState] = []
    agent = VoiceAgent(pipeline, vad, options=VoiceAgentOptions(barge_in=False, realtime=False),
                       callbacks=VoiceAgentCallbacks(on_turn=on_turn, on_error=on_error,
                                                     on_state_change=states.append))
    questions = ["What is the capital of France?", "What color is the sky?", "What do bees make?"]
    stream = np.concatenate([silence(0.3)] + [np.concatenate([spoken(tts, q), silence(1.0)]) for q in questions])

    turns = agent.run(chunks(stream), lambda chunk: None)

    assert len(errors) == 1 and isinstance(errors[0], ModelNotLoadedError)
    assert [wer(q, t.transcription) for q, t in zip([questions[0], questions[2]], turns, strict=True)] == [0, 0]
    assert heard == [t.transcription for t in turns] and all(t.response for t in turns)
    assert len(agent.history) == 4  # the failed turn left nothing half-recorded
    assert states[states.index(PipelineState.ERROR) + 1] is PipelineState.LISTENING


def test_the_agent_reports_where_it_is(engines):
    stt, llm, tts, vad = engines
    pipeline = VoicePipeline(stt=stt, llm=llm, tts=tts, options=greedy(30))
    states: list[PipelineState] = []
    agent = VoiceAgent(pipeline, vad, options=VoiceAgentOptions(barge_in=False, early_start_s=None),
                       callbacks=VoiceAgentCallbacks(on_state_change=states.append))
    said: list[AudioChunk] = []

    def microphone() -> Iterator[np.ndarray]:  # in real time: silence until the whole reply has been heard
        yield from chunks(np.concatenate([silence(0.3), spoken(tts, "What is the capital of France?"), silence(1.0)]))
        for _ in range(2000):  # at most 64 s
            if said and said[-1].is_final:
                break
            yield silence(0.032)
        yield from chunks(silence(sum(c.duration_ms for c in said) / 1000 + 0.5))

    (turn,) = agent.run(microphone(), said.append)

    assert "paris" in turn.response.lower()
    assert states == [PipelineState.LISTENING, PipelineState.PROCESSING_STT, PipelineState.GENERATING_RESPONSE,
                      PipelineState.PLAYING_TTS, PipelineState.LISTENING, PipelineState.IDLE]
    assert agent.state is PipelineState.IDLE


def test_the_agent_answers_two_turns_in_order_with_history(engines):
    stt, llm, tts, vad = engines
    pipeline = VoicePipeline(stt=stt, llm=llm, tts=tts, options=greedy(30))
    agent = VoiceAgent(pipeline, vad, options=VoiceAgentOptions(barge_in=False, realtime=False))
    stream = np.concatenate([silence(0.3), spoken(tts, "What is the capital of France?"), silence(1.5),
                             spoken(tts, "Remember the number 42."), silence(1.5)])
    played: list[AudioChunk] = []

    turns = agent.run(chunks(stream), played.append)

    assert [wer(q, t.transcription) for q, t in zip(
        ["What is the capital of France?", "Remember the number 42."], turns, strict=True)] == [0, 0]
    assert [m["role"] for m in agent.history] == ["user", "assistant", "user", "assistant"]
    assert turns[1].metrics.llm_prompt_tokens_evaluated < 40, "the second turn did not reuse the first"
    assert all(t.metrics.vad_end_of_speech_delay_ms > 0 for t in turns)
    assert played


def test_a_long_session_keeps_only_the_last_turns_in_the_prompt(engines):
    stt, llm, tts, vad = engines
    pipeline = VoicePipeline(stt=stt, llm=llm, tts=tts, options=greedy(12))
    agent = VoiceAgent(pipeline, vad, options=VoiceAgentOptions(realtime=False, barge_in=False, context_turns=2,
                                                                early_start_s=None))  # one pipeline call per turn
    seen: list[int] = []
    answer = pipeline.process_turn

    def noting(*args, **kwargs):
        seen.append(len(kwargs["history"]))
        return answer(*args, **kwargs)

    pipeline.process_turn = noting
    questions = ["What is the capital of France?", "What color is the sky?", "What do bees make?",
                 "How many legs does a spider have?"]
    stream = np.concatenate([silence(0.3)] + [np.concatenate([spoken(tts, q), silence(1.0)]) for q in questions])

    turns = agent.run(chunks(stream), lambda chunk: None)

    assert len(turns) == 4 and len(agent.history) == 8  # the agent remembers everything...
    assert seen == [0, 2, 4, 2]  # ...but past two exchanges the model sees the last one only, then grows again
    # the shortened context was evaluated after the third turn, so the fourth evaluates only its question
    assert turns[3].metrics.llm_prompt_tokens_evaluated <= turns[1].metrics.llm_prompt_tokens_evaluated + 5


def test_the_agent_starts_answering_at_a_pause_and_drops_the_answer_when_the_user_goes_on(engines):
    stt, llm, tts, vad = engines
    pipeline = VoicePipeline(stt=stt, llm=llm, tts=tts, options=greedy(30))
    agent = VoiceAgent(pipeline, vad, options=VoiceAgentOptions(barge_in=False, early_start_s=0.1))
    # One turn with a 0.3 s pause inside (the VAD waits 0.5 s): the answer started at that pause is dropped.
    stream = np.concatenate([silence(0.3), spoken(tts, "My favourite colour is green."), silence(0.3),
                             spoken(tts, "What is the capital of France?"), silence(1.5)])
    asked: list[float] = []  # seconds of audio in each transcription asked for
    played: list[AudioChunk] = []
    agent.pipeline.stt = _Spy(stt, asked)

    (turn,) = agent.run(chunks(stream), played.append)

    # the first answer started at the inner pause, on the first sentence only (it may be dropped before its
    # transcription is done: on a busy machine it is); the last is on the whole turn
    assert len(asked) >= 2 and asked[0] < asked[-1] - 1.0, f"no early start at the inner pause: {asked}"
    assert "green" in turn.transcription.lower() and "france" in turn.transcription.lower()
    assert sum(c.is_final for c in played) == 1, "audio of a dropped answer was heard"
    metrics = turn.metrics
    assert metrics.early_start_ms > 0, "the answer did not start before the VAD ended the turn"
    assert metrics.vad_end_of_speech_delay_ms > 0 and metrics.speech_end_to_first_audio_ms is not None
    assert [m["role"] for m in agent.history] == ["user", "assistant"]


class _Spy:
    """The STT, noting the length of every transcription the agent asks for."""

    def __init__(self, stt, asked: list[float]) -> None:
        self._stt, self._asked = stt, asked

    def transcribe(self, audio, sample_rate, *args, **kwargs):
        self._asked.append(len(audio) / sample_rate)
        return self._stt.transcribe(audio, sample_rate, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._stt, name)


def test_the_agent_calls_a_tool_during_a_turn_and_says_only_the_answer(engines):
    stt, llm, tts, vad = engines
    asked: list[dict] = []

    def get_weather(arguments: dict) -> dict:
        asked.append(arguments)
        return {"city": arguments["city"], "temperature_c": 21, "conditions": "sunny"}

    tools = ToolCaller(llm)
    tools.register_tool(ToolDefinition("get_weather", "Get the current weather in a city", {
        "type": "object", "properties": {"city": {"type": "string", "maxLength": 40}}, "required": ["city"]}),
        get_weather)
    pipeline = VoicePipeline(stt=stt, llm=llm, tts=tts, tools=tools, events=EventBus(), options=VoicePipelineOptions(
        tool_choice="required", max_tool_calls=1).with_generation(temperature=0, max_tokens=80))
    agent = VoiceAgent(pipeline, vad, options=VoiceAgentOptions(realtime=False, barge_in=False))
    stream = np.concatenate([silence(0.3), spoken(tts, "What is the weather in Paris?"), silence(1.5)])
    played: list[AudioChunk] = []

    (turn,) = agent.run(chunks(stream), played.append)

    assert len(asked) == 1 and asked[0]["city"].lower() == "paris"  # once, though the answer started early
    assert [c.name for c in turn.tool_calls] == ["get_weather"] and turn.tool_results[0].result["conditions"] == "sunny"
    assert "sunny" in turn.response.lower() or "21" in turn.response
    said = stt.transcribe(np.concatenate([c.audio_data for c in played]), played[0].sample_rate).text
    assert cer(turn.response, said) <= 0.15, (turn.response, said)  # the answer is said, the call is not
    assert agent.history[-1] == {"role": "assistant", "content": turn.response}
    with pytest.raises(InvalidInputError):
        VoicePipeline(stt=stt, llm=llm, tts=tts, tools=ToolCaller())  # a tool caller on another model

    def not_sure_yet() -> None:  # what an early start does when the user turns out not to be done
        pipeline.cancel()
        raise CancelledError("the user went on speaking")

    with pytest.raises(CancelledError):
        pipeline.process_turn(stream, RATE, before_tools=not_sure_yet)
    assert len(asked) == 1, "a tool ran for a turn that was called off"


def test_barge_in_stops_the_reply_and_starts_a_new_turn(engines):
    stt, llm, tts, vad = engines
    pipeline = VoicePipeline(stt=stt, llm=llm, tts=tts, options=greedy(60))
    agent = VoiceAgent(pipeline, vad, options=VoiceAgentOptions(realtime=True))
    first_audio = threading.Event()
    played: list[tuple[int, int, AudioChunk]] = []  # (turn, times stopped before it, chunk)
    interruption = spoken(tts, "What is two plus two?")

    class Speaker:  # a callback sink with stop(), which the agent calls to cut its output at a barge-in
        stops = 0

        def __call__(self, chunk: AudioChunk) -> None:
            played.append((len(agent.turns), self.stops, chunk))
            first_audio.set()

        def stop(self) -> None:
            self.stops += 1

    def microphone() -> Iterator[np.ndarray]:
        yield from chunks(np.concatenate([silence(0.3), spoken(tts, "Tell me a long story about a dragon."),
                                          silence(0.8)]))
        while not first_audio.is_set():  # the user waits until the agent speaks...
            yield silence(0.032)
        yield from chunks(np.concatenate([interruption, silence(1.5)]))  # ...then talks over it

    speaker = Speaker()
    turns = agent.run(microphone(), speaker)

    assert turns[0].interrupted and speaker.stops >= 1
    assert agent.history[1].get("interrupted") is True
    after_barge_in = [c for turn, stops, c in played if turn == 0 and stops > 0]
    assert len(after_barge_in) <= 1, "the reply kept playing after the user spoke"  # at most the one in flight
    assert len(turns) == 2 and wer("What is 2 plus 2?", turns[1].transcription.replace("two", "2")) == 0


def test_when_the_source_fails_the_reply_stops_too(engines):
    """Ctrl-C or an unplugged microphone ends ``run`` with the error, and the reply being said is cut."""
    stt, llm, tts, vad = engines
    pipeline = VoicePipeline(stt=stt, llm=llm, tts=tts, options=greedy(60))
    answered = threading.Event()
    turns: list[VoiceTurnResult] = []
    agent = VoiceAgent(pipeline, vad, options=VoiceAgentOptions(realtime=False, barge_in=False),
                       callbacks=VoiceAgentCallbacks(on_turn=lambda turn: (turns.append(turn), answered.set())))
    first_audio = threading.Event()
    played: list[AudioChunk] = []

    def speaker(chunk: AudioChunk) -> None:
        played.append(chunk)
        first_audio.set()

    def microphone() -> Iterator[np.ndarray]:
        yield from chunks(np.concatenate([silence(0.3), spoken(tts, "Tell me a long story about a dragon."),
                                          silence(0.8)]))
        while not first_audio.wait(0.01):
            yield silence(0.032)
        raise OSError("the microphone was unplugged")

    with pytest.raises(OSError):
        agent.run(microphone(), speaker)

    assert answered.wait(30), "the cut turn was never reported"
    assert turns[0].interrupted and not played[-1].is_final


def test_the_agents_own_voice_looped_back_is_not_a_turn(engines):
    stt, llm, tts, vad = engines
    pipeline = VoicePipeline(stt=stt, llm=llm, tts=tts, options=greedy(30))
    agent = VoiceAgent(pipeline, vad, options=VoiceAgentOptions(realtime=True))
    loop_back: list[np.ndarray] = []
    done = threading.Event()

    def speaker(chunk: AudioChunk) -> None:  # what the agent says goes straight back into its microphone
        loop_back.append(resample(chunk.audio_data, chunk.sample_rate, RATE))
        if chunk.is_final:
            done.set()

    def microphone() -> Iterator[np.ndarray]:
        yield from chunks(np.concatenate([silence(0.3), spoken(tts, "What is the capital of France?"), silence(0.8)]))
        sent = 0
        while not done.is_set() or sent < len(loop_back):
            if sent < len(loop_back):
                yield from chunks(loop_back[sent])
                sent += 1
            else:
                yield silence(0.032)
        yield from chunks(silence(1.5))

    turns = agent.run(microphone(), speaker)

    assert len(turns) == 1, [t.transcription for t in turns]


def test_the_voice_command_answers_a_recorded_question(engines, tmp_path, subprocess_env):
    import subprocess
    import sys

    from runanywhere.media.audio import save_wav

    _, _, tts, _ = engines
    question = tmp_path / "question.wav"
    save_wav(question, np.concatenate([silence(0.3), spoken(tts, "What is the capital of France?"), silence(1.0)]),
             RATE)
    reply = tmp_path / "reply.wav"
    env = {**subprocess_env, "RUNANYWHERE_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "runanywhere.cli", "voice", "--input", str(question),
                          "--output", str(reply), "--temperature", "0", "--json"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    turn = json.loads(out.stdout.splitlines()[0])
    assert wer("What is the capital of France?", turn["transcription"]) == 0
    assert turn["metrics"]["speech_end_to_first_audio_ms"] > 0
    assert reply.stat().st_size > 10_000

"""Live voice over /v1/realtime, driven by the official ``openai`` realtime client against a local server.

A Starlette app with just the realtime route runs under uvicorn on 127.0.0.1 (a free port), on the
default voice models. The user's speech is a WAV made with the packaged Piper voice, sent as the
protocol's base64 PCM16 at 24 kHz.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runanywhere import EventBus, VoiceAgentOptions, VoicePipelineOptions
from runanywhere.core.events import GenerationCompleted, TTSSynthesized
from runanywhere.media.audio import load_audio, save_wav
from runanywhere.server.realtime import RealtimeEngines, realtime_route

from .localserver import serving
from .wer import cer, wer

RATE = 24000
CHUNK = 960  # 40 ms


@pytest.fixture(scope="module")
def engines(voice_engines) -> RealtimeEngines:
    stt, llm, tts, vad = voice_engines
    return RealtimeEngines(stt, llm, tts, vad,
                           pipeline=VoicePipelineOptions().with_generation(temperature=0, max_tokens=40),
                           agent=VoiceAgentOptions())


@pytest.fixture(scope="module")
def port(engines: RealtimeEngines) -> Iterator[int]:
    """The port of a local server with only the realtime route; it stops after the module."""
    from starlette.applications import Starlette

    with serving(Starlette(routes=[realtime_route(engines)])) as port:
        yield port


@pytest.fixture(scope="module")
def wav(engines: RealtimeEngines, tmp_path_factory: pytest.TempPathFactory):
    """``wav(text)``: the path of a WAV of ``text`` in the Piper voice, as a user's recording would be."""
    folder = tmp_path_factory.mktemp("speech")

    def make(text: str) -> Path:
        path = folder / f"{abs(hash(text))}.wav"
        if not path.exists():
            save_wav(path, engines.tts.synthesize(text))
        return path

    return make


def pcm_chunks(path: Path, silence_s: float = 1.5) -> list[str]:
    """A WAV as the protocol's appends: base64 PCM16 at 24 kHz, 40 ms each, then ``silence_s`` of silence."""
    audio = load_audio(path, target_rate=RATE).samples
    audio = np.concatenate([np.zeros(int(0.3 * RATE), np.float32), audio, np.zeros(int(silence_s * RATE), np.float32)])
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2")
    return [base64.b64encode(pcm[at:at + CHUNK].tobytes()).decode() for at in range(0, len(pcm), CHUNK)]


def silence(seconds: float) -> list[str]:
    """``seconds`` of digital silence as the protocol's appends."""
    return [base64.b64encode(np.zeros(CHUNK, "<i2").tobytes()).decode()] * round(seconds * RATE / CHUNK)


def decode(delta: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(delta), dtype="<i2").astype(np.float32) / 32768


@contextlib.asynccontextmanager
async def connect(port: int, **options: Any) -> AsyncIterator[Any]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", websocket_base_url=f"ws://127.0.0.1:{port}/v1",
                         api_key="x")
    async with client.realtime.connect(model="runanywhere-voice", **options) as connection:
        yield connection


async def until(connection: Any, kind: str, seen: list[Any]) -> Any:
    """Read events into ``seen`` until one of type ``kind`` (a guard against a hang, not a speed limit: the
    machine may be busy); returns it."""
    async with asyncio.timeout(600):
        async for event in connection:
            seen.append(event)
            if event.type == kind:
                return event
    raise AssertionError(f"the connection closed before {kind}")


def of(seen: list[Any], kind: str) -> list[Any]:
    return [e for e in seen if e.type == kind]


def test_a_spoken_question_gets_spoken_audio_and_a_transcript_back(port: int, wav, engines: RealtimeEngines):
    async def main() -> list[Any]:
        seen: list[Any] = []
        async with connect(port) as connection:
            created = await until(connection, "session.created", seen)
            assert created.session.audio.input.turn_detection.type == "server_vad"
            await connection.session.update(session={
                "type": "realtime", "audio": {"input": {"turn_detection": {
                    "type": "server_vad", "threshold": 0.5, "silence_duration_ms": 500, "prefix_padding_ms": 300}}}})
            updated = await until(connection, "session.updated", seen)
            assert updated.session.audio.input.turn_detection.silence_duration_ms == 500
            for chunk in pcm_chunks(wav("What is the capital of France?")):
                await connection.input_audio_buffer.append(audio=chunk)
            await until(connection, "response.done", seen)
        return seen

    seen = asyncio.run(main())

    kinds = [e.type for e in seen]
    assert kinds.index("input_audio_buffer.speech_started") < kinds.index("input_audio_buffer.speech_stopped") \
        < kinds.index("input_audio_buffer.committed") < kinds.index("response.created") \
        < kinds.index("response.output_audio.delta") < kinds.index("response.done")
    [started], [committed] = of(seen, "input_audio_buffer.speech_started"), of(seen, "input_audio_buffer.committed")
    assert started.item_id == committed.item_id
    # the VAD's times are where the speech is in the audio sent (after 0.3 s of silence); the start includes
    # the prefix padding (300 ms), as the protocol says
    speech = load_audio(wav("What is the capital of France?"), target_rate=RATE).samples
    audible = np.flatnonzero(np.abs(speech) > 0.01) * 1000 / RATE + 300
    [stopped] = of(seen, "input_audio_buffer.speech_stopped")
    assert abs(started.audio_start_ms - max(0, audible[0] - 300)) < 150
    assert abs(stopped.audio_end_ms - audible[-1]) < 300, (stopped.audio_end_ms, audible[-1])
    [heard] = of(seen, "conversation.item.input_audio_transcription.completed")
    assert heard.item_id == committed.item_id and wer("What is the capital of France?", heard.transcript) == 0
    [done] = of(seen, "response.done")
    assert done.response.status == "completed"
    transcript = "".join(e.delta for e in of(seen, "response.output_audio_transcript.delta"))
    [said] = of(seen, "response.output_audio_transcript.done")
    assert said.transcript == transcript.strip() and "paris" in transcript.lower()
    assert done.response.output[0].content[0].transcript == said.transcript
    # the audio deltas are the reply, spoken: heard back, they say the transcript
    audio = np.concatenate([decode(e.delta) for e in of(seen, "response.output_audio.delta")])
    assert cer(said.transcript, engines.stt.transcribe(audio, RATE).text) <= 0.15
    latency = done.response.latency
    assert latency["vad_end_of_speech_delay_ms"] > 0 and latency["stt_ms"] > 0
    assert latency["llm_time_to_first_token_ms"] > 0 and latency["speech_end_to_first_audio_ms"] > 0


def test_speech_during_the_reply_cancels_it_and_truncate_trims_it_to_what_was_heard(port: int, wav):
    story, question = wav("Tell me a long story about a dragon."), wav("What is two plus two?")

    async def main() -> list[Any]:
        seen: list[Any] = []
        async with connect(port) as connection:
            await connection.session.update(session={"type": "realtime", "max_output_tokens": 200})
            await until(connection, "session.updated", seen)
            for chunk in pcm_chunks(story):
                await connection.input_audio_buffer.append(audio=chunk)
            first = await until(connection, "response.output_audio.delta", seen)
            await until(connection, "response.output_audio.delta", seen)  # the reply's second clause is out
            for chunk in pcm_chunks(question):  # the user talks over the reply
                await connection.input_audio_buffer.append(audio=chunk)
            cancelled = await until(connection, "response.done", seen)
            heard_ms = len(decode(first.delta)) * 1000 // RATE  # the client played only the first clause
            await connection.conversation.item.truncate(item_id=first.item_id, content_index=0, audio_end_ms=heard_ms)
            await until(connection, "conversation.item.truncated", seen)
            await connection.conversation.item.retrieve(item_id=first.item_id)
            await until(connection, "conversation.item.retrieved", seen)
            await until(connection, "response.done", seen)  # the question asked over the reply is answered
            assert cancelled.response.id == first.response_id
        return seen

    seen = asyncio.run(main())

    cancelled, answered = of(seen, "response.done")
    assert cancelled.response.status == "cancelled" and cancelled.response.status_details.reason == "turn_detected"
    cut = seen.index(cancelled)
    _, barge_in = of(seen, "input_audio_buffer.speech_started")
    assert seen.index(barge_in) < cut  # as OpenAI's: the client hears that the user spoke, then that the reply stopped
    assert not [e for e in seen[cut:] if getattr(e, "response_id", None) == cancelled.response.id
                and e.type.endswith(".delta")], "the reply went on after the user spoke"
    said = cancelled.response.output[0].content[0].transcript
    [kept] = of(seen, "conversation.item.retrieved")
    assert kept.item.status == "incomplete"
    assert said.startswith(kept.item.content[0].transcript) and len(kept.item.content[0].transcript) < len(said)
    assert answered.response.status == "completed"
    transcripts = [e.transcript for e in of(seen, "conversation.item.input_audio_transcription.completed")]
    assert wer("What is 2 plus 2?", transcripts[-1].replace("two", "2")) == 0


def test_bad_events_are_answered_with_error_events_and_the_session_goes_on(port: int):
    async def main() -> list[Any]:
        seen: list[Any] = []
        async with connect(port) as connection:
            await until(connection, "session.created", seen)
            for bad in ('{"type": "input_audio_buffer.append", "audio": "AAA', '{"type": "no.such.event"}',
                        '{"type": "input_audio_buffer.append", "audio": "not base64!"}',
                        '{"type": "input_audio_buffer.append", "audio": "AAAA", "event_id": "odd"}', '[1, 2]',
                        '{"type": "conversation.item.delete", "item_id": "nope"}'):
                await connection.send_raw(bad)
                await until(connection, "error", seen)
            await connection.session.update(session={"type": "realtime", "audio": {"input": {
                "turn_detection": {"type": "semantic_vad"}}}})
            await until(connection, "error", seen)
            await connection.session.update(session={"type": "realtime", "audio": {"input": {
                "turn_detection": {"type": "server_vad", "create_response": False}}}})
            await until(connection, "error", seen)
            await connection.session.update(session={"type": "realtime", "tools": [{"type": "mcp"}]})
            await until(connection, "error", seen)
            await connection.session.update(session={"type": "realtime", "audio": {"output": {"voice": "nobody"}}})
            await until(connection, "error", seen)
            await connection.session.update(session={"type": "realtime", "instructions": "Be brief.", "audio": {
                "input": {"transcription": {"model": "whisper-1"}}, "output": {"voice": "alloy"}}})
            await until(connection, "session.updated", seen)
        return seen

    seen = asyncio.run(main())

    codes = [(e.error.code, e.error.param) for e in of(seen, "error")]
    assert codes == [("invalid_json", None), ("invalid_event_type", "type"), ("invalid_audio", "audio"),
                     ("invalid_audio", "audio"), ("invalid_json", None), ("item_not_found", "item_id"),
                     ("unsupported_parameter", "session.audio.input.turn_detection.type"),
                     ("unsupported_parameter", "session.audio.input.turn_detection.create_response"),
                     ("unsupported_parameter", "session.tools[0].type"),
                     ("invalid_value", "session.audio.output.voice")]
    assert of(seen, "error")[3].error.event_id == "odd"
    [updated] = of(seen, "session.updated")
    assert updated.session.instructions == "Be brief." and updated.session.audio.output.voice == "alloy"
    assert updated.session.audio.input.transcription.model == "faster-whisper-tiny.en"  # what really transcribes


def test_without_turn_detection_the_client_commits_and_asks_for_each_reply(port: int, wav):
    async def main() -> list[Any]:
        seen: list[Any] = []
        async with connect(port) as connection:
            await connection.session.update(session={"type": "realtime", "output_modalities": ["text"],
                                                     "audio": {"input": {"turn_detection": None}}})
            await until(connection, "session.updated", seen)
            for chunk in pcm_chunks(wav("What color is the sky?"), silence_s=0.2):
                await connection.input_audio_buffer.append(audio=chunk)
            await connection.input_audio_buffer.commit()
            heard = await until(connection, "conversation.item.input_audio_transcription.completed", seen)
            await connection.conversation.item.delete(item_id=heard.item_id)
            await until(connection, "conversation.item.deleted", seen)
            await connection.conversation.item.create(item={
                "type": "message", "role": "user", "content": [{"type": "input_text",
                                                               "text": "What is the capital of France?"}]})
            await until(connection, "conversation.item.done", seen)
            await connection.response.create()
            await until(connection, "response.done", seen)
        return seen

    seen = asyncio.run(main())

    assert wer("What color is the sky?", of(seen, "conversation.item.input_audio_transcription.completed")[0]
               .transcript) == 0
    assert not of(seen, "input_audio_buffer.speech_started")  # no VAD: the client said when the turn ended
    [done] = of(seen, "response.done")
    text = "".join(e.delta for e in of(seen, "response.output_text.delta"))
    assert done.response.status == "completed" and "paris" in text.lower()
    assert not of(seen, "response.output_audio.delta")
    assert done.response.latency["tts_real_time_factor"] is None  # text only: no speech was synthesised
    assert done.response.output[0].content[0].text == text.strip()


def test_a_client_of_the_beta_protocol_gets_its_event_names(port: int):
    async def main() -> list[Any]:
        seen: list[Any] = []
        async with connect(port, extra_headers={"OpenAI-Beta": "realtime=v1"}) as connection:
            created = await until(connection, "session.created", seen)
            assert created.session.model == "runanywhere-voice"
            await connection.conversation.item.create(item={
                "type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello"}]})
            await until(connection, "conversation.item.done", seen)
        return seen

    seen = asyncio.run(main())

    [created] = of(seen, "conversation.item.created")  # GA: conversation.item.added
    assert created.item.role == "user" and created.item.content[0].text == "Hello"


def test_the_model_asks_the_client_to_run_a_function_then_answers_with_its_output(port: int):
    weather = {"type": "function", "name": "get_weather", "description": "The current weather in a city.",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}

    async def main() -> list[Any]:
        seen: list[Any] = []
        async with connect(port) as connection:
            await connection.session.update(session={
                "type": "realtime", "output_modalities": ["text"], "audio": {"input": {"turn_detection": None}},
                "tools": [weather], "tool_choice": {"type": "function", "name": "get_weather"}})
            await until(connection, "session.updated", seen)
            await connection.conversation.item.create(item={
                "type": "message", "role": "user", "content": [{"type": "input_text",
                                                               "text": "What is the weather in Paris?"}]})
            await connection.response.create()
            call = await until(connection, "response.function_call_arguments.done", seen)
            await until(connection, "response.done", seen)
            await connection.conversation.item.create(item={  # the client ran the function
                "type": "function_call_output", "call_id": call.call_id,
                "output": json.dumps({"sky": "sunny", "temperature_c": 21})})
            await connection.session.update(session={"type": "realtime", "tool_choice": "none"})
            await connection.response.create()
            await until(connection, "response.done", seen)
        return seen

    seen = asyncio.run(main())

    [call] = of(seen, "response.function_call_arguments.done")
    assert call.name == "get_weather" and "paris" in json.loads(call.arguments)["city"].lower()
    asked, answered = of(seen, "response.done")
    assert asked.response.status == "completed"
    assert [(i.type, i.call_id) for i in asked.response.output] == [("function_call", call.call_id)]
    assert answered.response.status == "completed" and answered.response.output[0].type == "message"
    assert "sunny" in answered.response.output[0].content[0].text.lower()  # it read the function's output


def user_text(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def test_under_server_vad_a_manual_commit_commits_the_speech_so_far(port: int, wav):
    async def main() -> list[Any]:
        seen: list[Any] = []
        async with connect(port) as connection:
            await connection.session.update(session={"type": "realtime", "output_modalities": ["text"]})
            await until(connection, "session.updated", seen)
            await connection.input_audio_buffer.commit()  # nothing was said yet
            await until(connection, "error", seen)
            for chunk in pcm_chunks(wav("What color is the sky?"), silence_s=0.1):  # too short a pause to end it
                await connection.input_audio_buffer.append(audio=chunk)
            await connection.input_audio_buffer.commit()  # push-to-talk released, server_vad still on
            heard = await until(connection, "conversation.item.input_audio_transcription.completed", seen)
            for chunk in silence(1.5):  # the VAD would end the turn here, had the commit not taken it
                await connection.input_audio_buffer.append(audio=chunk)
            await connection.conversation.item.retrieve(item_id=heard.item_id)  # events are applied in order
            await until(connection, "conversation.item.retrieved", seen)
            await connection.response.create()
            await until(connection, "response.done", seen)
        return seen

    seen = asyncio.run(main())

    [empty] = of(seen, "error")
    assert empty.error.code == "input_audio_buffer_commit_empty"
    [started], [committed] = of(seen, "input_audio_buffer.speech_started"), of(seen, "input_audio_buffer.committed")
    assert started.item_id == committed.item_id
    assert not of(seen, "input_audio_buffer.speech_stopped"), "the committed speech was taken as a turn again"
    [heard] = of(seen, "conversation.item.input_audio_transcription.completed")
    assert heard.item_id == committed.item_id and wer("What color is the sky?", heard.transcript) == 0
    [created] = of(seen, "response.created")  # a commit is not answered until the client asks
    assert seen.index(created) > seen.index(of(seen, "conversation.item.retrieved")[0])
    [done] = of(seen, "response.done")
    assert done.response.status == "completed" and done.response.output[0].content[0].text


def test_a_client_leaving_mid_reply_stops_its_generation_and_speech(port: int, voice_bus: EventBus):
    generations: list[GenerationCompleted] = []
    syntheses: list[TTSSynthesized] = []
    ended = threading.Event()
    stop_watching = [voice_bus.on(GenerationCompleted, lambda e: (generations.append(e), ended.set())),
                     voice_bus.on(TTSSynthesized, syntheses.append)]

    async def ask(question: str, max_tokens: int, leave_early: bool) -> list[Any]:
        seen: list[Any] = []
        async with connect(port) as connection:
            await connection.session.update(session={"type": "realtime", "max_output_tokens": max_tokens,
                                                     "audio": {"input": {"turn_detection": None}}})
            await connection.conversation.item.create(item=user_text(question))
            await connection.response.create()
            await until(connection, "response.output_audio.delta" if leave_early else "response.done", seen)
        return seen  # leaving the block closes the connection, mid-reply when ``leave_early``

    try:
        asyncio.run(ask("Write the numbers from 1 to 500, separated by commas.", 1500, leave_early=True))
        assert ended.wait(600), "the generation never ended"  # a guard against a hang, not a speed limit
        [left] = generations
        assert left.finish_reason == "cancelled" and left.tokens_used < 1500
        seen = asyncio.run(ask("Say hello.", 20, leave_early=False))  # the server goes on serving
    finally:
        for stop in stop_watching:
            stop()

    [done] = of(seen, "response.done")
    assert done.response.status == "completed" and of(seen, "response.output_audio.delta")
    assert len(generations) == 2 and generations[1].finish_reason in ("stop", "length")
    # one voice worker speaks in order: a synthesis of the first reply run to its end would have reported first
    assert len(syntheses) == 1, "the reply's speech went on after its client left"


def test_temperature_and_top_p_in_session_update_sample_the_replies(port: int, engines: RealtimeEngines):
    question = "Tell me a story about a cat."

    async def ask(sampling: dict[str, Any]) -> tuple[dict[str, Any], str]:
        seen: list[Any] = []
        async with connect(port) as connection:
            await connection.session.update(session={"type": "realtime", "output_modalities": ["text"],
                                                     "max_output_tokens": 30,
                                                     "audio": {"input": {"turn_detection": None}}, **sampling})
            updated = await until(connection, "session.updated", seen)
            await connection.conversation.item.create(item=user_text(question))
            await connection.response.create()
            done = await until(connection, "response.done", seen)
            for bad in ({"temperature": 2.5}, {"top_p": 0}):
                await connection.session.update(session={"type": "realtime", **bad})
                error = await until(connection, "error", seen)
                assert error.error.param == f"session.{next(iter(bad))}"
        return updated.session.model_dump(), done.response.output[0].content[0].text

    prompt = [{"role": "system", "content": VoicePipelineOptions.DEFAULT_SYSTEM_PROMPT},
              {"role": "user", "content": question}]
    greedy = engines.llm.generate(prompt, replace(engines.pipeline.generation, max_tokens=30, temperature=0.0))
    greedy_text = greedy.text.strip()
    narrow, narrow_text = asyncio.run(ask({"temperature": 2.0, "top_p": 0.01}))
    hot, hot_text = asyncio.run(ask({"temperature": 2.0}))

    assert (narrow["temperature"], narrow["top_p"]) == (2.0, 0.01)
    # So hot, yet top-p keeps only the likeliest token: the greedy reply. Compared over its first words: a prompt
    # evaluated from a cached prefix rounds a little differently, which can flip a near tie late in the reply.
    assert narrow_text.split()[:12] == greedy_text.split()[:12]
    assert (hot["temperature"], hot["top_p"]) == (2.0, engines.pipeline.generation.top_p)
    assert hot_text != greedy_text  # the same heat with the pipeline's top-p samples: the temperature reached the model

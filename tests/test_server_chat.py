"""The server's chat, completions, embeddings and models endpoints, through the official ``openai`` client.

One server per module on 127.0.0.1 with the packaged SmolLM2-135M-Instruct and
all-MiniLM-L6-v2; greedy decoding, so answers are the model's own, not a draw.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
from pydantic import BaseModel

from runanywhere import EventBus
from runanywhere.models.manager import ModelLibrary
from runanywhere.server import ServerConfig, create_app
from runanywhere.server.demo_tools import DEMO_TOOLS

from .conftest import LibraryFactory
from .serving import serving

CHAT = "smollm2-135m-instruct-q4_1"
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Current time in a time zone",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}
FRANCE = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def client(packaged_models: ModelLibrary, smollm2: Path) -> Iterator[openai.OpenAI]:
    app = create_app(ServerConfig(models=(CHAT,), n_ctx=2048), library=packaged_models, events=EventBus())
    with serving(app) as url:
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def test_models_list_each_with_capabilities_and_state(client: openai.OpenAI):
    models = {m.id: m.model_extra or {} for m in client.models.list().data}
    assert models[CHAT]["state"] == "loaded" and models[CHAT]["capabilities"] == ["chat", "completions"]
    assert models["all-minilm-l6-v2"]["capabilities"] == ["embeddings"]
    assert models["faster-whisper-tiny.en"]["capabilities"] == ["transcription"]
    assert models["piper-en_US-joe-medium"]["capabilities"] == ["speech"]
    assert {m["state"] for m in models.values()} <= {"loaded", "stored", "available", "remote", "downloading"}


def test_chat_answers_with_usage_and_timings(client: openai.OpenAI):
    reply = client.chat.completions.create(model=CHAT, messages=FRANCE, temperature=0, max_tokens=24)
    assert "Paris" in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    timings = (reply.model_extra or {})["timings"]
    assert timings["time_to_first_token_ms"] > 0 and timings["decode_tokens_per_second"] > 0


def test_a_developer_message_is_the_system_prompt(client: openai.OpenAI):
    messages = [{"role": "developer", "content": "Answer with one word."}, *FRANCE]
    reply = client.chat.completions.create(model=CHAT, messages=messages, temperature=0, max_tokens=24)  # type: ignore[arg-type]
    assert reply.choices[0].message.content


def test_streaming_gives_the_same_text_and_one_usage_chunk_only_when_asked(client: openai.OpenAI):
    whole = client.chat.completions.create(model=CHAT, messages=FRANCE, temperature=0, max_tokens=24)
    chunks = list(client.chat.completions.create(model=CHAT, messages=FRANCE, temperature=0, max_tokens=24,
                                                 stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usages = [c.usage for c in chunks if c.usage is not None]
    assert len(usages) == 1 and not chunks[-1].choices and usages[0].completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]
    plain = list(client.chat.completions.create(model=CHAT, messages=FRANCE, temperature=0, max_tokens=8, stream=True))
    assert all(c.usage is None for c in plain) and plain[-1].choices[0].finish_reason


def test_the_stream_helper_assembles_a_required_tool_call(client: openai.OpenAI):
    question = [{"role": "user", "content": "What is the weather like in Paris?"}]
    with client.chat.completions.stream(model=CHAT, messages=question, tools=[WEATHER], tool_choice="required",  # type: ignore[list-item]
                                        temperature=0, max_tokens=64) as stream:
        kinds = {event.type for event in stream}
        final = stream.get_final_completion()
    assert "tool_calls.function.arguments.done" in kinds
    [call] = final.choices[0].message.tool_calls or []
    assert call.id and call.function.name == "get_weather"
    assert final.choices[0].finish_reason == "tool_calls"
    assert "city" in (call.function.parsed_arguments or {}) or '"city"' in call.function.arguments


# Forced calls: whether SmolLM2 calls by itself under "auto" changes with the CPU's arithmetic (test_qwen_tools
# streams an "auto" call from the model that decides reliably).
@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_a_streamed_tool_call_comes_as_it_is_generated_name_first_then_argument_fragments(
        client: openai.OpenAI, choice: object):
    question = [{"role": "user", "content": "What is the weather like in Paris? Use the tool."}]
    chunks = list(client.chat.completions.create(model=CHAT, messages=question, tools=[WEATHER, TIME],  # type: ignore[arg-type]
                                                 tool_choice=choice, temperature=0, max_tokens=64, stream=True))  # type: ignore[arg-type]
    calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    first, *rest = calls
    assert first.index == 0 and first.id and first.function and first.function.name == "get_weather"
    assert first.function.arguments == "" and len(rest) > 1  # the arguments arrive in several fragments
    assert all(c.index == 0 and c.id is None and c.function and c.function.name is None for c in rest)
    arguments = json.loads("".join(c.function.arguments or "" for c in rest if c.function))
    assert isinstance(arguments["city"], str) and arguments["city"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    with client.chat.completions.stream(model=CHAT, messages=question, tools=[WEATHER, TIME],  # type: ignore[list-item]
                                        tool_choice=choice, temperature=0, max_tokens=64) as helper:  # type: ignore[arg-type]
        fragments = [e for e in helper if e.type == "tool_calls.function.arguments.delta"]
        final = helper.get_final_completion()
    [call] = final.choices[0].message.tool_calls or []
    assert len(fragments) > 1 and json.loads(call.function.arguments) == arguments  # type: ignore[union-attr]


def test_a_named_tool_choice_forces_that_tool(client: openai.OpenAI):
    question = [{"role": "user", "content": "What is the weather like in Paris?"}]
    reply = client.chat.completions.create(model=CHAT, messages=question, tools=[WEATHER, TIME],  # type: ignore[list-item]
                                           tool_choice={"type": "function", "function": {"name": "get_time"}},
                                           temperature=0, max_tokens=64)
    [call] = reply.choices[0].message.tool_calls or []
    assert call.function.name == "get_time" and "zone" in call.function.arguments
    answer = client.chat.completions.create(model=CHAT, messages=[  # the call and its result go back in
        *question, reply.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
        {"role": "tool", "tool_call_id": call.id, "content": '{"time": "12:00"}'}],
        tools=[WEATHER, TIME], tool_choice="none", temperature=0, max_tokens=32)  # type: ignore[list-item]
    assert answer.choices[0].message.content and not answer.choices[0].message.tool_calls


CALCULATE = [{"role": "user", "content": "What is 17 * 23? Use the calculator."}]
DEMO = [tool.schema() for tool in DEMO_TOOLS.values()]


@pytest.mark.parametrize("stream", [False, True])
def test_a_forced_call_cut_by_max_tokens_is_length_and_never_content(client: openai.OpenAI, stream: bool):
    if stream:
        chunks = list(client.chat.completions.create(model=CHAT, messages=CALCULATE, tools=DEMO, tool_choice="required",  # type: ignore[arg-type]
                                                     temperature=0, max_tokens=24, stream=True))
        deltas = [c.choices[0].delta for c in chunks if c.choices]
        fragments = "".join(call.function.arguments or "" for d in deltas for call in d.tool_calls or []
                            if call.function)
        assert not any(d.content for d in deltas)  # the call streams as far as it got (as OpenAI's does), no text
        with pytest.raises(json.JSONDecodeError):
            json.loads(fragments)
        assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["length"]
        return
    reply = client.chat.completions.create(model=CHAT, messages=CALCULATE, tools=DEMO, tool_choice="required",  # type: ignore[arg-type]
                                           temperature=0, max_tokens=24)
    choice = reply.choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content is None and not choice.message.tool_calls


class Capital(BaseModel):
    country: str
    city: str


def test_parse_returns_a_pydantic_object_from_a_json_schema(client: openai.OpenAI):
    completion = client.chat.completions.parse(model=CHAT, messages=FRANCE, response_format=Capital, temperature=0,
                                               max_tokens=64)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Capital) and parsed.city and parsed.country


def test_json_object_replies_are_json_objects(client: openai.OpenAI):
    reply = client.chat.completions.create(model=CHAT, messages=FRANCE, temperature=0, max_tokens=64,
                                           response_format={"type": "json_object"})
    assert (reply.choices[0].message.content or "").lstrip().startswith("{")


def test_completions_continue_a_raw_prompt(client: openai.OpenAI):
    whole = client.completions.create(model=CHAT, prompt="One, two, three,", temperature=0, max_tokens=8)
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=CHAT, prompt="One, two, three,", temperature=0, max_tokens=8, stream=True) if c.choices)
    assert whole.choices[0].text and streamed == whole.choices[0].text


def test_embeddings_as_floats_and_base64_agree_and_mean_something(client: openai.OpenAI):
    texts = ["cat", "kitten", "the stock market fell today"]
    floats = client.embeddings.create(model="all-minilm-l6-v2", input=texts)
    raw = client.embeddings.with_raw_response.create(model="all-minilm-l6-v2", input=texts,
                                                     encoding_format="base64").http_response.json()
    vectors = np.array([d.embedding for d in floats.data])
    decoded = np.array([np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in raw["data"]])
    assert vectors.shape == (3, 384) and np.allclose(vectors, decoded, atol=1e-6)
    assert vectors[0] @ vectors[1] > 0.6 > 0.3 > vectors[0] @ vectors[2]
    assert floats.usage.prompt_tokens >= 3
    single = client.embeddings.create(model="all-minilm-l6-v2", input="cat")
    # one text alone vs in a padded batch of three: the same vector up to float32 rounding
    assert np.allclose(single.data[0].embedding, vectors[0], atol=1e-4)


def test_a_registered_local_model_is_listed_as_stored_until_loaded(make_library: LibraryFactory, tiny_llm: Path):
    library = make_library(offline=True)
    library.register({"id": "my-tiny", "name": "my tiny model", "category": "language", "format": "gguf",
                      "engine": "llamacpp", "local_path": str(tiny_llm)})
    library.register({"id": "gone", "name": "a moved model", "category": "language", "format": "gguf",
                      "engine": "llamacpp", "local_path": str(tiny_llm.with_name("moved.gguf"))})
    with serving(create_app(ServerConfig(n_ctx=512), library=library, events=EventBus())) as url:
        local = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)

        def state(model_id: str) -> str:
            return str((local.models.retrieve(model_id).model_extra or {})["state"])

        assert state("my-tiny") == "stored" and state("gone") == "missing"
        assert local.post("/models/my-tiny/load", cast_to=dict)["state"] == "loaded" == state("my-tiny")
        assert local.post("/models/my-tiny/unload", cast_to=dict)["state"] == "stored" == state("my-tiny")


def test_models_are_pulled_with_progress_loaded_unloaded_and_deleted(client: openai.OpenAI):
    import httpx

    base = str(client.base_url).rstrip("/")
    with httpx.Client(base_url=base, timeout=300) as http:
        with http.stream("POST", "/models/silero-vad-v6/pull") as response:
            events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: {")]
        assert events[-1]["status"] == "done" and http.get("/models/silero-vad-v6").json()["state"] == "stored"
        assert http.post("/models/all-minilm-l6-v2/load").json()["state"] == "loaded"
        refused = http.delete("/models/all-minilm-l6-v2")
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "model_in_use"
        unloaded = http.post("/models/all-minilm-l6-v2/unload").json()
        assert unloaded["unloaded"] and unloaded["state"] == "stored"
        deleted = http.delete("/models/silero-vad-v6").json()
        assert deleted["deleted"] and http.get("/models/silero-vad-v6").json()["state"] == "available"
        assert http.post("/models/no-such-model/pull").status_code == 404

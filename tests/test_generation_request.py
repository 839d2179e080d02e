"""TextGenerator.start(GenerationRequest(...)): the one entry every generation uses, as usage examples.

A request carries a prompt (or chat messages), options, a grammar *spec* (GBNF text or a JSON schema, compiled
by the engine on its own worker), OpenAI-style tools for the chat template, and room for images. All of it runs
on the tiny random model the suite writes, so it checks plumbing, not answers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from runanywhere import (
    CancelToken,
    EventBus,
    GenerationOptions,
    GenerationRequest,
    GenerationStarted,
    InvalidInputError,
    SDKConfig,
    TextGenerator,
)
from runanywhere.models.catalog import Catalog
from runanywhere.models.manager import ModelLibrary

from .tinymodels import CHATML, write_tiny_llm

MOOD = {"type": "object", "properties": {"mood": {"enum": ["happy", "sad"]}, "ok": {"type": "boolean"}},
        "required": ["mood", "ok"], "additionalProperties": False}
YES_OR_NO = 'root ::= "yes" | "no"'
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def _generator(path: Path, bus: EventBus | None = None) -> TextGenerator:
    bus = bus or EventBus()
    gen = TextGenerator(ModelLibrary(SDKConfig(offline=True), catalog=Catalog(), events=bus), events=bus)
    gen.load_model(path)
    return gen


@pytest.fixture
def tiny(tiny_llm: Path, bus: EventBus) -> Iterator[TextGenerator]:
    gen = _generator(tiny_llm, bus)
    yield gen
    gen.unload()


def test_a_json_schema_spec_holds_the_streamed_reply_to_the_schema(tiny: TextGenerator):
    request = GenerationRequest("How are you?", GenerationOptions(max_tokens=40, temperature=1.0, seed=1),
                                grammar=MOOD)
    stream = tiny.start(request)
    pieces = [event.text for event in stream]
    assert "".join(pieces) == stream.result.text
    value = json.loads(stream.result.text)
    assert value["mood"] in ("happy", "sad") and isinstance(value["ok"], bool)


def test_a_gbnf_spec_on_the_request_or_in_the_options_is_the_same_constraint(tiny: TextGenerator):
    on_request = tiny.start(GenerationRequest("Is it?", grammar=YES_OR_NO), deliver=False).wait()
    in_options = tiny.start(GenerationRequest("Is it?", GenerationOptions(grammar=YES_OR_NO))).wait()
    assert on_request.text in ("yes", "no") and in_options.text in ("yes", "no")
    # The request's own spec wins over the options' grammar.
    both = GenerationRequest("Is it?", GenerationOptions(grammar='root ::= "never"'), grammar=YES_OR_NO)
    assert tiny.start(both).wait().text in ("yes", "no")


def test_the_grammar_is_compiled_on_the_models_worker(tiny: TextGenerator, monkeypatch: pytest.MonkeyPatch):
    engine = tiny.engine
    compiled_on: list[str] = []
    real_compile = engine.compile_grammar

    def recording_compile(**spec: object) -> object:
        compiled_on.append(threading.current_thread().name)
        return real_compile(**spec)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "compile_grammar", recording_compile)
    tiny.start(GenerationRequest("Is it?", grammar=YES_OR_NO)).wait()
    assert len(compiled_on) == 1
    assert compiled_on[0] != threading.current_thread().name and compiled_on[0].startswith("runanywhere-llm")


def test_a_bad_grammar_is_the_same_typed_error_blocking_and_streaming(tiny: TextGenerator, bus: EventBus):
    started: list[GenerationStarted] = []
    bus.on(GenerationStarted, started.append)
    bad = GenerationRequest("hello", grammar="root ::= missing-rule")
    stream = tiny.start(bad)  # queued: the worker finds out
    with pytest.raises(InvalidInputError, match="rejected the grammar"):
        list(stream)
    with pytest.raises(InvalidInputError, match="rejected the grammar"):
        tiny.start(bad, deliver=False).wait()
    with pytest.raises(InvalidInputError, match="rejected the grammar"):
        tiny.generate("hello", grammar="root ::= missing-rule")
    assert started == []  # no generation began
    assert tiny.start(GenerationRequest("hello", GenerationOptions(max_tokens=3))).wait().output_tokens == 3


def test_tools_are_shown_to_a_template_that_renders_them(tmp_path: Path):
    tools_chatml = ("{% if tools %}<|im_start|>system\nTools:{% for tool in tools %} {{ tool.function.name }}"
                    "{% endfor %}<|im_end|>\n{% endif %}" + CHATML)
    gen = _generator(write_tiny_llm(tmp_path / "tools.gguf", chat_template=tools_chatml))
    try:
        options = GenerationOptions(max_tokens=2)
        plain = gen.start(GenerationRequest("the weather?", options)).wait()
        offered = gen.start(GenerationRequest("the weather?", options, tools=[WEATHER_TOOL])).wait()
    finally:
        gen.unload()
    assert offered.input_tokens > plain.input_tokens


def test_cancelling_a_request_stops_it_and_frees_the_model(tiny: TextGenerator):
    cancel = CancelToken()
    stream = tiny.start(GenerationRequest("the cat", GenerationOptions(max_tokens=500, temperature=0)),
                        cancel=cancel)
    for index, _ in enumerate(stream):
        if index == 2:
            cancel.cancel()
    assert stream.result.finish_reason == "cancelled" and stream.result.output_tokens < 500
    assert tiny.start(GenerationRequest("the dog", GenerationOptions(max_tokens=3))).wait().output_tokens == 3


def test_a_result_only_request_queues_no_token_events(tiny: TextGenerator):
    stream = tiny.start(GenerationRequest("the cat", GenerationOptions(max_tokens=5)), deliver=False)
    assert list(stream) == []
    assert stream.result.output_tokens == 5 and stream.result.text


def test_bad_requests_are_typed_errors(tiny: TextGenerator):
    with pytest.raises(InvalidInputError):
        GenerationRequest([])
    with pytest.raises(InvalidInputError):
        GenerationRequest([{"role": "user"}])
    with pytest.raises(InvalidInputError):
        GenerationRequest(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        GenerationRequest("hi", grammar=42)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        GenerationRequest("hi", tools="get_weather")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="no images"):
        tiny.start(GenerationRequest("what is this?", images=(b"\x89PNG",)))
    with pytest.raises(InvalidInputError):
        tiny.start("hi")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="temprature"):
        tiny.generate("hi", temprature=0.5)


def test_a_request_is_frozen_and_keeps_its_own_copy_of_the_messages():
    messages = [{"role": "user", "content": "hi"}]
    request = GenerationRequest(messages, grammar=MOOD, tools=[WEATHER_TOOL])
    messages[0]["content"] = "changed"
    assert request.prompt[0]["content"] == "hi"  # type: ignore[index]
    assert request.grammar == MOOD and request.tools == (WEATHER_TOOL,) and request.images == ()
    with pytest.raises(AttributeError):
        request.grammar = None  # type: ignore[misc]

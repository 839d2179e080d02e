"""Structured output, tool calling and embeddings: real models for behaviour, the tiny model for plumbing."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

from runanywhere import (
    EmbeddingGenerator,
    EventBus,
    GenerationError,
    InvalidInputError,
    SDKConfig,
    StructuredOutputGenerator,
    TextGenerator,
    ToolCaller,
    ToolDefinition,
)
from runanywhere.models.catalog import Catalog
from runanywhere.models.manager import ModelLibrary

WEATHER = ToolDefinition(
    "get_weather", "Get the current weather in a city",
    # No extra keys: JSON Schema allows them unless told, and the tiny random model's never end.
    {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}}, "required": ["city"],
     "additionalProperties": False},
)


def _generator(path: Path) -> TextGenerator:
    gen = TextGenerator(ModelLibrary(SDKConfig(offline=True), catalog=Catalog(), events=EventBus()))
    gen.load_model(path, n_ctx=2048)
    return gen


@pytest.fixture(scope="module")
def smol(smollm2: Path):
    gen = _generator(smollm2)
    yield gen
    gen.unload()


@pytest.fixture
def tiny(tiny_llm: Path):
    gen = _generator(tiny_llm)
    yield gen
    gen.unload()


# ------------------------------------------------------------ structured output

CITY = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 30}, "country": {"type": "string", "maxLength": 30}},
    "required": ["city", "country"],
}


def test_structured_answer_matches_the_schema(smol: TextGenerator):
    result = StructuredOutputGenerator(smol).generate("What is the capital of France?", CITY,
                                                      temperature=0, max_tokens=60)
    assert set(result.value) == {"city", "country"}
    assert result.value["city"] == "Paris"
    assert StructuredOutputGenerator.validate(result.value, CITY).is_valid


def test_grammar_holds_even_a_random_model_to_the_schema(tiny: TextGenerator):
    schema = {"type": "object",
              "properties": {"mood": {"enum": ["happy", "sad"]}, "ok": {"type": "boolean"}},
              "required": ["mood", "ok"], "additionalProperties": False}
    structured = StructuredOutputGenerator(tiny)
    for seed in range(3):
        value = structured.generate("How are you?", schema, temperature=1.0, seed=seed, max_tokens=40).value
        assert value["mood"] in ("happy", "sad") and isinstance(value["ok"], bool)
    assert asyncio.run(structured.agenerate("How are you?", schema, max_tokens=40)).value["mood"] in ("happy", "sad")


def test_an_invalid_schema_is_a_clear_error(tiny: TextGenerator):
    with pytest.raises(InvalidInputError, match="invalid JSON schema"):
        StructuredOutputGenerator(tiny).generate("x", {"type": "no-such-type"})


def test_output_cut_by_max_tokens_is_reported_not_returned(tiny: TextGenerator):
    schema = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}
    with pytest.raises(GenerationError, match="max_tokens"):
        StructuredOutputGenerator(tiny).generate("x", schema, max_tokens=3, include_schema=False)


def test_extract_and_validate_helpers_really_validate():
    text = 'Sure! ```json\n{"city": "Paris", "country": 3}\n``` hope that helps'
    assert StructuredOutputGenerator.extract_json(text) == {"city": "Paris", "country": 3}
    check = StructuredOutputGenerator.validate(text, CITY)
    assert not check.is_valid and "country" in check.errors[0]
    assert StructuredOutputGenerator.extract_json("no json here") is None


# ------------------------------------------------------------------ tool calling


def test_the_model_calls_the_weather_tool_and_uses_its_result(smol: TextGenerator):
    calls: list[dict] = []

    def get_weather(arguments: dict) -> dict:
        calls.append(arguments)
        return {"city": arguments["city"], "temperature_c": 21, "conditions": "sunny"}

    tools = ToolCaller(smol)
    tools.register_tool(WEATHER, get_weather)
    result = tools.generate_with_tools("What is the weather in Paris?", tool_choice="required",
                                       temperature=0, max_tokens=80)
    assert calls and calls[0]["city"] == "Paris"
    assert result.tool_calls[0].name == "get_weather"
    assert result.tool_results[0].result["conditions"] == "sunny"
    assert "sunny" in result.text.lower() or "21" in result.text
    assert "<tool_call>" not in result.text and result.is_complete


def test_a_failing_tool_reaches_the_model_as_an_error(tiny: TextGenerator):
    def broken(arguments: dict) -> dict:
        raise RuntimeError("weather service down")

    tools = ToolCaller(tiny)
    tools.register_tool(WEATHER, broken)
    result = tools.generate_with_tools("weather?", tool_choice="required", max_tool_calls=1, max_tokens=200)
    assert result.tool_results[0].error == "RuntimeError: weather service down"
    assert result.rounds == 2  # the call, then an answer after hearing about the error


def test_a_tool_that_never_returns_is_reported_as_timed_out(tiny: TextGenerator):
    never = threading.Event()
    tools = ToolCaller(tiny)
    tools.register_tool(WEATHER, lambda arguments: never.wait(), timeout_s=0.2)  # a hung weather service
    result = tools.generate_with_tools("weather?", tool_choice="required", max_tool_calls=1, max_tokens=200)
    never.set()
    assert result.tool_results[0].error == "ToolTimeoutError: tool 'get_weather' did not return within 0.2 s"


def test_async_runs_keep_the_loop_free_while_a_tool_hangs(tiny: TextGenerator):
    never = threading.Event()

    async def hung_async_tool(arguments: dict) -> dict:
        await asyncio.Event().wait()
        return {}

    async def run() -> tuple[list, list]:
        ticks: list[int] = []

        async def tick() -> None:  # the loop keeps running while the blocking tool waits on its thread
            while True:
                ticks.append(1)
                await asyncio.sleep(0.01)

        ticker = asyncio.ensure_future(tick())
        blocking, awaiting = ToolCaller(tiny), ToolCaller(tiny)
        blocking.register_tool(WEATHER, lambda arguments: never.wait(), timeout_s=0.3)
        awaiting.register_tool(WEATHER, hung_async_tool, timeout_s=0.2)
        results = [await caller.agenerate_with_tools("weather?", tool_choice="required", max_tool_calls=1,
                                                      max_tokens=200) for caller in (blocking, awaiting)]
        ticker.cancel()
        return [r.tool_results[0].error for r in results], ticks

    errors, ticks = asyncio.run(run())
    never.set()
    assert errors == ["ToolTimeoutError: tool 'get_weather' did not return within 0.3 s",
                      "ToolTimeoutError: tool 'get_weather' did not return within 0.2 s"]
    assert len(ticks) > 10


def test_a_tool_time_limit_must_be_positive(tiny: TextGenerator):
    with pytest.raises(InvalidInputError):
        ToolCaller(tiny).register_tool(WEATHER, lambda arguments: {}, timeout_s=-1)


def test_max_tool_calls_bounds_the_loop(tiny: TextGenerator):
    tools = ToolCaller(tiny)
    tools.register_tool(WEATHER, lambda a: {"ok": True})
    result = tools.generate_with_tools("weather?", tool_choice="required", max_tool_calls=1, max_tokens=200)
    assert len(result.tool_calls) == 1


def test_without_auto_execute_the_calls_are_returned_not_run(tiny: TextGenerator):
    ran: list[dict] = []
    tools = ToolCaller(tiny)
    tools.register_tool(WEATHER, ran.append)
    result = tools.generate_with_tools("weather?", tool_choice="required", auto_execute=False, max_tokens=200)
    assert ran == [] and result.tool_calls[0].name == "get_weather" and not result.tool_results


def test_async_tools_are_awaited(tiny: TextGenerator):
    async def get_weather(arguments: dict) -> dict:
        await asyncio.sleep(0)
        return {"conditions": "rain"}

    tools = ToolCaller(tiny)
    tools.register_tool(WEATHER, get_weather)
    result = asyncio.run(tools.agenerate_with_tools("weather?", tool_choice="required", max_tool_calls=1,
                                                    max_tokens=200))
    assert result.tool_results[0].result == {"conditions": "rain"}


def test_a_forced_call_cut_by_max_tokens_is_an_error(tiny: TextGenerator):
    tools = ToolCaller(tiny)
    tools.register_tool(WEATHER, lambda a: {})
    with pytest.raises(GenerationError, match="max_tokens"):
        tools.generate_with_tools("weather?", tool_choice="required", max_tokens=5)


def test_required_needs_a_tool(tiny: TextGenerator):
    with pytest.raises(InvalidInputError):
        ToolCaller(tiny).generate_with_tools("x", tool_choice="required")


# -------------------------------------------------------------------- embeddings


@pytest.fixture(scope="module")
def minilm(packaged_models: ModelLibrary):
    embedder = EmbeddingGenerator(packaged_models, events=EventBus())
    embedder.load_model("all-minilm-l6-v2")
    yield embedder
    embedder.unload()


def test_related_sentences_are_closer(minilm: EmbeddingGenerator):
    cat, kitten, stocks = minilm.embed_batch(["cat", "kitten", "the stock market fell today"])
    assert cat.dtype == np.float32 and cat.shape == (384,)
    assert minilm.cosine_similarity(cat, kitten) > minilm.cosine_similarity(cat, stocks) + 0.3
    assert np.isclose(np.linalg.norm(cat), 1.0, atol=1e-5)


def test_the_converted_model_is_kept_in_the_store_with_its_model(minilm: EmbeddingGenerator,
                                                                 packaged_models: ModelLibrary):
    stored = packaged_models.store.require("all-minilm-l6-v2")
    assert [f.path for f in stored.derived] == ["derived/model-f16.gguf"]
    assert minilm.engine.path == stored.path / "derived" / "model-f16.gguf"  # type: ignore[attr-defined]
    assert stored.size_bytes == sum(f.size for f in stored.files) + stored.derived[0].size
    assert not (packaged_models.config.home / "derived").exists()


def test_batch_equals_one_by_one(minilm: EmbeddingGenerator):
    texts = ["a dog runs in the park", "quantum physics", "ein Hund läuft im Park"]
    batch = minilm.embed_batch(texts)
    single = np.stack([minilm.embed(t) for t in texts])
    assert np.allclose(batch, single, atol=1e-4)


def test_embedding_input_errors(minilm: EmbeddingGenerator):
    with pytest.raises(InvalidInputError):
        minilm.embed_batch([])
    with pytest.raises(InvalidInputError):
        minilm.embed_batch("not a list")  # type: ignore[arg-type]


@pytest.mark.parametrize("pooling", ["mean", "cls", "last"])
def test_pooling_choices_on_a_tiny_model(tiny_llm: Path, pooling: str):
    embedder = EmbeddingGenerator(ModelLibrary(SDKConfig(offline=True), catalog=Catalog(), events=EventBus()))
    embedder.load_model(tiny_llm, pooling=pooling)
    try:
        vectors = embedder.embed_batch(["the cat", "the dog"])
        assert vectors.shape == (2, 64)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    finally:
        embedder.unload()


def test_a_grammar_llama_cpp_cannot_parse_is_rejected_up_front(tiny: TextGenerator):
    with pytest.raises(InvalidInputError, match="rejected the grammar"):
        tiny.engine.compile_grammar(gbnf="root ::= missing-rule")

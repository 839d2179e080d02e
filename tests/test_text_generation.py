"""Text generation: real answers from SmolLM2, plumbing on a tiny random model written by the suite."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from runanywhere import (
    CancelledError,
    CancelToken,
    ContextLengthError,
    EventBus,
    GenerationCompleted,
    GenerationOptions,
    GenerationStarted,
    ModelFormatError,
    ModelNotFoundError,
    ModelNotLoadedError,
    SDKConfig,
    TextGenerator,
)
from runanywhere.models.catalog import Catalog
from runanywhere.models.manager import ModelLibrary

from .tinymodels import long_prompt, write_tiny_llm

GREEDY = GenerationOptions(temperature=0, max_tokens=40)


@pytest.fixture
def generator(tmp_path: Path, bus: EventBus):
    gen = TextGenerator(ModelLibrary(SDKConfig(home=tmp_path / "home", offline=True), catalog=Catalog(), events=bus),
                        events=bus)
    yield gen
    gen.unload()


@pytest.fixture(scope="module")
def smol(smollm2: Path):
    gen = TextGenerator(ModelLibrary(SDKConfig(offline=True), catalog=Catalog(), events=EventBus()))
    gen.load_model(smollm2, n_ctx=2048)
    yield gen
    gen.unload()


# --------------------------------------------------------------- real model


def test_smollm2_knows_the_capital_of_france(smol: TextGenerator):
    result = smol.generate("What is the capital of France? Answer in one sentence.", GREEDY)
    assert "Paris" in result.text
    assert result.finish_reason == "stop"
    assert result.output_tokens > 0 and result.input_tokens > 10
    assert result.time_to_first_token_ms and result.time_to_first_token_ms > 0
    assert result.decode_tokens_per_second and result.decode_tokens_per_second > 0


def test_the_stream_adds_up_to_the_final_text(smol: TextGenerator):
    stream = smol.generate_stream("Write a haiku about code.", GREEDY)
    pieces = [event.text for event in stream]
    assert len(pieces) > 3
    assert "".join(pieces) == stream.result.text


def test_a_chat_remembers_the_first_turn_and_reuses_its_cache(smol: TextGenerator):
    messages = [{"role": "user", "content": "Remember the number 42."}]
    first = smol.generate(messages, GREEDY)
    messages += [{"role": "assistant", "content": first.text},
                 {"role": "user", "content": "What number did I ask you to remember?"}]
    second = smol.generate(messages, GREEDY)
    assert "42" in second.text
    assert second.reused_prompt_tokens > first.input_tokens // 2, "the second turn re-evaluated the first"
    assert second.prompt_tokens_evaluated < second.input_tokens


def test_async_generation_gives_the_same_answer(smol: TextGenerator):
    prompt = "What is the capital of France? Answer in one sentence."
    result = asyncio.run(smol.agenerate(prompt, GREEDY))
    assert result.text == smol.generate(prompt, GREEDY).text


# ------------------------------------------------------- plumbing (tiny model)


def test_generation_needs_a_loaded_model(generator: TextGenerator):
    with pytest.raises(ModelNotLoadedError):
        generator.generate("hello")


def test_max_tokens_and_metrics(generator: TextGenerator, tiny_llm: Path):
    generator.load_model(tiny_llm)
    result = generator.generate("the cat", max_tokens=12, temperature=0)
    assert result.output_tokens == 12
    assert result.finish_reason == "length"
    assert result.model_id == "tiny"
    assert result.latency_ms >= (result.time_to_first_token_ms or 0)


def test_same_seed_same_text(generator: TextGenerator, tiny_llm: Path):
    generator.load_model(tiny_llm)
    options = GenerationOptions(temperature=1.0, seed=42, max_tokens=20)
    first = generator.generate("the dog", options)
    generator.generate("something else entirely", options)
    assert generator.generate("the dog", options).text == first.text
    others = {generator.generate("the dog", options, seed=s).text for s in (1, 2, 3)}
    assert len(others | {first.text}) > 1


def test_stop_sequences_cut_the_text(generator: TextGenerator, tiny_llm: Path):
    generator.load_model(tiny_llm)
    full = generator.generate("one two three", max_tokens=40, temperature=0).text
    stop = full[len(full) // 2: len(full) // 2 + 3]
    assert stop.strip(), full
    result = generator.generate("one two three", max_tokens=40, temperature=0, stop=(stop,))
    assert result.text == full[: full.index(stop)]
    assert result.finish_reason == "stop"


def test_breaking_out_of_a_stream_cancels_it(generator: TextGenerator, tiny_llm: Path):
    generator.load_model(tiny_llm)
    stream = generator.generate_stream("hello there", max_tokens=500, temperature=0)
    for index, _ in enumerate(stream):
        if index == 2:
            break
    assert stream.result.finish_reason == "cancelled"
    assert stream.result.output_tokens < 500
    assert generator.generate("hello", max_tokens=3).output_tokens == 3  # the engine is free again


def test_cancel_stops_a_long_prefill(tmp_path: Path, generator: TextGenerator):
    # Wide enough that a ~3000-token prompt takes a while; small batches so prefill has many steps.
    model = write_tiny_llm(tmp_path / "wide.gguf", n_layers=4, n_embd=256, n_head=8, n_head_kv=4, n_ff=1024,
                           n_ctx=8192)
    generator.load_model(model, n_ctx=8192, n_batch=32, max_sequences=1)  # the single context (batched: test_batching)
    engine = generator.engine
    prompt = long_prompt(3000)
    cancel = CancelToken()
    stream = generator.generate_stream(prompt, raw=True, max_tokens=10, cancel=cancel)
    consumer = threading.Thread(target=lambda: list(stream))
    consumer.start()
    while engine.llm.n_tokens == 0:  # wait until prefill is under way (first batches evaluated)
        time.sleep(0.001)
    cancel.cancel()
    consumer.join(timeout=60)

    result = stream.result
    assert result.finish_reason == "cancelled"
    assert result.output_tokens == 0 and result.time_to_first_token_ms is None
    assert 0 < engine.llm.n_tokens < result.input_tokens, "prefill ran to the end despite the cancel"
    assert generator.generate("the cat", max_tokens=3).output_tokens == 3


def test_cancelling_the_async_task_cancels_the_generation(generator: TextGenerator, tiny_llm: Path, bus):
    generator.load_model(tiny_llm)
    done: list[GenerationCompleted] = []
    bus.on(GenerationCompleted, done.append)

    async def scenario() -> None:
        task = asyncio.create_task(generator.agenerate("the sun", max_tokens=3000, temperature=0))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    deadline = time.monotonic() + 30
    while not done and time.monotonic() < deadline:
        time.sleep(0.01)
    assert done[0].finish_reason == "cancelled"


def test_concurrent_callers_are_queued_not_interleaved_with_max_sequences_1(generator: TextGenerator, tiny_llm: Path,
                                                                            bus):
    generator.load_model(tiny_llm, max_sequences=1)
    order: list[str] = []
    bus.on(GenerationStarted, lambda e: order.append("start"))
    bus.on(GenerationCompleted, lambda e: order.append("end"))
    results: list[int] = []

    def worker(i: int) -> None:
        results.append(generator.generate(f"the cat {i}", max_tokens=8, temperature=0).output_tokens)

    async def tasks() -> list[int]:
        found = await asyncio.gather(*(generator.agenerate(f"the dog {i}", max_tokens=8) for i in range(4)))
        return [r.output_tokens for r in found]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    async_results = asyncio.run(tasks())
    for t in threads:
        t.join()
    assert results == [8] * 4 and async_results == [8] * 4
    assert order == ["start", "end"] * 8


def test_prompt_longer_than_the_context_is_a_clear_error(generator: TextGenerator, tiny_llm: Path):
    generator.load_model(tiny_llm, n_ctx=256)
    with pytest.raises(ContextLengthError) as err:
        generator.generate(long_prompt(600), raw=True)
    assert err.value.details["n_ctx"] == generator.engine.n_ctx
    assert generator.generate("the cat", max_tokens=2).output_tokens == 2


def test_reply_is_cut_at_the_end_of_the_context(generator: TextGenerator, tiny_llm: Path):
    generator.load_model(tiny_llm, n_ctx=128)
    result = generator.generate(long_prompt(100), raw=True, max_tokens=1000)
    assert result.finish_reason == "length"
    assert result.input_tokens + result.output_tokens == generator.engine.n_ctx  # llama.cpp may round n_ctx up


def test_bad_model_files_are_clear_errors(generator: TextGenerator, tiny_llm: Path, tmp_path: Path):
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 definitely a zip")
    with pytest.raises(ModelFormatError, match="not a GGUF"):
        generator.load_model(not_gguf)
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(tiny_llm.read_bytes()[: tiny_llm.stat().st_size // 2])
    with pytest.raises(ModelFormatError):
        generator.load_model(truncated)
    with pytest.raises(ModelNotFoundError):
        generator.load_model("no-such-model-id")
    generator.load_model(tiny_llm)  # the process and the generator are fine
    assert generator.generate("the", max_tokens=2).output_tokens == 2


def test_invalid_options_are_rejected(generator: TextGenerator, tiny_llm: Path):
    generator.load_model(tiny_llm)
    with pytest.raises(ValueError):
        generator.generate("x", max_tokens=0)
    with pytest.raises(ValueError):
        generator.generate([{"content": "no role"}])


def test_the_next_turn_reuses_the_reply_tokens_themselves(generator: TextGenerator, tiny_llm: Path):
    generator.load_model(tiny_llm)
    history = [{"role": "user", "content": "the cat"}]
    # a random model's reply is byte soup that would not re-tokenize into the same tokens
    first = generator.generate(history, max_tokens=30, temperature=1.0, seed=3)
    history += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "and the dog"}]
    second = generator.generate(history, max_tokens=5)
    assert second.reused_prompt_tokens >= first.input_tokens + first.output_tokens - 1
    assert second.prompt_tokens_evaluated < 20


def test_prefill_puts_a_conversation_in_the_cache_so_the_next_turn_evaluates_only_itself(
        generator: TextGenerator, tiny_llm: Path):
    generator.load_model(tiny_llm)
    conversation = [{"role": "system", "content": "be brief " * 20}, {"role": "user", "content": "the cat"},
                    {"role": "assistant", "content": "sat on the mat"}]
    evaluated = generator.prefill(conversation)
    assert evaluated > 40  # the whole conversation, once
    assert generator.prefill(conversation) <= 1  # already there (the last token is evaluated again)
    answer = generator.generate([*conversation, {"role": "user", "content": "and the dog"}], max_tokens=3)
    assert answer.reused_prompt_tokens >= evaluated - 1 and answer.prompt_tokens_evaluated < 15
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(CancelledError):
        generator.prefill([{"role": "user", "content": "something else entirely " * 10}], cancel=cancel)
    assert generator.generate("the", max_tokens=2).output_tokens == 2  # the model is fine afterwards


def test_thinking_is_kept_apart_from_the_answer(generator: TextGenerator, tiny_llm: Path):
    generator.load_model(tiny_llm)
    think_then_answer = 'root ::= "<think>" [a-z]{2,6} "</think>" "yes"'
    stream = generator.generate_stream("Is it?", max_tokens=40, grammar=think_then_answer)
    events = list(stream)
    result = stream.result
    assert result.text == "yes"
    assert result.thinking_content and result.thinking_content.isalpha()
    assert result.thinking_tokens > 0 and result.response_tokens > 0
    assert result.thinking_tokens + result.response_tokens == result.output_tokens
    assert events[0].is_thinking and not events[-1].is_thinking


def test_unload_frees_the_model(generator: TextGenerator, tiny_llm: Path):
    generator.load_model(tiny_llm)
    assert generator.loaded_model == "tiny"
    generator.unload()
    assert not generator.is_loaded
    with pytest.raises(ModelNotLoadedError):
        generator.generate("x")

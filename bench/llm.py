"""LLM speed through runanywhere vs raw llama-cpp-python, measured in one run.

For each model (SmolLM2-135M Q4_1 from its package, and a random-weight model
with the exact shape of Qwen2.5-0.5B in Q4_0) and the same thread count:

* prefill tokens/s: time to first token of a fresh ~500-token prompt, over
  the prompt tokens (raw: ``Llama.generate`` to its first token; SDK:
  ``GenerationResult.prefill_tokens_per_second``);
* decode tokens/s: tokens after the first over the time after it;
* the time to first token of a second chat turn with KV prefix reuse vs the
  same prompt with a cold cache;
* the decode ceiling from the measured memory bandwidth (bytes/s over model bytes).

Raw and SDK runs alternate, each repeated; medians are reported with their
ratio (SDK / raw). Results go to ``bench/results/llm.json`` and ``llm.png``.
Run: ``.venv/bin/python bench/llm.py`` (about 2-3 minutes on 2 cores).
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for tests.tinymodels (the shaped random model writer)

import llama_cpp  # noqa: E402  (the raw baseline)
from tests.tinymodels import long_prompt, write_shaped_llm  # noqa: E402

from runanywhere import EventBus, GenerationOptions, SDKConfig, TextGenerator  # noqa: E402
from runanywhere.core.capabilities import measure_memory_bandwidth, physical_cores  # noqa: E402
from runanywhere.models.catalog import Catalog  # noqa: E402
from runanywhere.models.manager import ModelLibrary  # noqa: E402

RESULTS = ROOT / "bench" / "results"
REPEATS = 7
DECODE_TOKENS = 128
PROMPT_TOKENS = 500
N_CTX = 2048


def raw_run(llm: Any, tokens: list[int], max_tokens: int) -> tuple[float, float]:
    """(prefill tokens/s, decode tokens/s) of one cold raw generation."""
    llm.reset()
    started = time.perf_counter()
    first = None
    count = 0
    for _ in llm.generate(tokens, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
        count += 1
        if first is None:
            first = time.perf_counter()
        if count >= max_tokens:
            break
    end = time.perf_counter()
    assert first is not None
    return len(tokens) / (first - started), (count - 1) / (end - first) if count > 1 else 0.0


def sdk_run(gen: TextGenerator, prompt: str, max_tokens: int) -> tuple[float, float, int]:
    """(prefill tokens/s, decode tokens/s, prompt tokens) of one cold SDK generation."""
    gen._require().worker.call(gen.engine.llm.reset)  # a cold cache, as in the raw run
    result = gen.generate(prompt, GenerationOptions(temperature=0, max_tokens=max_tokens, raw=True))
    assert result.prompt_tokens_evaluated == result.input_tokens
    return result.prefill_tokens_per_second or 0.0, result.decode_tokens_per_second or 0.0, result.input_tokens


def second_turn(gen: TextGenerator) -> dict[str, float]:
    """Time to first token of turn 2 with the cache kept (reuse) and reset (cold)."""
    opts = GenerationOptions(temperature=0, max_tokens=48)
    reuse, cold, evaluated, total = [], [], 0, 0
    for i in range(REPEATS):
        history = [{"role": "user", "content": long_prompt(300, seed=100 + i) + " Summarise this."}]
        first = gen.generate(history, opts)
        history += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "Thank you. And why?"}]
        warm = gen.generate(history, opts)
        gen._require().worker.call(gen.engine.llm.reset)
        fresh = gen.generate(history, opts)
        reuse.append(warm.time_to_first_token_ms or 0.0)
        cold.append(fresh.time_to_first_token_ms or 0.0)
        evaluated, total = warm.prompt_tokens_evaluated, warm.input_tokens
    return {"ttft_second_turn_reuse_ms": statistics.median(reuse), "ttft_second_turn_cold_ms": statistics.median(cold),
            "second_turn_prompt_tokens": total, "second_turn_tokens_evaluated_with_reuse": evaluated}


def bench_model(name: str, path: Path, threads: int, bandwidth_gbs: float) -> dict[str, Any]:
    print(f"== {name} ({path.stat().st_size / 1e6:.0f} MB, {threads} threads)", flush=True)
    raw = llama_cpp.Llama(model_path=str(path), n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads,
                          n_batch=512, n_ubatch=512, verbose=False)
    gen = TextGenerator(ModelLibrary(SDKConfig(offline=True), catalog=Catalog(), events=EventBus()))
    gen.load_model(path, n_ctx=N_CTX, n_threads=threads, n_batch=512)
    raw_prefill, raw_decode, sdk_prefill, sdk_decode = [], [], [], []
    for i in range(REPEATS):
        prompt = long_prompt(PROMPT_TOKENS, seed=i)
        p, d, n_prompt = sdk_run(gen, prompt, DECODE_TOKENS)
        sdk_prefill.append(p)
        sdk_decode.append(d)
        tokens = raw.tokenize(prompt.encode(), add_bos=True)
        assert len(tokens) == n_prompt, "raw and SDK must see the same prompt"
        p, d = raw_run(raw, tokens, DECODE_TOKENS)
        raw_prefill.append(p)
        raw_decode.append(d)
        print(f"  rep {i}: prefill raw {raw_prefill[-1]:.0f} sdk {sdk_prefill[-1]:.0f} tok/s; "
              f"decode raw {raw_decode[-1]:.1f} sdk {sdk_decode[-1]:.1f} tok/s", flush=True)
    raw.close()
    turns = second_turn(gen) if gen.engine.chat_template else {}
    gen.unload()
    size = path.stat().st_size
    out = {
        "model": name, "file_bytes": size, "threads": threads, "prompt_tokens": n_prompt,
        "decode_tokens": DECODE_TOKENS, "repeats": REPEATS,
        "raw_prefill_tokens_per_s": statistics.median(raw_prefill),
        "sdk_prefill_tokens_per_s": statistics.median(sdk_prefill),
        "raw_decode_tokens_per_s": statistics.median(raw_decode),
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
    threads = physical_cores()
    bandwidth = measure_memory_bandwidth(threads)
    print(f"memory bandwidth: {bandwidth:.1f} GB/s on {threads} threads", flush=True)
    store = ModelLibrary(SDKConfig(home=Path(tempfile.mkdtemp(prefix="bench-store-")), offline=True),
                         events=EventBus())
    smol = store.pull("smollm2-135m-instruct-q4_1").main_file
    with tempfile.TemporaryDirectory(prefix="bench-llm-") as tmp:
        started = time.perf_counter()
        qwen = write_shaped_llm(Path(tmp) / "qwen2.5-0.5b-random-q4_0.gguf", shape="qwen2.5-0.5b", qtype="q4_0")
        print(f"wrote the Qwen2.5-0.5B-shaped model in {time.perf_counter() - started:.0f} s", flush=True)
        results = [bench_model("smollm2-135m-q4_1", smol, threads, bandwidth),
                   bench_model("qwen2.5-0.5b-shape-q4_0", qwen, threads, bandwidth)]
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"bench": "llm", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.platform(),
              "cpu_threads_used": threads, "memory_bandwidth_gb_per_s": bandwidth,
              "llama_cpp_python": llama_cpp.__version__, "models": results}
    (RESULTS / "llm.json").write_text(json.dumps(report, indent=1))
    chart(results, RESULTS / "llm.png")
    print(f"wrote {RESULTS / 'llm.json'} and {RESULTS / 'llm.png'}")


if __name__ == "__main__":
    main()

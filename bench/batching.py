"""Continuous batching: aggregate decode speed with 1, 2, 4 and 8 concurrent streams on one loaded model.

For SmolLM2-135M and the Qwen2.5-0.5B-shaped random model, the same greedy requests, all sent at
once, run (a) through the SDK's batch (``max_sequences=8``), (b) through the serialized path
(``max_sequences=1``: one at a time in a single context, the rest queued) and (c) one after another
on raw llama-cpp-python (flash attention and a q8_0 KV cache, as the batch uses). Aggregate tokens/s
is all generated tokens over the wall time (batched: the median of ``Plan.repeats`` bursts of fresh
prompts); time to first token is per request, queue time included (p95); ``step_ms`` is the batched
wall time per decode step (streams / aggregate tokens/s), to show how a step's cost grows with the
streams. ``steady``: N clients each send ``STEADY_ROUNDS`` requests one after another, their first
requests spread over one reply's time, so requests keep arriving while others decode
(what continuous batching is for; a burst of N at once is the worst case, shown above it). Targets:
at 8 streams, batched aggregate >= 3x one stream, and p95 time to first token <= 2x a request alone
(the median of the steady run's single client, whose prompts have the same shape). ``outputs_equal``:
batched equals each request alone with the same attention (raw); batched vs the serialized single
context (no flash attention) is reported too. JSON to ``results/batching.json``.
Run: ``.venv/bin/python bench/batching.py [--smoke] [--results DIR]``.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import header, parse_args, scratch_library, write_report
from tests.tinymodels import write_shaped_llm

from runanywhere import GenerationOptions, GenerationRequest, GenerationResult, TextGenerator
from runanywhere.backends.llamacpp_batch import KV_TYPES
from runanywhere.core.capabilities import physical_cores

PROMPTS = ["Once upon a time, in a small village by the sea,", "The three most important things about cooking are",
           "Here is a list of ten animals that live in the forest:", "In the year 2050, cities will",
           "The best way to learn a new language is", "A short history of the bicycle:",
           "Dear diary, today I finally", "The recipe for a simple tomato soup starts with"]


@dataclass(frozen=True)
class Plan:
    streams: tuple[int, ...]
    max_tokens: int
    shaped_model: bool
    #: Bursts run per stream count, the median aggregate reported: a lone 64-token reply lasts about 0.6 s,
    #: so one run of it measures whatever else the machine did in that moment.
    repeats: int


FULL = Plan((1, 2, 4, 8), 64, True, 3)
SMOKE = Plan((1, 2), 4, False, 1)
#: Requests each client of the steady scenario sends one after another.
STEADY_ROUNDS = 3


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def _options(max_tokens: int) -> GenerationOptions:
    return GenerationOptions(temperature=0, max_tokens=max_tokens, raw=True)


def _ttft_ms(result: GenerationResult) -> float:
    """Time to first token as the caller sees it: queue time included."""
    return float((result.time_to_first_token_ms or 0) + result.queue_ms)


def sdk_run(gen: TextGenerator, prompts: list[str], max_tokens: int) -> dict[str, Any]:
    """The prompts through the SDK, all sent at once (a generator with max_sequences=1 queues them)."""
    started = time.perf_counter()
    streams = [gen.start(GenerationRequest(p, _options(max_tokens)), deliver=False) for p in prompts]
    results = [s.result for s in streams]
    wall = time.perf_counter() - started
    tokens = sum(r.output_tokens for r in results)
    return {"tokens": tokens, "wall_s": wall, "aggregate_tokens_per_s": tokens / wall,
            "p95_ttft_ms": _p95([_ttft_ms(r) for r in results]), "texts": [r.text for r in results]}


def fresh(prompts: list[str], tag: str) -> list[str]:
    """The prompts made new (a tag in front): a model keeps finished conversations and would reuse a repeat."""
    return [f"[{tag}.{i}] {prompt}" for i, prompt in enumerate(prompts)]


def steady_run(gen: TextGenerator, prompts: list[str], max_tokens: int, reply_s: float) -> dict[str, Any]:
    """Each prompt is a client sending ``STEADY_ROUNDS`` requests back to back; client i starts i/N of a
    reply's time (``reply_s``) after the first, so new requests join a batch that is already decoding."""
    ttfts: list[float] = []
    tokens = [0]
    lock = threading.Lock()

    def client(i: int, prompt: str) -> None:
        time.sleep(i * reply_s / len(prompts))
        for r in range(STEADY_ROUNDS):
            request = GenerationRequest(f"({r}) {prompt}", _options(max_tokens))
            result = gen.start(request, deliver=False).result
            with lock:
                ttfts.append(_ttft_ms(result))
                tokens[0] += result.output_tokens

    clients = [threading.Thread(target=client, args=(i, p)) for i, p in enumerate(prompts)]
    started = time.perf_counter()
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    wall = time.perf_counter() - started
    return {"requests": len(ttfts), "tokens": tokens[0], "wall_s": wall, "aggregate_tokens_per_s": tokens[0] / wall,
            "p95_ttft_ms": _p95(ttfts), "median_ttft_ms": sorted(ttfts)[len(ttfts) // 2]}


def raw_run(model: Path, prompts: list[str], max_tokens: int, threads: int) -> dict[str, Any]:
    """The prompts on raw llama-cpp-python, one after another (its server's behaviour), greedy."""
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(model), n_ctx=2048, n_threads=threads, n_threads_batch=threads,
                          flash_attn=True, type_k=KV_TYPES[0][0], type_v=KV_TYPES[0][1], verbose=False)
    texts, tokens = [], 0
    started = time.perf_counter()
    for prompt in prompts:
        out: list[int] = []
        for token in llm.generate(llm.tokenize(prompt.encode(), add_bos=True), temp=0.0, top_k=1, reset=True):
            if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
                break
            out.append(token)
            if len(out) == max_tokens:
                break
        tokens += len(out)
        texts.append(llm.detokenize(out).decode("utf-8", "replace"))
    wall = time.perf_counter() - started
    llm.close()
    return {"tokens": tokens, "wall_s": wall, "aggregate_tokens_per_s": tokens / wall, "texts": texts}


def bench_model(name: str, model: Path, plan: Plan, threads: int) -> dict[str, Any]:
    batched, serial = TextGenerator(), TextGenerator()
    batched.load_model(model, n_ctx=2048, max_sequences=max(plan.streams), n_threads=threads)
    serial.load_model(model, n_ctx=2048, max_sequences=1, n_threads=threads)
    rows: list[dict[str, Any]] = []
    for n in plan.streams:
        bursts = [(prompts, sdk_run(batched, prompts, plan.max_tokens))
                  for prompts in (fresh((PROMPTS * 2)[:n], f"burst{n}.{k}") for k in range(plan.repeats))]
        prompts, together = sorted(bursts, key=lambda b: b[1]["aggregate_tokens_per_s"])[len(bursts) // 2]
        queued = sdk_run(serial, prompts, plan.max_tokens)
        raw = raw_run(model, prompts, plan.max_tokens, threads)
        reply_s = rows[0]["batched"]["wall_s"] if rows else together["wall_s"]
        steady = {path: steady_run(gen, fresh(prompts, f"steady{n}{path}"), plan.max_tokens, reply_s)
                  for path, gen in (("batched", batched), ("serialized", serial))}
        rows.append({"streams": n, "batched": _figures(together),
                     "batched_runs_tokens_per_s": [b[1]["aggregate_tokens_per_s"] for b in bursts],
                     "serialized": _figures(queued), "raw": _figures(raw),
                     "steady": steady,
                     "outputs_equal_batched_vs_serialized": together["texts"] == queued["texts"],
                     "outputs_equal_batched_vs_raw": together["texts"] == raw["texts"],
                     "step_ms": 1000 * n / together["aggregate_tokens_per_s"]})
        print(f"{name} {n} streams: batched {together['aggregate_tokens_per_s']:.1f} tok/s, serialized "
              f"{queued['aggregate_tokens_per_s']:.1f}, raw {raw['aggregate_tokens_per_s']:.1f}; p95 TTFT burst "
              f"{together['p95_ttft_ms']:.0f} ms, steady {steady['batched']['p95_ttft_ms']:.0f} ms "
              f"(serialized {steady['serialized']['p95_ttft_ms']:.0f} ms)", flush=True)
    batched.unload()
    serial.unload()
    one, most, one_alone = rows[0]["batched"], rows[-1]["batched"], rows[0]["serialized"]
    alone = rows[0]["steady"]["batched"]["median_ttft_ms"]  # one client: each request alone, same prompt shape
    return {"model": name, "max_tokens": plan.max_tokens, "alone_ttft_ms_median": alone, "rows": rows,
            "speedup_most_streams_over_one": most["aggregate_tokens_per_s"] / one["aggregate_tokens_per_s"],
            "speedup_most_streams_over_serialized_one": most["aggregate_tokens_per_s"]
            / one_alone["aggregate_tokens_per_s"],
            "p95_ttft_ratio_burst_most_streams_over_alone": most["p95_ttft_ms"] / alone,
            "p95_ttft_ratio_steady_most_streams_over_alone": rows[-1]["steady"]["batched"]["p95_ttft_ms"] / alone,
            "p95_ttft_ratio_steady_serialized_over_alone":
                rows[-1]["steady"]["serialized"]["p95_ttft_ms"] / alone,
            # Each request alone with the batch's attention (raw, flash attention over a q8_0 cache). The serialized
            # single context runs without flash attention over f16, so its greedy text can differ after a near tie.
            "outputs_equal": all(r["outputs_equal_batched_vs_raw"] for r in rows)}


def _figures(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k != "texts"}


def main() -> None:
    args = parse_args("aggregate decode speed of concurrent streams: batched vs serialized vs raw llama-cpp-python")
    plan = SMOKE if args.smoke else FULL
    threads = physical_cores()
    smol = scratch_library().pull("smollm2-135m-instruct-q4_1").main_file
    results = [bench_model("smollm2-135m-q4_1", smol, plan, threads)]
    if plan.shaped_model:
        with tempfile.TemporaryDirectory(prefix="bench-batching-") as tmp:
            qwen = write_shaped_llm(Path(tmp) / "qwen2.5-0.5b-random-q4_0.gguf", shape="qwen2.5-0.5b", qtype="q4_0")
            results.append(bench_model("qwen2.5-0.5b-shape-q4_0", qwen, plan, threads))
    write_report(args.results, "batching", {**header("batching", args.smoke), "cpu_threads_used": threads,
                                            "target_speedup_at_8_streams": 3.0, "target_p95_ttft_ratio": 2.0,
                                            "steady_rounds": STEADY_ROUNDS, "models": results})


if __name__ == "__main__":
    main()

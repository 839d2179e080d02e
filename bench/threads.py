"""Thread counts from a measurement: Whisper tiny.en and llama.cpp decode with 1, 2, ... threads.

The fastest count differs between machines (on one 2-core VM one thread beat
two for Whisper, on a laptop the opposite), so the SDK's defaults should
follow a measurement, not a rule. For each count up to the logical CPUs,
alternating, medians of the repeats:

* Whisper tiny.en through ``SpeechToText`` (greedy, the SDK's compute type):
  real-time factor of ``two_cities.wav`` (44 s);
* SmolLM2-135M Q4_1 through ``TextGenerator``: prefill and decode tokens/s of
  a ~200-token prompt and 64 new tokens from a cold cache.

``fastest_threads`` names the winner of each. Results go to
``bench/results/threads.json``. Run: ``.venv/bin/python bench/threads.py``
(about a minute on 2 cores; ``--smoke``: seconds).
"""

from __future__ import annotations

import json
import os
import statistics
from typing import Any

from common import header, moonshine_asset, parse_args, scratch_library, write_report
from llm import N_CTX, sdk_run
from tests.tinymodels import long_prompt

from runanywhere import EventBus, TextGenerator
from runanywhere.core.capabilities import physical_cores
from runanywhere.features.stt import SpeechToText
from runanywhere.media.audio import load_audio
from runanywhere.models.manager import ModelLibrary


def candidates() -> list[int]:
    """1, 2, the physical cores and the logical CPUs: the counts worth comparing here."""
    logical = os.cpu_count() or 1
    return sorted({t for t in (1, 2, physical_cores(), logical) if t <= logical})


def whisper(library: ModelLibrary, counts: list[int], repeats: int, audio_s: float | None) -> dict[str, Any]:
    samples = load_audio(moonshine_asset("two_cities.wav"), target_rate=16000).samples
    if audio_s is not None:
        samples = samples[: int(audio_s * 16000)]
    holders = {}
    for t in counts:
        holders[t] = SpeechToText(library, events=EventBus())
        holders[t].load_model("faster-whisper-tiny.en", threads=t, beam_size=1)
        holders[t].transcribe(samples, 16000)  # warm-up
    rtf: dict[int, list[float]] = {t: [] for t in counts}
    for _ in range(repeats):
        for t, holder in holders.items():
            rtf[t].append(holder.transcribe(samples, 16000).real_time_factor)
    for holder in holders.values():
        holder.unload()
    rows = [{"threads": t, "rtf": statistics.median(rtf[t])} for t in counts]
    print(f"  whisper tiny.en RTF: {json.dumps(rows)}", flush=True)
    return {"model": "faster-whisper-tiny.en", "audio_s": len(samples) / 16000, "repeats": repeats, "rows": rows,
            "fastest_threads": min(rows, key=lambda r: r["rtf"])["threads"]}


def llama(library: ModelLibrary, counts: list[int], repeats: int, prompt_tokens: int,
          decode_tokens: int) -> dict[str, Any]:
    path = library.pull("smollm2-135m-instruct-q4_1").main_file
    holders = {}
    for t in counts:
        holders[t] = TextGenerator(library, events=EventBus())
        holders[t].load_model(path, n_ctx=N_CTX, n_threads=t, n_batch=512)
    prefill: dict[int, list[float]] = {t: [] for t in counts}
    decode: dict[int, list[float]] = {t: [] for t in counts}
    for i in range(repeats):
        prompt = long_prompt(prompt_tokens, seed=i)
        for t, holder in holders.items():
            p, d, _ = sdk_run(holder, prompt, decode_tokens)
            prefill[t].append(p)
            decode[t].append(d)
    for holder in holders.values():
        holder.unload()
    rows = [{"threads": t, "prefill_tokens_per_s": statistics.median(prefill[t]),
             "decode_tokens_per_s": statistics.median(decode[t])} for t in counts]
    print(f"  llama decode: {json.dumps(rows)}", flush=True)
    return {"model": "smollm2-135m-instruct-q4_1", "prompt_tokens": prompt_tokens, "decode_tokens": decode_tokens,
            "repeats": repeats, "rows": rows,
            "fastest_threads": max(rows, key=lambda r: r["decode_tokens_per_s"])["threads"],
            "fastest_prefill_threads": max(rows, key=lambda r: r["prefill_tokens_per_s"])["threads"]}


def main() -> None:
    args = parse_args("Whisper and llama.cpp speed by thread count")
    counts = candidates()
    library = scratch_library()
    repeats = 1 if args.smoke else 5
    print(f"== threads {counts} (physical cores {physical_cores()}, logical {os.cpu_count()})", flush=True)
    report = {**header("threads", args.smoke), "physical_cores": physical_cores(), "logical_cpus": os.cpu_count(),
              "whisper": whisper(library, counts, repeats, 3.0 if args.smoke else None),
              "llama": llama(library, counts, repeats, 32 if args.smoke else 200, 8 if args.smoke else 64)}
    write_report(args.results, "threads", report)


if __name__ == "__main__":
    main()

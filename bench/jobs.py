"""Batch jobs: items/s for transcription and embedding, in this process vs on Ray with 1 and 2 workers.

Inputs: 20 sentences spoken by the Piper voice (``tests/jobdata.py``) and 200 short texts. Each job runs whole
(model loads included: that is what a user waits for); Ray's runs use a one-machine cluster this process
starts (``ray="local"``, 2 CPUs), so the figures show what Ray adds on one machine: actor start-up, moving
batches through the object store and back, and on 2 cores, two actors competing with the driver. The
per-item overhead is ``(t_ray_1 - t_in_process) / items``. On more nodes each node's actors run in parallel
with only the driver shared (it reads inputs and writes rows), so throughput grows with nodes until the
driver's writing or the input listing becomes the limit.

Ray's nodes must talk over loopback only on this machine, so the bench re-runs itself inside a network
namespace that has only loopback (``unshare``, as root, with a process namespace too so nothing of Ray
outlives it), where Ray takes 127.0.0.1. Results go to
``bench/results/jobs.json``. Run: ``.venv/bin/python bench/jobs.py`` (``--smoke``: 4 recordings, 20 texts).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import header, parse_args, scratch_library, write_report
from tests.jobdata import SENTENCES

from runanywhere import TextToSpeech, jobs, save_wav

INSIDE = "RUNANYWHERE_BENCH_NETNS"


def inputs(folder: Path, n_audio: int, n_texts: int, library: Any) -> tuple[Path, Path]:
    wavs = folder / "wavs"
    wavs.mkdir()
    tts = TextToSpeech(library)
    tts.load_voice("piper-en_US-joe-medium", variation=0)
    for i in range(n_audio):
        save_wav(wavs / f"{i:02d}.wav", tts.synthesize(SENTENCES[i % len(SENTENCES)]))
    tts.unload()
    texts = folder / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": f"{SENTENCES[i % len(SENTENCES)]} ({i})"}) + "\n"
                             for i in range(n_texts)))
    return wavs, texts


def timed(run: Any) -> dict[str, float]:
    started = time.perf_counter()
    summary = run()
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "items": summary.processed, "items_per_s": summary.processed / elapsed,
            "failed": summary.failed}


def main() -> None:
    args = parse_args(__doc__.split("\n")[0])
    if os.environ.get(INSIDE) != "1":
        env = {**os.environ, INSIDE: "1", "RAY_USAGE_STATS_ENABLED": "0"}
        command = ["unshare", "--net", "--pid", "--fork", "--mount-proc", "sh", "-c",
                   'ip link set lo up && exec "$0" "$@"', sys.executable, *sys.argv]
        raise SystemExit(subprocess.run(command, env=env).returncode)
    library = scratch_library()
    config = library.config
    work = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    n_audio, n_texts = (4, 20) if args.smoke else (20, 200)
    wavs, texts = inputs(work, n_audio, n_texts, library)
    report = header("jobs", args.smoke)
    report.update(n_audio=n_audio, n_texts=n_texts, cpus=os.cpu_count())
    runs: dict[str, dict[str, dict[str, float]]] = {"transcribe": {}, "embed": {}}
    for where, ray, workers in (("in_process", None, 1), ("ray_1_worker", "local", 1), ("ray_2_workers", "local", 2)):
        for kind, source in (("transcribe", wavs), ("embed", texts)):
            out = work / f"{kind}-{where}.jsonl"
            run = getattr(jobs, kind)
            runs[kind][where] = timed(lambda run=run, source=source, out=out, ray=ray, workers=workers: run(
                str(source), out, config=config, ray=ray, workers=workers))
            print(kind, where, f"{runs[kind][where]['items_per_s']:.2f} items/s", flush=True)
        if ray is not None:
            import ray as ray_api

            ray_api.shutdown()
    report["runs"] = runs
    report["per_item_overhead_ms_ray_1_worker"] = {
        kind: (r["ray_1_worker"]["seconds"] - r["in_process"]["seconds"]) * 1000 / r["in_process"]["items"]
        for kind, r in runs.items()}
    report["ratio_ray_2_over_ray_1"] = {kind: r["ray_2_workers"]["items_per_s"] / r["ray_1_worker"]["items_per_s"]
                                        for kind, r in runs.items()}
    write_report(args.results, "jobs", report)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

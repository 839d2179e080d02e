"""The Ray half of the batch-job tests, run as ``python -m tests.ray_scenario WORK`` inside a network namespace
that has only loopback, and a process namespace (``unshare --net --pid --fork --mount-proc``): there Ray's nodes
take 127.0.0.1 as their address, so every byte of the cluster's traffic stays on loopback, and no Ray process
outlives the scenario.

It starts a real two-node cluster (a head and one more node, 1 CPU each, with ``ray start``), runs the jobs that
``test_jobs_ray.py`` checks, SIGKILLs a worker process in the middle of one of them, stops the cluster and
writes ``WORK/report.json``. The inputs (``WORK/wavs``, ``WORK/texts.jsonl``, ``WORK/prompts.jsonl``) are made by
the test beforehand; the outputs go to ``WORK/ray-*.jsonl``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from runanywhere import GenerationOptions, SDKConfig, jobs

PORT = 6391
RAY = str(Path(sys.executable).with_name("ray"))


def ray(*args: str) -> None:
    done = subprocess.run([RAY, *args], capture_output=True, text=True)
    if done.returncode != 0:
        what = " ".join(args)
        raise SystemExit(f"ray {what} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


def killed_mid_job(work: Path, address: str, config: SDKConfig) -> dict[str, object]:
    """Transcribe with two actors and SIGKILL the one that made the first row, while the job runs."""
    output = work / "ray-killed.jsonl"
    result: dict[str, object] = {}

    def job() -> None:
        try:
            result["summary"] = jobs.transcribe(str(work / "wavs"), output, config=config, ray=address, workers=2,
                                                batch_size=1)
        except Exception as exc:  # reported to the test, which fails on it
            result["error"] = repr(exc)
    thread = threading.Thread(target=job)
    thread.start()
    victim, rows_then, deadline = None, 0, time.monotonic() + 600
    while thread.is_alive() and victim is None and time.monotonic() < deadline:
        lines = output.read_bytes().split(b"\n")[:-1] if output.exists() else []
        made = [json.loads(line)["metrics"].get("worker") for line in lines]
        if made and made[0]:
            victim, rows_then = int(made[0].rsplit(":", 1)[1]), len(lines)
            os.kill(victim, signal.SIGKILL)
        time.sleep(0.05)
    thread.join()
    summary = result.get("summary")
    return {"killed_pid": victim, "rows_when_killed": rows_then, "processed": getattr(summary, "processed", None),
            "error": result.get("error")}


def main(work: Path) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    temp = Path(f"/tmp/ray-{os.getpid()}")  # short: Ray's socket paths must fit in 107 bytes
    config = SDKConfig(home=work / "home", offline=True)
    report: dict[str, object] = {}
    ray("start", "--head", f"--port={PORT}", "--num-cpus=1", "--include-dashboard=false",
        "--disable-usage-stats", f"--temp-dir={temp}")
    try:
        address = f"127.0.0.1:{PORT}"
        ray("start", f"--address={address}", "--num-cpus=1")
        started = time.perf_counter()
        jobs.transcribe(str(work / "wavs"), work / "ray-transcribe.jsonl", config=config, ray=address, workers=2)
        report["transcribe_s"] = time.perf_counter() - started
        jobs.embed(str(work / "texts.jsonl"), work / "ray-embed.jsonl", config=config, ray=address, workers=2)
        jobs.generate(str(work / "prompts.jsonl"), work / "ray-generate.jsonl",
                      GenerationOptions(max_tokens=24, temperature=0), config=config, ray=address, workers=2)
        report["killed"] = killed_mid_job(work, address, config)
        import ray as ray_api

        report["nodes"] = len([n for n in ray_api.nodes() if n["Alive"]])
        report["node_addresses"] = sorted({n["NodeManagerAddress"] for n in ray_api.nodes()})
        ray_api.shutdown()
    finally:
        ray("stop", "--force")
    (work / "report.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]))

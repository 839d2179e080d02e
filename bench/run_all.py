"""Every benchmark, one after the other, each in a fresh process; then one summary of the headline figures.

Runs ``llm.py``, ``batching.py``, ``speech.py`` (which runs ``speech_stt``, ``speech_moonshine``,
``speech_whispercpp``, ``speech_tts``, ``speech_kokoro`` and ``speech_vad``, each in its own process),
``voice.py``, ``realtime.py``, ``threads.py``, ``vlm.py``, ``server.py``, ``embeddings.py``, ``jobs.py`` and
``structured.py``.
Each writes its JSON report into the results directory; this adds
``summary.json``: per bench its exit code and wall time, and the figures
the project tracks (LLM ratios against the raw baseline in its own process, the speed-up of
8 batched streams over one,
decode in the application shape, STT/TTS/VAD overhead, voice p50/p95, the
realtime WebSocket's added latency, the fastest thread counts, VLM image encode /
first token / decode against raw libmtmd, the server's throughput and time to first
token against the SDK in-process, per engine the share of real-world JSON schemas it accepts and its crashes
and untyped errors). A failing bench is reported and the others still
run; the exit code is 1 if any failed. ``make bench`` runs this.
Run: ``.venv/bin/python bench/run_all.py [--smoke] [--results DIR] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import header, parse_args, write_report

HERE = Path(__file__).resolve().parent


def _llm(report: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, Any] = {
        r["model"]: {key: r[key] for key in ("raw_prefill_tokens_per_s", "sdk_prefill_tokens_per_s", "prefill_ratio",
                                             "raw_decode_tokens_per_s", "sdk_decode_tokens_per_s", "decode_ratio")}
        for r in report["models"]}
    figures["application_shape"] = {k: v for k, v in report["application_shape"].items() if k.startswith("decode_")}
    return figures


def _speech(report: dict[str, Any]) -> dict[str, Any]:
    stt, tts, vad = report["stt"], report["tts"], report["vad"]
    return {"stt_speed_ratio_raw_over_sdk": stt["overhead"]["speed_ratio"],
            "moonshine_speed_ratio_raw_over_sdk": min(row["speed_ratio"] for row in report["moonshine"]["rows"]),
            "tts_rtf_ratio_sdk_over_raw": tts["rtf_ratio_sdk_over_raw"],
            "tts_first_chunk_ratio_sdk_over_raw": tts["first_chunk_ratio_sdk_over_raw"],
            "vad_ratio_sdk_16k_over_raw_numpy": vad["ratio_sdk_16k_over_raw_numpy"],
            "whispercpp_speed_ratio_raw_over_sdk": report["whispercpp"]["overhead"]["speed_ratio"],
            "whispercpp_cpu_ratio_raw_over_sdk": report["whispercpp"]["overhead"]["cpu_ratio"],
            "kokoro_time_ratio_sdk_over_raw": report["kokoro"]["time_ratio_sdk_over_raw"],
            "kokoro_rtf_sdk": report["kokoro"]["real_time_factor"]["sdk"],
            "piper_rtf_sdk": tts["real_time_factor"]["sdk"]}


def _voice(report: dict[str, Any]) -> dict[str, Any]:
    return {c["config"]: {"p50_first_audio_ms": c["p50_first_audio_ms"], "p95_first_audio_ms": c["p95_first_audio_ms"]}
            for c in report["configs"]}


def _realtime(report: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, Any] = {
        c["config"]: {key: c[key] for key in ("p50_first_audio_ms", "p50_audible_end_to_first_audio_ms",
                                              "p95_audible_end_to_first_audio_ms")} for c in report["configs"]}
    figures["p50_overhead_ms"] = report["p50_overhead_ms"]
    return figures


def _threads(report: dict[str, Any]) -> dict[str, Any]:
    return {"whisper_fastest_threads": report["whisper"]["fastest_threads"],
            "llama_decode_fastest_threads": report["llama"]["fastest_threads"],
            "whisper": report["whisper"]["rows"], "llama": report["llama"]["rows"]}


def _vlm(report: dict[str, Any]) -> dict[str, Any]:
    return {key: report["results"][key] for key in ("image_tokens", "raw_image_encode_ms", "sdk_image_encode_ms",
                                                    "image_encode_ratio", "raw_ttft_ms", "sdk_ttft_ms", "ttft_ratio",
                                                    "raw_decode_tokens_per_s", "sdk_decode_tokens_per_s",
                                                    "decode_ratio")}



def _embeddings(report: dict[str, Any]) -> dict[str, Any]:
    return {f"{name}_texts_per_s": report["texts_per_s"][name] for name in report["texts_per_s"]} | {
        "onnx_ratio_sdk_over_raw": report["onnx_ratio_sdk_over_raw"]}


def _server(report: dict[str, Any]) -> dict[str, Any]:
    return {key: report[key] for key in ("throughput_ratio_server_over_in_process",
                                         "p50_ttft_ratio_server_over_in_process")} | {
        f"server_{key}": report["server"][key] for key in ("throughput_tokens_per_s", "p50_ttft_ms", "p95_ttft_ms")}



def _jobs(report: dict[str, Any]) -> dict[str, Any]:
    runs = report["runs"]
    return {f"{kind}_items_per_s": {where: round(r["items_per_s"], 2) for where, r in runs[kind].items()}
            for kind in runs} | {"per_item_overhead_ms_ray_1_worker": report["per_item_overhead_ms_ray_1_worker"]}


def _batching(report: dict[str, Any]) -> dict[str, Any]:
    keys = ("speedup_most_streams_over_one", "speedup_most_streams_over_serialized_one",
            "p95_ttft_ratio_burst_most_streams_over_alone", "p95_ttft_ratio_steady_most_streams_over_alone",
            "outputs_equal")
    return {m["model"]: {key: m[key] for key in keys} for m in report["models"]}


def _structured(report: dict[str, Any]) -> dict[str, Any]:
    return {engine: {split: {key: figures[key] for key in ("acceptance", "crashes", "errors", "timeouts")}
                     for split, figures in result["splits"].items()}
            for engine, result in report["engines"].items()}


BENCHES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "llm": _llm, "batching": _batching, "speech": _speech, "voice": _voice, "realtime": _realtime,
    "threads": _threads, "vlm": _vlm, "server": _server, "embeddings": _embeddings, "jobs": _jobs,
    "structured": _structured}
"""Bench name (``bench/<name>.py``, writing ``<name>.json``) and how to pick its headline figures."""


def run(name: str, smoke: bool, results: Path) -> dict[str, Any]:
    """Run one bench in a child process; its exit code, wall time and headline figures (None if it failed)."""
    print(f"=== {name}", flush=True)
    started = time.perf_counter()
    command = [sys.executable, str(HERE / f"{name}.py"), "--results", str(results)] + (["--smoke"] if smoke else [])
    code = subprocess.run(command, check=False).returncode
    out: dict[str, Any] = {"exit_code": code, "seconds": round(time.perf_counter() - started, 1), "figures": None}
    if code == 0:
        out["figures"] = BENCHES[name](json.loads((results / f"{name}.json").read_text()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="run every benchmark and summarise")
    parser.add_argument("--only", nargs="+", choices=list(BENCHES), help="run only these benches")
    args = parse_args(parser.description or "", parser)
    names = args.only or list(BENCHES)
    runs = {name: run(name, args.smoke, args.results) for name in names}
    write_report(args.results, "summary", {**header("summary", args.smoke), "benches": runs})
    print(json.dumps(runs, indent=1))
    failed = [name for name, r in runs.items() if r["exit_code"] != 0]
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()

"""Every benchmark still runs: ``bench/run_all.py --smoke`` per bench, in a subprocess, on the real models.

Smoke mode uses tiny inputs and one repeat, so the figures mean nothing; the
test checks that each bench exits 0 and writes a report with the expected
keys and positive measurements (a crash, a stale assertion or a renamed
field fails it). Nothing here asserts a speed.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def smoke(name: str, results: Path) -> dict[str, Any]:
    """Run one bench through run_all in smoke mode; its summary entry (the bench's own report is in results)."""
    command = [sys.executable, str(ROOT / "bench" / "run_all.py"), "--smoke", "--results", str(results),
               "--only", name]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"bench {name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    summary = json.loads((results / "summary.json").read_text())
    assert summary["smoke"] is True
    entry: dict[str, Any] = summary["benches"][name]
    assert entry["exit_code"] == 0 and entry["figures"], entry
    return entry


def report(results: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((results / f"{name}.json").read_text())
    assert data["bench"] == name and data["smoke"] is True
    return data


def positive(*values: Any) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in values)


def test_llm_bench_measures_raw_in_its_own_process_and_the_application_shape(tmp_path: Path):
    figures = smoke("llm", tmp_path)["figures"]
    data = report(tmp_path, "llm")
    [model] = data["models"]
    assert model["raw_baseline"] == "fresh process"
    assert positive(model["raw_prefill_tokens_per_s"], model["sdk_prefill_tokens_per_s"],
                    model["raw_decode_tokens_per_s"], model["sdk_decode_tokens_per_s"], model["decode_ratio"])
    assert model["prompt_tokens"] > 0 and "ttft_second_turn_reuse_ms" in model
    app = data["application_shape"]
    phases = ("before", "after_embed_batch", "after_transcription")
    assert positive(*(app[f"decode_tokens_per_s_{p}"] for p in phases), *(app[f"decode_ratio_{p}"] for p in phases))
    assert app["embed_batch_texts"] > 0 and app["transcribed_audio_s"] > 0
    assert set(figures) == {"smollm2-135m-q4_1", "application_shape"}
    assert (tmp_path / "llm.png").is_file()


def test_batching_bench_compares_concurrent_streams_with_the_serialized_path_and_raw(tmp_path: Path):
    figures = smoke("batching", tmp_path)["figures"]
    [model] = report(tmp_path, "batching")["models"]
    assert [row["streams"] for row in model["rows"]] == [1, 2]
    for row in model["rows"]:
        assert positive(*(row[path]["aggregate_tokens_per_s"] for path in ("batched", "serialized", "raw")))
        assert row["outputs_equal_batched_vs_raw"] is True  # raw with the batch's attention and KV cache type
        assert positive(*(row["steady"][path]["p95_ttft_ms"] for path in ("batched", "serialized")))
    assert positive(figures["smollm2-135m-q4_1"]["speedup_most_streams_over_one"],
                    figures["smollm2-135m-q4_1"]["p95_ttft_ratio_steady_most_streams_over_alone"])


def test_speech_benches_run_each_part_and_gather_them(tmp_path: Path):
    figures = smoke("speech", tmp_path)["figures"]
    assert positive(*figures.values()), figures
    stt, tts, kokoro, vad = (report(tmp_path, part) for part in ("stt", "tts", "kokoro", "vad"))
    assert positive(stt["overhead"]["raw_rtf"], stt["overhead"]["sdk_rtf"], stt["short_commands"]["median_sdk_ms"])
    assert {(row["threads"]) for row in stt["defaults"]} >= {1}
    assert tts["first_chunk_text"] and positive(tts["time_to_first_audio_ms"]["sdk_streaming_first_chunk"])
    assert positive(*vad["per_chunk_us"].values()) and vad["segments"]["sdk_16k"] == vad["segments"]["raw_numpy"]
    assert kokoro["first_chunk_text"] and positive(kokoro["time_ratio_sdk_over_raw"],
                                                   *kokoro["real_time_factor"].values(),
                                                   *kokoro["time_to_first_audio_ms"].values())
    assert report(tmp_path, "speech")["tts"] == tts and report(tmp_path, "speech")["kokoro"] == kokoro
    [moonshine] = report(tmp_path, "moonshine")["rows"]
    assert positive(moonshine["raw_rtf"], moonshine["sdk_rtf"]) and moonshine["sdk_wer"] <= 0.10


def test_embeddings_bench_compares_onnx_gguf_and_raw_onnxruntime(tmp_path: Path):
    figures = smoke("embeddings", tmp_path)["figures"]
    assert set(figures) == {"raw_onnx_texts_per_s", "sdk_onnx_texts_per_s", "sdk_gguf_texts_per_s",
                            "onnx_ratio_sdk_over_raw"} and positive(*figures.values())
    data = report(tmp_path, "embeddings")
    assert data["min_cosine_onnx_vs_gguf"] >= 0.99 and data["max_abs_diff_sdk_vs_raw_onnx"] < 1e-4


def test_voice_bench_runs_every_configuration(tmp_path: Path):
    figures = smoke("voice", tmp_path)["figures"]
    assert set(figures) == {"agent", "agent_no_early_start", "pipeline", "pipeline_no_streaming_tts",
                            "pipeline_no_prefix_reuse"}
    assert all(positive(f["p50_first_audio_ms"]) for f in figures.values()), figures
    assert all(c["turns"] == 1 for c in report(tmp_path, "voice")["configs"])


def test_realtime_bench_times_the_websocket_turn_against_the_in_process_agent(tmp_path: Path):
    figures = smoke("realtime", tmp_path)["figures"]
    assert set(figures) == {"agent", "realtime", "p50_overhead_ms"}
    assert all(positive(*f.values()) for name, f in figures.items() if name != "p50_overhead_ms"), figures
    [agent, realtime] = report(tmp_path, "realtime")["configs"]
    assert agent["turns"] == realtime["turns"] == 1
    assert positive(*(realtime["median_stage_ms"][key] for key in ("vad_ms", "stt_ms", "llm_ttft_ms")))


def test_threads_bench_compares_thread_counts(tmp_path: Path):
    figures = smoke("threads", tmp_path)["figures"]
    data = report(tmp_path, "threads")
    counts = [row["threads"] for row in data["whisper"]["rows"]]
    assert counts[0] == 1 and counts == [row["threads"] for row in data["llama"]["rows"]]
    assert figures["whisper_fastest_threads"] in counts and figures["llama_decode_fastest_threads"] in counts
    assert all(positive(row["rtf"]) for row in data["whisper"]["rows"])
    assert all(positive(row["decode_tokens_per_s"]) for row in data["llama"]["rows"])


def test_vlm_bench_compares_encode_first_token_and_decode_with_raw_libmtmd(tmp_path: Path):
    figures = smoke("vlm", tmp_path)["figures"]
    assert figures["image_tokens"] == 16
    assert positive(*(v for k, v in figures.items() if k != "image_tokens")), figures
    results = report(tmp_path, "vlm")["results"]
    assert results["raw_baseline"] == "fresh process" and results["projector"] == "tiny-56"


def test_server_bench_compares_loopback_streams_with_the_sdk_in_process(tmp_path: Path):
    figures = smoke("server", tmp_path)["figures"]
    data = report(tmp_path, "server")
    assert data["clients"] == 8
    for side in ("server", "in_process"):
        assert data[side]["requests_complete"] == data["requests"]
        assert positive(data[side]["throughput_tokens_per_s"], data[side]["p50_ttft_ms"], data[side]["p95_ttft_ms"])
    assert positive(figures["throughput_ratio_server_over_in_process"],
                    figures["p50_ttft_ratio_server_over_in_process"])


def test_structured_bench_counts_acceptance_crashes_and_errors_per_engine(tmp_path: Path):
    figures = smoke("structured", tmp_path)["figures"]
    data = report(tmp_path, "structured")
    assert set(figures) == set(data["engines"]) >= {"llama_cpp_raw", "llguidance_raw"}
    for result in data["engines"].values():
        for name, split in result["splits"].items():
            assert split["schemas"] == data["corpus"]["sizes"][name] > 0
            assert split["accepted"] + split["refused"] + sum(split["errors"].values()) + \
                sum(split["crashes"].values()) + split["timeouts"] == split["schemas"]
    # The maxLength 32767 schema kills llama.cpp's grammar parser: the bench counts it and carries on.
    raw_cases = data["engines"]["llama_cpp_raw"]["keyword_cases"]
    assert raw_cases["max_length_32767"]["outcome"] == "crash" and len(raw_cases) == 4

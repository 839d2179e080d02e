"""VAD cost per 32 ms chunk through runanywhere vs raw sherpa-onnx, measured in one run on the same audio.

The audio is moonshine-voice's ``two_cities.wav`` (44 s of real speech with
pauses), resampled once to 16 kHz and cut into 512-sample chunks (32 ms):

* raw: ``sherpa_onnx.VoiceActivityDetector.accept_waveform`` on each numpy
  chunk, reading each finished segment's start and samples and popping it,
  with the same settings as the SDK (the engine's documented usage);
* raw with list input: the same, but each chunk converted with ``tolist()``
  first (pybind11 converts a list faster than an ndarray; the SDK does this);
* SDK: ``VoiceActivityDetector.process_samples`` on each chunk (input checks,
  float32 conversion, window buffering, speech edges, callbacks), popping
  segments with ``pop_speech_segment``;
* SDK at 48 kHz: the same audio at 48 kHz in 1536-sample (32 ms) chunks,
  resampled by the stream;
* ratio SDK / raw per chunk (1.0 = no overhead) and the segment counts
  (the same audio gives the same segments on every path).

Both wall-clock and CPU time (``time.process_time``) are reported: on a busy
machine the CPU time is the steadier measure of the work. Runs alternate,
each repeated; medians are reported. Results go to
``bench/results/vad.json``. Run: ``.venv/bin/python bench/speech_vad.py``
(about 30 s on 2 cores; ``--smoke``: the first 5 s once).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import sherpa_onnx
import soundfile
import soxr
from common import header, moonshine_asset, parse_args, scratch_library, write_report

from runanywhere import EventBus
from runanywhere.backends.sherpa_vad import SAMPLE_RATE, WINDOW_SIZE
from runanywhere.features.vad import VoiceActivityDetector

REPEATS = 5


def _speech() -> np.ndarray:
    samples, rate = soundfile.read(moonshine_asset("two_cities.wav"), dtype="float32")
    return np.asarray(soxr.resample(samples, rate, SAMPLE_RATE, quality="HQ"), dtype=np.float32)


def _raw_detector(vad: VoiceActivityDetector) -> Any:
    settings = vad.settings
    config = sherpa_onnx.VadModelConfig()
    config.silero_vad.model = str(vad.engine.path)
    config.silero_vad.threshold = settings.threshold
    config.silero_vad.min_silence_duration = settings.min_silence_s
    config.silero_vad.min_speech_duration = settings.min_speech_s
    config.silero_vad.max_speech_duration = settings.max_speech_s
    config.silero_vad.window_size = WINDOW_SIZE
    config.sample_rate = SAMPLE_RATE
    config.num_threads = settings.num_threads
    return sherpa_onnx.VoiceActivityDetector(config, buffer_size_in_seconds=settings.buffer_s)


Timing = tuple[float, float, int]  # wall seconds, CPU seconds, segments


def _raw(chunks: list[Any], detector: Any) -> Timing:
    """Feed every chunk to a raw detector, taking each finished segment (start and samples)."""
    detector.reset()
    segments: list[Any] = []
    wall, cpu = time.perf_counter(), time.process_time()
    for chunk in chunks:
        detector.accept_waveform(chunk)
        while not detector.empty():
            segment = detector.front
            segments.append((segment.start, segment.samples))
            detector.pop()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    detector.flush()
    while not detector.empty():
        segments.append((detector.front.start, detector.front.samples))
        detector.pop()
    return wall, cpu, len(segments)


def _sdk(chunks: list[np.ndarray], vad: VoiceActivityDetector, rate: int) -> Timing:
    """Feed every chunk through ``process_samples``, popping each finished segment."""
    vad.reset()
    segments: list[Any] = []
    wall, cpu = time.perf_counter(), time.process_time()
    for chunk in chunks:
        vad.process_samples(chunk, rate)
        segments += vad.segments()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    vad.flush()
    segments += vad.segments()
    return wall, cpu, len(segments)


def main() -> None:
    args = parse_args("VAD cost per 32 ms chunk, SDK vs raw sherpa-onnx")
    repeats = 1 if args.smoke else REPEATS
    vad = VoiceActivityDetector(scratch_library(), events=EventBus())
    vad.load_model("silero-vad-v6")
    vad.on_speech_activity(lambda _change: None)  # a subscriber, as in real use
    speech = _speech()[: 5 * SAMPLE_RATE] if args.smoke else _speech()
    usable = len(speech) - len(speech) % WINDOW_SIZE
    chunks = [speech[i:i + WINDOW_SIZE] for i in range(0, usable, WINDOW_SIZE)]
    lists = [chunk.tolist() for chunk in chunks]
    at_48k = np.asarray(soxr.resample(speech[:usable], SAMPLE_RATE, 48000, quality="HQ"), dtype=np.float32)
    chunks_48k = [at_48k[i:i + 3 * WINDOW_SIZE] for i in range(0, len(at_48k), 3 * WINDOW_SIZE)]
    raw = _raw_detector(vad)

    runs: dict[str, Callable[[], Timing]] = {
        "raw_numpy": lambda: _raw(chunks, raw),
        "raw_list": lambda: _raw(lists, raw),
        "sdk_16k": lambda: _sdk(chunks, vad, SAMPLE_RATE),
        "sdk_48k": lambda: _sdk(chunks_48k, vad, 48000),
    }
    walls: dict[str, list[float]] = {name: [] for name in runs}
    cpus: dict[str, list[float]] = {name: [] for name in runs}
    segments: dict[str, int] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            wall, cpu, count = run()
            walls[name].append(wall)
            cpus[name].append(cpu)
            segments[name] = count
    per_chunk_us = {name: statistics.median(t) / len(chunks) * 1e6 for name, t in walls.items()}
    cpu_us = {name: statistics.median(t) / len(chunks) * 1e6 for name, t in cpus.items()}
    detect_started = time.perf_counter()
    detected = vad.detect(speech)
    detect_ms = (time.perf_counter() - detect_started) * 1000
    vad.unload()

    report = {
        **header("vad", args.smoke),
        "sherpa_onnx": sherpa_onnx.__version__, "model": "silero-vad-v6", "audio": "two_cities.wav",
        "audio_s": round(usable / SAMPLE_RATE, 2), "chunk_ms": WINDOW_SIZE / SAMPLE_RATE * 1000,
        "chunks": len(chunks), "repeats": repeats,
        "per_chunk_us": {name: round(us, 1) for name, us in per_chunk_us.items()},
        "per_chunk_cpu_us": {name: round(us, 1) for name, us in cpu_us.items()},
        "ratio_sdk_16k_over_raw_numpy": round(per_chunk_us["sdk_16k"] / per_chunk_us["raw_numpy"], 3),
        "ratio_sdk_16k_over_raw_list": round(per_chunk_us["sdk_16k"] / per_chunk_us["raw_list"], 3),
        "ratio_sdk_48k_over_raw_numpy": round(per_chunk_us["sdk_48k"] / per_chunk_us["raw_numpy"], 3),
        "cpu_ratio_sdk_16k_over_raw_numpy": round(cpu_us["sdk_16k"] / cpu_us["raw_numpy"], 3),
        "cpu_ratio_sdk_48k_over_raw_numpy": round(cpu_us["sdk_48k"] / cpu_us["raw_numpy"], 3),
        "real_time_factor_sdk_16k": round(per_chunk_us["sdk_16k"] / (WINDOW_SIZE / SAMPLE_RATE * 1e6), 5),
        "segments": {**segments, "detect": len(detected)},
        "detect_whole_file_ms": round(detect_ms, 1),
    }
    print(json.dumps(report, indent=1))
    write_report(args.results, "vad", report)


if __name__ == "__main__":
    main()

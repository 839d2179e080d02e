"""whisper.cpp speech-to-text through runanywhere vs raw pywhispercpp, next to faster-whisper on the same files.

One run, on moonshine-voice's recordings (resampled to 16 kHz once, outside every timing):

* **derive** — seconds to write the ggml model from the CTranslate2 package (the first load) and its size.
* **engines** — per recording and engine: word error rate and median real-time factor (alternating runs after
  one warm-up each) through ``STT.transcribe`` (timed by the caller) and through the raw engine with identical
  settings: ``pywhispercpp.model.Model`` on the same derived ggml file (1 thread, greedy, English, the encoder
  window the SDK chose for that length), and ``faster_whisper.WhisperModel`` (int8, one thread per physical
  core, greedy, no VAD filter). ``speed_ratio`` = raw RTF / SDK RTF (1.0 = no overhead, target >= 0.95);
  ``cpu_ratio`` is the same in CPU seconds of the whole process, which a busy machine disturbs far less.
* **overhead** — whisper.cpp's ratio on ``two_cities.wav`` (44 s, the full 30 s windows), the headline figure.

Results go to ``bench/results/whispercpp.json``.
Run: ``.venv/bin/python bench/speech_whispercpp.py`` (several minutes on 2 cores; ``--smoke``: 5 s clips, one
repeat).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import faster_whisper  # a raw baseline
import numpy as np
from common import header, moonshine_asset, parse_args, scratch_library, write_report
from pywhispercpp.model import Model  # the other raw baseline
from tests.test_stt import BECKETT, TWO_CITIES
from tests.wer import wer

from runanywhere import EventBus
from runanywhere.backends.faster_whisper import window_frames
from runanywhere.core.capabilities import physical_cores
from runanywhere.features.stt import SpeechToText
from runanywhere.media.audio import load_audio

REFERENCES = {"beckett.wav": BECKETT, "two_cities.wav": TWO_CITIES}
MIN_WINDOW_S = 20  # the SDK's default shortened encoder window


def timed_rtf(run: Callable[[], str], seconds: float) -> tuple[float, float, str]:
    """(wall-clock RTF, CPU RTF of the whole process, the text): CPU time stays honest on a busy machine."""
    started, cpu = time.perf_counter(), time.process_time()
    text = run()
    return (time.perf_counter() - started) / seconds, (time.process_time() - cpu) / seconds, text


def compare(name: str, samples: np.ndarray, sdk: SpeechToText, raw: Callable[[np.ndarray], str],
            repeats: int) -> dict[str, Any]:
    """WER and median RTF of one recording through the SDK and the raw engine, runs alternating."""
    seconds = len(samples) / 16000
    raw(samples)
    sdk.transcribe(samples, 16000)  # warm-ups
    runs: dict[str, Callable[[], str]] = {"raw": lambda: raw(samples),
                                          "sdk": lambda: sdk.transcribe(samples, 16000).text}
    rtfs: dict[str, list[float]] = {"raw": [], "sdk": [], "raw_cpu": [], "sdk_cpu": []}
    texts = {}
    for i in range(repeats):
        for who, run in runs.items():
            wall, cpu, texts[who] = timed_rtf(run, seconds)
            rtfs[who].append(wall)
            rtfs[f"{who}_cpu"].append(cpu)
        print(f"  {sdk.loaded_model} {name} rep {i}: RTF raw {rtfs['raw'][-1]:.3f} sdk {rtfs['sdk'][-1]:.3f} "
              f"(CPU {rtfs['raw_cpu'][-1]:.3f} / {rtfs['sdk_cpu'][-1]:.3f})", flush=True)
    out: dict[str, Any] = {"model": sdk.loaded_model, "audio": name, "audio_s": seconds, "repeats": repeats}
    out |= {f"{key}_rtf": statistics.median(values) for key, values in rtfs.items()}
    out |= {"raw_wer": wer(REFERENCES[name], texts["raw"]), "sdk_wer": wer(REFERENCES[name], texts["sdk"]),
            "speed_ratio": out["raw_rtf"] / out["sdk_rtf"], "cpu_ratio": out["raw_cpu_rtf"] / out["sdk_cpu_rtf"]}
    return out


def whispercpp_rows(audio: dict[str, np.ndarray], repeats: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    library = scratch_library()
    sdk = SpeechToText(library, events=EventBus())
    started = time.perf_counter()
    sdk.load_model("whispercpp-tiny.en", threads=1)
    ggml = library.pull("whispercpp-tiny.en").path / "derived" / "ggml-model.bin"
    derive = {"load_with_derive_s": time.perf_counter() - started, "ggml_bytes": ggml.stat().st_size}
    raw_model = Model(str(ggml), n_threads=1, print_progress=False, print_realtime=False,
                      redirect_whispercpp_logs_to=None)

    def raw(samples: np.ndarray) -> str:
        frames = window_frames(len(samples), MIN_WINDOW_S)
        segments = raw_model.transcribe(samples, language="en", audio_ctx=frames // 2 if frames else 0)
        return " ".join(s.text for s in segments)

    rows = [compare(name, samples, sdk, raw, repeats) for name, samples in audio.items()]
    sdk.unload()
    return derive, rows


def faster_whisper_rows(audio: dict[str, np.ndarray], repeats: int) -> list[dict[str, Any]]:
    library, threads = scratch_library(), physical_cores()
    sdk = SpeechToText(library, events=EventBus())
    sdk.load_model("faster-whisper-tiny.en", threads=threads, min_window_s=None)
    model = faster_whisper.WhisperModel(str(library.pull("faster-whisper-tiny.en").path), device="cpu",
                                        compute_type="int8", cpu_threads=threads, num_workers=1)

    def raw(samples: np.ndarray) -> str:
        segments, _ = model.transcribe(samples, language="en", beam_size=1, vad_filter=False)
        return "".join(s.text for s in segments)

    rows = [compare(name, samples, sdk, raw, repeats) for name, samples in audio.items()]
    sdk.unload()
    return rows


def main() -> None:
    args = parse_args("whisper.cpp STT vs raw pywhispercpp, next to faster-whisper vs raw, on the same recordings")
    repeats, started = 1 if args.smoke else 3, header("whispercpp", args.smoke)
    audio = {name: load_audio(moonshine_asset(name), target_rate=16000).samples for name in REFERENCES}
    if args.smoke:
        audio = {name: samples[: 5 * 16000] for name, samples in audio.items()}
    print("== whisper.cpp (derived ggml) vs raw pywhispercpp", flush=True)
    derive, rows = whispercpp_rows(audio, repeats)
    print("== faster-whisper vs raw faster-whisper", flush=True)
    rows += faster_whisper_rows(audio, repeats)
    overhead = next(r for r in rows if r["model"] == "whispercpp-tiny.en" and r["audio"] == "two_cities.wav")
    report = {**started, "derive": derive, "engines": rows, "overhead": overhead}
    print(json.dumps(rows, indent=1), flush=True)
    write_report(args.results, "whispercpp", report)


if __name__ == "__main__":
    main()

"""Speech-to-text speed through runanywhere vs raw faster-whisper, and the evidence for the STT defaults.

One run, on moonshine-voice's recordings (resampled to 16 kHz once, outside
every timing):

* **overhead** — real-time factor (seconds of work per second of audio) of
  ``two_cities.wav`` (44 s) through ``STT.transcribe`` (timed by the caller:
  input checks, the worker hop and result assembly included) vs a raw
  ``faster_whisper.WhisperModel`` with identical settings (Whisper tiny.en,
  int8, the same threads, greedy, no VAD filter). Runs alternate after one
  warm-up each; medians of 5; ``speed_ratio`` = raw RTF / SDK RTF (1.0 = no
  overhead, target >= 0.95).
* **defaults** — word error rate on both recordings and median RTF (3
  alternating runs) for tiny.en and base with beam 1 vs 5 and 1 thread vs one
  per physical core: why the SDK decodes greedily on all physical cores.
* **short commands** — 30 spoken commands (the Piper voice) and clips of
  3, 5 and 8 s cut from the recordings (up to 4 of each length per recording): median latency and WER through the
  SDK's shortened encoder window vs raw faster-whisper's fixed 30 s window,
  and how much the two transcripts differ on the recorded clips.

Results go to ``bench/results/stt.json``.
Run: ``.venv/bin/python bench/speech_stt.py`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for the tests' WER helper and reference texts

import faster_whisper  # noqa: E402  (the raw baseline)
import numpy as np  # noqa: E402
from tests.test_stt import BECKETT, TWO_CITIES  # noqa: E402
from tests.wer import wer  # noqa: E402

from runanywhere import EventBus, SDKConfig  # noqa: E402
from runanywhere.core.capabilities import physical_cores  # noqa: E402
from runanywhere.features.stt import SpeechToText  # noqa: E402
from runanywhere.features.tts import TextToSpeech  # noqa: E402
from runanywhere.media.audio import load_audio, resample  # noqa: E402
from runanywhere.models.manager import ModelLibrary  # noqa: E402

RESULTS = ROOT / "bench" / "results"
ASSETS = Path(next(iter(importlib.util.find_spec("moonshine_voice").submodule_search_locations))) / "assets"
REFERENCES = {"beckett.wav": BECKETT, "two_cities.wav": TWO_CITIES}
REPEATS = 5
CHOICE_REPEATS = 3
COMMANDS = [
    "What is the capital of France?", "How many legs does a spider have?", "What color is the sky?",
    "Who wrote Romeo and Juliet?", "What is two plus two?", "Name a fruit that is yellow.",
    "What is the largest ocean?", "How many days are in a week?", "What do bees make?",
    "What is the opposite of hot?", "Tell me a joke about cats.", "Set a timer for ten minutes.",
    "What's the weather like tomorrow in Berlin?", "Play some relaxing music please.",
    "Remind me to call my mother at six.", "How far away is the moon?", "Translate good morning into Spanish.",
    "Why do leaves change color in autumn?", "What is the square root of sixty four?",
    "Turn off the lights in the kitchen.", "Can you recommend a good book?", "How do I boil an egg?",
    "What time is it in Tokyo right now?", "Explain photosynthesis in simple terms.",
    "Who painted the Mona Lisa?", "Stop.", "Yes please.", "No, that's wrong.",
    "I would like to order a large pizza with mushrooms and olives, and a bottle of water.",
    "Could you summarize the main points of the meeting we had yesterday afternoon?",
]


def raw_rtf(model: Any, samples: np.ndarray) -> float:
    started = time.perf_counter()
    segments, _ = model.transcribe(samples, language=None, beam_size=1, vad_filter=False)
    for _ in segments:
        pass
    return (time.perf_counter() - started) / (len(samples) / 16000)


def sdk_rtf(stt: SpeechToText, samples: np.ndarray) -> tuple[float, float]:
    """(caller-timed RTF, the result's own RTF)."""
    started = time.perf_counter()
    result = stt.transcribe(samples, 16000)
    return (time.perf_counter() - started) / result.audio_duration_s, result.real_time_factor


def overhead(library: ModelLibrary, samples: np.ndarray, threads: int) -> dict[str, Any]:
    local = library.pull("faster-whisper-tiny.en")
    raw = faster_whisper.WhisperModel(str(local.path), device="cpu", compute_type="int8", cpu_threads=threads,
                                      num_workers=1)
    stt = SpeechToText(library, events=EventBus())
    stt.load_model("faster-whisper-tiny.en", threads=threads, compute_type="int8", beam_size=1)
    raw_rtf(raw, samples)
    sdk_rtf(stt, samples)  # warm-ups
    raws, sdks, reported = [], [], []
    for i in range(REPEATS):
        raws.append(raw_rtf(raw, samples))
        sdk, own = sdk_rtf(stt, samples)
        sdks.append(sdk)
        reported.append(own)
        print(f"  rep {i}: RTF raw {raws[-1]:.4f} sdk {sdks[-1]:.4f}", flush=True)
    stt.unload()
    out = {"model": "faster-whisper-tiny.en", "audio": "two_cities.wav", "audio_s": len(samples) / 16000,
           "threads": threads, "compute_type": "int8", "beam_size": 1, "repeats": REPEATS,
           "raw_rtf": statistics.median(raws), "sdk_rtf": statistics.median(sdks),
           "sdk_reported_rtf": statistics.median(reported)}
    out["speed_ratio"] = out["raw_rtf"] / out["sdk_rtf"]
    return out


def choices(library: ModelLibrary, audio: dict[str, np.ndarray], threads: int) -> list[dict[str, Any]]:
    rows = []
    for model in ("faster-whisper-tiny.en", "faster-whisper-base"):
        configs = sorted({(beam, t) for beam in (1, 5) for t in (1, threads)})
        holders = {}
        for beam, t in configs:
            holders[beam, t] = SpeechToText(library, events=EventBus())
            holders[beam, t].load_model(model, threads=t, beam_size=beam)
        for name, samples in audio.items():
            times: dict[tuple[int, int], list[float]] = {c: [] for c in configs}
            texts = {}
            for _ in range(CHOICE_REPEATS):
                for config, holder in holders.items():
                    result = holder.transcribe(samples, 16000, "en")
                    times[config].append(result.real_time_factor)
                    texts[config] = result.text
            for beam, t in configs:
                row = {"model": model, "audio": name, "beam_size": beam, "threads": t,
                       "wer": wer(REFERENCES[name], texts[beam, t]), "rtf": statistics.median(times[beam, t])}
                rows.append(row)
                print(f"  {model} {name} beam {beam} threads {t}: WER {row['wer']:.3f} RTF {row['rtf']:.4f}",
                      flush=True)
        for holder in holders.values():
            holder.unload()
    return rows


def short_commands(library: ModelLibrary, audio: dict[str, np.ndarray], threads: int) -> dict[str, Any]:
    """The shortened encoder window (the SDK's default) vs faster-whisper's 30 s window on short audio."""
    local = library.pull("faster-whisper-tiny.en")
    raw = faster_whisper.WhisperModel(str(local.path), device="cpu", compute_type="int8", cpu_threads=threads,
                                      num_workers=1)
    stt = SpeechToText(library, events=EventBus())
    stt.load_model("faster-whisper-tiny.en", threads=threads)
    tts = TextToSpeech(library, events=EventBus())
    tts.load_voice("piper-en_US-joe-medium")
    pad = np.zeros(3200, np.float32)
    clips: list[tuple[str | None, np.ndarray]] = []
    for text in COMMANDS:
        speech = tts.synthesize(text)
        clips.append((text, np.concatenate([pad, resample(speech.audio_data, speech.sample_rate, 16000), pad])))
    tts.unload()
    for samples in audio.values():
        for seconds in (3, 5, 8):
            step = seconds * 16000
            clips += [(None, samples[at:at + step]) for at in range(0, len(samples) - step, 2 * step)][:4]

    def timed(run: Any) -> tuple[float, str]:
        started = time.perf_counter()
        text = run()
        return (time.perf_counter() - started) * 1000, text

    stt.transcribe(clips[0][1], 16000)
    raw.transcribe(clips[0][1], beam_size=1, vad_filter=False)  # warm-ups
    spoken: dict[str, list[float]] = {"sdk_ms": [], "raw_ms": [], "sdk_wer": [], "raw_wer": []}
    recorded: list[float] = []
    for reference, samples in clips:
        sdk_ms, sdk_text = timed(lambda s=samples: stt.transcribe(s, 16000).text)
        raw_ms, raw_text = timed(lambda s=samples: "".join(
            x.text for x in raw.transcribe(s, language="en", beam_size=1, vad_filter=False)[0]))
        if reference is None:
            recorded.append(wer(raw_text, sdk_text))
            continue
        spoken["sdk_ms"].append(sdk_ms)
        spoken["raw_ms"].append(raw_ms)
        spoken["sdk_wer"].append(wer(reference, sdk_text))
        spoken["raw_wer"].append(wer(reference, raw_text))
    stt.unload()
    out = {"commands": len(COMMANDS), "median_sdk_ms": statistics.median(spoken["sdk_ms"]),
           "median_raw_ms": statistics.median(spoken["raw_ms"]),
           "mean_wer_sdk": statistics.mean(spoken["sdk_wer"]), "mean_wer_raw": statistics.mean(spoken["raw_wer"]),
           "recorded_clips": len(recorded), "recorded_mean_wer_sdk_vs_raw": statistics.mean(recorded)}
    out["latency_ratio_raw_over_sdk"] = out["median_raw_ms"] / out["median_sdk_ms"]
    return out


def main() -> None:
    threads = physical_cores()
    library = ModelLibrary(SDKConfig(home=Path(tempfile.mkdtemp(prefix="bench-store-")), offline=True),
                           events=EventBus())
    audio = {name: load_audio(ASSETS / name, target_rate=16000).samples for name in REFERENCES}
    print(f"== overhead: STT vs raw faster-whisper, {threads} threads", flush=True)
    report: dict[str, Any] = {
        "bench": "stt", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": platform.platform(),
        "physical_cores": threads, "faster_whisper": faster_whisper.__version__,
        "load_average_before": os.getloadavg()[0],
        "overhead": overhead(library, audio["two_cities.wav"], threads),
    }
    print(json.dumps(report["overhead"], indent=1), flush=True)
    print("== defaults: beam and threads", flush=True)
    report["defaults"] = choices(library, audio, threads)
    print("== short commands: shortened encoder window vs 30 s", flush=True)
    report["short_commands"] = short_commands(library, audio, threads)
    print(json.dumps(report["short_commands"], indent=1), flush=True)
    report["load_average_after"] = os.getloadavg()[0]  # other work on the machine skews absolute numbers
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "stt.json").write_text(json.dumps(report, indent=1))
    print(f"wrote {RESULTS / 'stt.json'}")


if __name__ == "__main__":
    main()

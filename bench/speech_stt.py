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
Run: ``.venv/bin/python bench/speech_stt.py`` (about 2 minutes on 2 cores; ``--smoke``: 5 s clips, tiny.en only,
one repeat, two commands: seconds).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

import faster_whisper  # the raw baseline
import numpy as np
from common import header, moonshine_asset, parse_args, scratch_library, write_report
from tests.test_stt import BECKETT, TWO_CITIES
from tests.wer import wer

from runanywhere import EventBus
from runanywhere.core.capabilities import physical_cores
from runanywhere.features.stt import SpeechToText
from runanywhere.features.tts import TextToSpeech
from runanywhere.media.audio import load_audio, resample
from runanywhere.models.manager import ModelLibrary

REFERENCES = {"beckett.wav": BECKETT, "two_cities.wav": TWO_CITIES}
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


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run, or the smoke run that only proves the bench works."""

    repeats: int
    choice_repeats: int
    models: tuple[str, ...]
    beams: tuple[int, ...]
    audio_s: float | None  # None: the whole recordings
    commands: int
    clips_per_length: int


FULL = Plan(repeats=5, choice_repeats=3, models=("faster-whisper-tiny.en", "faster-whisper-base"), beams=(1, 5),
            audio_s=None, commands=len(COMMANDS), clips_per_length=4)
SMOKE = Plan(repeats=1, choice_repeats=1, models=("faster-whisper-tiny.en",), beams=(1,), audio_s=5.0, commands=2,
             clips_per_length=1)


def overhead(library: ModelLibrary, samples: np.ndarray, threads: int, plan: Plan) -> dict[str, Any]:
    local = library.pull("faster-whisper-tiny.en")
    raw = faster_whisper.WhisperModel(str(local.path), device="cpu", compute_type="int8", cpu_threads=threads,
                                      num_workers=1)
    stt = SpeechToText(library, events=EventBus())
    stt.load_model("faster-whisper-tiny.en", threads=threads, compute_type="int8", beam_size=1)
    raw_rtf(raw, samples)
    sdk_rtf(stt, samples)  # warm-ups
    raws, sdks, reported = [], [], []
    for i in range(plan.repeats):
        raws.append(raw_rtf(raw, samples))
        sdk, own = sdk_rtf(stt, samples)
        sdks.append(sdk)
        reported.append(own)
        print(f"  rep {i}: RTF raw {raws[-1]:.4f} sdk {sdks[-1]:.4f}", flush=True)
    stt.unload()
    out = {"model": "faster-whisper-tiny.en", "audio": "two_cities.wav", "audio_s": len(samples) / 16000,
           "threads": threads, "compute_type": "int8", "beam_size": 1, "repeats": plan.repeats,
           "raw_rtf": statistics.median(raws), "sdk_rtf": statistics.median(sdks),
           "sdk_reported_rtf": statistics.median(reported)}
    out["speed_ratio"] = out["raw_rtf"] / out["sdk_rtf"]
    return out


def choices(library: ModelLibrary, audio: dict[str, np.ndarray], threads: int, plan: Plan) -> list[dict[str, Any]]:
    rows = []
    for model in plan.models:
        configs = sorted({(beam, t) for beam in plan.beams for t in (1, threads)})
        holders = {}
        for beam, t in configs:
            holders[beam, t] = SpeechToText(library, events=EventBus())
            holders[beam, t].load_model(model, threads=t, beam_size=beam)
        for name, samples in audio.items():
            times: dict[tuple[int, int], list[float]] = {c: [] for c in configs}
            texts = {}
            for _ in range(plan.choice_repeats):
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


def short_commands(library: ModelLibrary, audio: dict[str, np.ndarray], threads: int, plan: Plan) -> dict[str, Any]:
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
    for text in COMMANDS[: plan.commands]:
        speech = tts.synthesize(text)
        clips.append((text, np.concatenate([pad, resample(speech.audio_data, speech.sample_rate, 16000), pad])))
    tts.unload()
    for samples in audio.values():
        for seconds in (3, 5, 8):
            step = seconds * 16000
            clips += [(None, samples[at:at + step]) for at in range(0, len(samples) - step, 2 * step)][
                : plan.clips_per_length]

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
    out = {"commands": plan.commands, "median_sdk_ms": statistics.median(spoken["sdk_ms"]),
           "median_raw_ms": statistics.median(spoken["raw_ms"]),
           "mean_wer_sdk": statistics.mean(spoken["sdk_wer"]), "mean_wer_raw": statistics.mean(spoken["raw_wer"]),
           "recorded_clips": len(recorded), "recorded_mean_wer_sdk_vs_raw": statistics.mean(recorded)}
    out["latency_ratio_raw_over_sdk"] = out["median_raw_ms"] / out["median_sdk_ms"]
    return out


def main() -> None:
    args = parse_args("STT real-time factor, SDK vs raw faster-whisper; beams, threads and short commands")
    plan = SMOKE if args.smoke else FULL
    threads = physical_cores()
    library = scratch_library()
    audio = {name: load_audio(moonshine_asset(name), target_rate=16000).samples for name in REFERENCES}
    if plan.audio_s is not None:
        audio = {name: samples[: int(plan.audio_s * 16000)] for name, samples in audio.items()}
    print(f"== overhead: STT vs raw faster-whisper, {threads} threads", flush=True)
    report: dict[str, Any] = {
        **header("stt", args.smoke), "physical_cores": threads, "faster_whisper": faster_whisper.__version__,
        "overhead": overhead(library, audio["two_cities.wav"], threads, plan),
    }
    print(json.dumps(report["overhead"], indent=1), flush=True)
    print("== defaults: beam and threads", flush=True)
    report["defaults"] = choices(library, audio, threads, plan)
    print("== short commands: shortened encoder window vs 30 s", flush=True)
    report["short_commands"] = short_commands(library, audio, threads, plan)
    print(json.dumps(report["short_commands"], indent=1), flush=True)
    write_report(args.results, "stt", report)


if __name__ == "__main__":
    main()

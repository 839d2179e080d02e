"""Moonshine v2 (tiny-en, base-en) through runanywhere vs raw sherpa-onnx: real-time factor and WER, one run.

Both sides do the same job on moonshine-voice's recordings (resampled to 16 kHz
once, outside every timing): Silero finds the speech, and Moonshine decodes it
in pieces of at most 9.25 s (sherpa-onnx 1.13.8 returns an empty text past
9.27 s; the SDK's module docs say why). The raw side is plain sherpa-onnx: its
``VoiceActivityDetector`` with the SDK's settings, then ``OfflineRecognizer.from_moonshine_v2``
on each segment (a longer one is cut in equal parts), with the same
``tokens.txt``, model files and threads. Runs alternate after one warm-up
each; medians; ``speed_ratio`` = raw RTF / SDK RTF (target >= 0.95).

Results go to ``bench/results/moonshine.json``.
Run: ``.venv/bin/python bench/speech_moonshine.py`` (a minute or two on 2 cores; ``--smoke``: beckett, tiny-en,
one repeat).
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import numpy as np
import sherpa_onnx  # the raw baseline
from common import header, moonshine_asset, parse_args, scratch_library, write_report
from tests.test_stt import REFERENCES
from tests.wer import wer

from runanywhere import EventBus
from runanywhere.backends.sherpa_stt import MAX_UTTERANCE_S
from runanywhere.core.capabilities import physical_cores
from runanywhere.features.stt import SpeechToText
from runanywhere.features.stt.sherpa_files import sherpa_model_files
from runanywhere.media.audio import load_audio
from runanywhere.models.manager import ModelLibrary

VAD = {"threshold": 0.5, "min_silence_duration": 0.3, "min_speech_duration": 0.25, "max_speech_duration": 6.0}
PAD = 4000  # the SDK keeps 0.25 s before and after each stretch of speech


class RawMoonshine:
    """Plain sherpa-onnx: Silero segments, then one Moonshine decode per segment."""

    def __init__(self, library: ModelLibrary, model: str, threads: int) -> None:
        roles = sherpa_model_files(library, library.pull(model), None).roles  # the SDK's files, tokens.txt too
        self.vad_model = str(roles["vad"])
        self.recognizer = sherpa_onnx.OfflineRecognizer.from_moonshine_v2(
            encoder=str(roles["encoder"]), decoder=str(roles["decoder"]), tokens=str(roles["tokens"]),
            num_threads=threads)

    def transcribe(self, samples: np.ndarray) -> str:
        config = sherpa_onnx.VadModelConfig()
        config.silero_vad.model = self.vad_model
        for key, value in VAD.items():
            setattr(config.silero_vad, key, value)
        config.sample_rate = 16000
        vad = sherpa_onnx.VoiceActivityDetector(config, buffer_size_in_seconds=60)
        for at in range(0, len(samples), 512):
            vad.accept_waveform(samples[at:at + 512])
        vad.flush()
        texts = []
        limit = int(MAX_UTTERANCE_S * 16000)
        while not vad.empty():
            start = max(0, vad.front.start - PAD)
            end = min(len(samples), vad.front.start + len(vad.front.samples) + PAD)
            vad.pop()
            parts = math.ceil((end - start) / limit)
            for piece in np.array_split(samples[start:end], parts):
                stream = self.recognizer.create_stream()
                stream.accept_waveform(16000, piece)
                self.recognizer.decode_stream(stream)
                texts.append(stream.result.text.strip())
        return " ".join(t for t in texts if t)


def compare(library: ModelLibrary, model: str, audio: dict[str, np.ndarray], threads: int,
            repeats: int) -> list[dict[str, Any]]:
    sdk = SpeechToText(library, events=EventBus())
    sdk.load_model(model, threads=threads)
    raw = RawMoonshine(library, model, threads)
    rows = []
    for name, samples in audio.items():
        seconds = len(samples) / 16000
        sdk.transcribe(samples, 16000)
        raw.transcribe(samples)  # warm-ups
        raw_rtf, sdk_rtf = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            raw_text = raw.transcribe(samples)
            raw_rtf.append((time.perf_counter() - started) / seconds)
            started = time.perf_counter()
            sdk_text = sdk.transcribe(samples, 16000).text
            sdk_rtf.append((time.perf_counter() - started) / seconds)
        row = {"model": model, "audio": name, "audio_s": seconds, "threads": threads, "repeats": repeats,
               "raw_rtf": statistics.median(raw_rtf), "sdk_rtf": statistics.median(sdk_rtf),
               "raw_wer": wer(REFERENCES[name], raw_text), "sdk_wer": wer(REFERENCES[name], sdk_text)}
        row["speed_ratio"] = row["raw_rtf"] / row["sdk_rtf"]
        rows.append(row)
        print(f"  {model} {name}: RTF raw {row['raw_rtf']:.4f} sdk {row['sdk_rtf']:.4f} "
              f"(ratio {row['speed_ratio']:.2f}); WER raw {row['raw_wer']:.3f} sdk {row['sdk_wer']:.3f}", flush=True)
    sdk.unload()
    return rows


def main() -> None:
    args = parse_args("Moonshine v2 through runanywhere vs raw sherpa-onnx: RTF and WER")
    names = ("beckett.wav",) if args.smoke else tuple(sorted(REFERENCES))
    audio = {name: load_audio(moonshine_asset(name), target_rate=16000).samples for name in names}
    models = ("moonshine-tiny-en",) if args.smoke else ("moonshine-tiny-en", "moonshine-base-en")
    library, threads = scratch_library(), physical_cores()
    rows = [row for model in models for row in compare(library, model, audio, threads, 1 if args.smoke else 3)]
    write_report(args.results, "moonshine", {**header("moonshine", args.smoke), "rows": rows})


if __name__ == "__main__":
    main()

"""``runanywhere vad FILE``: where the speech is in a recording, as start/end seconds."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console

from ..features.vad import VAD
from ..media.audio import load_audio
from . import MODEL_HELP


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    vad = sub.add_parser("vad", help="list the speech segments of an audio file (start/end seconds)")
    vad.add_argument("file", type=Path, help="WAV, FLAC, OGG or MP3 file (any rate, mono or stereo)")
    vad.add_argument("--model", help=MODEL_HELP.format(what=".onnx", kind="voice activity"))
    vad.add_argument("--threshold", type=float, default=0.5, help="speech probability that counts as speech")
    vad.add_argument("--min-silence", type=float, default=0.5, help="seconds of silence that end a segment")
    vad.add_argument("--min-speech", type=float, default=0.25, help="shorter speech is ignored (seconds)")
    vad.add_argument("--json", action="store_true", help="print the segments as JSON")
    vad.set_defaults(func=_vad)


def _vad(args: argparse.Namespace) -> int:
    audio = load_audio(args.file)
    VAD.load_model(args.model, threshold=args.threshold, min_silence_s=args.min_silence,
                   min_speech_s=args.min_speech)
    try:
        started = time.perf_counter()
        segments = VAD.detect(audio)
        processing_ms = (time.perf_counter() - started) * 1000
    finally:
        VAD.unload()
    rows = [{"start_s": round(s.start_s, 3), "end_s": round(s.end_s, 3), "duration_s": round(s.duration_s, 3)}
            for s in segments]
    if args.json:
        print(json.dumps({"file": str(args.file), "duration_s": round(audio.duration_s, 3),
                          "processing_ms": round(processing_ms, 1), "segments": rows}, indent=2))
        return 0
    for row in rows:
        print(f"{row['start_s']:8.2f}  {row['end_s']:8.2f}  ({row['duration_s']:.2f} s)")
    speech_s = sum(s.duration_s for s in segments)
    Console(stderr=True).print(f"[dim]{len(rows)} segment(s), {speech_s:.2f} s of speech in "
                               f"{audio.duration_s:.2f} s of audio · {processing_ms:.0f} ms[/]")
    return 0

"""``runanywhere transcribe FILE``: speech to text from the shell.

Prints the text (metrics on stderr), or with ``--json`` the whole result with
its segments. Live microphone transcription (``--live``) waits for the audio
capture module.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from rich.console import Console

from ..features.stt import DEFAULT_MODEL, STT, TranscriptionResult
from ..media.audio import load_audio


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser("transcribe", help="transcribe an audio file (WAV/FLAC/OGG/MP3) to text")
    cmd.add_argument("file", help="the audio file")
    cmd.add_argument("--model", default=DEFAULT_MODEL, help=f"catalog id or model directory ({DEFAULT_MODEL})")
    cmd.add_argument("--language", help="language code, e.g. en (default: English, or detected by multilingual models)")
    cmd.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    cmd.add_argument("--beam-size", type=int, default=1, help="beam search width (1 = greedy, the fastest)")
    cmd.add_argument("--json", action="store_true", help="print the result with segments and metrics as JSON")
    cmd.set_defaults(func=_transcribe)


def _metrics(result: TranscriptionResult) -> str:
    return (f"{result.audio_duration_s:.1f} s of audio in {result.processing_ms / 1000:.2f} s · "
            f"real-time factor {result.real_time_factor:.3f} · confidence {result.confidence:.2f}")


def _transcribe(args: argparse.Namespace) -> int:
    audio = load_audio(args.file)  # a missing or unreadable file fails before the model loads
    STT.load_model(args.model, threads=args.threads, beam_size=args.beam_size)
    try:
        result = STT.transcribe(audio, language=args.language)
    finally:
        STT.unload()
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print(result.text)
        Console(stderr=True).print(f"[dim]{_metrics(result)}[/]")
    return 0

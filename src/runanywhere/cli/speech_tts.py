"""``runanywhere speak``: text to speech from the shell, into a WAV file or the speakers.

The text is streamed through the voice, so playback starts after the first
clause; ``-`` reads the text from standard input as it arrives (pipe a
language model's output into it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from rich.console import Console

from ..features.tts import TTS, SynthesisStream
from ..media.audio import save_wav
from . import MODEL_HELP


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    speak = sub.add_parser("speak", help="say a text with a Piper voice (to a WAV file or the speakers)")
    speak.add_argument("text", help="the text to say; '-' reads standard input")
    speak.add_argument("-o", "--output", type=Path, help="write a 16-bit WAV here instead of playing it")
    speak.add_argument("--voice", help=MODEL_HELP.format(what=".onnx", kind="speech-synthesis"))
    speak.add_argument("--speed", type=float, default=1.0, help="speaking rate (2.0 is twice as fast)")
    speak.add_argument("--speaker", type=int, default=0, help="speaker id of a multi-speaker voice")
    speak.add_argument("--threads", type=int, help="inference threads (default: physical cores)")
    speak.add_argument("--json", action="store_true", help="print the result's metrics as JSON")
    speak.set_defaults(func=_speak)


def _speak(args: argparse.Namespace) -> int:
    text: str | Iterable[str] = sys.stdin if args.text == "-" else args.text
    voice_id = TTS.load_voice(args.voice, threads=args.threads)
    try:
        started = time.perf_counter()
        stream = TTS.synthesize_stream(text, speaker_id=args.speaker, speed=args.speed)
        first_chunk_ms, chunks = (_write if args.output else _play)(stream, started)
        result = stream.result
        if args.output:
            save_wav(args.output, result)
    finally:
        TTS.unload()
    summary = {"voice": args.voice or voice_id, "output": str(args.output) if args.output else None,
               "sample_rate": result.sample_rate, "duration_ms": round(result.duration_ms, 1),
               "processing_ms": round(result.processing_ms, 1), "real_time_factor": round(result.real_time_factor, 4),
               "chunks": chunks, "first_chunk_ms": round(first_chunk_ms, 1) if first_chunk_ms is not None else None}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        Console(stderr=True).print(f"[dim]{result.duration_ms / 1000:.2f} s of speech in {chunks} chunk(s) · "
                                   f"first audio {summary['first_chunk_ms']} ms · "
                                   f"real-time factor {result.real_time_factor:.3f}"
                                   + (f" · {args.output}" if args.output else "") + "[/]")
    return 0


def _write(stream: SynthesisStream, started: float) -> tuple[float | None, int]:
    """Drain the stream (the WAV is written from its result); returns (first chunk ms, chunk count)."""
    first, count = None, 0
    for _ in stream:
        first = first if first is not None else (time.perf_counter() - started) * 1000
        count += 1
    return first, count


def _play(stream: SynthesisStream, started: float) -> tuple[float | None, int]:
    """Queue each chunk on the speakers as it comes; returns when playback has finished."""
    from ..media.playback import AudioPlayback

    first, count = None, 0
    with AudioPlayback(sample_rate=TTS.sample_rate) as player:
        try:
            for chunk in stream:
                first = first if first is not None else (time.perf_counter() - started) * 1000
                count += 1
                player.play(chunk.audio_data, chunk.sample_rate)
        except KeyboardInterrupt:
            stream.cancel()
            player.stop()
    return first, count

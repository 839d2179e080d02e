"""``runanywhere transcribe FILE``: speech to text from the shell.

Prints the text (metrics on stderr), or with ``--json`` the whole result with
its segments. ``--live`` transcribes the microphone, one utterance per line,
with the VAD cutting utterances.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from rich.console import Console

from ..core.errors import InvalidInputError
from ..features.stt import STT, TranscriptionResult
from ..media.audio import load_audio
from . import MODEL_HELP


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cmd = sub.add_parser("transcribe", help="transcribe an audio file (WAV/FLAC/OGG/MP3) to text")
    cmd.add_argument("file", nargs="?", help="the audio file (omit with --live)")
    cmd.add_argument("--live", action="store_true", help="transcribe the microphone until Ctrl-C")
    cmd.add_argument("--device", help="with --live: the input device (name or index; default: the system's)")
    cmd.add_argument("--model", help=MODEL_HELP.format(what="model directory", kind="speech-recognition"))
    cmd.add_argument("--language", help="language code, e.g. en (default: English, or detected by multilingual models)")
    cmd.add_argument("--threads", type=int, help="CPU threads (default: physical cores)")
    cmd.add_argument("--beam-size", type=int, default=1, help="beam search width (1 = greedy, the fastest)")
    cmd.add_argument("--json", action="store_true", help="print the result with segments and metrics as JSON")
    cmd.set_defaults(func=_transcribe)


def _metrics(result: TranscriptionResult) -> str:
    return (f"{result.audio_duration_s:.1f} s of audio in {result.processing_ms / 1000:.2f} s · "
            f"real-time factor {result.real_time_factor:.3f} · confidence {result.confidence:.2f}")


def _live(args: argparse.Namespace) -> int:
    from ..features.vad import VAD
    from ..media.capture import AudioCapture

    STT.load_model(args.model, threads=args.threads, beam_size=args.beam_size)
    VAD.load_model()
    session = VAD.create_session(sample_rate=16000)
    try:
        device = int(args.device) if args.device and args.device.isdigit() else args.device
        with AudioCapture(sample_rate=16000, chunk_size=512, device=device) as mic:
            Console(stderr=True).print("[bold]listening[/] (Ctrl-C to stop)")  # only once the microphone is open
            for chunk in mic:
                session.process_samples(chunk.samples)
                for segment in session.segments():
                    text = STT.transcribe(segment.samples, segment.sample_rate, language=args.language).text
                    if text:
                        print(f"[{segment.start_s:7.2f} s] {text}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        session.close()
        VAD.unload()
        STT.unload()
    return 0


def _transcribe(args: argparse.Namespace) -> int:
    if args.live:
        return _live(args)
    if args.file is None:
        raise InvalidInputError("name an audio file, or use --live for the microphone")
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

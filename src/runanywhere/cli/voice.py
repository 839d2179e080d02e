"""``runanywhere voice``: the voice assistant, on the microphone and speakers or from a file."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from ..features.stt import STT
from ..features.text import TextGeneration
from ..features.tts import TTS, AudioChunk
from ..features.vad import VAD
from ..features.voice import (
    PipelineState,
    VoiceAgent,
    VoiceAgentCallbacks,
    VoiceAgentOptions,
    VoicePipeline,
    VoicePipelineOptions,
    VoiceTurnResult,
)
from ..media.audio import save_wav
from . import MODEL_HELP


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    voice = sub.add_parser("voice", help="talk with a local assistant (microphone and speakers, or a file)")
    voice.add_argument("--input", type=Path, help="answer the turns in this audio file instead of the microphone")
    voice.add_argument("--output", type=Path, help="with --input: write the spoken replies to this WAV")
    voice.add_argument("--llm", help=MODEL_HELP.format(what=".gguf", kind="language"))
    voice.add_argument("--stt", help=MODEL_HELP.format(what="model directory", kind="speech-recognition"))
    voice.add_argument("--tts", help=MODEL_HELP.format(what=".onnx", kind="speech-synthesis"))
    voice.add_argument("--max-tokens", type=int, default=80)
    voice.add_argument("--temperature", type=float, default=0.7)
    voice.add_argument("--end-of-speech", type=float, default=0.35, metavar="SECONDS",
                       help="silence that ends a turn (shorter answers sooner; too short cuts people off)")
    voice.add_argument("--device", help="microphone and speakers: this audio device (name or index; default: the "
                                        "system's)")
    voice.add_argument("--json", action="store_true", help="print each turn's metrics as JSON lines")
    voice.set_defaults(func=_voice)


def _voice(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    console.print("[dim]loading models...[/]")
    STT.load_model(args.stt)
    TextGeneration.load_model(args.llm, n_ctx=2048)
    TTS.load_voice(args.tts)
    VAD.load_model(min_silence_s=args.end_of_speech)
    pipeline = VoicePipeline(options=VoicePipelineOptions().with_generation(max_tokens=args.max_tokens,
                                                                              temperature=args.temperature))
    pipeline.warm_up()
    replies: list[AudioChunk] = []
    callbacks = VoiceAgentCallbacks(on_turn=lambda turn: _show(turn, args.json, console),
                                    on_error=lambda error: console.print(f"[red]turn failed:[/] {error}"))
    try:
        if args.input is not None:
            agent = VoiceAgent(pipeline, options=VoiceAgentOptions(realtime=False, barge_in=False),
                               callbacks=callbacks)
            agent.run(str(args.input), replies.append)
        else:
            from ..media.capture import AudioCapture
            from ..media.playback import AudioPlayback

            device = int(args.device) if args.device and args.device.isdigit() else args.device
            with AudioCapture(sample_rate=16000, chunk_size=512, device=device) as mic, \
                    AudioPlayback(device=device) as speaker, console.status("listening") as status:
                if console.is_terminal:  # a live line says what the assistant is doing
                    callbacks.on_state_change = lambda state: status.update(_DOING.get(state, state.value))
                agent = VoiceAgent(pipeline, callbacks=callbacks)
                console.print("[bold]listening[/] (Ctrl-C to stop)")
                try:
                    agent.run(mic, speaker)
                except KeyboardInterrupt:
                    agent.stop()
    finally:
        for holder in (STT, TextGeneration, TTS, VAD):
            holder.unload()
    if args.output is not None and replies:
        import numpy as np

        rate = replies[0].sample_rate
        save_wav(args.output, np.concatenate([c.audio_data for c in replies]), rate)
        console.print(f"wrote {args.output}")
    return 0


_DOING = {PipelineState.LISTENING: "listening", PipelineState.PROCESSING_STT: "transcribing",
          PipelineState.GENERATING_RESPONSE: "thinking", PipelineState.PLAYING_TTS: "speaking"}


def _show(turn: VoiceTurnResult, as_json: bool, console: Console) -> None:
    """Print a turn as soon as it is answered (a JSON line with its metrics, or the exchange)."""
    if as_json:
        print(json.dumps({"transcription": turn.transcription, "response": turn.response,
                          "interrupted": turn.interrupted, "metrics": asdict(turn.metrics)}), flush=True)
    else:
        print(f"you: {turn.transcription}\nassistant: {turn.response}", flush=True)
        console.print(f"[dim]first audio {turn.metrics.speech_end_to_first_audio_ms or 0:.0f} ms after "
                      "the end of speech[/]")

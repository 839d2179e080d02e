"""Kokoro TTS speed through runanywhere vs raw kokoro-onnx, measured in one run, next to Piper's figures.

The packaged Kokoro-82M int8 model (24 kHz, voice ``jf_alpha`` speaking English) reads the first three
sentences of the Piper bench's paragraph. Both sides run kokoro-onnx over an onnxruntime session with the
same thread count and options (no spinning):

* synthesis time of the same pieces (raw: ``Kokoro.create`` on each piece the SDK's segmenter cuts; SDK:
  ``TextToSpeech.synthesize``), and each side's real-time factor (the SDK's audio is longer by the pauses it
  puts between sentences), plus raw ``create`` of the whole text at once for information (kokoro-onnx
  batches up to 510 phonemes);
* time to first audio: SDK streaming first chunk (the first clause) vs SDK batch, and raw ``create`` of that
  first clause alone;
* ratios SDK / raw. Kokoro has no sampling noise: every run makes the same audio.

Results go to ``bench/results/kokoro.json``; ``bench/speech.py`` gathers it with Piper's ``tts.json``.
Run: ``.venv/bin/python bench/speech_kokoro.py`` (a few minutes on 2 busy cores; ``--smoke``: under a minute).
"""

from __future__ import annotations

import statistics
import time
from importlib.metadata import version
from typing import Any

import kokoro_onnx
import onnxruntime
from common import header, parse_args, scratch_library, write_report
from speech_tts import PARAGRAPH, first_audio_report, first_piece, sdk_round, sdk_speak

from runanywhere import EventBus
from runanywhere.core.capabilities import physical_cores
from runanywhere.features.tts import TextToSpeech
from runanywhere.features.tts.segmenter import split_text

MODEL = "kokoro-82m-v1.0-int8"
VOICE = "jf_alpha"
REPEATS = 3
TEXT = ". ".join(PARAGRAPH.split(". ")[:3]) + "."


def raw_kokoro(model: Any, voices: Any, threads: int) -> Any:
    """kokoro-onnx's own ``Kokoro`` over a session with the SDK's options (threads, no spinning)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    return kokoro_onnx.Kokoro.from_session(session, str(voices))


def raw_speak(kokoro: Any, pieces: list[str]) -> tuple[float, float]:
    """(seconds to synthesize, seconds of audio) of raw ``create`` calls, one per piece."""
    started = time.perf_counter()
    samples = sum(len(kokoro.create(piece, voice=VOICE, lang="en-us")[0]) for piece in pieces)
    return time.perf_counter() - started, samples / kokoro_onnx.SAMPLE_RATE


def main() -> None:
    args = parse_args("Kokoro TTS real-time factor and time to first audio, SDK vs raw kokoro-onnx")
    repeats, text = (1, PARAGRAPH.split(". ")[0] + ".") if args.smoke else (REPEATS, TEXT)
    pieces, first_clause = split_text(text), first_piece(text)
    threads = max(1, physical_cores())
    library = scratch_library()
    local = library.pull(MODEL)
    kokoro = raw_kokoro(local.file("weights"), local.file("voices"), threads)
    tts = TextToSpeech(library, events=EventBus())
    tts.load_voice(MODEL, threads=threads)
    raw_speak(kokoro, [first_clause])  # warm-up: first runs pay onnxruntime's one-off allocations
    sdk_speak(tts, first_clause)

    runs: dict[str, list[float]] = {"raw_s": [], "raw_rtf": [], "raw_whole_rtf": [], "sdk_rtf": [], "batch_s": [],
                                    "audio_s": [], "first_s": [], "raw_clause_s": []}
    for _ in range(repeats):  # interleaved, so a change in machine load hits both sides alike
        spent, seconds = raw_speak(kokoro, pieces)
        runs["raw_s"].append(spent)
        runs["raw_rtf"].append(spent / seconds)
        sdk_round(tts, text, first_clause, runs)
        runs["raw_clause_s"].append(raw_speak(kokoro, [first_clause])[0])
        spent, seconds = raw_speak(kokoro, [text])
        runs["raw_whole_rtf"].append(spent / seconds)
    tts.unload()

    m = {name: statistics.median(values) for name, values in runs.items()}
    report = {
        **header("kokoro", args.smoke),
        "model": MODEL, "voice": VOICE, "sample_rate": kokoro_onnx.SAMPLE_RATE, "threads": threads,
        "repeats": repeats, "engine": f"kokoro-onnx {version('kokoro-onnx')} / onnxruntime {onnxruntime.__version__}",
        "text_chars": len(text), "pieces": len(pieces), "audio_s": round(m["audio_s"], 2),
        "real_time_factor": {"raw": round(m["raw_rtf"], 4), "sdk": round(m["sdk_rtf"], 4),
                             "raw_whole_text_at_once": round(m["raw_whole_rtf"], 4)},
        "synthesis_time_ms": {"raw": round(m["raw_s"] * 1000, 1), "sdk": round(m["batch_s"] * 1000, 1)},
        "time_ratio_sdk_over_raw": round(m["batch_s"] / m["raw_s"], 3),
        **first_audio_report(m, first_clause),
    }
    print(report)
    write_report(args.results, "kokoro", report)


if __name__ == "__main__":
    main()

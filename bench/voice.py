"""Voice latency: speech end → first reply audio, over a 20-turn conversation, per stage.

Each turn is a spoken question (the Piper voice, as a user would say it)
followed by silence. Five configurations, in one run on the default models:

* ``agent``: the product, a :class:`VoiceAgent` fed like a microphone (32 ms
  chunks in real time). It starts answering at the first silent VAD window
  while the VAD still waits, so the end-of-turn wait and STT → LLM → TTS overlap. Measured
  in wall-clock time from the VAD's end of speech to the first reply chunk
  handed to the speaker; also from the last audible sample of the question
  (above 1 % of full scale), the stricter clock, since the VAD's segment end
  falls about 0.1 s after it.
* ``agent_no_early_start``: the same agent, answering only once the VAD ended the turn.
* ``pipeline``: VAD then :meth:`VoicePipeline.process_turn`, the wait counted in
  stream time (samples fed after the speech ended), then the stages in sequence;
* ``pipeline_no_streaming_tts``: the whole reply is generated before speech starts;
* ``pipeline_no_prefix_reuse``: the LLM cache is cleared before every turn.

Writes ``bench/results/voice.json`` and ``voice.png``.
Run: ``.venv/bin/python bench/voice.py [vad_min_silence_s]`` (default 0.35, the CLI's; ``--smoke``: one turn
per configuration).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from common import header, parse_args, write_report

from runanywhere import EventBus, SDKConfig, TextGenerator
from runanywhere.features.stt import SpeechToText
from runanywhere.features.tts import AudioChunk, TextToSpeech
from runanywhere.features.vad import VoiceActivityDetector
from runanywhere.features.voice import VoiceAgent, VoiceAgentOptions, VoicePipeline, VoicePipelineOptions
from runanywhere.media.audio import resample
from runanywhere.models.manager import ModelLibrary

RATE = 16000
QUESTIONS = [
    "What is the capital of France?", "How many legs does a spider have?", "What color is the sky?",
    "Who wrote Romeo and Juliet?", "What is two plus two?", "Name a fruit that is yellow.",
    "What is the largest ocean?", "How many days are in a week?", "What do bees make?",
    "What is the opposite of hot?",
]
TURNS = 20


def load(home: Path, min_silence_s: float) -> tuple[SpeechToText, TextGenerator, TextToSpeech, VoiceActivityDetector]:
    library = ModelLibrary(SDKConfig(home=home, offline=True), events=EventBus())
    stt, llm = SpeechToText(library), TextGenerator(library)
    tts, vad = TextToSpeech(library), VoiceActivityDetector(library)
    stt.load_model("faster-whisper-tiny.en")
    llm.load_model("smollm2-135m-instruct-q4_1", n_ctx=2048)
    tts.load_voice("piper-en_US-joe-medium")
    vad.load_model("silero-vad-v6", min_silence_s=min_silence_s)
    return stt, llm, tts, vad


def spoken_turns(tts: TextToSpeech) -> list[np.ndarray]:
    silence = np.zeros(int(1.2 * RATE), dtype=np.float32)
    out = []
    for question in QUESTIONS:
        speech = tts.synthesize(question)
        out.append(np.concatenate([np.zeros(int(0.2 * RATE), np.float32),
                                   resample(speech.audio_data, speech.sample_rate, RATE), silence]))
    return out


def product_pipeline(stt: SpeechToText, llm: TextGenerator, tts: TextToSpeech) -> VoicePipeline:
    """The agent configs' pipeline: the voice defaults answering greedily in at most 40 tokens, warmed up."""
    options = VoicePipelineOptions().with_generation(temperature=0.0, max_tokens=40)
    pipeline = VoicePipeline(stt=stt, llm=llm, tts=tts, options=options, events=EventBus())
    pipeline.warm_up()
    return pipeline


def run_agent(name: str, pipeline: VoicePipeline, vad: VoiceActivityDetector, audio: list[np.ndarray],
              early_start_s: float | None, turns_wanted: int) -> dict[str, Any]:
    """A real-time session: each question, then silence until the reply has been heard in full."""
    agent = VoiceAgent(pipeline, vad, options=VoiceAgentOptions(barge_in=False, early_start_s=early_start_s))
    chunk = 512
    heard_at: list[float] = []  # wall time of the first reply chunk of each turn
    audible_end_at: list[float] = []  # wall time the last audible sample of each question was fed
    reply_done = threading.Event()

    def speaker(piece: AudioChunk) -> None:
        if len(heard_at) < len(audible_end_at):
            heard_at.append(time.perf_counter())
        if piece.is_final:
            reply_done.set()

    def microphone() -> Iterator[np.ndarray]:
        for turn in range(turns_wanted):
            clip = audio[turn % len(audio)]
            last = int(np.flatnonzero(np.abs(clip) > 0.01)[-1])
            reply_done.clear()
            for at in range(0, len(clip), chunk):
                if at <= last < at + chunk:  # asked for when the previous chunk ended: this one starts now
                    audible_end_at.append(time.perf_counter() + (last + 1 - at) / RATE)
                yield clip[at:at + chunk]
            deadline = time.monotonic() + 30
            while not reply_done.is_set() and time.monotonic() < deadline:
                yield np.zeros(chunk, np.float32)
            yield np.zeros(int(0.5 * RATE), np.float32)  # the reply is "heard" (the sink does not block)

    turns = agent.run(microphone(), speaker)
    assert len(turns) == turns_wanted, f"{len(turns)} turns recorded of {turns_wanted}"
    rows = []
    for turn, result in enumerate(turns):
        m = result.metrics
        rows.append({"vad_ms": m.vad_end_of_speech_delay_ms, "early_start_ms": m.early_start_ms, "stt_ms": m.stt_ms,
                     "llm_ttft_ms": m.llm_time_to_first_token_ms or 0.0,
                     "tts_first_audio_ms": m.tts_time_to_first_audio_ms or 0.0,
                     "first_audio_ms": m.speech_end_to_first_audio_ms or float("nan"),
                     "audible_end_to_first_audio_ms": (heard_at[turn] - audible_end_at[turn]) * 1000,
                     "prompt_tokens_evaluated": m.llm_prompt_tokens_evaluated})
        print(f"  {name} turn {turn}: {rows[-1]['first_audio_ms']:.0f} ms (audible end: "
              f"{rows[-1]['audible_end_to_first_audio_ms']:.0f} ms) ({result.transcription!r} -> "
              f"{result.response[:40]!r})", flush=True)
    return summarise(name, rows)


def summarise(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    firsts = sorted(r["first_audio_ms"] for r in rows)
    out = {"config": name, "turns": len(rows), "p50_first_audio_ms": statistics.median(firsts),
           "p95_first_audio_ms": firsts[int(0.95 * (len(firsts) - 1))],
           "median_stage_ms": {key: statistics.median(r[key] for r in rows) for key in rows[0]}, "rows": rows}
    if "audible_end_to_first_audio_ms" in rows[0]:
        audible = sorted(r["audible_end_to_first_audio_ms"] for r in rows)
        out["p50_audible_end_to_first_audio_ms"] = statistics.median(audible)
        out["p95_audible_end_to_first_audio_ms"] = audible[int(0.95 * (len(audible) - 1))]
    return out


def run_config(name: str, pipeline: VoicePipeline, vad: VoiceActivityDetector, audio: list[np.ndarray],
               reset_cache: bool, turns_wanted: int) -> dict[str, Any]:
    history: list[dict[str, str]] = []
    rows = []
    for turn in range(turns_wanted):
        session = vad.create_session(sample_rate=RATE)
        clip = audio[turn % len(audio)]
        segment, fed = None, 0
        for at in range(0, len(clip), 512):  # the microphone, one 32 ms chunk at a time
            session.process_samples(clip[at:at + 512])
            fed += len(clip[at:at + 512])
            segment = session.pop_speech_segment()
            if segment is not None:
                break
        session.close()
        assert segment is not None, "the VAD found no turn"
        vad_delay_ms = (fed / RATE - segment.end_s) * 1000
        if reset_cache:
            pipeline.llm._require().worker.call(pipeline.llm.engine.llm.reset)
        result = pipeline.process_turn(segment.samples, segment.sample_rate, history=history,
                                       vad_delay_ms=vad_delay_ms)
        history += [{"role": "user", "content": result.transcription},
                    {"role": "assistant", "content": result.response}]
        m = result.metrics
        rows.append({"vad_ms": m.vad_end_of_speech_delay_ms, "stt_ms": m.stt_ms,
                     "llm_ttft_ms": m.llm_time_to_first_token_ms or 0.0,
                     "tts_first_audio_ms": m.tts_time_to_first_audio_ms or 0.0,
                     "first_audio_ms": m.speech_end_to_first_audio_ms or float("nan"),
                     "prompt_tokens_evaluated": m.llm_prompt_tokens_evaluated})
        print(f"  {name} turn {turn}: {rows[-1]['first_audio_ms']:.0f} ms ({result.transcription!r} -> "
              f"{result.response[:40]!r})", flush=True)
    return summarise(name, rows)


def chart(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(11, 4.5))
    names = [r["config"] for r in results]
    bottom = np.zeros(len(results))
    for stage, label in (("vad_ms", "VAD end-of-speech wait"), ("stt_ms", "STT"), ("llm_ttft_ms", "LLM first token"),
                         ("tts_first_audio_ms", "first token → first audio")):
        values = np.array([r["median_stage_ms"][stage] for r in results])
        ax.bar(names, values, bottom=bottom, label=label)
        bottom += values
    ax.scatter(names, [r["p50_first_audio_ms"] for r in results], color="black", zorder=3, label="p50 measured")
    agents = [r for r in results if "p50_audible_end_to_first_audio_ms" in r]
    ax.scatter([r["config"] for r in agents], [r["p50_audible_end_to_first_audio_ms"] for r in agents],
               color="purple", marker="^", zorder=3, label="p50 from the last audible sample")
    ax.scatter(names, [r["p95_first_audio_ms"] for r in results], color="red", marker="x", zorder=3, label="p95")
    ax.axhline(700, color="grey", linestyle="--", label="700 ms target")
    ax.set_ylabel("speech end → first audio (ms)")
    ax.set_title("bars: median stage times (agent: the VAD wait overlaps the stages)", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description="voice latency: speech end to first reply audio, per stage")
    parser.add_argument("min_silence_s", nargs="?", type=float, default=0.35, help="the VAD's end-of-turn silence")
    args = parse_args(parser.description or "", parser)
    min_silence_s, turns = args.min_silence_s, 1 if args.smoke else TURNS
    with tempfile.TemporaryDirectory(prefix="bench-voice-") as home:
        stt, llm, tts, vad = load(Path(home), min_silence_s)
        audio = spoken_turns(tts)
        product = product_pipeline(stt, llm, tts)
        options = product.options
        results = [run_agent("agent", product, vad, audio, VoiceAgentOptions().early_start_s, turns),
                   run_agent("agent_no_early_start", product, vad, audio, None, turns)]
        for name, stream_tts, reset in (("pipeline", True, False), ("pipeline_no_streaming_tts", False, False),
                                        ("pipeline_no_prefix_reuse", True, True)):
            pipeline = VoicePipeline(stt=stt, llm=llm, tts=tts, events=EventBus(),
                                     options=replace(options, stream_tts=stream_tts))
            pipeline.warm_up()
            results.append(run_config(name, pipeline, vad, audio, reset, turns))
        for engine in (stt, llm, tts, vad):
            engine.unload()
    report = {**header("voice", args.smoke), "vad_min_silence_s": min_silence_s,
              "models": ["faster-whisper-tiny.en", "smollm2-135m-instruct-q4_1", "piper-en_US-joe-medium",
                         "silero-vad-v6"], "configs": results}
    write_report(args.results, "voice", report)
    chart(results, args.results / "voice.png")
    for r in results:
        audible = (f" (from the last audible sample: p50 {r['p50_audible_end_to_first_audio_ms']:.0f}, "
                   f"p95 {r['p95_audible_end_to_first_audio_ms']:.0f})" if "p50_audible_end_to_first_audio_ms" in r
                   else "")
        print(f"{r['config']}: p50 {r['p50_first_audio_ms']:.0f} ms, p95 {r['p95_first_audio_ms']:.0f} ms{audible}, "
              f"stages {json.dumps({k: round(v) for k, v in r['median_stage_ms'].items()})}")


if __name__ == "__main__":
    main()

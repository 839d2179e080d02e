"""Realtime turn latency: speech end → first audio delta over /v1/realtime, versus the in-process agent.

Both hear the same spoken questions (the Piper voice) in 32-40 ms chunks in real time, on the default
models, in one run:

* ``agent``: a :class:`VoiceAgent` in this process (as in ``voice.py``);
* ``realtime``: the official ``openai`` realtime client over a loopback WebSocket to a local server
  with the ``/v1/realtime`` route, appending PCM16 at 24 kHz; the first audio delta is timed where the
  client receives it.

Two clocks for each: from the VAD's end of speech (the server's own latency record in ``response.done``,
and the agent's turn metrics), and from the last audible sample of the question (wall clock, on the
client's side for ``realtime``), which includes everything the protocol adds: base64, JSON, the socket,
24 kHz resampling both ways. Writes ``bench/results/realtime.json``.
Run: ``.venv/bin/python bench/realtime.py [--smoke]`` (smoke: one turn each).
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import header, parse_args, write_report
from tests.localserver import serving
from voice import QUESTIONS, load, product_pipeline, run_agent, spoken_turns, summarise

from runanywhere.features.voice import VoiceAgentOptions
from runanywhere.media.audio import resample
from runanywhere.server.realtime import RealtimeEngines, realtime_route

RATE, WIRE_RATE, CHUNK_S = 16000, 24000, 0.04
TURNS = 10
MIN_SILENCE_S = 0.35  # the VAD's end-of-turn silence, for both (the CLI's default)


async def realtime_turns(port: int, audio: list[np.ndarray], turns_wanted: int) -> list[dict[str, Any]]:
    """Each question appended in real time, then silence until the reply is done; a row per turn."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", websocket_base_url=f"ws://127.0.0.1:{port}/v1",
                         api_key="local")
    rows: list[dict[str, Any]] = []
    async with client.realtime.connect(model="runanywhere-voice") as connection:
        await connection.session.update(session={"type": "realtime", "audio": {"input": {"turn_detection": {
            "type": "server_vad", "silence_duration_ms": int(MIN_SILENCE_S * 1000), "prefix_padding_ms": 250}}}})
        done: asyncio.Queue[Any] = asyncio.Queue()
        first_delta_at: list[float] = []

        async def listen() -> None:
            async for event in connection:
                if event.type == "response.output_audio.delta" and len(first_delta_at) < len(rows) + 1:
                    first_delta_at.append(time.perf_counter())
                elif event.type in ("response.done", "error"):
                    await done.put(event)

        reader = asyncio.create_task(listen())
        step = int(CHUNK_S * WIRE_RATE)
        for turn in range(turns_wanted):
            clip = resample(audio[turn % len(audio)], RATE, WIRE_RATE)
            last = int(np.flatnonzero(np.abs(clip) > 0.01)[-1])
            pcm = (np.clip(clip, -1, 1) * 32767).astype("<i2")
            started, audible_end = time.perf_counter(), 0.0
            for at in range(0, len(pcm), step):
                if at <= last < at + step:
                    audible_end = time.perf_counter() + (last + 1 - at) / WIRE_RATE
                await connection.input_audio_buffer.append(audio=base64.b64encode(pcm[at:at + step].tobytes()).decode())
                await asyncio.sleep(max(0.0, started + (at + step) / WIRE_RATE - time.perf_counter()))
            silence = base64.b64encode(np.zeros(step, "<i2").tobytes()).decode()
            waiting = asyncio.create_task(done.get())
            while not waiting.done():  # silence, as a microphone would send, until the reply is done
                await connection.input_audio_buffer.append(audio=silence)
                await asyncio.wait({waiting}, timeout=CHUNK_S)
            event = waiting.result()
            if event.type == "error" or event.response.status != "completed":
                raise SystemExit(f"turn {turn} failed: {event}")
            latency = event.response.latency
            rows.append({"vad_ms": latency["vad_end_of_speech_delay_ms"], "early_start_ms": latency["early_start_ms"],
                         "stt_ms": latency["stt_ms"], "llm_ttft_ms": latency["llm_time_to_first_token_ms"] or 0.0,
                         "tts_first_audio_ms": latency["tts_time_to_first_audio_ms"] or 0.0,
                         "first_audio_ms": latency["speech_end_to_first_audio_ms"],
                         "audible_end_to_first_audio_ms": (first_delta_at[turn] - audible_end) * 1000,
                         "prompt_tokens_evaluated": latency["llm_prompt_tokens_evaluated"]})
            print(f"  realtime turn {turn}: {rows[-1]['first_audio_ms']:.0f} ms (audible end, client side: "
                  f"{rows[-1]['audible_end_to_first_audio_ms']:.0f} ms)", flush=True)
            for _ in range(int(0.5 / CHUNK_S)):  # the reply is "heard" (the client does not play it)
                await connection.input_audio_buffer.append(audio=silence)
        reader.cancel()
    return rows


def main() -> None:
    args = parse_args("realtime turn latency over /v1/realtime versus the in-process agent")
    turns = 1 if args.smoke else TURNS
    from starlette.applications import Starlette

    with tempfile.TemporaryDirectory(prefix="bench-realtime-") as home:
        stt, llm, tts, vad = load(Path(home), MIN_SILENCE_S)
        audio = spoken_turns(tts)
        pipeline = product_pipeline(stt, llm, tts)
        agent = run_agent("agent", pipeline, vad, audio, VoiceAgentOptions().early_start_s, turns)
        engines = RealtimeEngines(stt, llm, tts, vad, pipeline=pipeline.options)
        app = Starlette(routes=[realtime_route(engines)])
        with serving(app) as port:
            rows = asyncio.run(realtime_turns(port, audio, turns))
        realtime = summarise("realtime", rows)
        for engine in (stt, llm, tts, vad):
            engine.unload()
    report = {**header("realtime", args.smoke), "questions": QUESTIONS[:turns], "configs": [agent, realtime],
              "p50_overhead_ms": realtime["p50_audible_end_to_first_audio_ms"]
              - agent["p50_audible_end_to_first_audio_ms"]}
    write_report(args.results, "realtime", report)
    for r in (agent, realtime):
        print(f"{r['config']}: p50 {r['p50_first_audio_ms']:.0f} ms from the VAD's end of speech, "
              f"p50 {r['p50_audible_end_to_first_audio_ms']:.0f} ms from the last audible sample")
    print(f"realtime over loopback adds {report['p50_overhead_ms']:.0f} ms (p50, from the last audible sample)")


if __name__ == "__main__":
    main()

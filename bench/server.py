"""The HTTP server under load: 8 concurrent streaming chat clients over loopback vs the SDK in-process.

A fixed number of chat requests (greedy, the same ``max_tokens``) is shared
by 8 concurrent clients: over HTTP, each streams ``/v1/chat/completions``
(SSE) with ``httpx`` from ``runanywhere serve``, run as a process of its own on
127.0.0.1; in-process, each is an asyncio task reading
``TextGenerator.agenerate_stream``, in a fresh process of its own too, so the
clients of one side never share a process (or its GIL) with the other side's
engine. Every response must be complete (a finish reason and ``[DONE]``).
Reported: throughput (completion tokens/s over the wall time), p50/p95 time
to first token (from sending the request to the first content), and the
ratios server / in-process. The model runs its default number of generations at
once (``max_sequences``, 4 on 2 cores) and queues the rest, so the time to first
token includes queueing behind the others in both cases.
The realtime voice turn (``/v1/realtime``) is measured with the realtime route.
Results go to ``bench/results/server.json``.
Run: ``.venv/bin/python bench/server.py [--smoke]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from common import ROOT, header, parse_args, scratch_library, write_report
from tests.serving import stop

from runanywhere import EventBus, TextGenerator

MODEL = "smollm2-135m-instruct-q4_1"
CLIENTS = 8
N_CTX = 2048
QUESTIONS = ["What is the capital of France?", "Name three colours.", "What is 2 plus 2?",
             "Why is the sky blue?", "Say hello in Spanish.", "What do cats eat?"]


@dataclass(frozen=True)
class Plan:
    requests: int
    max_tokens: int


FULL, SMOKE = Plan(requests=48, max_tokens=64), Plan(requests=8, max_tokens=8)


def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]


def summary(ttfts: list[float], tokens: int, wall_s: float, complete: int) -> dict[str, Any]:
    ordered = sorted(ttfts)
    return {"requests_complete": complete, "completion_tokens": tokens, "wall_s": round(wall_s, 3),
            "throughput_tokens_per_s": round(tokens / wall_s, 2), "p50_ttft_ms": round(statistics.median(ordered), 2),
            "p95_ttft_ms": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 2)}


async def clients(plan: Plan, one: Any) -> dict[str, Any]:
    """Run ``plan.requests`` requests through ``one(i) -> (ttft_ms, tokens, complete)`` with 8 workers."""
    queue = iter(range(plan.requests))
    ttfts: list[float] = []
    tokens = complete = 0

    async def worker() -> None:
        nonlocal tokens, complete
        for i in queue:
            ttft, count, done = await one(i)
            ttfts.append(ttft)
            tokens += count
            complete += done

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    return summary(ttfts, tokens, time.perf_counter() - started, complete)


async def over_http(base: str, plan: Plan) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        async def one(i: int) -> tuple[float, int, bool]:
            body = {"model": MODEL, "messages": messages(i), "temperature": 0, "max_tokens": plan.max_tokens,
                    "stream": True, "stream_options": {"include_usage": True}}
            sent, first, finished, done, count = time.perf_counter(), None, False, False, 0
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    if line == "data: [DONE]":
                        done = True
                        continue
                    chunk = json.loads(line[6:])
                    if chunk["choices"] and chunk["choices"][0]["delta"].get("content") and first is None:
                        first = time.perf_counter()
                    finished |= bool(chunk["choices"] and chunk["choices"][0]["finish_reason"])
                    count = chunk["usage"]["completion_tokens"] if chunk.get("usage") else count
            return ((first or time.perf_counter()) - sent) * 1000, count, finished and done

        return await clients(plan, one)


async def in_process(generator: TextGenerator, plan: Plan) -> dict[str, Any]:
    async def one(i: int) -> tuple[float, int, bool]:
        sent, first = time.perf_counter(), None
        stream = generator.agenerate_stream(messages(i), temperature=0, max_tokens=plan.max_tokens)
        async for event in stream:
            if event.text and first is None:
                first = time.perf_counter()
        result = stream.result
        return ((first or time.perf_counter()) - sent) * 1000, result.output_tokens, result.finish_reason != "cancelled"

    return await clients(plan, one)


def baseline(plan: Plan) -> dict[str, Any]:
    """The in-process side, run in a fresh process (``--side in-process``): its JSON on the last stdout line."""
    done = subprocess.run([sys.executable, __file__, "--side", "in-process", *(["--smoke"] * (plan is SMOKE))],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the in-process side failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def run_in_process(plan: Plan) -> dict[str, Any]:
    generator = TextGenerator(scratch_library(), events=EventBus())
    generator.load_model(MODEL, n_ctx=N_CTX)
    try:
        return asyncio.run(in_process(generator, plan))
    finally:
        generator.unload()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def server_process() -> Iterator[str]:
    """``runanywhere serve`` in its own process (a scratch offline store, the model preloaded); yields its URL."""
    port = _free_port()
    env = {**os.environ, "RUNANYWHERE_HOME": tempfile.mkdtemp(prefix="bench-store-"), "RUNANYWHERE_OFFLINE": "1",
           "PYTHONPATH": str(ROOT / "src")}
    process = subprocess.Popen([sys.executable, "-m", "runanywhere.cli", "serve", "--port", str(port),
                                "--models", MODEL, "--ctx", str(N_CTX)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                told = process.stderr.read() if process.stderr else ""
                raise SystemExit(f"the server did not start: {told[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            time.sleep(0.1)
        yield base
    finally:
        stop(process, 30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--side", choices=("in-process",), help=argparse.SUPPRESS)
    args = parse_args(__doc__ or "", parser)
    plan = SMOKE if args.smoke else FULL
    if args.side == "in-process":
        print(json.dumps(run_in_process(plan)), flush=True)
        return
    report: dict[str, Any] = {**header("server", args.smoke), "model": MODEL, "clients": CLIENTS,
                              "requests": plan.requests, "max_tokens": plan.max_tokens,
                              "processes": "server, its HTTP clients and the in-process side: one process each"}
    report["in_process"] = baseline(plan)
    with server_process() as base:
        report["server"] = asyncio.run(over_http(base, plan))
    http, local = report["server"], report["in_process"]
    if http["requests_complete"] != plan.requests or local["requests_complete"] != plan.requests:
        raise SystemExit(f"incomplete responses: {http['requests_complete']} over HTTP, "
                         f"{local['requests_complete']} in-process, of {plan.requests}")
    report["throughput_ratio_server_over_in_process"] = round(
        http["throughput_tokens_per_s"] / local["throughput_tokens_per_s"], 3)
    report["p50_ttft_ratio_server_over_in_process"] = round(http["p50_ttft_ms"] / local["p50_ttft_ms"], 3)
    print(json.dumps(report, indent=1), flush=True)
    write_report(args.results, "server", report)


if __name__ == "__main__":
    main()

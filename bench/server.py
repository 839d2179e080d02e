"""The HTTP server under load: 8 concurrent streaming chat clients over loopback vs the SDK in-process.

A fixed number of chat requests (greedy, the same ``max_tokens``) is shared
by 8 concurrent clients: over HTTP, each streams ``/v1/chat/completions``
(SSE) from a server on 127.0.0.1 with ``httpx``; in-process, each is an
asyncio task reading ``TextGenerator.agenerate_stream`` on the same kind of
model. Every response must be complete (a finish reason and ``[DONE]``).
Reported: throughput (completion tokens/s over the wall time), p50/p95 time
to first token (from sending the request to the first content), and the
ratios server / in-process. One model runs requests in order, so the time to
first token includes queueing behind the others in both cases.
The realtime voice turn (``/v1/realtime``) is measured with the realtime route.
Results go to ``bench/results/server.json``.
Run: ``.venv/bin/python bench/server.py [--smoke]``.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx
from common import header, parse_args, scratch_library, write_report
from tests.serving import serving

from runanywhere import EventBus, TextGenerator
from runanywhere.server import ServerConfig, create_app

MODEL = "smollm2-135m-instruct-q4_1"
CLIENTS = 8
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


def main() -> None:
    args = parse_args(__doc__ or "")
    plan = SMOKE if args.smoke else FULL
    library = scratch_library()
    report: dict[str, Any] = {**header("server", args.smoke), "model": MODEL, "clients": CLIENTS,
                              "requests": plan.requests, "max_tokens": plan.max_tokens}
    generator = TextGenerator(library, events=EventBus())
    generator.load_model(MODEL, n_ctx=2048)
    report["in_process"] = asyncio.run(in_process(generator, plan))
    generator.unload()
    app = create_app(ServerConfig(models=(MODEL,), n_ctx=2048), library=library, events=EventBus())
    with serving(app) as base:
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

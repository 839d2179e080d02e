"""The generation worker of ``bench/structured.py``: SmolLM2 writes one JSON value per schema, in a process of its own.

Run as ``structured_generate.py ENGINE MODEL_PATH``; reads one ``{"schema", "prompt", "max_tokens"}`` a line
on stdin and answers each with one JSON line: the reply text, its tokens, time to first token, decode
tokens/s, the finish reason, and for ``sdk`` the time the constraint's mask and token accept took. Engines:

- ``sdk``: ``TextGenerator`` with the schema as its grammar (the llguidance mask on every step);
- ``sdk_free``: the same prompt without a constraint, as many tokens as ``sdk`` wrote (decode speed without the mask);
- ``llama_cpp_raw``: raw llama-cpp-python with ``json_schema_to_gbnf``'s grammar (the converter baseline).

All greedy, 2 threads, the same chat prompt; a crash kills only this process.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
Generate = Callable[[dict[str, Any]], dict[str, Any]]


def sdk(model: str, *, constrained: bool) -> Generate:
    """Generation through the SDK, with the schema as the request's grammar or without one."""
    sys.path[:0] = [str(ROOT / "src")]
    from runanywhere import EventBus, GenerationOptions, GenerationRequest, TextGenerator
    from runanywhere.backends.llguidance_constraint import ConstraintRun

    spent = {"mask_s": 0.0, "accept_s": 0.0, "steps": 0}
    mask, accept = ConstraintRun.mask, ConstraintRun.accept

    def timed_mask(run: ConstraintRun, logits: Any) -> Any:
        started = time.perf_counter()
        try:
            return mask(run, logits)
        finally:
            spent["mask_s"] += time.perf_counter() - started
            spent["steps"] += 1

    def timed_accept(run: ConstraintRun, token: int) -> None:
        started = time.perf_counter()
        try:
            accept(run, token)
        finally:
            spent["accept_s"] += time.perf_counter() - started

    ConstraintRun.mask, ConstraintRun.accept = timed_mask, timed_accept  # type: ignore[method-assign]
    generator = TextGenerator(events=EventBus())
    generator.load_model(model, n_ctx=4096, n_threads=2)

    def generate(job: dict[str, Any]) -> dict[str, Any]:
        spent.update(mask_s=0.0, accept_s=0.0, steps=0)
        options = GenerationOptions(max_tokens=job["max_tokens"], temperature=0.0)
        request = GenerationRequest([{"role": "user", "content": job["prompt"]}], options,
                                    grammar=job["schema"] if constrained else None)
        result = generator.start(request, deliver=False).wait()
        return {"text": result.text, "tokens": result.output_tokens, "finish": result.finish_reason,
                "ttft_ms": result.time_to_first_token_ms, "decode_tps": result.decode_tokens_per_second,
                **({"mask_ms": spent["mask_s"] * 1000, "accept_ms": spent["accept_s"] * 1000,
                    "mask_steps": spent["steps"]} if constrained else {})}

    return generate


def llama_cpp_raw(model: str) -> Generate:
    """Raw llama-cpp-python: the converter's GBNF grammar, streamed chat completion, timed like the SDK's."""
    import llama_cpp
    from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

    llm = llama_cpp.Llama(model_path=model, n_ctx=4096, n_threads=2, n_threads_batch=2, verbose=False)

    def generate(job: dict[str, Any]) -> dict[str, Any]:
        grammar = LlamaGrammar.from_string(json_schema_to_gbnf(json.dumps(job["schema"])), verbose=False)
        started, first, pieces, tokens, finish = time.perf_counter(), None, [], 0, None
        for chunk in llm.create_chat_completion([{"role": "user", "content": job["prompt"]}], grammar=grammar,
                                                temperature=0.0, max_tokens=job["max_tokens"], stream=True):
            choice = chunk["choices"][0]
            piece = choice["delta"].get("content")
            if piece:
                first = first or time.perf_counter()
                pieces.append(piece)
                tokens += 1
            finish = choice.get("finish_reason") or finish
        ended = time.perf_counter()
        decode = (tokens - 1) / (ended - first) if first and tokens > 1 and ended > first else None
        return {"text": "".join(pieces), "tokens": tokens, "finish": finish,
                "ttft_ms": (first - started) * 1000 if first else None, "decode_tps": decode}

    return generate


ENGINES: dict[str, Callable[[str], Generate]] = {
    "sdk": lambda model: sdk(model, constrained=True),
    "sdk_free": lambda model: sdk(model, constrained=False),
    "llama_cpp_raw": llama_cpp_raw,
}


def main() -> None:
    name, model = sys.argv[1], sys.argv[2]
    generate = ENGINES[name](model)
    print(json.dumps({"ready": True, "version": name}), flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        try:
            answer = {"outcome": "generated", **generate(job)}
        except Exception as exc:
            answer = {"outcome": "error", "error": type(exc).__name__, "message": str(exc)[:300]}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()

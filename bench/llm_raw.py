"""The raw llama-cpp-python baseline for ``bench/llm.py``, run in a fresh process of its own.

It imports nothing but llama-cpp-python, so no other llama.cpp context and no
thread of the SDK's has run in the process that is measured. Reads a JSON job
on stdin (``model``, ``threads``, ``n_ctx``, ``prompts``, ``decode_tokens``)
and prints one JSON line: per prompt, the prompt tokens, prefill tokens/s
(prompt tokens over the time to the first token) and decode tokens/s (tokens
after the first over the time after it), greedy, from a cold cache.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import llama_cpp


def run(llm: Any, tokens: list[int], max_tokens: int) -> tuple[float, float]:
    """(prefill tokens/s, decode tokens/s) of one cold generation."""
    llm.reset()
    started = time.perf_counter()
    first, decode, _ = sample(llm, tokens, max_tokens)
    return len(tokens) / (first - started), decode


def sample(llm: Any, tokens: list[int], max_tokens: int, *, until_end: bool = False) -> tuple[float, float, int]:
    """Greedy tokens after ``tokens``: (time of the first, decode tokens/s after it, count).

    ``until_end`` stops at an end-of-generation token too, as the SDK does.
    """
    first = None
    count = 0
    for token in llm.generate(tokens, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
        if first is None:
            first = time.perf_counter()
        if until_end and llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
            break
        count += 1
        if count >= max_tokens:
            break
    end = time.perf_counter()
    if first is None:
        raise SystemExit("the model produced no token")
    return first, (count - 1) / (end - first) if count > 1 else 0.0, count


def main() -> None:
    job = json.loads(sys.stdin.read())
    llm = llama_cpp.Llama(model_path=job["model"], n_ctx=job["n_ctx"], n_threads=job["threads"],
                          n_threads_batch=job["threads"], n_batch=512, n_ubatch=512, verbose=False)
    out: dict[str, list[float]] = {"prompt_tokens": [], "prefill_tokens_per_s": [], "decode_tokens_per_s": []}
    for prompt in job["prompts"]:
        tokens = llm.tokenize(prompt.encode(), add_bos=True)
        prefill, decode = run(llm, tokens, job["decode_tokens"])
        out["prompt_tokens"].append(len(tokens))
        out["prefill_tokens_per_s"].append(prefill)
        out["decode_tokens_per_s"].append(decode)
    llm.close()
    print(json.dumps({**out, "llama_cpp_python": llama_cpp.__version__}))


if __name__ == "__main__":
    main()

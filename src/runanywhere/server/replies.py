"""The parts of a completion response that chat and text completions share: ids, usage, timings."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from .. import GenerationResult, TokenEvent, VLMResult

FINISH = {"stop": "stop", "length": "length", "cancelled": "stop"}


def completion_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def created() -> int:
    return int(time.time())


def usage(result: GenerationResult) -> dict[str, Any]:
    """OpenAI's usage block; ``cached_tokens`` are prompt tokens the KV cache already held."""
    return {"prompt_tokens": result.input_tokens, "completion_tokens": result.output_tokens,
            "total_tokens": result.input_tokens + result.output_tokens,
            "prompt_tokens_details": {"cached_tokens": result.reused_prompt_tokens}}


def timings(result: GenerationResult) -> dict[str, Any]:
    """How the generation went: queueing, time to first token, prefill and decode speeds, cached prompt tokens.

    A vision-language reply adds its images, the image tokens they became and the time encoding them took.
    """
    seen = {"images": result.images, "image_tokens": result.image_tokens,
            "image_encode_ms": round(result.image_encode_ms, 3)} if isinstance(result, VLMResult) else {}
    return {**seen, "queue_ms": round(result.queue_ms, 3),
            "time_to_first_token_ms": _round(result.time_to_first_token_ms),
            "prefill_tokens_per_second": _round(result.prefill_tokens_per_second),
            "decode_tokens_per_second": _round(result.decode_tokens_per_second),
            "prompt_tokens_evaluated": result.prompt_tokens_evaluated,
            "cached_prompt_tokens": result.reused_prompt_tokens, "latency_ms": round(result.latency_ms, 3)}


def _round(value: float | None) -> float | None:
    return round(value, 3) if value is not None else None


_HOLE = "\uffff hole \uffff"


def text_template(chunk: Callable[[dict[str, Any]], dict[str, Any]], key: str) -> Callable[[str], str]:
    """The JSON of ``chunk({key: text})`` for any text, rendered once: each token then costs one small dump."""
    before, after = json.dumps(chunk({key: _HOLE}), ensure_ascii=False).split(json.dumps(_HOLE, ensure_ascii=False))
    return lambda text: before + json.dumps(text, ensure_ascii=False) + after


def runs(events: Iterable[TokenEvent]) -> list[tuple[bool, str]]:
    """Token events as (is_thinking, text) runs: the tokens a slow reader finds waiting go out as one delta."""
    joined: list[tuple[bool, str]] = []
    for event in events:
        if not event.text:
            continue
        if joined and joined[-1][0] == event.is_thinking:
            joined[-1] = (event.is_thinking, joined[-1][1] + event.text)
        else:
            joined.append((event.is_thinking, event.text))
    return joined

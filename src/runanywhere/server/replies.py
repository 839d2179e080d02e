"""The parts of a completion response that chat and text completions share: ids, usage, timings."""

from __future__ import annotations

import time
import uuid
from typing import Any

from .. import GenerationResult, VLMResult

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

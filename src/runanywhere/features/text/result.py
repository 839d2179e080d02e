"""What a generation gives: streamed :class:`TokenEvent` pieces and the final :class:`GenerationResult`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True)
class TokenEvent:
    """One piece of streamed text. ``is_thinking`` marks text inside ``<think>…</think>``."""

    text: str
    token_id: int
    index: int
    is_thinking: bool = False


@dataclass(frozen=True)
class GenerationResult:
    """A finished generation and its metrics.

    ``input_tokens`` is the prompt's length; ``prompt_tokens_evaluated`` how many
    of them llama.cpp had to evaluate (the rest came from the KV cache).
    ``time_to_first_token_ms`` runs from the call (after queueing) to the first
    sampled token; ``prefill_tokens_per_second`` is evaluated prompt tokens over
    that time; ``decode_tokens_per_second`` is tokens after the first over the
    time after it. ``latency_ms`` is the whole call.
    """

    text: str
    model_id: str
    input_tokens: int
    output_tokens: int
    prompt_tokens_evaluated: int
    latency_ms: float
    time_to_first_token_ms: float | None
    prefill_tokens_per_second: float | None
    decode_tokens_per_second: float | None
    finish_reason: FinishReason
    thinking_content: str | None = None
    thinking_tokens: int = 0
    response_tokens: int = 0
    queue_ms: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        """Output tokens over the whole latency, as the reference SDK reports it."""
        return self.output_tokens / (self.latency_ms / 1000) if self.latency_ms > 0 else 0.0

    @property
    def tokens_used(self) -> int:
        return self.output_tokens

    @property
    def reused_prompt_tokens(self) -> int:
        return self.input_tokens - self.prompt_tokens_evaluated

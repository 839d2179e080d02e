"""What a vision-language call gives: :class:`VLMResult` (a generation result with image metrics) and its events."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

from ...core.events import EventCategory, SDKEvent
from ..text import GenerationResult


@dataclass(frozen=True)
class VLMResult(GenerationResult):
    """A finished vision-language generation.

    On top of :class:`GenerationResult`: ``images`` and the ``image_tokens`` they became,
    ``image_encode_ms`` (the vision tower's time, included in ``time_to_first_token_ms``).
    ``prompt_tokens`` counts text and image tokens; ``completion_tokens`` the reply's. A cancelled
    request has ``finish_reason`` "cancelled" and ``cancelled_during`` its stage then
    (``image_encode``, ``prefill`` or ``decode``).
    """

    images: int = 0
    image_tokens: int = 0
    image_encode_ms: float = 0.0
    cancelled_during: str | None = None

    @property
    def prompt_tokens(self) -> int:
        """The prompt's tokens, text and images (the reference SDK's ``promptTokens``)."""
        return self.input_tokens

    @property
    def completion_tokens(self) -> int:
        """The reply's tokens (the reference SDK's ``completionTokens``)."""
        return self.output_tokens

    @classmethod
    def of(cls, result: GenerationResult, *, images: int, image_tokens: int, image_encode_ms: float) -> VLMResult:
        """``result`` with the image metrics added."""
        base = {f.name: getattr(result, f.name) for f in fields(GenerationResult)}
        return cls(**base, images=images, image_tokens=image_tokens, image_encode_ms=image_encode_ms,
                   cancelled_during="decode" if result.finish_reason == "cancelled" else None)

    @classmethod
    def cancelled(cls, model_id: str, stage: str, *, images: int, latency_ms: float, queue_ms: float) -> VLMResult:
        """A request cancelled before its first token (while encoding an image or prefilling)."""
        return cls(text="", model_id=model_id, input_tokens=0, output_tokens=0, prompt_tokens_evaluated=0,
                   latency_ms=latency_ms, time_to_first_token_ms=None, prefill_tokens_per_second=None,
                   decode_tokens_per_second=None, finish_reason="cancelled", queue_ms=queue_ms, images=images,
                   cancelled_during=stage)


@dataclass(frozen=True, kw_only=True)
class VLMStageStarted(SDKEvent):
    """A vision-language request entered a stage: ``image_encode``, ``prefill`` or ``decode`` (from its worker)."""

    type: ClassVar[str] = "vlm.stageStarted"
    category: ClassVar[EventCategory] = EventCategory.GENERATION
    model_id: str
    stage: str

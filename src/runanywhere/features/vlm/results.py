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
    ``prompt_tokens`` counts text and image tokens; ``completion_tokens`` the reply's.
    """

    images: int = 0
    image_tokens: int = 0
    image_encode_ms: float = 0.0

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens

    @property
    def completion_tokens(self) -> int:
        return self.output_tokens

    @classmethod
    def of(cls, result: GenerationResult, *, images: int, image_tokens: int, image_encode_ms: float) -> VLMResult:
        """``result`` with the image metrics added."""
        base = {f.name: getattr(result, f.name) for f in fields(GenerationResult)}
        return cls(**base, images=images, image_tokens=image_tokens, image_encode_ms=image_encode_ms)


@dataclass(frozen=True, kw_only=True)
class VLMStageStarted(SDKEvent):
    """A vision-language request entered a stage: ``image_encode``, ``prefill`` or ``decode`` (from its worker)."""

    type: ClassVar[str] = "vlm.stageStarted"
    category: ClassVar[EventCategory] = EventCategory.GENERATION
    model_id: str
    stage: str

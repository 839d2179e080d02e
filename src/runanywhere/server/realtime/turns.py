"""The turn runner of a realtime session's :class:`VoiceSession`: replies come from the realtime conversation.

The voice session keeps its own record of turns (it still guards against the agent's own voice with
it), but what the model sees is the conversation of items, which the client may edit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ...core.cancel import CancelToken
from ...features.voice import VoicePipeline, VoicePipelineCallbacks, VoiceTurnResult
from ...media.audio import AudioSource
from .items import Items


class ConversationTurns:
    """Answers each turn with the session's current ``pipeline``, from ``items``; ``token`` cancels the last turn."""

    def __init__(self, items: Items, pipeline: VoicePipeline) -> None:
        self.items, self.pipeline = items, pipeline
        self.token = CancelToken()

    def process_turn(self, audio: AudioSource, sample_rate: int | None = None, *,
                     history: Sequence[Mapping[str, Any]] = (), callbacks: VoicePipelineCallbacks | None = None,
                     cancel: CancelToken | None = None, speech_end_at: float | None = None,
                     vad_delay_ms: float = 0.0, accept_transcription: Callable[[str], bool] | None = None,
                     before_tools: Callable[[], None] | None = None) -> VoiceTurnResult:
        """The voice session's turn, answered from the conversation's items (``history`` is the session's own)."""
        self.token = cancel or CancelToken()
        return self.pipeline.process_turn(audio, sample_rate, history=self.items.history(), callbacks=callbacks,
                                          cancel=self.token, speech_end_at=speech_end_at, vad_delay_ms=vad_delay_ms,
                                          accept_transcription=accept_transcription, before_tools=before_tools)

    def prefill(self, history: Sequence[Mapping[str, Any]], *, cancel: CancelToken | None = None) -> int:
        return self.pipeline.prefill(self.items.history(), cancel=cancel)

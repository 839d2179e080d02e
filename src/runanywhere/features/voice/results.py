"""What a voice turn reports: the pipeline's states, a turn's metrics and its result."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..tools.types import ToolCall, ToolResult

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


class PipelineState(str, enum.Enum):
    """The reference SDK's pipeline states."""

    IDLE = "idle"
    LISTENING = "listening"
    PROCESSING_STT = "processingSTT"
    GENERATING_RESPONSE = "generatingResponse"
    PLAYING_TTS = "playingTTS"
    COOLDOWN = "cooldown"
    ERROR = "error"


@dataclass(frozen=True)
class TurnMetrics:
    """What one turn cost, in milliseconds from the end of the user's speech.

    ``speech_end_to_first_audio_ms`` is the number users feel: from the end
    of their speech (the call, or ``speech_end_at`` when the caller knows
    better, e.g. the VAD's end of speech) to the first reply audio being ready.
    ``vad_end_of_speech_delay_ms`` is how long the VAD waited in silence
    before ending the turn (0 when the turn did not come from a VAD).
    ``early_start_ms`` is how much of that wait the answer's preparation
    overlapped: from starting STT to the VAD ending the turn (a
    :class:`VoiceSession` starts early at a pause; 0 when it started after).
    """

    vad_end_of_speech_delay_ms: float
    stt_ms: float
    stt_real_time_factor: float
    llm_time_to_first_token_ms: float | None
    llm_decode_tokens_per_second: float | None
    llm_prompt_tokens_evaluated: int
    tts_time_to_first_audio_ms: float | None
    tts_real_time_factor: float | None
    speech_end_to_first_audio_ms: float | None
    total_ms: float
    early_start_ms: float = 0.0


@dataclass(frozen=True)
class VoiceTurnResult:
    """A finished turn: what was heard, what was answered, the reply's audio and the metrics."""

    transcription: str
    response: str
    audio: NDArray[np.float32]
    sample_rate: int
    metrics: TurnMetrics
    interrupted: bool = False
    tool_calls: tuple[ToolCall, ...] = ()
    tool_results: tuple[ToolResult, ...] = ()

    @property
    def speech_detected(self) -> bool:
        return bool(self.transcription.strip())

"""Voice: one spoken turn (pipeline), a session fed audio that emits typed events, and an agent that drives it."""

from .agent import VoiceAgent, VoiceAgentCallbacks
from .events import (
    VoiceAudioOut,
    VoiceEvent,
    VoiceInterrupted,
    VoiceResponseCompleted,
    VoiceResponseDelta,
    VoiceStateChanged,
    VoiceTranscription,
    VoiceTurnAnswered,
    VoiceTurnFailed,
)
from .history import Conversation
from .pipeline import VoicePipeline, VoicePipelineCallbacks, VoicePipelineOptions
from .results import PipelineState, TurnMetrics, VoiceTurnResult
from .session import VoiceAgentOptions, VoiceSession

__all__ = ["Conversation", "PipelineState", "TurnMetrics", "VoiceAgent", "VoiceAgentCallbacks", "VoiceAgentOptions",
           "VoiceAudioOut", "VoiceEvent", "VoiceInterrupted", "VoicePipeline", "VoicePipelineCallbacks",
           "VoicePipelineOptions", "VoiceResponseCompleted", "VoiceResponseDelta", "VoiceSession",
           "VoiceStateChanged", "VoiceTranscription", "VoiceTurnAnswered", "VoiceTurnFailed", "VoiceTurnResult"]

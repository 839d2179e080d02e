"""Voice: one spoken turn (pipeline) and a continuous session with barge-in (agent)."""

from .agent import VoiceAgent, VoiceAgentCallbacks, VoiceAgentOptions
from .pipeline import (
    PipelineState,
    TurnMetrics,
    VoicePipeline,
    VoicePipelineCallbacks,
    VoicePipelineOptions,
    VoiceTurnResult,
)

__all__ = ["PipelineState", "TurnMetrics", "VoiceAgent", "VoiceAgentCallbacks", "VoiceAgentOptions", "VoicePipeline",
           "VoicePipelineCallbacks", "VoicePipelineOptions", "VoiceTurnResult"]

"""Speech to text: whole files, segment by segment, async, and live sessions."""

from .live import TranscriptionStream, TranscriptionUpdate
from .results import Segment, TranscriptionResult, Word
from .transcriber import STT, SegmentStream, SpeechToText, TranscribeOptions

__all__ = ["STT", "Segment", "SegmentStream", "SpeechToText", "TranscribeOptions", "TranscriptionResult",
           "TranscriptionStream", "TranscriptionUpdate", "Word"]

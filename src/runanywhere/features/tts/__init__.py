"""Text to speech: whole texts, streamed clause by clause, async."""

from .synthesizer import (
    DEFAULT_VOICE,
    TTS,
    AudioChunk,
    SynthesisOptions,
    SynthesisResult,
    SynthesisStream,
    TextToSpeech,
    save_wav,
)

__all__ = ["DEFAULT_VOICE", "TTS", "AudioChunk", "SynthesisOptions", "SynthesisResult", "SynthesisStream",
           "TextToSpeech", "save_wav"]

"""Text to speech: whole texts, streamed clause by clause, async."""

from .synthesizer import TTS, AudioChunk, SynthesisOptions, SynthesisResult, SynthesisStream, TextToSpeech

__all__ = ["TTS", "AudioChunk", "SynthesisOptions", "SynthesisResult", "SynthesisStream", "TextToSpeech"]

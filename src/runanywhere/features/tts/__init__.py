"""Text to speech: whole texts, streamed clause by clause, async."""

from .synthesizer import TTS, AudioChunk, SynthesisResult, SynthesisStream, TextToSpeech

__all__ = ["TTS", "AudioChunk", "SynthesisResult", "SynthesisStream", "TextToSpeech"]

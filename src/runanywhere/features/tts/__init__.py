"""Text to speech: whole texts, streamed clause by clause, async."""

from .synthesizer import DEFAULT_VOICE, TTS, AudioChunk, SynthesisResult, SynthesisStream, TextToSpeech

__all__ = ["DEFAULT_VOICE", "TTS", "AudioChunk", "SynthesisResult", "SynthesisStream", "TextToSpeech"]

"""Options objects per capability (TranscribeOptions, SynthesisOptions, VadSettings) and the shared checks.

Each method takes an ``options`` object and keeps its keyword arguments, which win over the object's
fields; bad values and unknown names are an InvalidInputError, never a bare TypeError.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from runanywhere import (
    ConfigurationError,
    EventBus,
    InvalidInputError,
    ModelLibrary,
    SDKConfig,
    SpeechToText,
    SynthesisOptions,
    TextToSpeech,
    TranscribeOptions,
    VadSettings,
    VoiceActivityDetector,
)
from runanywhere.core.validation import positive_int, positive_number

BAD_NUMBERS = (0, -1, -0.5, math.nan, math.inf, True, "2", None)


def test_positive_number_and_int_refuse_what_is_not_one() -> None:
    for bad in BAD_NUMBERS:
        with pytest.raises(InvalidInputError, match="speed must be a positive finite number"):
            positive_number("speed", bad)
    assert positive_number("speed", 2) == 2.0 and positive_number("gap", 0, allow_zero=True) == 0.0
    for bad in (*BAD_NUMBERS, 1.5):
        with pytest.raises(InvalidInputError, match="threads must be a positive whole number"):
            positive_int("threads", bad)
    assert positive_int("threads", 3) == 3 and positive_int("calls", 0, allow_zero=True) == 0
    with pytest.raises(ConfigurationError, match="timeout_s"):
        SDKConfig(timeout_s=0)
    with pytest.raises(ConfigurationError, match="max_retries"):
        SDKConfig(max_retries=-1)


def test_options_objects_check_their_fields() -> None:
    assert SynthesisOptions(speed=2).speed == 2.0
    for speed in (0, -1.0, math.nan, "fast"):
        with pytest.raises(InvalidInputError, match="speed"):
            SynthesisOptions(speed=speed)  # type: ignore[arg-type]
    for speaker in (-1, 0.5, False):
        with pytest.raises(InvalidInputError, match="speaker_id"):
            SynthesisOptions(speaker_id=speaker)  # type: ignore[arg-type]
    for language in ("", "  ", 42):
        with pytest.raises(InvalidInputError, match="language"):
            TranscribeOptions(language=language)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="min_silence_s"):
        VadSettings(min_silence_s=0)
    with pytest.raises(InvalidInputError, match="num_threads"):
        VadSettings(num_threads=0)


@pytest.fixture(scope="module")
def voice(packaged_models: ModelLibrary) -> Iterator[TextToSpeech]:
    speaker = TextToSpeech(packaged_models, events=EventBus())
    speaker.load_voice(variation=0.0)  # the same audio for the same text: results compare exactly
    yield speaker
    speaker.unload()


def test_synthesis_options_and_keywords_say_the_same(voice: TextToSpeech) -> None:
    by_keyword = voice.synthesize("One, two.", speed=1.5).audio_data
    by_options = voice.synthesize("One, two.", SynthesisOptions(speed=1.5)).audio_data
    keyword_wins = voice.synthesize("One, two.", SynthesisOptions(speed=0.5), speed=1.5).audio_data
    streamed = np.concatenate([c.audio_data for c in voice.synthesize_stream("One, two.", SynthesisOptions(speed=1.5))])
    assert np.array_equal(by_keyword, by_options) and np.array_equal(by_keyword, keyword_wins)
    assert np.array_equal(by_keyword, streamed)
    assert len(voice.synthesize("One, two.").audio_data) < len(voice.synthesize("One, two.", speed=0.5).audio_data)
    known = r"option\(s\) volume for SynthesisOptions; known: speaker, speaker_id, speed"
    with pytest.raises(InvalidInputError, match=known):
        voice.synthesize("Hi.", volume=2)
    with pytest.raises(InvalidInputError, match=r"speaker_id must be in 0\.\.0"):
        voice.synthesize("Hi.", SynthesisOptions(speaker_id=1))


def test_transcribe_options_and_the_language_argument(packaged_models: ModelLibrary) -> None:
    stt = SpeechToText(packaged_models, events=EventBus())
    stt.load_model()  # tiny.en: English only
    silence = np.zeros(1600, dtype=np.float32)
    try:
        assert stt.transcribe(silence, 16000, options=TranscribeOptions(language="en-US")).text == ""
        with pytest.raises(InvalidInputError, match="English-only"):
            stt.transcribe(silence, 16000, options=TranscribeOptions(language="fr"))
        with pytest.raises(InvalidInputError, match="English-only"):
            stt.create_stream(options=TranscribeOptions(language="fr"))
        assert stt.transcribe(silence, 16000, "en", options=TranscribeOptions(language="fr")).text == ""  # it wins
    finally:
        stt.unload()


def test_vad_settings_object_or_keywords(packaged_models: ModelLibrary) -> None:
    vad = VoiceActivityDetector(packaged_models, events=EventBus())
    try:
        vad.load_model(settings=VadSettings(min_silence_s=0.3, threshold=0.6))
        assert (vad.settings.min_silence_s, vad.settings.threshold) == (0.3, 0.6)
        vad.load_model(settings=VadSettings(min_silence_s=0.3), min_silence_s=0.7)
        assert vad.settings == VadSettings(min_silence_s=0.7)
        vad.load_model(min_speech_s=0.1)
        assert vad.settings == VadSettings(min_speech_s=0.1)
        with pytest.raises(InvalidInputError, match=r"unknown option\(s\) silence for VadSettings"):
            vad.load_model(silence=0.3)
        with pytest.raises(InvalidInputError, match="a model is a catalog id or a path"):
            vad.load_model(VadSettings())  # type: ignore[arg-type]  # the settings go second (or by name)
    finally:
        vad.unload()

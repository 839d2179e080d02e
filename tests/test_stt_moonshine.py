"""Speech to text with Moonshine v2 through sherpa-onnx, on the real tiny-en and base-en weights.

The weights come from ``moonshine-voice`` (tiny-en) and ``moonshine-cpp`` (base-en); sherpa-onnx's
``tokens.txt`` is derived from each model's ``tokenizer.bin`` by the SDK and kept in the store. The
recordings and their reference texts are the Whisper tests' (``test_stt``).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from runanywhere import (
    BackendNotAvailableError,
    CancelledError,
    EventBus,
    InvalidInputError,
    ModelFormatError,
    SDKError,
)
from runanywhere.backends.sherpa_stt import MAX_UTTERANCE_S
from runanywhere.features.stt import Segment, SpeechToText, TranscriptionResult, TranscriptionUpdate
from runanywhere.features.vad import VoiceActivityDetector
from runanywhere.models.manager import ModelLibrary

from .test_stt import BECKETT, REFERENCES, TWO_CITIES, recordings  # noqa: F401  (the fixture)
from .wer import wer


@pytest.fixture(scope="module")
def moonshine(packaged_models: ModelLibrary) -> Iterator[SpeechToText]:
    """Moonshine v2 tiny-en on sherpa-onnx (from the moonshine-voice package)."""
    holder = SpeechToText(packaged_models, events=EventBus())
    holder.load_model("moonshine-tiny-en")
    yield holder
    holder.unload()


@pytest.fixture(scope="module")
def tiny_dir(recordings: Path) -> Path:  # noqa: F811
    return recordings / "tiny-en"


def _copy(source: Path, target: Path, **replaced: bytes) -> Path:
    """A Moonshine model directory copied from ``source``, with some files' bytes replaced."""
    target.mkdir()
    for name in ("encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin"):
        data = replaced.get(name.partition(".")[0])
        if data is None:
            shutil.copyfile(source / name, target / name)
        else:
            (target / name).write_bytes(data)
    return target


# ---------------------------------------------------------------- accuracy
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_tiny_en_transcribes_the_recordings_within_10_percent_wer(moonshine: SpeechToText, recordings: Path,  # noqa: F811
                                                                  name: str):
    result = moonshine.transcribe(recordings / name)  # two_cities.wav is 48 kHz and 44 s: resampled, then cut
    assert wer(REFERENCES[name], result.text) <= 0.10, result.text
    assert result.language == "en" and result.real_time_factor > 0
    assert "10." not in result.text  # what Moonshine adds when it hears 44 s in one piece


def test_base_en_transcribes_the_recordings_within_10_percent_wer(packaged_models: ModelLibrary,
                                                                  recordings: Path):  # noqa: F811
    base = SpeechToText(packaged_models, events=EventBus())
    base.load_model("moonshine-base-en")
    try:
        for name, reference in REFERENCES.items():
            text = base.transcribe(recordings / name).text
            assert wer(reference, text) <= 0.10, text
    finally:
        base.unload()


def test_long_audio_is_decoded_in_utterances_with_their_times(moonshine: SpeechToText, recordings: Path):  # noqa: F811
    result = moonshine.transcribe(recordings / "two_cities.wav")
    assert isinstance(result, TranscriptionResult) and len(result.segments) >= 5
    for segment in result.segments:
        assert isinstance(segment, Segment) and segment.text
        assert 0 < segment.end_s - segment.start_s <= MAX_UTTERANCE_S
    for before, after in zip(result.segments, result.segments[1:], strict=False):
        assert before.end_s <= after.start_s
    assert result.segments[-1].end_s <= result.audio_duration_s == pytest.approx(44.37, abs=0.01)
    assert " ".join(s.text for s in result.segments) == result.text


# ------------------------------------------------------------ derived file
def test_tokens_txt_is_derived_from_the_tokenizer_and_kept_in_the_store(moonshine: SpeechToText,
                                                                        packaged_models: ModelLibrary):
    stored = packaged_models.store.get("moonshine-tiny-en")
    assert stored is not None and [f.path for f in stored.derived] == ["derived/tokens.txt"]
    lines = (stored.path / "derived" / "tokens.txt").read_text().splitlines()
    assert len(lines) == 32768  # the decoder's vocabulary
    symbols = [base64.b64decode(line.rpartition(" ")[0]) for line in lines]
    assert symbols[:3] == [b"<unk>", b"<s>", b"</s>"] and symbols[3] == b"\x00"  # byte fallbacks follow
    assert symbols[259] == "\u2581\u2581".encode() and lines[259].endswith(" 259")


def test_a_model_directory_given_by_path(packaged_models: ModelLibrary, tiny_dir: Path, recordings: Path):  # noqa: F811
    holder = SpeechToText(packaged_models, events=EventBus())
    assert holder.load_model(tiny_dir) == "tiny-en"
    try:
        assert wer(BECKETT, holder.transcribe(recordings / "beckett.wav").text) <= 0.10
    finally:
        holder.unload()


# ------------------------------------------------------------ cancellation
def test_cancel_stops_between_utterances(moonshine: SpeechToText, recordings: Path):  # noqa: F811
    """The first utterance of two_cities is out when the cancel comes: the rest is never decoded."""
    full = moonshine.transcribe(recordings / "two_cities.wav")
    stream = moonshine.transcribe_stream(recordings / "two_cities.wav")
    segments = iter(stream)
    first = next(segments)
    threading.Thread(target=stream.cancel).start()
    with pytest.raises(CancelledError):
        list(segments)  # at most the utterance being decoded finishes; the next raises
    assert first == full.segments[0] and stream.cancelled


# ------------------------------------------------------------ live
def test_live_transcription_segmented_by_the_vad(moonshine: SpeechToText, recordings: Path,  # noqa: F811
                                                 packaged_models: ModelLibrary):
    vad = VoiceActivityDetector(packaged_models, events=EventBus())
    vad.load_model()
    pcm, rate = soundfile.read(recordings / "two_cities.wav", dtype="int16")  # 48 kHz, resampled as it comes
    try:
        with vad.create_session(sample_rate=16000) as speech:  # the segmenter hears the 16 kHz stream

            def segmenter(chunk: np.ndarray) -> list[tuple[float, np.ndarray]]:
                if len(chunk):
                    speech.process_samples(chunk)
                else:
                    speech.flush()
                return [(segment.start_s, segment.samples) for segment in speech.segments()]

            updates: list[TranscriptionUpdate] = []
            session = moonshine.create_stream(rate, partial_interval_s=None, segmenter=segmenter,
                                              on_update=updates.append)
            for at in range(0, len(pcm), 4800):
                session.accept(pcm[at:at + 4800])
            result = session.finish()
    finally:
        vad.unload()
    assert len(updates) >= 2 and all(u.is_final for u in updates)
    assert wer(TWO_CITIES, result.text) <= 0.10, result.text


def test_transcribe_stream_yields_segments_as_they_are_decoded(moonshine: SpeechToText,
                                                                recordings: Path):  # noqa: F811
    stream = moonshine.transcribe_stream(recordings / "two_cities.wav")
    segments = list(stream)
    assert len(segments) >= 5 and stream.result.segments == tuple(segments)


# ------------------------------------------------------------- bad input
def test_bad_audio_is_a_clear_error_and_empty_audio_an_empty_result(moonshine: SpeechToText):
    for audio, rate in ((np.ones(16000, np.float32), 0), (np.ones(16000, np.float32), -8000),
                        (np.full(16000, np.nan, np.float32), 16000), (np.ones(16000, np.float32), None)):
        with pytest.raises(InvalidInputError):
            moonshine.transcribe(audio, rate)
    with pytest.raises(InvalidInputError, match="English-only"):
        moonshine.transcribe(np.ones(16000, np.float32), 16000, language="de")
    empty = moonshine.transcribe(np.zeros(0, np.float32), 16000)
    assert (empty.text, empty.segments, empty.audio_duration_s) == ("", (), 0.0)
    with pytest.raises(InvalidInputError):
        moonshine.create_stream(0)


@pytest.mark.parametrize("case", ["swapped", "truncated", "foreign tokenizer", "broken tokenizer"])
def test_wrong_model_files_are_refused_before_sherpa_sees_them(packaged_models: ModelLibrary, tiny_dir: Path,
                                                               tmp_path: Path, case: str):
    """sherpa-onnx would end the process on some of these; the SDK refuses them with a ModelFormatError."""
    encoder = (tiny_dir / "encoder_model.ort").read_bytes()
    decoder = (tiny_dir / "decoder_model_merged.ort").read_bytes()
    small_vocabulary = b"\x05<unk>\x03<s>\x04</s>" + b"".join(bytes([1, i]) for i in range(256)) * 4
    replaced = {
        "swapped": {"encoder_model": decoder, "decoder_model_merged": encoder},
        "truncated": {"decoder_model_merged": decoder[:len(decoder) // 2]},
        "foreign tokenizer": {"tokenizer": small_vocabulary},  # 1,027 ids for a 32,768-id decoder
        "broken tokenizer": {"tokenizer": b"\x05<unk>\x03<s>\x04</s>\x30abc"},
    }[case]
    holder = SpeechToText(packaged_models, events=EventBus())
    with pytest.raises(ModelFormatError) as err:
        holder.load_model(_copy(tiny_dir, tmp_path / "model", **replaced))
    assert "Traceback" not in str(err.value) and not holder.is_loaded


def test_sherpa_families_without_weights_are_refused_by_name(packaged_models: ModelLibrary, tmp_path: Path):
    holder = SpeechToText(packaged_models, events=EventBus())
    with pytest.raises(BackendNotAvailableError, match="runs only Moonshine v2"):
        holder.load_model("sherpa-onnx-whisper-tiny.en")  # a Whisper ONNX entry: refused before any download
    packaged_models.register({
        "id": "zipformer-en", "category": "speech-recognition", "format": "onnx", "engine": "sherpa-onnx",
        "local_path": str(tmp_path), "files": [{"path": f"{r}.onnx", "role": r} for r in ("encoder", "decoder",
                                                                                             "joiner")]})
    for role in ("encoder", "decoder", "joiner"):
        (tmp_path / f"{role}.onnx").write_bytes(b"\x08\x07")
    with pytest.raises(BackendNotAvailableError):
        holder.load_model("zipformer-en")
    with pytest.raises(SDKError, match="beam_size must be 1"):
        holder.load_model("moonshine-tiny-en", beam_size=4)


# --------------------------------------------------------------------- CLI
def test_cli_transcribes_with_moonshine(recordings: Path, subprocess_env: dict[str, str]):  # noqa: F811
    env = {**subprocess_env, "RUNANYWHERE_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-m", "runanywhere.cli", "transcribe", str(recordings / "beckett.wav"),
                          "--model", "moonshine-tiny-en", "--json"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert wer(BECKETT, result["text"]) <= 0.10 and result["language"] == "en"
    assert {"start_s", "end_s", "text", "confidence"} <= set(result["segments"][0])

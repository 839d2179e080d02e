"""An offline transducer (Zipformer layout) through sherpa-onnx, on a model the test suite writes.

No transducer weights are reachable, so ``tests/tinyonnx.py`` writes one with random
weights in the exact format sherpa-onnx reads: these tests prove loading, decoding,
segments and the checks on bad files, never accuracy (the text is gibberish).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runanywhere import EventBus, ModelFormatError
from runanywhere.features.stt import SpeechToText, TranscriptionResult
from runanywhere.models.manager import ModelLibrary

from .test_stt import recordings  # noqa: F401  (the fixture)
from .tinyonnx import VOCABULARY, write_transducer


def _register(library: ModelLibrary, model_id: str, directory: Path,
              graphs: tuple[str, ...] = ("encoder", "decoder", "joiner")) -> str:
    library.register({"id": model_id, "category": "speech-recognition", "format": "zipformer-transducer",
                      "engine": "sherpa-onnx", "local_path": str(directory),
                      "files": [{"path": f"{role}.onnx", "role": role} for role in graphs]
                      + [{"path": "tokens.txt", "role": "tokens"}]})
    return model_id


def test_a_written_transducer_transcribes_with_segments_and_confidence(packaged_models: ModelLibrary,
                                                                        recordings: Path, tmp_path: Path):  # noqa: F811
    write_transducer(tmp_path)
    stt = SpeechToText(packaged_models, events=EventBus())
    stt.load_model(_register(packaged_models, "tiny-transducer", tmp_path))
    try:
        result = stt.transcribe(recordings / "two_cities.wav")  # 48 kHz, 44 s: resampled, cut by the VAD
    finally:
        stt.unload()
    assert isinstance(result, TranscriptionResult) and result.language == "en"
    assert len(result.segments) >= 4 and result.text
    assert set(result.text.replace(" ", "")) <= set("".join(VOCABULARY[1:-1]))  # only the model's letters
    assert all(0 <= s.start_s < s.end_s <= result.audio_duration_s for s in result.segments)
    assert all(0 < s.confidence < 1 for s in result.segments)  # measured from sherpa's token log-probabilities


@pytest.mark.parametrize("case", ["no metadata", "foreign tokens", "truncated joiner", "no joiner"])
def test_bad_transducer_files_are_refused_before_sherpa_sees_them(packaged_models: ModelLibrary, tmp_path: Path,
                                                                  case: str):
    """sherpa-onnx ends the process on a decoder without vocab_size/context_size; the SDK refuses it."""
    paths = write_transducer(tmp_path, metadata=case != "no metadata")
    if case == "foreign tokens":
        paths["tokens"].write_text("<blk> 0\na 1\n")
    elif case == "truncated joiner":
        paths["joiner"].write_bytes(paths["joiner"].read_bytes()[:100])
    graphs = ("encoder", "decoder") if case == "no joiner" else ("encoder", "decoder", "joiner")
    # without a joiner the files are taken for Moonshine, whose encoder this is not
    model = _register(packaged_models, f"bad-transducer-{case.replace(' ', '-')}", tmp_path, graphs)
    stt = SpeechToText(packaged_models, events=EventBus())
    with pytest.raises(ModelFormatError):
        stt.load_model(model)
    assert not stt.is_loaded


def test_the_same_audio_gives_the_same_segments(packaged_models: ModelLibrary, tmp_path: Path):
    write_transducer(tmp_path)
    stt = SpeechToText(packaged_models, events=EventBus())
    stt.load_model(_register(packaged_models, "tiny-transducer-again", tmp_path))
    try:
        noise = np.random.default_rng(1).standard_normal(16000 * 3).astype(np.float32) * 0.3
        first, second = stt.transcribe(noise, 16000), stt.transcribe(noise, 16000)
    finally:
        stt.unload()
    assert first.segments == second.segments and first.audio_duration_s == 3.0

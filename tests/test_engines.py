"""The engine seam: the engine table, the registries that build engines by catalog name, model files by role."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from runanywhere import (
    BackendNotAvailableError,
    ConfigurationError,
    EventBus,
    InvalidInputError,
    ModelFormatError,
    ModelNotFoundError,
    SpeechToText,
    TextToSpeech,
    VoiceActivityDetector,
)
from runanywhere.backends.piper import PiperEngine
from runanywhere.backends.registry import (
    EMBEDDERS,
    LANGUAGE_MODELS,
    SPEECH_RECOGNIZERS,
    SPEECH_SYNTHESIZERS,
    VISION_LANGUAGE_MODELS,
    VOICE_DETECTORS,
    EngineRegistry,
)
from runanywhere.backends.sherpa_stt import check_family
from runanywhere.core.engines import ENGINES, Capability, find_engine
from runanywhere.models.catalog import Catalog, ModelCategory, ModelEntry
from runanywhere.models.manager import ModelLibrary

from .conftest import LibraryFactory, sha

REGISTRIES = (LANGUAGE_MODELS, EMBEDDERS, SPEECH_RECOGNIZERS, SPEECH_SYNTHESIZERS, VOICE_DETECTORS,
              VISION_LANGUAGE_MODELS)


# ------------------------------------------------------------------ the table
def test_every_registered_engine_is_in_the_table_with_that_capability():
    for registry in REGISTRIES:
        assert registry.names(), registry.capability
        for name in registry.names():
            info = find_engine(name)
            assert info is not None and registry.capability in info.capabilities
    served = {(name, r.capability) for r in REGISTRIES for name in r.names()}
    claimed = {(e.name, c) for e in ENGINES for c in e.capabilities}
    assert served == claimed, "the table claims a capability no factory serves (or the reverse)"


def test_every_builtin_catalog_engine_is_in_the_table():
    for entry in Catalog.builtin():
        assert find_engine(entry.engine) is not None, (entry.id, entry.engine)


def test_aliases_find_the_same_engine():
    assert find_engine("llama.cpp") is find_engine("llamacpp")
    assert find_engine("pywhispercpp") is find_engine("whisper.cpp")
    assert find_engine("no-such-engine") is None


def test_a_registry_accepts_only_engines_the_table_lists_for_its_capability():
    registry: EngineRegistry[PiperEngine] = EngineRegistry(Capability.SPEECH_SYNTHESIS)
    with pytest.raises(ConfigurationError, match="engine table"):
        registry.register("my-new-engine", PiperEngine)
    with pytest.raises(ConfigurationError, match="engine table"):
        registry.register("llamacpp", PiperEngine)  # in the table, but not a speech synthesizer
    registry.register("piper", PiperEngine)
    assert registry.names() == ["piper"] and registry.default == "piper"
    assert registry.factory("piper", model="m") is PiperEngine


def test_a_known_engine_without_an_adapter_is_not_available():
    with pytest.raises(BackendNotAvailableError, match=r"sherpa-onnx .* speech synthesis, .* does not run yet") as err:
        SPEECH_SYNTHESIZERS.factory("sherpa-onnx", model="vits-piper-en_US-lessac-medium")
    assert err.value.details["engine"] == "sherpa-onnx"
    with pytest.raises(BackendNotAvailableError, match="runs only Moonshine v2 and offline transducers"):
        check_family("sherpa-onnx-whisper-tiny.en", Catalog.builtin().get("sherpa-onnx-whisper-tiny.en").format)


def test_an_unknown_engine_is_invalid_input():
    with pytest.raises(InvalidInputError, match="'telepathy', which has no speech synthesis adapter"):
        SPEECH_SYNTHESIZERS.factory("telepathy", model="m")


# ---------------------------------------------------- choosing by catalog engine
def _voice_entry(model_id: str, engine: str, voice_dir: Path) -> dict:
    return {"id": model_id, "category": "speech-synthesis", "format": "onnx", "engine": engine,
            "local_path": str(voice_dir),
            "files": [{"path": "en_US-joe-medium.onnx", "role": "weights"},
                      {"path": "en_US-joe-medium.onnx.json", "role": "config"}]}


@pytest.fixture(scope="module")
def voice_dir(packaged_models: ModelLibrary) -> Path:
    return packaged_models.pull("piper-en_US-joe-medium").path


def test_the_catalog_entry_engine_chooses_the_engine(packaged_models: ModelLibrary, voice_dir: Path):
    library = ModelLibrary(packaged_models.config, catalog=Catalog(), events=EventBus())
    library.register(_voice_entry("joe-on-piper", "piper", voice_dir))
    library.register(_voice_entry("joe-on-sherpa", "sherpa-onnx", voice_dir))
    library.register(_voice_entry("joe-on-nothing", "telepathy", voice_dir))
    speaker = TextToSpeech(library, events=EventBus())
    try:
        assert speaker.load_voice("joe-on-piper") == "joe-on-piper"
        assert isinstance(speaker.engine, PiperEngine)
        with pytest.raises(BackendNotAvailableError, match="sherpa-onnx"):
            speaker.load_voice("joe-on-sherpa")
        with pytest.raises(InvalidInputError, match="telepathy"):
            speaker.load_voice("joe-on-nothing")
        assert speaker.voice_id == "joe-on-piper"  # refused before anything was unloaded
    finally:
        speaker.unload()


def test_features_load_the_catalog_default_when_given_no_model(packaged_models: ModelLibrary):
    detector = VoiceActivityDetector(packaged_models, events=EventBus())
    try:
        assert detector.load_model() == packaged_models.catalog.default(ModelCategory.AUDIO).id == "silero-vad-v6"
    finally:
        detector.unload()
    defaults = {c: packaged_models.catalog.default(c).id for c in (
        ModelCategory.LANGUAGE, ModelCategory.EMBEDDING, ModelCategory.SPEECH_RECOGNITION,
        ModelCategory.SPEECH_SYNTHESIS)}
    assert defaults == {ModelCategory.LANGUAGE: "smollm2-135m-instruct-q4_1",
                        ModelCategory.EMBEDDING: "all-minilm-l6-v2",
                        ModelCategory.SPEECH_RECOGNITION: "faster-whisper-tiny.en",
                        ModelCategory.SPEECH_SYNTHESIS: "piper-en_US-joe-medium"}


def test_a_category_without_a_default_says_so():
    with pytest.raises(ModelNotFoundError, match="no default image-generation model"):
        Catalog.builtin().default(ModelCategory.IMAGE_GENERATION)


def test_a_path_model_uses_the_capability_default_engine(packaged_models: ModelLibrary, tmp_path: Path):
    whisper = packaged_models.pull("faster-whisper-tiny.en")
    copy = tmp_path / "my-whisper"
    shutil.copytree(whisper.path, copy, ignore=shutil.ignore_patterns(".runanywhere.json"))
    recognizer = SpeechToText(packaged_models, events=EventBus())
    try:
        assert recognizer.load_model(copy) == "my-whisper"
        assert recognizer.engine.languages == ("en",)
    finally:
        recognizer.unload()


# ------------------------------------------------------------- files by role
def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_files_are_found_by_role(server, make_library: LibraryFactory):
    weights, projector = b"GGUF" + b"w" * 100, b"GGUF" + b"p" * 50
    library = make_library()
    library.register({"id": "vlm", "category": "multimodal", "format": "gguf", "engine": "llamacpp", "files": [
        {"path": "mmproj-vlm.gguf", "role": "mmproj", "url": server.add("/p", projector),
         "size": len(projector), "sha256": sha(projector)},
        {"path": "vlm.gguf", "role": "weights", "url": server.add("/w", weights),
         "size": len(weights), "sha256": sha(weights)}]})
    local = library.pull("vlm")
    assert local.file("weights").read_bytes() == weights  # not the first file listed: the role says
    assert local.file("mmproj").read_bytes() == projector
    assert local.main_file == local.file("weights")
    with pytest.raises(ModelFormatError) as err:
        local.file("vae")
    assert "vlm has no 'vae' file; its files: mmproj-vlm.gguf, vlm.gguf" in str(err.value)
    assert err.value.details["files"] == ["mmproj-vlm.gguf", "vlm.gguf"]


def test_an_entry_without_roles_has_its_first_file_as_weights(server, make_library: LibraryFactory):
    library = make_library()
    library.register({"id": "plain", "category": "language", "format": "gguf", "engine": "llamacpp", "files": [
        {"path": "a.gguf", "url": server.add("/a", b"A")}, {"path": "b.json", "url": server.add("/b", b"B")}]})
    local = library.pull("plain")
    assert local.file("weights").name == "a.gguf"
    assert not local.has_role("config")


def test_archive_contents_get_roles_by_glob(server, make_library: LibraryFactory):
    archive = _tar({"whisper-tiny/tiny-encoder.onnx": b"E", "whisper-tiny/tiny-encoder.int8.onnx": b"e",
                    "whisper-tiny/tiny-decoder.onnx": b"D", "whisper-tiny/tiny-tokens.txt": b"a 0\n",
                    "whisper-tiny/extra/tiny-decoder.onnx": b"x"})
    library = make_library()
    library.register({"id": "sherpa-tiny", "category": "speech-recognition", "format": "onnx",
                      "engine": "sherpa-onnx", "files": [{
                          "path": "tiny.tar.gz", "archive": True, "url": server.add("/t.tar.gz", archive),
                          "contents": {"encoder": "*-encoder.onnx", "decoder": "*-decoder.onnx",
                                       "tokens": "*-tokens.txt", "joiner": "*-joiner.onnx"}}]})
    local = library.pull("sherpa-tiny")
    assert local.file("encoder").read_bytes() == b"E"  # the int8 twin does not match the glob
    assert local.file("decoder").read_bytes() == b"D"  # a glob matches whole paths, not extra/...
    assert local.file("tokens").name == "tiny-tokens.txt"
    with pytest.raises(ModelFormatError, match=r"no 'joiner' file; its files: .*tiny-encoder\.onnx"):
        local.file("joiner")


def test_the_builtin_catalog_gives_every_model_its_weights():
    for entry in Catalog.builtin():
        roles = entry.file_roles().keys() | entry.content_roles().keys()
        assert "weights" in roles or {"encoder", "decoder"} <= roles, entry.id
        if entry.category == ModelCategory.MULTIMODAL:
            assert "mmproj" in roles, entry.id


@pytest.mark.parametrize(("files", "message"), [
    ([{"path": "a.gguf", "role": "weights"}, {"path": "b.gguf", "role": "weights"}], "role to two files"),
    ([{"path": "a.gguf", "role": "Weights!"}], "short lower-case name"),
    ([{"path": "a.gguf", "contents": {"weights": "*.gguf"}}], "only an archive has contents"),
    ([{"path": "a.tar", "archive": True, "role": "weights"}], "archive is not kept"),
    ([{"path": "a.tar", "archive": True, "contents": {"weights": ""}}], "needs a glob"),
])
def test_bad_roles_are_configuration_errors(files: list[dict], message: str):
    with pytest.raises(ConfigurationError, match=message):
        ModelEntry.from_dict({"id": "m", "category": "language", "format": "gguf", "engine": "llamacpp",
                              "files": files})


def test_roles_survive_the_json_round_trip():
    entry = Catalog.builtin().get("sherpa-onnx-whisper-tiny.en")
    again = ModelEntry.from_dict(entry.to_dict())
    assert again == entry
    assert again.content_roles() == {"encoder": "*-encoder.onnx", "decoder": "*-decoder.onnx",
                                     "tokens": "*-tokens.txt"}

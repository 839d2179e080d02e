"""Engine name -> factory, one registry per capability; features build engines only through these.

A feature takes the engine name from the model's catalog entry (``engine``),
asks its capability's registry for the factory and calls it with the model's
files and options. Which engines exist, and what they can do, is the table in
:mod:`runanywhere.core.engines`; a name the table knows but no factory serves
is a :class:`BackendNotAvailableError` saying so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from ..core.engines import Capability, EngineInfo, find_engine
from ..core.errors import BackendNotAvailableError, ConfigurationError, InvalidInputError
from .base import (
    Embedder,
    Engine,
    LanguageModel,
    SpeechRecognizer,
    SpeechSynthesizer,
    VisionLanguageEngine,
    VoiceDetector,
)
from .faster_whisper import open_whisper
from .kokoro import open_kokoro
from .llamacpp import open_llama, open_llama_embedder
from .llamacpp_vision import open_llama_vision
from .onnx_embed import open_onnx_embedder
from .piper import open_piper
from .sherpa_stt import open_sherpa_stt
from .sherpa_vad import open_silero
from .whispercpp import open_whispercpp

E = TypeVar("E", bound=Engine)


class EngineRegistry(Generic[E]):
    """The factories of one capability, by engine name; the first registered is the default for paths."""

    def __init__(self, capability: Capability) -> None:
        self.capability = capability
        self._factories: dict[str, Callable[..., E]] = {}
        self._lock = threading.Lock()

    def register(self, engine: str, factory: Callable[..., E]) -> None:
        """Serve ``engine`` with ``factory(files, **options)``; the table must list it with this capability."""
        info = find_engine(engine)
        if info is None or self.capability not in info.capabilities:
            raise ConfigurationError(
                f"engine {engine!r} is not in the engine table with capability {self.capability.value!r}; "
                "add it to runanywhere/core/engines.py first (docs/adding-an-engine.md)")
        with self._lock:
            self._factories[info.name] = factory

    def names(self) -> list[str]:
        with self._lock:
            return list(self._factories)

    @property
    def default(self) -> str:
        """The engine for a model given by path, where no catalog entry names one."""
        return self.names()[0]

    def factory(self, engine: str, *, model: str) -> Callable[..., E]:
        """The factory for ``engine``; ``model`` (its id or path) only words the error."""
        info = find_engine(engine)
        with self._lock:
            factory = self._factories.get(info.name) if info is not None else None
        if factory is not None:
            return factory
        what = self.capability.value.replace("-", " ")
        runs = ", ".join(self.names())
        if info is not None and self.capability in info.planned | info.capabilities:
            raise BackendNotAvailableError(
                f"{model!r} needs the {info.title} engine for {what}, which this SDK does not run yet: no such "
                f"weights were reachable to build and test an adapter. Use a model of: {runs}.",
                details=_details(engine, info))
        raise InvalidInputError(f"{model!r} uses engine {engine!r}, which has no {what} adapter (engines: {runs})",
                                details=_details(engine, info))


def _details(engine: str, info: EngineInfo | None) -> dict[str, object]:
    return {"engine": engine, "known": info is not None}


LANGUAGE_MODELS: EngineRegistry[LanguageModel] = EngineRegistry(Capability.LANGUAGE)
EMBEDDERS: EngineRegistry[Embedder] = EngineRegistry(Capability.EMBEDDING)
SPEECH_RECOGNIZERS: EngineRegistry[SpeechRecognizer] = EngineRegistry(Capability.SPEECH_RECOGNITION)
SPEECH_SYNTHESIZERS: EngineRegistry[SpeechSynthesizer] = EngineRegistry(Capability.SPEECH_SYNTHESIS)
VOICE_DETECTORS: EngineRegistry[VoiceDetector] = EngineRegistry(Capability.VOICE_ACTIVITY)
VISION_LANGUAGE_MODELS: EngineRegistry[VisionLanguageEngine] = EngineRegistry(Capability.VISION)

LANGUAGE_MODELS.register("llamacpp", open_llama)
EMBEDDERS.register("llamacpp", open_llama_embedder)
EMBEDDERS.register("onnx", open_onnx_embedder)
VISION_LANGUAGE_MODELS.register("llamacpp", open_llama_vision)
SPEECH_RECOGNIZERS.register("faster-whisper", open_whisper)
SPEECH_RECOGNIZERS.register("whisper.cpp", open_whispercpp)
SPEECH_RECOGNIZERS.register("sherpa-onnx", open_sherpa_stt)
SPEECH_SYNTHESIZERS.register("piper", open_piper)
SPEECH_SYNTHESIZERS.register("kokoro", open_kokoro)
VOICE_DETECTORS.register("sherpa-onnx", open_silero)

"""The server's engines: one holder per model, loaded on first use (or at start-up), and a bounded queue each.

Models are named by catalog id (or one of OpenAI's names for a capability's
default, such as ``whisper-1``); paths and URLs are never accepted. Loads run
on the model's own worker (``aload_model``), so the event loop never waits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .. import (
    EmbeddingGenerator,
    EventBus,
    ModelCategory,
    ModelLibrary,
    ModelManager,
    ModelNotLoadedError,
    SDKError,
    SpeechToText,
    TextGenerator,
    TextToSpeech,
    VisionLanguageModel,
    VoiceActivityDetector,
)
from ..backends.llamacpp_vision import MMPROJ
from ..models.catalog import ModelEntry
from ..runtime.holder import ModelHolder
from .config import ServerConfig
from .errors import APIError
from .metrics import Metrics

H = TypeVar("H", bound=ModelHolder[Any])
_log = logging.getLogger("runanywhere.server")

#: OpenAI's model names, read as the default model of their capability (clients send them by default).
ALIASES: dict[ModelCategory, frozenset[str]] = {
    ModelCategory.SPEECH_RECOGNITION: frozenset({"whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"}),
    ModelCategory.SPEECH_SYNTHESIS: frozenset({"tts-1", "tts-1-hd", "gpt-4o-mini-tts"}),
    ModelCategory.EMBEDDING: frozenset({"text-embedding-3-small", "text-embedding-3-large",
                                        "text-embedding-ada-002"}),
}

#: What each catalog category can do, as ``/v1/models`` lists it.
CAPABILITIES: dict[ModelCategory, tuple[str, ...]] = {
    ModelCategory.LANGUAGE: ("chat", "completions"),
    ModelCategory.MULTIMODAL: ("chat", "vision"),
    ModelCategory.VISION: ("vision",),
    ModelCategory.EMBEDDING: ("embeddings",),
    ModelCategory.SPEECH_RECOGNITION: ("transcription",),
    ModelCategory.SPEECH_SYNTHESIS: ("speech",),
    ModelCategory.AUDIO: ("voice-activity",),
    ModelCategory.IMAGE_GENERATION: ("images",),
}


def can_see(entry: ModelEntry) -> bool:
    """True for a model with a vision projector (an ``mmproj`` file): chat reads images with it."""
    return MMPROJ in {f.role for f in entry.files} | {role for f in entry.files for role, _ in f.contents}


def capabilities(entry: ModelEntry) -> list[str]:
    """What a model can do, as ``/v1/models`` lists it: its category's abilities, plus chat with images."""
    listed = list(CAPABILITIES.get(entry.category, ()))
    return listed + [c for c in ("chat", "vision") if c not in listed] if can_see(entry) else listed


class ServerState:
    """Everything the endpoints share: the model library, loaded holders, queues, metrics and the event bus."""

    def __init__(self, config: ServerConfig, library: ModelLibrary | None = None,
                 events: EventBus | None = None) -> None:
        self.config = config
        self.library = library or ModelManager
        self.events = events or EventBus()
        self.metrics = Metrics()
        self.holders: dict[str, ModelHolder[Any]] = {}
        self.downloading: set[str] = set()
        self.ready = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        """The serving loop (set at start-up), for work on other threads that needs the engines."""
        self._locks: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------ naming
    def model_id(self, name: Any, category: ModelCategory, param: str = "model") -> str:
        """The catalog id a request's ``model`` names for a capability; 404 for an unknown one, 400 for a misfit."""
        if not isinstance(name, str) or not name:
            raise APIError(400, f"'{param}' must be a model id (see GET /v1/models)", param=param,
                           code="invalid_parameter")
        catalog = self.library.catalog
        if name in ALIASES.get(category, ()):
            return catalog.default(category).id
        if name not in catalog:
            raise APIError(404, f"the model {name!r} does not exist; GET /v1/models lists them", param=param,
                           code="model_not_found")
        entry = catalog.get(name)
        if entry.category is not category:
            raise APIError(400, f"{name!r} is a {entry.category.value} model; this endpoint needs a "
                                f"{category.value} model", param=param, code="model_not_supported")
        return entry.id

    def chat_model_id(self, name: Any) -> str:
        """The catalog id of a chat model: a language model, or any model with a vision projector."""
        if isinstance(name, str) and name in self.library.catalog and can_see(self.library.catalog.get(name)):
            return self.library.catalog.get(name).id
        return self.model_id(name, ModelCategory.LANGUAGE)

    # ------------------------------------------------------------ engines
    async def text(self, model_id: str) -> TextGenerator:
        return await self._holder(model_id, TextGenerator, lambda h: h.aload_model(
            model_id, n_ctx=self.config.n_ctx, max_sequences=self.config.max_sequences))

    async def vision(self, model_id: str) -> VisionLanguageModel:
        """A model with its vision projector, loaded as a :class:`VisionLanguageModel` (chat with images)."""
        return await self._holder(model_id, VisionLanguageModel,
                                  lambda h: h.aload_model(model_id, n_ctx=self.config.n_ctx))

    async def chat(self, model_id: str) -> TextGenerator:
        """The engine chat runs on: the vision-language model of a model with a projector, else the text one."""
        return await (self.vision(model_id) if can_see(self.library.catalog.get(model_id)) else self.text(model_id))

    async def embedder(self, model_id: str) -> EmbeddingGenerator:
        return await self._holder(model_id, EmbeddingGenerator, lambda h: h.aload_model(model_id))

    async def stt(self, model_id: str) -> SpeechToText:
        return await self._holder(model_id, SpeechToText, lambda h: h.aload_model(model_id))

    async def tts(self, model_id: str) -> TextToSpeech:
        return await self._holder(model_id, TextToSpeech, lambda h: h.aload_voice(model_id))

    async def vad(self, model_id: str) -> VoiceActivityDetector:
        return await self._holder(model_id, VoiceActivityDetector, lambda h: h.aload_model(model_id))

    async def voice_stack(self) -> tuple[SpeechToText, TextGenerator, TextToSpeech, VoiceActivityDetector]:
        """The default speech-to-text, chat, voice and VAD models (loaded on first use), for live voice."""
        default = self.library.catalog.default
        return (await self.stt(default(ModelCategory.SPEECH_RECOGNITION).id),
                await self.text(default(ModelCategory.LANGUAGE).id),
                await self.tts(default(ModelCategory.SPEECH_SYNTHESIS).id),
                await self.vad(default(ModelCategory.AUDIO).id))

    async def load(self, model_id: str) -> None:
        """Load a catalog model with the holder its category needs (``--models``, ``POST /v1/models/{id}/load``)."""
        loaders: dict[ModelCategory, Callable[[str], Awaitable[Any]]] = {
            ModelCategory.LANGUAGE: self.chat, ModelCategory.MULTIMODAL: self.vision,
            ModelCategory.EMBEDDING: self.embedder,
            ModelCategory.SPEECH_RECOGNITION: self.stt, ModelCategory.SPEECH_SYNTHESIS: self.tts,
            ModelCategory.AUDIO: self.vad}
        entry = self.library.catalog.get(model_id)
        if entry.category not in loaders:
            raise APIError(400, f"{model_id!r} is a {entry.category.value} model, which this server does not "
                                "load", param="model", code="model_not_supported")
        await loaders[entry.category](model_id)

    async def unload(self, model_id: str) -> bool:
        """Unload a model if loaded (waits for its running request to stop); True when it was."""
        async with self._lock(model_id):
            holder = self.holders.pop(model_id, None)
        if holder is None:
            return False
        await holder.aunload()
        return True

    async def preload(self) -> None:
        """Load ``config.models``, then mark the server ready (``/health`` is 503 until then)."""
        try:
            for model_id in self.config.models:
                await self.load(self.model_id(model_id, self.library.catalog.get(model_id).category))
        except SDKError as exc:  # the server still serves; that model loads (or fails) on its first request
            _log.error("could not load the start-up models: %s", exc)
        finally:
            self.ready.set()

    async def close(self) -> None:
        for model_id in list(self.holders):
            await self.unload(model_id)

    async def _holder(self, model_id: str, kind: type[H], load: Callable[[H], Awaitable[Any]]) -> H:
        async with self._lock(model_id):
            holder = self.holders.get(model_id)
            if holder is None:
                fresh = kind(self.library, events=self.events)
                await load(fresh)
                self.holders[model_id] = holder = fresh
        if not isinstance(holder, kind):
            raise APIError(400, f"{model_id!r} is loaded as a {type(holder).__name__}", param="model")
        return holder

    def _lock(self, model_id: str) -> asyncio.Lock:
        return self._locks.setdefault(model_id, asyncio.Lock())

    # ------------------------------------------------------------ queues
    def observe_sequences(self) -> None:
        """Note each loaded text model's running, queued and maximum sequences (its batch) for ``/metrics``."""
        for model_id, holder in list(self.holders.items()):
            if isinstance(holder, TextGenerator) and holder.batching and holder.is_loaded:
                try:
                    counts = holder.running_sequences, holder.queued_sequences, holder.max_sequences
                except ModelNotLoadedError:  # unloaded meanwhile
                    continue
                for name, value in zip(("running_sequences", "queued_sequences", "max_sequences"), counts,
                                       strict=True):
                    self.metrics.observe(name, model_id, value)

    def admit(self, model_id: str) -> Callable[[], None]:
        """Take a place in the model's queue (its worker runs requests in order); 429 when it is full.

        Returns the release, to call once the request is over (streamed or not).
        """
        depth = self.metrics.queued(model_id, 1)
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.metrics.queued(model_id, -1)

        if depth > self.config.max_queue:
            release()
            raise APIError(429, f"{depth - 1} requests are already waiting for {model_id}; retry shortly",
                           code="queue_full", retry_after_s=1)
        return release

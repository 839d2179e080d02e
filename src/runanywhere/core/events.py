"""Typed SDK events and a thread-safe bus that also feeds asyncio subscribers.

Event names are the reference SDK's (``model.downloadProgress``,
``model.loadCompleted``, ``model.evicted`` ...); each has a frozen dataclass
whose fields are the snake_case of the reference payload.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

_log = logging.getLogger("runanywhere.events")

E = TypeVar("E", bound="SDKEvent")
Handler = Callable[[Any], None]
Unsubscribe = Callable[[], None]


class EventCategory(str, enum.Enum):
    INITIALIZATION = "initialization"
    MODEL = "model"
    STORAGE = "storage"
    GENERATION = "generation"
    VOICE = "voice"
    PERFORMANCE = "performance"
    ERROR = "error"


@dataclass(frozen=True, kw_only=True)
class SDKEvent:
    """Base of all events: ``type`` names it, ``timestamp`` is Unix seconds."""

    type: ClassVar[str] = "sdk.event"
    category: ClassVar[EventCategory] = EventCategory.INITIALIZATION
    timestamp: float = field(default_factory=time.time)


@dataclass(frozen=True, kw_only=True)
class SDKInitialized(SDKEvent):
    type: ClassVar[str] = "sdk.initialized"
    environment: str


@dataclass(frozen=True, kw_only=True)
class SDKShutdown(SDKEvent):
    type: ClassVar[str] = "sdk.shutdown"


@dataclass(frozen=True, kw_only=True)
class ModelRegistered(SDKEvent):
    type: ClassVar[str] = "model.registered"
    category: ClassVar[EventCategory] = EventCategory.MODEL
    count: int


@dataclass(frozen=True, kw_only=True)
class ModelDownloadStarted(SDKEvent):
    type: ClassVar[str] = "model.downloadStarted"
    category: ClassVar[EventCategory] = EventCategory.MODEL
    model_id: str
    total_bytes: int | None
    source: str


@dataclass(frozen=True, kw_only=True)
class ModelDownloadProgress(SDKEvent):
    """Progress of one model's pull; ``file`` is the file being written now.

    ``bytes_downloaded``/``total_bytes`` count the whole model (all files);
    ``file_bytes``/``file_total_bytes`` count the current file. ``progress`` is
    ``bytes_downloaded / total_bytes`` in [0, 1], or None while the size is unknown.
    """

    type: ClassVar[str] = "model.downloadProgress"
    category: ClassVar[EventCategory] = EventCategory.MODEL
    model_id: str
    file: str
    stage: str
    bytes_downloaded: int
    total_bytes: int | None
    file_bytes: int
    file_total_bytes: int | None
    progress: float | None


@dataclass(frozen=True, kw_only=True)
class ModelDownloadCompleted(SDKEvent):
    type: ClassVar[str] = "model.downloadCompleted"
    category: ClassVar[EventCategory] = EventCategory.MODEL
    model_id: str
    size_bytes: int
    local_path: str
    duration_s: float


@dataclass(frozen=True, kw_only=True)
class ModelDownloadFailed(SDKEvent):
    type: ClassVar[str] = "model.downloadFailed"
    category: ClassVar[EventCategory] = EventCategory.MODEL
    model_id: str
    error: str


@dataclass(frozen=True, kw_only=True)
class ModelLoadStarted(SDKEvent):
    type: ClassVar[str] = "model.loadStarted"
    category: ClassVar[EventCategory] = EventCategory.MODEL
    model_id: str
    component: str


@dataclass(frozen=True, kw_only=True)
class ModelLoadCompleted(SDKEvent):
    type: ClassVar[str] = "model.loadCompleted"
    category: ClassVar[EventCategory] = EventCategory.MODEL
    model_id: str
    component: str
    load_time_ms: float


@dataclass(frozen=True, kw_only=True)
class ModelLoadFailed(SDKEvent):
    type: ClassVar[str] = "model.loadFailed"
    category: ClassVar[EventCategory] = EventCategory.MODEL
    model_id: str
    component: str
    error: str


@dataclass(frozen=True, kw_only=True)
class ModelUnloaded(SDKEvent):
    type: ClassVar[str] = "model.unloaded"
    category: ClassVar[EventCategory] = EventCategory.MODEL
    model_id: str
    component: str


@dataclass(frozen=True, kw_only=True)
class ModelEvicted(SDKEvent):
    type: ClassVar[str] = "model.evicted"
    category: ClassVar[EventCategory] = EventCategory.STORAGE
    model_id: str
    model_name: str
    freed_bytes: int


@dataclass(frozen=True, kw_only=True)
class ModelQuotaExceeded(SDKEvent):
    type: ClassVar[str] = "model.quotaExceeded"
    category: ClassVar[EventCategory] = EventCategory.STORAGE
    model_id: str
    available_bytes: int
    needed_bytes: int


@dataclass(frozen=True, kw_only=True)
class ModelDeleted(SDKEvent):
    type: ClassVar[str] = "model.deleted"
    category: ClassVar[EventCategory] = EventCategory.STORAGE
    model_id: str
    freed_bytes: int


@dataclass(frozen=True, kw_only=True)
class GenerationStarted(SDKEvent):
    type: ClassVar[str] = "generation.started"
    category: ClassVar[EventCategory] = EventCategory.GENERATION
    model_id: str
    prompt: str  # the first 100 characters


@dataclass(frozen=True, kw_only=True)
class GenerationCompleted(SDKEvent):
    type: ClassVar[str] = "generation.completed"
    category: ClassVar[EventCategory] = EventCategory.GENERATION
    model_id: str
    tokens_used: int
    latency_ms: float
    finish_reason: str


@dataclass(frozen=True, kw_only=True)
class GenerationFailed(SDKEvent):
    type: ClassVar[str] = "generation.failed"
    category: ClassVar[EventCategory] = EventCategory.GENERATION
    model_id: str
    error: str


@dataclass(frozen=True, kw_only=True)
class EmbeddingsGenerated(SDKEvent):
    type: ClassVar[str] = "embeddings.generated"
    category: ClassVar[EventCategory] = EventCategory.GENERATION
    num_embeddings: int
    dimension: int
    processing_time_ms: float
    truncated_texts: int = 0
    """Texts longer than the model's context, cut to fit (ONNX models; llama.cpp refuses them instead)."""


@dataclass(frozen=True, kw_only=True)
class STTTranscribed(SDKEvent):
    type: ClassVar[str] = "stt.transcribed"
    category: ClassVar[EventCategory] = EventCategory.VOICE
    text: str
    confidence: float
    audio_duration_s: float
    processing_ms: float


@dataclass(frozen=True, kw_only=True)
class TTSSynthesized(SDKEvent):
    """Speech was synthesized: ``duration_ms`` of audio at ``sample_rate`` Hz from ``text_length`` characters."""

    type: ClassVar[str] = "tts.synthesized"
    category: ClassVar[EventCategory] = EventCategory.VOICE
    duration_ms: float
    sample_rate: int
    text_length: int
    processing_ms: float


@dataclass(frozen=True, kw_only=True)
class PlaybackStarted(SDKEvent):
    """Audio output started: ``duration_ms`` of audio queued at that moment, at ``sample_rate`` Hz."""

    type: ClassVar[str] = "playback.started"
    category: ClassVar[EventCategory] = EventCategory.VOICE
    duration_ms: float
    sample_rate: int


@dataclass(frozen=True, kw_only=True)
class PlaybackCompleted(SDKEvent):
    """Audio output went idle: ``duration_ms`` of audio was played; ``interrupted`` when ``stop()`` cut it."""

    type: ClassVar[str] = "playback.completed"
    category: ClassVar[EventCategory] = EventCategory.VOICE
    duration_ms: float
    interrupted: bool = False


@dataclass(frozen=True, kw_only=True)
class VADSpeechStarted(SDKEvent):
    """Speech began ``time_s`` seconds into the VAD stream named ``stream``."""

    type: ClassVar[str] = "vad.speechStarted"
    category: ClassVar[EventCategory] = EventCategory.VOICE
    time_s: float
    stream: str


@dataclass(frozen=True, kw_only=True)
class VADSpeechEnded(SDKEvent):
    """Speech ended ``time_s`` seconds into the VAD stream named ``stream``; its segment is queued."""

    type: ClassVar[str] = "vad.speechEnded"
    category: ClassVar[EventCategory] = EventCategory.VOICE
    time_s: float
    stream: str


@dataclass(frozen=True, kw_only=True)
class VoiceTurnCompleted(SDKEvent):
    type: ClassVar[str] = "voice.turnCompleted"
    category: ClassVar[EventCategory] = EventCategory.VOICE
    speech_detected: bool
    transcription: str
    response: str


def _event_name(event: str | type[SDKEvent]) -> str:
    return event if isinstance(event, str) else event.type


def _matches(pattern: str, name: str) -> bool:
    if pattern == "*" or pattern == name:
        return True
    return pattern.endswith(".*") and name.startswith(pattern[:-1])


class EventBus:
    """Publish/subscribe for SDK events, safe to emit from any thread.

    Subscribe with an event class or name; ``"*"`` matches every event and
    ``"model.*"`` every ``model.`` event. A handler that raises is logged and
    never breaks the emitter. ``EventBus.shared`` is the SDK-wide instance.
    """

    shared: ClassVar[EventBus]

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: list[tuple[str, Handler]] = []

    def on(self, event: str | type[SDKEvent], handler: Handler) -> Unsubscribe:
        """Call ``handler(event)`` for each matching event; returns an unsubscribe function."""
        entry = (_event_name(event), handler)
        with self._lock:
            self._handlers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._handlers:
                    self._handlers.remove(entry)

        return unsubscribe

    def on_any(self, handler: Handler) -> Unsubscribe:
        return self.on("*", handler)

    def once(self, event: str | type[SDKEvent], handler: Handler) -> Unsubscribe:
        """Like :meth:`on`, but only for the first matching event."""
        fired = threading.Lock()

        def wrapper(ev: Any) -> None:
            # acquire(blocking=False) is atomic: of events emitted at once from
            # several threads, exactly one gets through.
            if fired.acquire(blocking=False):
                unsubscribe()
                handler(ev)

        unsubscribe = self.on(event, wrapper)
        return unsubscribe

    def off(self, event: str | type[SDKEvent], handler: Handler) -> None:
        name = _event_name(event)
        with self._lock:
            self._handlers = [h for h in self._handlers if h != (name, handler)]

    def remove_all(self) -> None:
        with self._lock:
            self._handlers.clear()

    def emit(self, event: SDKEvent) -> None:
        with self._lock:
            handlers = [h for pattern, h in self._handlers if _matches(pattern, event.type)]
        for handler in handlers:
            try:
                handler(event)
            except Exception:  # a subscriber's bug must not break the emitter
                _log.exception("event handler %r failed on %s", handler, event.type)

    def stream(self, *events: str | type[SDKEvent], maxsize: int = 0) -> AsyncIterator[SDKEvent]:
        """Async iterator over matching events (all when none named); call it inside a coroutine.

        The subscription starts when ``stream()`` is called, so events emitted
        before the first ``await`` are not lost. Events emitted from worker
        threads are handed to the caller's loop; the subscription ends when the
        iteration does (or the iterator is closed or garbage-collected).
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[SDKEvent] = asyncio.Queue(maxsize)
        patterns = [_event_name(e) for e in events] or ["*"]

        def forward(ev: SDKEvent) -> None:
            if any(_matches(p, ev.type) for p in patterns):
                try:
                    loop.call_soon_threadsafe(_put_nowait_dropping, queue, ev)
                except RuntimeError:  # the loop is closed: nobody is listening any more
                    unsubscribe()

        unsubscribe = self.on_any(forward)
        iterator = _drain(queue, unsubscribe)
        weakref.finalize(iterator, unsubscribe)  # a stream that is never iterated must not leak
        return iterator


async def _drain(queue: asyncio.Queue[SDKEvent], unsubscribe: Unsubscribe) -> AsyncIterator[SDKEvent]:
    try:
        while True:
            yield await queue.get()
    finally:
        unsubscribe()


def _put_nowait_dropping(queue: asyncio.Queue[SDKEvent], ev: SDKEvent) -> None:
    try:
        queue.put_nowait(ev)
    except asyncio.QueueFull:
        _log.warning("event stream is full; dropped %s", ev.type)


EventBus.shared = EventBus()

"""Typed voice events: what a turn and a session report, to callbacks, ``events()`` and (later) a WebSocket.

Every event is a frozen dataclass with a ``type`` name and ``to_json()``, a
JSON-serialisable dict. Audio travels in :class:`VoiceAudioOut` as base64 PCM16;
a finished turn (:class:`VoiceTurnAnswered`) gives only its audio's length, since
the same audio went out chunk by chunk before it.
"""

from __future__ import annotations

import base64
import enum
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

from ...core.bridge import Channel
from ...core.errors import SDKError
from ...core.logging import SDKLogger
from ..stt import TranscriptionResult
from ..text import GenerationResult
from ..tts import AudioChunk
from .results import PipelineState, VoiceTurnResult

_log = SDKLogger("VoiceEvents")


@dataclass(frozen=True, kw_only=True)
class VoiceEvent:
    """Base of the voice events: ``type`` names it, ``timestamp`` is Unix seconds."""

    type: ClassVar[str] = "voice.event"
    timestamp: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON-serialisable dict: ``type``, ``timestamp`` and the event's own fields."""
        return {"type": self.type, "timestamp": self.timestamp, **self._fields()}

    def _fields(self) -> dict[str, Any]:
        """The event's own fields as JSON values (an enum as its value); events with richer fields override it."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "timestamp"}


@dataclass(frozen=True, kw_only=True)
class VoiceStateChanged(VoiceEvent):
    """The pipeline or session moved to ``state`` (listening, transcribing, thinking, speaking ...)."""

    type: ClassVar[str] = "voice.stateChanged"
    state: PipelineState


@dataclass(frozen=True, kw_only=True)
class VoiceTranscription(VoiceEvent):
    """What the user said in this turn."""

    type: ClassVar[str] = "voice.transcription"
    result: TranscriptionResult

    def _fields(self) -> dict[str, Any]:
        r = self.result
        return {"text": r.text.strip(), "language": r.language, "confidence": r.confidence,
                "audio_duration_s": r.audio_duration_s, "processing_ms": r.processing_ms}


@dataclass(frozen=True, kw_only=True)
class VoiceResponseDelta(VoiceEvent):
    """The next piece (a delta) of the reply's text that will be spoken."""

    type: ClassVar[str] = "voice.responseDelta"
    text: str


@dataclass(frozen=True, kw_only=True)
class VoiceResponseCompleted(VoiceEvent):
    """The reply's generation finished (the last round's, when tools were called)."""

    type: ClassVar[str] = "voice.responseCompleted"
    generation: GenerationResult

    def _fields(self) -> dict[str, Any]:
        g = self.generation
        return {"text": g.text, "output_tokens": g.output_tokens, "finish_reason": g.finish_reason,
                "time_to_first_token_ms": g.time_to_first_token_ms,
                "decode_tokens_per_second": g.decode_tokens_per_second}


@dataclass(frozen=True, kw_only=True)
class VoiceAudioOut(VoiceEvent):
    """One chunk of the reply's speech, to be played now; ``to_json`` carries it as base64 PCM16 (little-endian)."""

    type: ClassVar[str] = "voice.audio"
    chunk: AudioChunk

    def _fields(self) -> dict[str, Any]:
        import numpy as np

        c = self.chunk
        pcm = (np.clip(c.audio_data, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        return {"audio": base64.b64encode(pcm).decode("ascii"), "encoding": "pcm16", "sample_rate": c.sample_rate,
                "samples": len(c.audio_data), "text": c.text, "index": c.index, "is_final": c.is_final}


@dataclass(frozen=True, kw_only=True)
class VoiceTurnAnswered(VoiceEvent):
    """A turn was answered; ``to_json`` omits the audio (sent as :class:`VoiceAudioOut`) and gives its length."""

    type: ClassVar[str] = "voice.turnAnswered"
    result: VoiceTurnResult

    def _fields(self) -> dict[str, Any]:
        r = self.result
        return {"transcription": r.transcription, "response": r.response, "interrupted": r.interrupted,
                "samples": len(r.audio), "sample_rate": r.sample_rate, "metrics": asdict(r.metrics),
                "tool_calls": [asdict(c) for c in r.tool_calls], "tool_results": [asdict(t) for t in r.tool_results]}


@dataclass(frozen=True, kw_only=True)
class VoiceTurnFailed(VoiceEvent):
    """A turn failed with ``error``; a session goes on listening."""

    type: ClassVar[str] = "voice.turnFailed"
    error: BaseException

    def _fields(self) -> dict[str, Any]:
        code = self.error.code.name if isinstance(self.error, SDKError) else None
        return {"error": type(self.error).__name__, "code": code, "message": str(self.error)}


@dataclass(frozen=True, kw_only=True)
class VoiceInterrupted(VoiceEvent):
    """The user spoke over the reply (barge-in) ``time_s`` into the session: its audio must stop now."""

    type: ClassVar[str] = "voice.interrupted"
    time_s: float


Listener = Callable[[VoiceEvent], None]


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


class Callbacks:
    """Base of the callback records: :meth:`handle` calls ``on_event`` and the hook the event's type maps to."""

    _HOOKS: ClassVar[dict[type[VoiceEvent], tuple[str, str]]] = {}  # event type -> (hook, event field)
    on_event: Listener | None

    def handle(self, event: VoiceEvent) -> None:
        """Hand ``event`` to the callbacks that want it; a callback that raises is logged, never raised."""
        _log.call_safely(self.on_event, event, what="on_event callback")
        hook = self._HOOKS.get(type(event))
        if hook is not None:
            _log.call_safely(getattr(self, hook[0]), getattr(event, hook[1]), what=f"{hook[0]} callback")


class EventFeed:
    """Fans voice events out to listeners (called on the emitting thread) and ``async for`` streams.

    A stream gets its events through its loop's ``call_soon_threadsafe``: no thread waits for it.
    :meth:`close` ends every stream.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self._channels: list[Channel[VoiceEvent]] = []
        self._closed = False

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every event from now on; returns the unsubscribe function."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def emit(self, event: VoiceEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            _log.call_safely(listener, event, what="voice event listener")

    def close(self) -> None:
        """No more events: every stream ends once it has yielded what it got."""
        with self._lock:
            self._closed = True
            channels, self._channels = self._channels, []
        for channel in channels:
            channel.close()

    def stream(self) -> AsyncIterator[VoiceEvent]:
        """Every event from this call on, for ``async for``; ends at :meth:`close` (the core bridge's channel)."""
        channel: Channel[VoiceEvent] = Channel()
        unsubscribe = self.subscribe(channel.put)
        with self._lock:
            if self._closed:
                channel.close()
            else:
                self._channels.append(channel)

        def stop() -> None:
            unsubscribe()
            with self._lock:
                if channel in self._channels:
                    self._channels.remove(channel)

        iterator = _drain(channel, stop)
        weakref.finalize(iterator, stop)  # a stream that is never iterated must not leak
        return iterator


async def _drain(channel: Channel[VoiceEvent], stop: Callable[[], None]) -> AsyncIterator[VoiceEvent]:
    try:
        async for event in channel:
            yield event
    finally:
        stop()

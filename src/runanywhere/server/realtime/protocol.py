"""The client side of the OpenAI Realtime protocol: each JSON message parsed and checked into a typed request.

GA event names; the beta ones that differ are accepted as aliases. A message that is not valid JSON,
names no known event, or carries a bad field raises :class:`RealtimeProtocolError`, which the
session sends back as an ``error`` event before it goes on.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...core.errors import InvalidInputError
from .audio import decode_pcm16

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    """A fresh id for an event, item, response or session, e.g. ``item_000012``."""
    return f"{prefix}_{next(_ids):06d}"


class RealtimeProtocolError(InvalidInputError):
    """A client event the session cannot take; ``protocol_code`` and ``param`` are the protocol's error fields."""

    def __init__(self, message: str, *, protocol_code: str = "invalid_value", param: str | None = None,
                 event_id: str | None = None) -> None:
        super().__init__(message, details={"code": protocol_code, "param": param, "event_id": event_id})
        self.protocol_code, self.param, self.event_id = protocol_code, param, event_id

    def to_event(self) -> dict[str, Any]:
        """The ``error`` server event that reports it."""
        return server_event("error", error={"type": "invalid_request_error", "code": self.protocol_code,
                                            "message": self.message, "param": self.param,
                                            "event_id": self.event_id})


def server_event(kind: str, **fields: Any) -> dict[str, Any]:
    """A server event of type ``kind`` with a fresh ``event_id``."""
    return {"type": kind, "event_id": new_id("event"), **fields}


@dataclass(frozen=True)
class Request:
    """A parsed client event; ``event_id`` is the client's own id for it (echoed in an error about it)."""

    event_id: str | None


@dataclass(frozen=True)
class SessionUpdate(Request):
    session: Mapping[str, Any]


@dataclass(frozen=True)
class AppendAudio(Request):
    """``input_audio_buffer.append``: PCM16 24 kHz audio, decoded to float32."""

    samples: NDArray[np.float32]


class CommitAudio(Request):
    """``input_audio_buffer.commit``."""


class ClearAudio(Request):
    """``input_audio_buffer.clear``."""


@dataclass(frozen=True)
class CreateItem(Request):
    item: Mapping[str, Any]
    previous_item_id: str | None


@dataclass(frozen=True)
class ItemRequest(Request):
    """An event about one item: ``conversation.item.retrieve`` / ``.delete`` (and ``.truncate``'s base)."""

    item_id: str


class RetrieveItem(ItemRequest):
    """``conversation.item.retrieve``."""


class DeleteItem(ItemRequest):
    """``conversation.item.delete``."""


@dataclass(frozen=True)
class TruncateItem(ItemRequest):
    content_index: int
    audio_end_ms: int


@dataclass(frozen=True)
class CreateResponse(Request):
    response: Mapping[str, Any]


@dataclass(frozen=True)
class CancelResponse(Request):
    response_id: str | None


ClientEvent = (SessionUpdate | AppendAudio | CommitAudio | ClearAudio | CreateItem | TruncateItem | DeleteItem
               | RetrieveItem | CreateResponse | CancelResponse)


class Fields:
    """Typed access to an event's (or a nested object's) fields; a wrong or missing one is a protocol error."""

    def __init__(self, data: Mapping[str, Any], event_id: str | None, path: str = "") -> None:
        self.data, self.event_id, self.path = data, event_id, path

    def error(self, name: str, message: str, code: str = "invalid_value") -> RealtimeProtocolError:
        return RealtimeProtocolError(message, protocol_code=code, param=self.path + name, event_id=self.event_id)

    def get(self, name: str, kind: type | tuple[type, ...], *, required: bool = False) -> Any:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.error(name, f"missing required parameter '{self.path}{name}'", "missing_required_parameter")
            return None
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
            names = " or ".join(k.__name__ for k in _tuple(kind))
            raise self.error(name, f"'{self.path}{name}' must be {names}, got {type(value).__name__}",
                             "invalid_type")
        return value

    def number(self, name: str, low: float, high: float) -> float | None:
        value = self.get(name, (int, float))
        if value is not None and not low <= value <= high:
            raise self.error(name, f"'{self.path}{name}' must be between {low} and {high}, got {value!r}")
        return None if value is None else float(value)

    def nested(self, name: str) -> Fields:
        return Fields(self.get(name, dict) or {}, self.event_id, f"{self.path}{name}.")

    def refuse_unknown(self, known: set[str]) -> None:
        """Every field must be one the session honours: an unknown one is refused by name, never dropped."""
        for name in self.data:
            if name not in known:
                raise self.error(name, f"'{self.path}{name}' is not supported by this server", "unsupported_parameter")


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _session_update(f: Fields) -> ClientEvent:
    return SessionUpdate(f.event_id, f.get("session", dict, required=True))


def _append(f: Fields) -> ClientEvent:
    try:
        samples = decode_pcm16(f.get("audio", str, required=True))
    except InvalidInputError as exc:
        raise f.error("audio", exc.message, "invalid_audio") from exc
    return AppendAudio(f.event_id, samples)


def _create_item(f: Fields) -> ClientEvent:
    return CreateItem(f.event_id, f.get("item", dict, required=True), f.get("previous_item_id", str))


def _truncate(f: Fields) -> ClientEvent:
    end = f.get("audio_end_ms", int, required=True)
    if end < 0:
        raise f.error("audio_end_ms", f"'audio_end_ms' must not be negative, got {end}")
    return TruncateItem(f.event_id, f.get("item_id", str, required=True), f.get("content_index", int) or 0, end)


PARSERS: dict[str, Callable[[Fields], ClientEvent]] = {
    "session.update": _session_update,
    "input_audio_buffer.append": _append,
    "input_audio_buffer.commit": lambda f: CommitAudio(f.event_id),
    "input_audio_buffer.clear": lambda f: ClearAudio(f.event_id),
    "conversation.item.create": _create_item,
    "conversation.item.truncate": _truncate,
    "conversation.item.delete": lambda f: DeleteItem(f.event_id, f.get("item_id", str, required=True)),
    "conversation.item.retrieve": lambda f: RetrieveItem(f.event_id, f.get("item_id", str, required=True)),
    "response.create": lambda f: CreateResponse(f.event_id, f.get("response", dict) or {}),
    "response.cancel": lambda f: CancelResponse(f.event_id, f.get("response_id", str)),
}
"""Client event type -> parser. The beta protocol's client events have the same names (its session fields
differ; :mod:`.config` reads both)."""


def parse_event(message: str | bytes) -> ClientEvent:
    """One client message as a typed request; :class:`RealtimeProtocolError` says what is wrong with it."""
    try:
        data = json.loads(message)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RealtimeProtocolError(f"the message is not valid JSON: {exc}", protocol_code="invalid_json") from exc
    if not isinstance(data, dict):
        raise RealtimeProtocolError("a client event must be a JSON object", protocol_code="invalid_json")
    event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
    fields = Fields(data, event_id)
    kind = fields.get("type", str, required=True)
    parser = PARSERS.get(kind)
    if parser is None:
        raise RealtimeProtocolError(f"unknown event type {kind!r}; this server takes {', '.join(PARSERS)}",
                                    protocol_code="invalid_event_type", param="type", event_id=event_id)
    return parser(fields)

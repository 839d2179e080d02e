"""The conversation of a realtime session: its items, in order, which the client may add to, trim and delete.

It is the model's context: every reply is generated from :meth:`Items.history`. Thread-safe (turns run on
threads of their own).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .protocol import Fields, RealtimeProtocolError, new_id

_CONTENT = {"user": ("input_text", "input_audio"), "system": ("input_text",),
            "assistant": ("output_text", "output_audio")}


@dataclass(frozen=True)
class Item:
    """One message: ``content_type`` is ``input_audio`` / ``input_text`` / ``output_audio`` / ``output_text``;
    ``text`` is its text or its audio's transcript (None: not transcribed yet)."""

    id: str
    role: str
    content_type: str
    text: str | None
    status: str = "completed"

    def to_json(self) -> dict[str, Any]:
        key = "text" if self.content_type.endswith("_text") else "transcript"
        part: dict[str, Any] = {"type": self.content_type, key: self.text}
        if key == "transcript":
            part["audio"] = None
        return {"id": self.id, "object": "realtime.item", "type": "message", "status": self.status,
                "role": self.role, "content": [part]}

    @classmethod
    def from_client(cls, data: Mapping[str, Any], event_id: str | None) -> Item:
        """A ``conversation.item.create`` item: a message with one text part (audio is sent by ``append``)."""
        f = Fields(data, event_id, "item.")
        f.refuse_unknown({"id", "type", "object", "role", "content", "status"})
        kind = f.get("type", str) or "message"
        if kind != "message":
            raise f.error("type", f"item type {kind!r} is not supported; send a 'message'", "unsupported_parameter")
        role = f.get("role", str, required=True)
        if role not in _CONTENT:
            raise f.error("role", f"role must be one of {', '.join(_CONTENT)}, got {role!r}")
        content = f.get("content", list, required=True)
        if len(content) != 1 or not isinstance(content[0], dict):
            raise f.error("content", "content must hold exactly one part, an object")
        part = Fields(content[0], event_id, "item.content[0].")
        part.refuse_unknown({"type", "text", "transcript", "audio"})
        content_type = part.get("type", str, required=True)
        if content_type not in _CONTENT[role]:
            allowed = " or ".join(_CONTENT[role])
            raise part.error("type", f"a {role} message takes {allowed} parts, not {content_type!r}")
        if part.get("audio", str):
            raise part.error("audio", "audio in items is not supported; send it with input_audio_buffer.append",
                             "unsupported_parameter")
        text = part.get("text", str) if content_type.endswith("_text") else part.get("transcript", str)
        if not text:
            raise part.error("text", "the part has no text")
        return cls(f.get("id", str) or new_id("item"), role, content_type, text)


class Items:
    """The session's items by id, in conversation order."""

    def __init__(self) -> None:
        self._items: list[Item] = []
        self._lock = threading.Lock()

    def add(self, item: Item, previous_item_id: str | None = None, event_id: str | None = None) -> str | None:
        """Insert ``item`` after ``previous_item_id`` (``"root"``: first; None: last); returns the id before it."""
        with self._lock:
            if any(i.id == item.id for i in self._items):
                raise RealtimeProtocolError(f"an item with id {item.id!r} already exists", param="item.id",
                                            event_id=event_id)
            at = len(self._items) if previous_item_id is None else (
                0 if previous_item_id == "root" else self._index(previous_item_id, event_id, "previous_item_id") + 1)
            self._items.insert(at, item)
            return self._items[at - 1].id if at else None

    def get(self, item_id: str, event_id: str | None = None) -> Item:
        with self._lock:
            return self._items[self._index(item_id, event_id)]

    def put(self, item: Item) -> None:
        """Replace the item of the same id (kept in place); a deleted item stays deleted."""
        with self._lock:
            for at, old in enumerate(self._items):
                if old.id == item.id:
                    self._items[at] = item

    def delete(self, item_id: str, event_id: str | None = None) -> None:
        with self._lock:
            del self._items[self._index(item_id, event_id)]

    def last_id(self) -> str | None:
        with self._lock:
            return self._items[-1].id if self._items else None

    def history(self) -> list[dict[str, Any]]:
        """The conversation as chat messages, for the model (items without text yet are left out)."""
        with self._lock:
            return [{"role": i.role, "content": i.text} for i in self._items if i.text]

    def ids(self) -> list[str]:
        with self._lock:
            return [i.id for i in self._items]

    def _index(self, item_id: str, event_id: str | None, param: str = "item_id") -> int:
        for at, item in enumerate(self._items):
            if item.id == item_id:
                return at
        raise RealtimeProtocolError(f"no item with id {item_id!r} in the conversation", protocol_code="item_not_found",
                                    param=param, event_id=event_id)


def with_text(item: Item, text: str, status: str | None = None) -> Item:
    """``item`` with its text (or transcript) replaced, e.g. trimmed to what was heard."""
    return replace(item, text=text, status=status or item.status)

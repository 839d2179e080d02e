"""The conversation of a realtime session: its items, in order, which the client may add to, trim and delete.

It is the model's context: every reply is generated from :meth:`Items.history`. Thread-safe (turns run on
threads of their own).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from ...features.tools import ToolCall
from ...features.tools.types import dump_json
from .protocol import Fields, RealtimeProtocolError, new_id

_CONTENT = {"user": ("input_text", "input_audio"), "system": ("input_text",),
            "assistant": ("output_text", "output_audio")}


@dataclass(frozen=True)
class Item:
    """One item. A message: ``content_type`` is ``input_audio`` / ``input_text`` / ``output_audio`` /
    ``output_text`` and ``text`` its text or its audio's transcript (None: not transcribed yet). A tool
    call: ``content_type`` is ``function_call`` (``text``: the arguments, JSON) or ``function_call_output``
    (``text``: what the client's tool returned), with the ``call_id`` (and ``name``) of the call."""

    id: str
    role: str
    content_type: str
    text: str | None
    status: str = "completed"
    call_id: str | None = None
    name: str | None = None

    @classmethod
    def call(cls, call: ToolCall) -> Item:
        """The item of a tool call the model asked for (the client runs the tool)."""
        return cls(new_id("item"), "assistant", "function_call", dump_json(call.arguments), call_id=call.id,
                   name=call.name)

    def to_json(self) -> dict[str, Any]:
        head = {"id": self.id, "object": "realtime.item", "type": self.content_type, "status": self.status}
        if self.content_type == "function_call":
            return {**head, "call_id": self.call_id, "name": self.name, "arguments": self.text}
        if self.content_type == "function_call_output":
            return {**head, "call_id": self.call_id, "output": self.text}
        key = "text" if self.content_type.endswith("_text") else "transcript"
        part: dict[str, Any] = {"type": self.content_type, key: self.text}
        if key == "transcript":
            part["audio"] = None
        return {**head, "type": "message", "role": self.role, "content": [part]}

    def message(self) -> dict[str, Any]:
        """The item as a chat message for the model."""
        if self.content_type == "function_call":
            return {"role": "assistant", "content": "", "tool_calls": [
                {"id": self.call_id, "type": "function", "function": {"name": self.name, "arguments": self.text}}]}
        if self.content_type == "function_call_output":
            return {"role": "tool", "tool_call_id": self.call_id, "content": self.text}
        return {"role": self.role, "content": self.text}

    @classmethod
    def from_client(cls, data: Mapping[str, Any], event_id: str | None) -> Item:
        """A ``conversation.item.create`` item: a message with one text part (audio is sent by ``append``),
        a ``function_call``, or a ``function_call_output`` (the result of a call the client ran)."""
        f = Fields(data, event_id, "item.")
        kind = f.get("type", str) or "message"
        item_id = f.get("id", str) or new_id("item")
        if kind == "function_call":
            f.refuse_unknown({"id", "type", "object", "status", "call_id", "name", "arguments"})
            return cls(item_id, "assistant", kind, f.get("arguments", str, required=True),
                       call_id=f.get("call_id", str, required=True), name=f.get("name", str, required=True))
        if kind == "function_call_output":
            f.refuse_unknown({"id", "type", "object", "status", "call_id", "output"})
            return cls(item_id, "tool", kind, f.get("output", str, required=True),
                       call_id=f.get("call_id", str, required=True))
        if kind != "message":
            raise f.error("type", f"item type {kind!r} is not supported; send a 'message', 'function_call' or "
                                  "'function_call_output'", "unsupported_parameter")
        f.refuse_unknown({"id", "type", "object", "role", "content", "status"})
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
        return cls(item_id, role, content_type, text)


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
            return [i.message() for i in self._items if i.text]

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

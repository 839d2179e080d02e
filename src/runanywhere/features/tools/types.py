"""Tool calling's data types: what a tool is, a call the model asked for, what running it gave, call syntaxes.

A language model "calls a tool" by writing text in an agreed syntax; :class:`ToolCallFormat` names the syntaxes
models are trained on. A :class:`ToolDefinition` validates its JSON-Schema parameters up front, because a broken
schema would otherwise only fail deep inside a generation.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ...core.errors import InvalidInputError
from ...core.json_schema import checked_schema
from ...core.validation import choice, mapping, shown, text

#: A tool name: identifier-like, so it survives every call syntax, a GBNF literal and a file name.
TOOL_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


def is_tool_name(value: Any) -> bool:
    # fullmatch: "$" alone would also accept a trailing newline.
    return isinstance(value, str) and TOOL_NAME_RE.fullmatch(value) is not None


HERMES_START, HERMES_END = "<tool_call>", "</tool_call>"
LFM2_START, LFM2_END = "<|tool_call_start|>", "<|tool_call_end|>"

_call_ids = itertools.count(1)


def next_call_id() -> str:
    """A process-unique call id (``call_1``, ``call_2``...), so ids never repeat across rounds of a loop."""
    return f"call_{next(_call_ids)}"


def dump_json(value: Any) -> str:
    """JSON text as the model reads and writes it (non-ASCII kept as is)."""
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class ToolDefinition:
    """A tool the model may call: a name, what it does, and its parameters as a JSON Schema of type ``object``.

    The schema is checked when the definition is made (``InvalidInputError`` if it is not a valid schema of
    type object under the draft its ``$schema`` names), so a mistake shows up where it was written, not in
    the middle of a generation.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}}, hash=False)

    def __post_init__(self) -> None:
        if not is_tool_name(self.name):
            raise InvalidInputError(
                f"tool name {shown(self.name)} is not valid: use 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or '_'",
                details={"name": shown(self.name)},
            )
        text(f"the description of tool {self.name!r}", self.description)
        params = checked_schema(f"the parameters of tool {self.name!r}", self.parameters)
        if params.get("type") != "object":
            raise InvalidInputError(
                f'the parameters of tool {self.name!r} must be a schema with "type": "object" '
                f"(got type {params.get('type')!r})",
                details={"name": self.name},
            )
        # A private copy: the caller's dict may change later, the definition must not.
        object.__setattr__(self, "parameters", copy.deepcopy(params))

    @property
    def required(self) -> list[str]:
        """Names of the required parameters."""
        return [str(name) for name in self.parameters.get("required", [])]

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI ``tools`` entry, which is also what chat templates expect in their ``tools`` variable."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": copy.deepcopy(self.parameters),
            },
        }

    @classmethod
    def from_openai(cls, spec: dict[str, Any]) -> ToolDefinition:
        """Read an OpenAI ``tools`` entry (``{"type": "function", "function": {...}}`` or the inner dict)."""
        inner = mapping("a tool", spec)
        inner = inner.get("function", inner)
        if not isinstance(inner, dict) or "name" not in inner:
            raise InvalidInputError('a tool needs a "name" (inside "function" for OpenAI-style tools)')
        parameters = inner.get("parameters")
        return cls(
            name=inner["name"],
            description="" if inner.get("description") is None else inner["description"],
            parameters={"type": "object", "properties": {}} if parameters is None else parameters,
        )


@dataclass(frozen=True)
class ToolCall:
    """One call the model asked for: the tool name, its arguments, and an id to match the result to the call.

    The id comes from the model when it wrote one, otherwise a process-unique ``call_<n>`` is generated.
    """

    name: str
    arguments: dict[str, Any] = field(default_factory=dict, hash=False)
    id: str = field(default_factory=next_call_id)

    def to_openai(self, *, arguments_as_text: bool = True) -> dict[str, Any]:
        """The OpenAI ``tool_calls`` entry of an assistant message: arguments as JSON text, as the API sends them,
        or (``arguments_as_text=False``) as the object chat templates write out themselves."""
        arguments = json.dumps(self.arguments, ensure_ascii=False) if arguments_as_text else copy.deepcopy(
            self.arguments)
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": arguments}}


@dataclass(frozen=True)
class ToolResult:
    """What running a tool gave: a JSON value, or an error message that goes back to the model as such."""

    call_id: str
    name: str
    result: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the tool ran without error."""
        return self.error is None

    @property
    def content(self) -> str:
        """The JSON text the model reads: the result, or ``{"error": "..."}``."""
        value = self.result if self.error is None else {"error": self.error}
        try:
            return json.dumps(value, ensure_ascii=False)
        except (TypeError, ValueError):
            # A tool returned something JSON cannot hold (a datetime, a set...): the model still gets its text.
            return json.dumps(str(value), ensure_ascii=False)

    def to_message(self) -> dict[str, Any]:
        """The chat message that carries this result back to the model (role ``tool``)."""
        return {"role": "tool", "name": self.name, "tool_call_id": self.call_id, "content": self.content}


class ToolCallFormat(str, Enum):
    """How a model writes a tool call.

    * ``HERMES``: ``<tool_call>{"name": "f", "arguments": {...}}</tool_call>`` (SmolLM2, Hermes).
    * ``QWEN``: Hermes calls, or the same JSON objects without the tags (one per line), which is how
      Qwen2.5's small models answer their own template's ``<tool_call>`` instruction at low temperature.
    * ``LFM2``: ``<|tool_call_start|>[f(a=1), g(b="x")]<|tool_call_end|>`` (Liquid LFM2, pythonic literals).
    * ``JSON``: a bare ``{"name": ..., "arguments": ...}``, ``{"tool_calls": [...]}`` or a list of calls,
      possibly inside a fenced code block.
    * ``AUTO``: any of the above.
    """

    HERMES = "hermes"
    QWEN = "qwen"
    LFM2 = "lfm2"
    JSON = "json"
    AUTO = "auto"


def as_format(fmt: ToolCallFormat | str) -> ToolCallFormat:
    """``fmt`` as a :class:`ToolCallFormat`; an unknown name is an InvalidInputError listing the choices."""
    return ToolCallFormat(choice("format", fmt, (f.value for f in ToolCallFormat)))

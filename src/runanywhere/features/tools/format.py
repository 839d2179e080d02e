"""Tool calling without an engine: tool definitions, prompts that teach the call syntax, and safe call parsing.

A language model "calls a tool" by writing text in an agreed syntax. This module holds everything about that
syntax that does not need a model, so it can be tested in isolation and reused by the tool-calling loop and the
OpenAI-compatible server:

* :class:`ToolDefinition` — a tool's name, description and JSON-Schema parameters (validated up front, because a
  broken schema would otherwise only fail deep inside a generation).
* :class:`ToolCallFormat` — the syntaxes models are trained on: Hermes ``<tool_call>{json}</tool_call>`` (Qwen,
  SmolLM, Hermes), LFM2's pythonic ``<|tool_call_start|>[f(a=1)]<|tool_call_end|>``, and bare JSON.
* :func:`parse_tool_calls` — finds every call in a reply and returns the reply without the call markup. Model
  output is untrusted input: JSON goes through :mod:`json`, pythonic calls through :func:`ast.parse` and accept
  literal keyword values only. Nothing the model writes is ever passed to ``eval`` or ``exec``.
* :func:`render_tool_prompt` — a short system-prompt section for models whose chat template ignores ``tools``.
* :func:`tool_call_grammar` — a GBNF grammar that forces exactly one well-formed Hermes call whose arguments follow
  the tool's schema, for engines that support grammar-constrained decoding.
"""

from __future__ import annotations

import ast
import copy
import itertools
import json
import math
import re
import threading
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

from ...core.errors import InvalidInputError

__all__ = [
    "ToolCall",
    "ToolCallFormat",
    "ToolDefinition",
    "ToolResult",
    "parse_tool_calls",
    "render_tool_prompt",
    "tool_call_grammar",
    "validate_arguments",
]

#: A tool name: identifier-like, so it survives every call syntax, a GBNF literal and a file name.
TOOL_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


def _is_tool_name(value: Any) -> bool:
    # fullmatch: "$" alone would also accept a trailing newline.
    return isinstance(value, str) and TOOL_NAME_RE.fullmatch(value) is not None


HERMES_START, HERMES_END = "<tool_call>", "</tool_call>"
LFM2_START, LFM2_END = "<|tool_call_start|>", "<|tool_call_end|>"

#: Keys under which models put the tool name and its arguments (first match wins).
_NAME_KEYS = ("name", "tool", "function")
_ARG_KEYS = ("arguments", "parameters", "args")
#: Keys a bare JSON object may have and still count as a call (anything else is ordinary JSON in an answer).
_BARE_CALL_KEYS = frozenset({*_NAME_KEYS, *_ARG_KEYS, "id", "type"})
#: JSON spellings a pythonic call may use for its literals.
_JSON_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None}

_FENCE_OPEN_RE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?[ \t]*\Z")
_FENCE_CLOSE_RE = re.compile(r"[ \t]*\n?[ \t]*```")
_BODY_FENCE_RE = re.compile(r"\A```[A-Za-z0-9_-]*\s*(.*?)\s*```\Z", re.DOTALL)
_LEADING_FENCE_RE = re.compile(r"\s*(```[A-Za-z0-9_-]*\s*)?")

_call_ids = itertools.count(1)
_WARNINGS_LOCK = threading.Lock()


def _next_call_id() -> str:
    """A process-unique call id (``call_1``, ``call_2``...), so ids never repeat across rounds of a loop."""
    return f"call_{next(_call_ids)}"


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


#: ``strict=False`` lets raw newlines and tabs through inside strings (models write them); NaN/Infinity are refused.
_DECODER = json.JSONDecoder(strict=False, parse_constant=_reject_constant)


# --------------------------------------------------------------------------------------------------- data types
@dataclass(frozen=True)
class ToolDefinition:
    """A tool the model may call: a name, what it does, and its parameters as a JSON Schema of type ``object``.

    The schema is checked when the definition is made (``InvalidInputError`` if it is not a valid Draft 2020-12
    schema of type object), so a mistake shows up where it was written, not in the middle of a generation.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}}, hash=False)

    def __post_init__(self) -> None:
        if not _is_tool_name(self.name):
            raise InvalidInputError(
                f"tool name {self.name!r} is not valid: use 1-64 letters, digits, '_', '.' or '-', "
                "starting with a letter or '_'",
                details={"name": self.name},
            )
        if not isinstance(self.description, str):
            raise InvalidInputError(f"the description of tool {self.name!r} must be a string")
        from jsonschema import Draft202012Validator  # deferred: a slow import, needed once tools are defined
        from jsonschema.exceptions import SchemaError

        params = self.parameters
        if not isinstance(params, dict):
            raise InvalidInputError(f"the parameters of tool {self.name!r} must be a JSON Schema object (a dict)")
        try:
            json.dumps(params, allow_nan=False)
            Draft202012Validator.check_schema(params)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"the parameters of tool {self.name!r} are not JSON: {exc}") from exc
        except SchemaError as exc:
            raise InvalidInputError(
                f"the parameters of tool {self.name!r} are not a valid JSON Schema: {exc.message}",
                details={"name": self.name, "path": list(exc.path)},
            ) from exc
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
        if not isinstance(spec, dict):
            raise InvalidInputError("a tool must be a JSON object")
        inner = spec.get("function", spec)
        if not isinstance(inner, dict) or "name" not in inner:
            raise InvalidInputError('a tool needs a "name" (inside "function" for OpenAI-style tools)')
        return cls(
            name=inner["name"],
            description=inner.get("description") or "",
            parameters=inner.get("parameters") or {"type": "object", "properties": {}},
        )


@dataclass(frozen=True)
class ToolCall:
    """One call the model asked for: the tool name, its arguments, and an id to match the result to the call.

    The id comes from the model when it wrote one, otherwise a process-unique ``call_<n>`` is generated.
    """

    name: str
    arguments: dict[str, Any] = field(default_factory=dict, hash=False)
    id: str = field(default_factory=_next_call_id)

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI ``tool_calls`` entry of an assistant message (arguments as JSON text, as the API sends them)."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments, ensure_ascii=False)},
        }


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

    * ``HERMES``: ``<tool_call>{"name": "f", "arguments": {...}}</tool_call>`` (Qwen, SmolLM2, Hermes).
    * ``LFM2``: ``<|tool_call_start|>[f(a=1), g(b="x")]<|tool_call_end|>`` (Liquid LFM2, pythonic literals).
    * ``JSON``: a bare ``{"name": ..., "arguments": ...}``, ``{"tool_calls": [...]}`` or a list of calls,
      possibly inside a fenced code block.
    * ``AUTO``: any of the above.
    """

    HERMES = "hermes"
    LFM2 = "lfm2"
    JSON = "json"
    AUTO = "auto"


def _format(fmt: ToolCallFormat | str) -> ToolCallFormat:
    try:
        return ToolCallFormat(fmt)
    except ValueError:
        choices = ", ".join(f.value for f in ToolCallFormat)
        raise InvalidInputError(f"unknown tool call format {fmt!r}; choose one of {choices}") from None


# ------------------------------------------------------------------------------------------------------ parsing
class _Call(NamedTuple):
    """A parsed call before it becomes a :class:`ToolCall` (ids are numbered in reply order, at the end)."""

    name: str
    arguments: dict[str, Any]
    id: str | None = None


@dataclass
class _Block:
    """A stretch of the reply that looked like call markup, and what to leave in its place."""

    start: int
    end: int
    calls: list[_Call]
    replacement: str


@dataclass
class _Item:
    """One call candidate inside a block: the parsed call (None if rejected) and its text, kept if rejected."""

    call: _Call | None
    source: str


def parse_tool_calls(
    text: str,
    fmt: ToolCallFormat | str = ToolCallFormat.AUTO,
    known: Collection[str] | None = None,
) -> tuple[list[ToolCall], str]:
    """Find the tool calls in a model's reply; return them in order and the reply with their markup removed.

    Several calls per reply are allowed. A candidate that is malformed (not JSON, single-quoted keys, a pythonic
    call with a positional argument or a non-literal value...) is skipped and stays in the remaining text, as do
    calls to names outside ``known`` when it is given. Arguments written as a JSON string are decoded, and
    ``"parameters"`` is read as a synonym of ``"arguments"``. The reply is only ever *parsed* (``json``,
    ``ast.parse``/``ast.literal_eval``), never executed.
    """
    fmt = _format(fmt)
    if isinstance(known, str):  # one name, not a collection of characters
        known = [known]
    names = frozenset(known) if known is not None else None
    if fmt is ToolCallFormat.HERMES:
        blocks = _hermes_blocks(text, names)
    elif fmt is ToolCallFormat.LFM2:
        blocks = _lfm2_blocks(text, names)
    elif fmt is ToolCallFormat.JSON:
        blocks = _json_blocks(text, 0, len(text), names)
    else:
        tagged = _without_overlaps(sorted(_hermes_blocks(text, names) + _lfm2_blocks(text, names), key=_start))
        blocks = []
        position = 0
        # Bare JSON only counts outside tag blocks, so JSON inside a rejected tag block is not picked up again.
        for block in [*tagged, None]:
            gap_end = block.start if block is not None else len(text)
            blocks.extend(_json_blocks(text, position, gap_end, names))
            if block is not None:
                blocks.append(block)
                position = block.end
    calls: list[ToolCall] = []
    pieces: list[str] = []
    position = 0
    for block in blocks:
        if not block.calls:
            continue
        for name, arguments, call_id in block.calls:
            calls.append(ToolCall(name, arguments, call_id) if call_id else ToolCall(name, arguments))
        pieces.append(text[position : block.start])
        pieces.append(block.replacement)
        position = block.end
    pieces.append(text[position:])
    return calls, "".join(pieces).strip()


def _start(block: _Block) -> int:
    return block.start


def _without_overlaps(blocks: list[_Block]) -> list[_Block]:
    kept: list[_Block] = []
    for block in blocks:
        if not kept or block.start >= kept[-1].end:
            kept.append(block)
    return kept


def _finish(
    start: int,
    end: int,
    text: str,
    items: list[_Item],
    names: frozenset[str] | None,
    rebuild: Callable[[list[str]], str],
) -> _Block:
    """Keep accepted calls, and leave the rejected ones (bad or unknown) in the text, re-wrapped in their markup."""
    accepted: list[_Call] = []
    rejected: list[str] = []
    for item in items:
        if item.call is not None and (names is None or item.call.name in names):
            accepted.append(item.call)
        else:
            rejected.append(item.source)
    if not accepted:
        replacement = text[start:end]
    elif rejected:
        replacement = rebuild(rejected)
    else:
        replacement = ""
    return _Block(start, end, accepted, replacement)


def _tag_bodies(text: str, open_tag: str, close_tag: str) -> Iterator[tuple[int, int, int, bool]]:
    """Yield ``(start, body_start, body_end, closed)`` for each open tag; an unclosed body runs to the next tag.

    Linear in the reply's length (each tag is searched for once), so a reply full of tags cannot stall parsing.
    """
    opens = [match.start() for match in re.finditer(re.escape(open_tag), text)]
    close = -1  # the first close tag at or after the current body, len(text) once there is none
    position = 0
    for index, start in enumerate(opens):
        if start < position:
            continue
        body_start = start + len(open_tag)
        if close < body_start:
            found = text.find(close_tag, body_start)
            close = found if found != -1 else len(text)
        following = opens[index + 1] if index + 1 < len(opens) else len(text)
        if close < len(text) and close < following:
            yield start, body_start, close, True
            position = close + len(close_tag)
        else:
            yield start, body_start, following, False
            position = following


# Hermes ---------------------------------------------------------------------------------------------------------
def _hermes_blocks(text: str, names: frozenset[str] | None) -> list[_Block]:
    blocks: list[_Block] = []
    for start, body_start, body_end, closed in _tag_bodies(text, HERMES_START, HERMES_END):
        end = body_end + len(HERMES_END) if closed else body_end
        decoded = _decode_json_at(text, body_start, body_end, whole=closed)
        if decoded is None:
            # An unclosed tag that starts no JSON claims only itself: what follows may hold other calls.
            end = end if closed else body_start
            blocks.append(_Block(start, end, [], text[start:end]))
            continue
        value, json_end = decoded
        if not closed:
            end = json_end  # the reply stopped before </tool_call>: the call ends with its JSON
        items = [_Item(_call_from_json(obj, bare=False), _dump(obj)) for obj in _json_candidates(value)]
        blocks.append(_finish(start, end, text, items, names, _rewrap(HERMES_START, HERMES_END)))
    return blocks


def _rewrap(open_tag: str, close_tag: str) -> Callable[[list[str]], str]:
    def rebuild(sources: list[str]) -> str:
        return "".join(f"{open_tag}{source}{close_tag}" for source in sources)

    return rebuild


def _decode_json_at(text: str, start: int, end: int, *, whole: bool) -> tuple[Any, int] | None:
    """Decode the JSON value in ``text[start:end]``, optionally fenced, and return it with where it ends.

    ``whole`` (a closed tag) requires the body to be nothing but the value; otherwise (the reply stopped before
    the closing tag) the value may be followed by other text, which is not part of the call.
    """
    if whole:
        inner = text[start:end].strip()
        fence = _BODY_FENCE_RE.match(inner)
        try:
            return _DECODER.decode(fence.group(1) if fence else inner), end
        except (ValueError, RecursionError):
            return None
    opening = _LEADING_FENCE_RE.match(text, start, end)
    begin = opening.end() if opening else start
    try:
        value, consumed = _DECODER.raw_decode(text[begin:end])
    except (ValueError, RecursionError):
        return None
    stop = begin + consumed
    closing = _FENCE_CLOSE_RE.match(text, stop, end)
    if opening and opening.group(1) and closing:
        stop = closing.end()
    return value, stop


def _json_candidates(value: Any) -> list[Any]:
    """The call objects in a decoded JSON value: itself, the items of a list, or ``tool_calls`` of a wrapper."""
    if isinstance(value, dict) and isinstance(value.get("tool_calls"), list):
        return list(value["tool_calls"])
    if isinstance(value, list):
        return list(value)
    return [value]


def _call_from_json(obj: Any, *, bare: bool) -> _Call | None:
    """A call from one JSON object, or None. ``bare`` (no surrounding tag) also demands a call-only shape."""
    if not isinstance(obj, dict):
        return None
    function = obj.get("function")
    if isinstance(function, dict):  # OpenAI shape: {"id", "type": "function", "function": {"name", "arguments"}}
        source: dict[str, Any] = function
        if bare and not set(obj) <= _BARE_CALL_KEYS:
            return None
    else:
        source = obj
        if bare and (not set(obj) <= _BARE_CALL_KEYS or not any(key in obj for key in _ARG_KEYS)):
            return None
    name = next((source[key] for key in _NAME_KEYS if key in source), None)
    if not isinstance(name, str) or not _is_tool_name(name):
        return None
    arguments = next((source[key] for key in _ARG_KEYS if key in source), None)
    if isinstance(arguments, str):  # arguments as JSON text, as the OpenAI API writes them
        if not arguments.strip():
            arguments = None
        else:
            try:
                arguments = _DECODER.decode(arguments)
            except (ValueError, RecursionError):
                return None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return None
    call_id = obj.get("id")
    return _Call(name, arguments, call_id if isinstance(call_id, str) and call_id.strip() else None)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# Bare JSON ------------------------------------------------------------------------------------------------------
_JSON_START_RE = re.compile(r'\{\s*"|\[\s*\{')


def _json_blocks(text: str, start: int, end: int, names: frozenset[str] | None) -> list[_Block]:
    """Calls written as bare JSON in ``text[start:end]``; ordinary JSON in an answer is left alone."""
    blocks: list[_Block] = []
    position = start
    while (match := _JSON_START_RE.search(text, position, end)) is not None:
        begin = match.start()
        try:
            # A slice, not an offset: a decode error's line/column count then stays local to the attempt.
            value, consumed = _DECODER.raw_decode(text[begin:end])
        except (ValueError, RecursionError):
            position = begin + 1
            continue
        stop = position = begin + consumed
        candidates = _json_candidates(value)
        items = [_Item(_call_from_json(obj, bare=True), _dump(obj)) for obj in candidates]
        if not candidates or all(item.call is None for item in items):
            continue  # JSON, but not a call: part of the answer
        block_start, block_end = begin, stop
        opening = _FENCE_OPEN_RE.search(text, start, begin)
        closing = _FENCE_CLOSE_RE.match(text, stop, end)
        if opening and closing:  # the fenced block holds nothing but the call: remove the fence too
            block_start, block_end = opening.start(), closing.end()
        blocks.append(_finish(block_start, block_end, text, items, names, _rejoin_json))
        position = block_end
    return blocks


def _rejoin_json(sources: list[str]) -> str:
    return sources[0] if len(sources) == 1 else "[" + ", ".join(sources) + "]"


# LFM2 (pythonic) ------------------------------------------------------------------------------------------------
def _lfm2_blocks(text: str, names: frozenset[str] | None) -> list[_Block]:
    blocks: list[_Block] = []
    for start, body_start, body_end, closed in _tag_bodies(text, LFM2_START, LFM2_END):
        end = body_end + len(LFM2_END) if closed else body_end
        body = text[body_start:body_end].strip()
        try:
            tree = _parse_python(body)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            end = end if closed else body_start
            blocks.append(_Block(start, end, [], text[start:end]))
            continue
        nodes = tree.elts if isinstance(tree, (ast.List, ast.Tuple)) else [tree]
        items = [_Item(_call_from_ast(node), ast.get_source_segment(body, node) or "") for node in nodes]
        blocks.append(_finish(start, end, text, items, names, _rewrap_pythonic))
    return blocks


def _parse_python(source: str) -> ast.expr:
    """Parse (never compile or run) a Python expression, without the compiler's warnings about the model's text.

    Parsing ``"\\d"`` in a string warns about an invalid escape; that warning would reach the user's console for
    text a model wrote. The lock keeps our own uses of the (process-global) warning filters from interleaving.
    """
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source, mode="eval").body


def _rewrap_pythonic(sources: list[str]) -> str:
    return f"{LFM2_START}[{', '.join(sources)}]{LFM2_END}"


def _call_from_ast(node: ast.expr) -> _Call | None:
    """A call from ``name(key=literal, ...)``; anything else (positional, nested call, attribute...) is None."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.args:
        return None
    if not _is_tool_name(node.func.id):
        return None
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None or keyword.arg in arguments:  # **kwargs, or a repeated keyword
            return None
        try:
            arguments[keyword.arg] = _literal(keyword.value)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            return None
    return _Call(node.func.id, arguments)


def _literal(node: ast.expr) -> Any:
    """A JSON value from a literal expression, via :func:`ast.literal_eval` (plus JSON's true/false/null)."""
    if isinstance(node, ast.Name) and node.id in _JSON_NAMES:
        return _JSON_NAMES[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(element) for element in node.elts]
    if isinstance(node, ast.Dict):
        result: dict[str, Any] = {}
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            if key_node is None:  # {**other}
                raise ValueError("dict unpacking is not a literal")
            key = _literal(key_node)
            if not isinstance(key, str):
                raise ValueError("object keys must be strings")
            result[key] = _literal(value_node)
        return result
    value = ast.literal_eval(node)  # constants and signed numbers; raises ValueError on anything else
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise ValueError(f"{type(value).__name__} is not a JSON value")


# ------------------------------------------------------------------------------------------- prompts, validation
def render_tool_prompt(tools: Sequence[ToolDefinition], fmt: ToolCallFormat | str = ToolCallFormat.HERMES) -> str:
    """A system-prompt section listing the tools and the exact call syntax, for templates without ``tools``.

    Small models follow short, concrete instructions best, so this is a compact list of signatures plus one
    example call in the chosen syntax (``AUTO`` teaches the Hermes syntax). Empty when there are no tools.
    """
    fmt = _format(fmt)
    if not tools:
        return ""
    lines = ["You can call these tools:"]
    for tool in tools:
        lines.append(f"- {_signature(tool)}" + (f": {tool.description.strip()}" if tool.description.strip() else ""))
        for name, schema in _properties(tool):
            description = schema.get("description") if isinstance(schema, dict) else None
            if isinstance(description, str) and description.strip():
                lines.append(f"    {name}: {description.strip()}")
    example = tools[0]
    arguments = {name: _example_value(schema) for name, schema in _properties(example) if name in example.required}
    if fmt is ToolCallFormat.LFM2:
        call = ", ".join(f"{key}={_python_literal(value)}" for key, value in arguments.items())
        lines += [
            "To call a tool, answer only with:",
            f"{LFM2_START}[{example.name}({call})]{LFM2_END}",
            "To call several tools, list the calls inside the brackets, separated by commas.",
        ]
    elif fmt is ToolCallFormat.JSON:
        lines += [
            "To call a tool, answer only with a JSON object:",
            _dump({"name": example.name, "arguments": arguments}),
            "To call several tools, answer with a JSON list of such objects.",
        ]
    else:
        lines += [
            "To call a tool, answer only with:",
            f"{HERMES_START}{_dump({'name': example.name, 'arguments': arguments})}{HERMES_END}",
            f"To call several tools, write one {HERMES_START}...{HERMES_END} per call.",
        ]
    lines.append("Use only the tools listed. If no tool is needed, answer normally.")
    return "\n".join(lines)


def _properties(tool: ToolDefinition) -> list[tuple[str, Any]]:
    properties = tool.parameters.get("properties", {})
    return [(str(name), schema) for name, schema in properties.items()] if isinstance(properties, dict) else []


def _signature(tool: ToolDefinition) -> str:
    required = set(tool.required)
    params = [f"{name}{'' if name in required else '?'}: {_type_text(schema)}" for name, schema in _properties(tool)]
    return f"{tool.name}({', '.join(params)})"


def _type_text(schema: Any) -> str:
    """A one-word rendering of a property schema: ``string``, ``"a" | "b"``, ``array of number``..."""
    if not isinstance(schema, dict):
        return "any"
    if isinstance(schema.get("enum"), list):
        return " | ".join(_dump(value) for value in schema["enum"])
    if "const" in schema:
        return _dump(schema["const"])
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(alternatives, list):
        return " | ".join(_type_text(alternative) for alternative in alternatives)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"array of {_type_text(schema['items'])}"
    return str(kind) if isinstance(kind, str) else "any"


def _example_value(schema: Any) -> Any:
    """A plausible value for the example call: the schema's own example, default or first choice if it has one."""
    if not isinstance(schema, dict):
        return "..."
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    for key in ("default", "const"):
        if key in schema:
            return schema[key]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    return {"integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}, "null": None}.get(str(kind), "...")


def _python_literal(value: Any) -> str:
    """A JSON value written as a Python literal (for the pythonic call syntax)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_dump(str(k))}: {_python_literal(v)}" for k, v in value.items()) + "}"
    return _dump(value)


def validate_arguments(tool: ToolDefinition, arguments: Any) -> list[str]:
    """The reasons ``arguments`` do not match the tool's parameter schema, one message each; empty when valid."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(tool.parameters)
    messages = []
    for error in sorted(validator.iter_errors(arguments), key=lambda e: [str(p) for p in e.absolute_path]):
        where = ".".join(str(part) for part in error.absolute_path)
        messages.append(f"{where}: {error.message}" if where else error.message)
    return messages


# ------------------------------------------------------------------------------------------------------ grammar
_RULE_RE = re.compile(r"^([A-Za-z0-9-]+)\s*::=\s*(.*)$")


def tool_call_grammar(tools: Sequence[ToolDefinition], fmt: ToolCallFormat | str = ToolCallFormat.HERMES) -> str:
    """A GBNF grammar that admits exactly one call of one of ``tools`` with arguments shaped by its schema.

    ``HERMES`` (and ``AUTO``) wrap the call in ``<tool_call>...</tool_call>``; ``JSON`` is the bare object.
    The pythonic LFM2 syntax has no JSON-Schema converter, so it is refused. Each tool's parameter schema goes
    through llama-cpp-python's own converter (so keywords it cannot express are handled the way structured
    output handles them); its rules are renamed ``t<i>-...`` so the tools' grammars can share one file.
    """
    fmt = _format(fmt)
    if fmt is ToolCallFormat.LFM2:
        raise InvalidInputError("a tool-call grammar exists for the HERMES and JSON formats, not LFM2")
    if not tools:
        raise InvalidInputError("a tool-call grammar needs at least one tool")
    from ...backends import require_engine

    converter = require_engine("llama_cpp.llama_grammar", "llm")
    rules: list[str] = []
    alternatives: list[str] = []
    for index, tool in enumerate(tools):
        try:
            gbnf = converter.json_schema_to_gbnf(json.dumps(tool.parameters))
        except (AssertionError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise InvalidInputError(
                f"the parameters of tool {tool.name!r} cannot be turned into a grammar: {exc}"
            ) from exc
        prefix = f"t{index}-"
        rules.extend(_prefixed_rules(str(gbnf), prefix))
        name_literal = _gbnf_literal(_dump(tool.name))
        alternatives.append(f"call-{index}")
        rules.append(
            f'call-{index} ::= "{{" ws? "\\"name\\"" ws? ":" ws? {name_literal} ws? "," ws? '
            f'"\\"arguments\\"" ws? ":" ws? {prefix}root ws? "}}"'
        )
    if fmt is ToolCallFormat.JSON:
        root = "root ::= tool-call"
    else:
        root = f"root ::= {_gbnf_literal(HERMES_START)} ws? tool-call ws? {_gbnf_literal(HERMES_END)}"
    header = [root, f"tool-call ::= {' | '.join(alternatives)}", r"ws ::= [ \t\n]"]
    return "\n".join(header + rules) + "\n"


def _gbnf_literal(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def _prefixed_rules(gbnf: str, prefix: str) -> list[str]:
    """Rename every rule of a grammar (and every reference to it) with ``prefix``."""
    parsed: list[list[str]] = []
    for line in gbnf.splitlines():
        match = _RULE_RE.match(line)
        if match:
            parsed.append([match.group(1), match.group(2)])
        elif parsed and line.strip():
            parsed[-1][1] += "\n" + line  # a rule body continued on the next line
    names = {name for name, _ in parsed}
    return [f"{prefix}{name} ::= {_rename_references(body, names, prefix)}" for name, body in parsed]


def _rename_references(body: str, names: set[str], prefix: str) -> str:
    """Prefix rule references in a GBNF rule body, leaving literals, character classes and counts untouched."""
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        char = body[i]
        if char in '"[{':
            close = {'"': '"', "[": "]", "{": "}"}[char]
            j = i + 1
            while j < n and body[j] != close:
                j += 2 if body[j] == "\\" else 1
            out.append(body[i : j + 1])
            i = j + 1
        elif char == "#":
            j = body.find("\n", i)
            j = n if j == -1 else j
            out.append(body[i:j])
            i = j
        elif char.isascii() and (char.isalnum() or char == "-"):
            j = i
            while j < n and body[j].isascii() and (body[j].isalnum() or body[j] == "-"):
                j += 1
            word = body[i:j]
            out.append(prefix + word if word in names else word)
            i = j
        else:
            out.append(char)
            i += 1
    return "".join(out)

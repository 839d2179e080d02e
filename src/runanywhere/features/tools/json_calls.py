"""Calls written as JSON: Hermes ``<tool_call>{json}</tool_call>`` and bare JSON objects or lists.

Model output is untrusted input: it only ever goes through :mod:`json`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .blocks import Block, Call, Item, finish, tag_bodies
from .types import HERMES_END, HERMES_START, dump_json, is_tool_name

#: Keys under which models put the tool name and its arguments (first match wins).
_NAME_KEYS = ("name", "tool", "function")
_ARG_KEYS = ("arguments", "parameters", "args")
#: Keys a bare JSON object may have and still count as a call (anything else is ordinary JSON in an answer).
_BARE_CALL_KEYS = frozenset({*_NAME_KEYS, *_ARG_KEYS, "id", "type"})
#: JSON spellings a pythonic call may use for its literals.
_FENCE_OPEN_RE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?[ \t]*\Z")
_FENCE_CLOSE_RE = re.compile(r"[ \t]*\n?[ \t]*```")
_BODY_FENCE_RE = re.compile(r"\A```[A-Za-z0-9_-]*\s*(.*?)\s*```\Z", re.DOTALL)
_LEADING_FENCE_RE = re.compile(r"\s*(```[A-Za-z0-9_-]*\s*)?")
_CLOSE_AFTER_RE = re.compile(r"\s*" + re.escape(HERMES_END))

def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


#: ``strict=False`` lets raw newlines and tabs through inside strings (models write them); NaN/Infinity are refused.
_DECODER = json.JSONDecoder(strict=False, parse_constant=_reject_constant)


# Hermes ---------------------------------------------------------------------------------------------------------
def hermes_blocks(text: str, names: frozenset[str] | None) -> list[Block]:
    blocks: list[Block] = []
    for start, body_start, body_end, closed in tag_bodies(text, HERMES_START, HERMES_END):
        if blocks and start < blocks[-1].end:
            continue  # inside a call that ran past its first close tag
        end = body_end + len(HERMES_END) if closed else body_end
        decoded = _decode_json_at(text, body_start, body_end, whole=closed)
        if decoded is None and closed and (spanning := _json_through_close(text, body_start)) is not None:
            decoded, end = spanning  # the first close tag was inside one of the call's JSON strings
        if decoded is None:
            # An unclosed tag that starts no JSON claims only itself: what follows may hold other calls.
            end = end if closed else body_start
            blocks.append(Block(start, end, [], text[start:end]))
            continue
        value, json_end = decoded
        if not closed:
            end = json_end  # the reply stopped before </tool_call>: the call ends with its JSON
        items = [Item(_call_from_json(obj, bare=False), dump_json(obj)) for obj in _json_candidates(value)]
        blocks.append(finish(start, end, text, items, names, _rewrap(HERMES_START, HERMES_END)))
    return blocks


def _json_through_close(text: str, body_start: int) -> tuple[tuple[Any, int], int] | None:
    """The JSON value starting the body and where it ends, with the end of the close tag right after it, or None.

    A model may write the close tag inside a string argument (a grammar admits it there), so the tag that ends
    the call is the first one after the JSON value, not the first one in the text.
    """
    decoded = _decode_json_at(text, body_start, len(text), whole=False)
    if decoded is None:
        return None
    close = _CLOSE_AFTER_RE.match(text, decoded[1])
    return (decoded, close.end()) if close else None


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


def _call_from_json(obj: Any, *, bare: bool) -> Call | None:
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
    if not isinstance(name, str) or not is_tool_name(name):
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
    return Call(name, arguments, call_id if isinstance(call_id, str) and call_id.strip() else None)


# Bare JSON ------------------------------------------------------------------------------------------------------
_JSON_START_RE = re.compile(r'\{\s*"|\[\s*\{')


def json_blocks(text: str, start: int, end: int, names: frozenset[str] | None) -> list[Block]:
    """Calls written as bare JSON in ``text[start:end]``; ordinary JSON in an answer is left alone."""
    blocks: list[Block] = []
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
        items = [Item(_call_from_json(obj, bare=True), dump_json(obj)) for obj in candidates]
        if not candidates or all(item.call is None for item in items):
            continue  # JSON, but not a call: part of the answer
        block_start, block_end = begin, stop
        opening = _FENCE_OPEN_RE.search(text, start, begin)
        closing = _FENCE_CLOSE_RE.match(text, stop, end)
        if opening and closing:  # the fenced block holds nothing but the call: remove the fence too
            block_start, block_end = opening.start(), closing.end()
        blocks.append(finish(block_start, block_end, text, items, names, _rejoin_json))
        position = block_end
    return blocks


def _rejoin_json(sources: list[str]) -> str:
    return sources[0] if len(sources) == 1 else "[" + ", ".join(sources) + "]"

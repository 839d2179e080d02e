"""Calls written the LFM2 way: ``<|tool_call_start|>[f(a=1), g(b="x")]<|tool_call_end|>``.

The calls are parsed with :func:`ast.parse` and accept literal keyword values only; nothing the model
writes is ever compiled, passed to ``eval`` or ``exec``.
"""

from __future__ import annotations

import ast
import math
import threading
import warnings
from typing import Any

from .blocks import Block, Call, Item, finish, tag_bodies
from .types import LFM2_END, LFM2_START, is_tool_name

#: JSON spellings a pythonic call may use for its literals.
_JSON_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None}
_WARNINGS_LOCK = threading.Lock()


def lfm2_blocks(text: str, names: frozenset[str] | None) -> list[Block]:
    blocks: list[Block] = []
    for start, body_start, body_end, closed in tag_bodies(text, LFM2_START, LFM2_END):
        end = body_end + len(LFM2_END) if closed else body_end
        body = text[body_start:body_end].strip()
        try:
            tree = _parse_python(body)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            end = end if closed else body_start
            blocks.append(Block(start, end, [], text[start:end]))
            continue
        nodes = tree.elts if isinstance(tree, (ast.List, ast.Tuple)) else [tree]
        items = [Item(_call_from_ast(node), ast.get_source_segment(body, node) or "") for node in nodes]
        blocks.append(finish(start, end, text, items, names, _rewrap_pythonic))
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


def _call_from_ast(node: ast.expr) -> Call | None:
    """A call from ``name(key=literal, ...)``; anything else (positional, nested call, attribute...) is None."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or node.args:
        return None
    if not is_tool_name(node.func.id):
        return None
    arguments: dict[str, Any] = {}
    for keyword in node.keywords:
        if keyword.arg is None or keyword.arg in arguments:  # **kwargs, or a repeated keyword
            return None
        try:
            arguments[keyword.arg] = _literal(keyword.value)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            return None
    return Call(node.func.id, arguments)


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

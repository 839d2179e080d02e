"""JSON Schemas from callers, checked before anything uses them: JSON, bounded, local ``$ref`` only, valid.

A schema becomes a grammar and a validator. Both would follow a remote
``$ref`` (llama-cpp-python's converter fetches ``https://`` references once
``python -O`` strips its guarding ``assert``), choke on a missing one, or take
minutes over a huge ``enum``; so every schema is walked here first, in time
bounded by :data:`MAX_SCHEMA_NODES`, and refused with an :class:`InvalidInputError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from .errors import InvalidInputError, SDKErrorCode
from .validation import shown

#: Values in one schema (every key, list item and ``enum`` entry counts); grammar size grows with it.
MAX_SCHEMA_NODES = 5000
#: How deeply a schema may nest (the converters recurse).
MAX_SCHEMA_DEPTH = 64
_REF_KEYS = ("$ref", "$dynamicRef", "$recursiveRef")


def checked_schema(name: str, schema: Any) -> dict[str, Any]:
    """A private copy of ``schema`` once it is a valid Draft 2020-12 JSON Schema that refers only to itself."""
    import jsonschema  # deferred: a slow import most programs never need

    if not isinstance(schema, Mapping):
        raise _bad(f"{name} must be a JSON schema (a dict), got {type(schema).__name__}")
    root = dict(schema)
    refs = _walk(name, root)
    for ref in refs:
        _resolve(name, root, ref)
    try:
        jsonschema.Draft202012Validator.check_schema(root)
    except jsonschema.SchemaError as exc:
        raise _bad(f"{name} is an invalid JSON schema: {exc.message}", path=list(exc.path)) from exc
    return root


def local_refs_only(name: str, schema: Any) -> None:
    """Refuse a schema with a reference outside itself (a URL, a file); nothing here is ever fetched."""
    _walk(name, schema)


def _walk(name: str, schema: Any) -> list[str]:
    """Every reference in ``schema`` (all local); raises on a non-JSON value, a remote ref, or too big a schema."""
    refs: list[str] = []
    pending: list[tuple[Any, int]] = [(schema, 0)]
    seen = 0
    while pending:
        node, depth = pending.pop()
        seen += 1
        if seen > MAX_SCHEMA_NODES:
            raise _bad(f"{name} has more than {MAX_SCHEMA_NODES} values (a huge enum?); the grammar for it would "
                       "take minutes to build and use: shorten it")
        if depth > MAX_SCHEMA_DEPTH:
            raise _bad(f"{name} nests deeper than {MAX_SCHEMA_DEPTH} levels; flatten it")
        if isinstance(node, Mapping):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise _bad(f"{name} has the key {shown(key)}; JSON object keys are str")
                if key in _REF_KEYS:
                    refs.append(_local_ref(name, key, value))
                pending.append((value, depth + 1))
        elif isinstance(node, (list, tuple)):
            pending.extend((item, depth + 1) for item in node)
        elif isinstance(node, float) and not math.isfinite(node):
            raise _bad(f"{name} holds {node!r}, which JSON cannot; use a finite number")
        elif isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise _bad(f"{name} holds a string with a lone surrogate; pass valid text") from None
        elif node is not None and not isinstance(node, (bool, int, float)):
            raise _bad(f"{name} holds a {type(node).__name__}; a schema holds only JSON values")
    return refs


def _local_ref(name: str, key: str, ref: Any) -> str:
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise _bad(f"{name} has {key} {shown(ref)}: only references inside the schema ('#/$defs/...') are allowed; "
                   "remote and file references are never fetched, so put the referenced schema under $defs")
    return ref


def _resolve(name: str, root: dict[str, Any], ref: str) -> None:
    """Raise unless ``ref`` (a ``#/json/pointer`` or a ``#name`` anchor) points at a part of ``root``."""
    fragment = unquote(ref[1:])
    if fragment and not fragment.startswith("/"):
        if fragment not in _anchors(root):
            raise _bad(f"{name} has $ref {ref!r}, but no $anchor {fragment!r} is defined")
        return
    target: Any = root
    for part in fragment.split("/")[1:]:
        key = part.replace("~1", "/").replace("~0", "~")
        if isinstance(target, Mapping) and key in target:
            target = target[key]
        elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
            target = target[int(key)]
        else:
            raise _bad(f"{name} has $ref {ref!r}, which points at nothing in the schema; define it under $defs")


def _anchors(node: Any) -> set[str]:
    found: set[str] = set()
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, Mapping):
            if isinstance(item.get("$anchor"), str):
                found.add(item["$anchor"])
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def _bad(message: str, **details: Any) -> InvalidInputError:
    return InvalidInputError(message, code=SDKErrorCode.INVALID_PARAMETER, details=details or None)

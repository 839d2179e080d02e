"""Where a schema's references point, inside the schema only: ``$id`` resources, anchors and JSON pointers.

Every ``$ref`` (and ``$recursiveRef``/``$dynamicRef``) is resolved against the base URI its ``$id``
ancestors set (draft 4 spells it ``id``), so references to an embedded resource by its id, to a
``$anchor`` or a plain-name ``$id`` fragment, or to any definition name (dots, spaces...) all resolve.
A reference to anything outside the schema (another file, a URL) is refused: nothing is ever fetched.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urldefrag, urljoin, urlsplit

from .errors import InvalidInputError, SDKErrorCode

#: The base URI of a schema without a root ``$id`` (never fetched: only compared).
ROOT_URI = "urn-runanywhere://schema/root.json"
REF_KEYS = ("$ref", "$recursiveRef", "$dynamicRef")
#: Keywords whose value is data, not schemas: never searched for ids or references.
_DATA = frozenset({"enum", "const", "default", "examples", "required", "type", "dependentRequired"})
#: Keywords whose value maps names (not keywords) to subschemas.
MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"})

Pointer = tuple[str, ...]
_FRAGMENT_SAFE = "~!$&'()*+,;=:@-._"  # kept as they are in a URI fragment; anything else is percent-encoded
#: Keywords whose value is one subschema, and those whose value is a list of them.
_SINGLE = frozenset({"additionalProperties", "additionalItems", "items", "contains", "propertyNames", "not", "if",
                     "then", "else", "unevaluatedItems", "unevaluatedProperties", "contentSchema"})
_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems", "items"})


def subschemas(node: Mapping[str, Any]) -> Iterator[tuple[Pointer, Any]]:
    """The schemas directly inside ``node`` with their path from it (unknown keywords holding objects too)."""
    for key, value in node.items():
        if key in _DATA:
            continue
        if key in MAPS and isinstance(value, Mapping):
            yield from (((key, name), child) for name, child in value.items() if isinstance(child, (Mapping, bool)))
        elif isinstance(value, list):
            yield from (((key, str(i)), child) for i, child in enumerate(value)
                        if isinstance(child, Mapping) or (isinstance(child, bool) and key in _LISTS))
        elif isinstance(value, Mapping) or (isinstance(value, bool) and key in _SINGLE):
            yield (key,), value


@dataclass(frozen=True)
class Reference:
    """One reference: where it is, its keyword and text, and the pointer (from the root) it resolves to."""

    at: Pointer
    keyword: str
    ref: str
    target: Pointer


def resolve_references(name: str, root: Any, draft: str) -> list[Reference]:
    """Every reference of ``root`` resolved to a pointer into ``root``; anything else is an InvalidInputError."""
    resources: dict[str, Pointer] = {}
    anchors: dict[tuple[str, str], Pointer] = {}
    found: list[tuple[Pointer, str, str, str]] = []
    id_key = "id" if draft == "4" else "$id"
    pending: list[tuple[Any, Pointer, str]] = [(root, (), ROOT_URI)]
    resources[ROOT_URI] = ()
    while pending:
        node, at, base = pending.pop()
        if not isinstance(node, Mapping):
            continue
        if not (draft in ("4", "6", "7") and "$ref" in node):  # before 2019-09 a $ref's siblings are ignored
            base = _enter(node.get(id_key), at, base, resources, anchors)
            for key in ("$anchor", "$dynamicAnchor"):
                if isinstance(node.get(key), str):
                    anchors[(base, node[key])] = at
        for key in REF_KEYS:
            if key in node:
                if not isinstance(node[key], str):
                    raise _bad(f"{name} has {key} {node[key]!r}; a reference is a string", at, key)
                found.append((at, key, node[key], base))
        pending.extend((child, at + path, base) for path, child in subschemas(node))
    return [Reference(at, key, ref, _target(name, root, ref, base, at, key, resources, anchors))
            for at, key, ref, base in found]


def _enter(schema_id: Any, at: Pointer, base: str, resources: dict[str, Pointer],
           anchors: dict[tuple[str, str], Pointer]) -> str:
    """The base URI inside a schema with this ``$id`` (registering it, and a plain-name fragment as an anchor)."""
    if not isinstance(schema_id, str) or not schema_id:
        return base
    uri, fragment = urldefrag(_join(base, schema_id))
    if uri:
        resources.setdefault(uri, at)
        base = uri
    if fragment and not fragment.startswith("/"):
        anchors[(base, fragment)] = at
    return base


def _join(base: str, ref: str) -> str:
    if ref.startswith("#"):
        return base + ref
    return ref if urlsplit(ref).scheme else urljoin(base, ref)


def _target(name: str, root: Any, ref: str, base: str, at: Pointer, key: str, resources: dict[str, Pointer],
            anchors: dict[tuple[str, str], Pointer]) -> Pointer:
    uri, fragment = urldefrag(_join(base, ref))
    if uri not in resources:
        raise _bad(f"{name} has {key} {ref!r}: only references inside the schema ('#/$defs/...', an embedded $id or "
                   "a $anchor) are allowed; remote and file references are never fetched, so put the referenced "
                   "schema under $defs", at, key)
    fragment = unquote(fragment)
    if fragment and not fragment.startswith("/"):
        if (uri, fragment) not in anchors:
            raise _bad(f"{name} has {key} {ref!r}, but no $anchor {fragment!r} is defined", at, key)
        return anchors[(uri, fragment)]
    target = resources[uri] + tuple(p.replace("~1", "/").replace("~0", "~") for p in fragment.split("/")[1:])
    if not _exists(root, target):
        raise _bad(f"{name} has {key} {ref!r}, which points at nothing in the schema; define it under $defs", at, key)
    return target


def _exists(root: Any, pointer: Pointer) -> bool:
    node = root
    for part in pointer:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def pointer_text(pointer: Pointer) -> str:
    """A pointer as a URI fragment reference from the root (``#/$defs/a%20b``), percent-encoded where needed."""
    escaped = (part.replace("~", "~0").replace("/", "~1") for part in pointer)
    return "#" + "".join("/" + quote(part, safe=_FRAGMENT_SAFE) for part in escaped)


def _bad(message: str, at: Pointer, keyword: str) -> InvalidInputError:
    return InvalidInputError(message, code=SDKErrorCode.INVALID_PARAMETER,
                             details={"keyword": keyword, "path": list(at)})

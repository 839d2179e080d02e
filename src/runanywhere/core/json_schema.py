"""JSON Schemas from callers, checked before anything uses them: JSON, bounded, local references only, valid.

A schema becomes a constraint and a validator. Neither may follow a remote ``$ref``
(nothing is ever fetched), choke on a missing one, or take minutes over a huge ``enum``;
so every schema is walked here first, in time bounded by :data:`MAX_SCHEMA_NODES`, its
references resolved inside it (:mod:`.schema_refs`), and it is checked against the
meta-schema of its own draft (:mod:`.schema_drafts`); anything else is an :class:`InvalidInputError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .errors import InvalidInputError, SDKErrorCode
from .schema_drafts import draft_of, validator_class
from .schema_refs import resolve_references
from .validation import shown

#: Values in one schema (every key, list item and ``enum`` entry counts); compile time grows with it.
MAX_SCHEMA_NODES = 50_000
#: How deeply a schema may nest, counting objects and lists (the validator recurses about once per level).
MAX_SCHEMA_DEPTH = 512


def checked_schema(name: str, schema: Any) -> dict[str, Any]:
    """A private copy of ``schema`` once it is a valid schema of its draft (``$schema``) that refers only to itself."""
    import jsonschema  # deferred: a slow import most programs never need

    if schema is True:
        return {}  # admits any value, as {} does
    if schema is False:
        raise _bad(f"{name} is the schema false, which admits no value at all: nothing could be generated",
                   keyword="false")
    if not isinstance(schema, Mapping):
        raise _bad(f"{name} must be a JSON schema (a dict or true), got {type(schema).__name__}")
    root = dict(schema)
    _walk(name, root)
    draft = draft_of(root)
    resolve_references(name, root, draft)
    try:
        validator_class(draft).check_schema(root)
    except RecursionError:
        raise _bad(f"{name} nests too deeply to check; flatten it", keyword="depth") from None
    except jsonschema.SchemaError as exc:
        raise _bad(f"{name} is an invalid JSON schema (draft {draft}): {exc.message}", path=list(exc.path),
                   keyword=str(exc.validator)) from exc
    return root


def _walk(name: str, schema: Any) -> None:
    """Raise on a non-JSON value or too big or deep a schema (bounded work, before anything recurses into it)."""
    pending: list[tuple[Any, int]] = [(schema, 0)]
    seen = 0
    while pending:
        node, depth = pending.pop()
        seen += 1
        if seen > MAX_SCHEMA_NODES:
            raise _bad(f"{name} has more than {MAX_SCHEMA_NODES} values (a huge enum?); the constraint for it "
                       "would take too long to build: shorten it", keyword="size")
        if depth > MAX_SCHEMA_DEPTH:
            raise _bad(f"{name} nests deeper than {MAX_SCHEMA_DEPTH} levels; flatten it", keyword="depth")
        if isinstance(node, Mapping):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise _bad(f"{name} has the key {shown(key)}; JSON object keys are str")
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


def _bad(message: str, **details: Any) -> InvalidInputError:
    """A refused schema (``details`` may name the ``keyword`` and ``path``)."""
    return InvalidInputError(message, code=SDKErrorCode.INVALID_PARAMETER, details=details or None)

"""JSON schemas and forced tool calls as llguidance grammars: what the engine enforces, leaves to validation, refuses.

llguidance compiles a JSON schema into a grammar whose token mask admits exactly the JSON the
schema allows, for the keywords it implements (types, properties, required, additionalProperties,
items/prefixItems, min/max lengths, counts and values, multipleOf, pattern, enum/const,
anyOf/allOf, local ``$ref``, and the formats date-time, date, time, email, hostname, ipv4, ipv6,
uri, uuid...). The few it does not (``uniqueItems``, ``not``, ``if``/``then``/``else``,
``contains``, ``dependentRequired``/``dependentSchemas``/``dependencies``, ``propertyNames``,
``unevaluated*``, ``oneOf``'s exclusivity, unknown formats) are left to the validation that
follows every structured generation: the mask admits a superset, and a reply breaking one of them
fails with a typed error naming the keyword. What cannot become a grammar at all (a ``pattern``
with look-around or back-references, an unsatisfiable schema, a grammar over the engine's limits)
is refused up front with an :class:`InvalidInputError` naming the keyword.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.errors import InvalidInputError, SDKErrorCode
from ..core.schema_drafts import draft_of
from ..core.schema_refs import MAPS as _NAMED
from ..core.schema_refs import REF_KEYS, Pointer, pointer_text, resolve_references, subschemas
from . import require_engine

#: How the JSON is laid out: one space after ``,`` and ``:``, no other whitespace (a small model given free
#: whitespace can write newlines until ``max_tokens``); ``oneOf`` is read as ``anyOf`` (exclusivity is
#: validated after); keywords the engine does not implement are listed as warnings, not errors.
JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": ",
                "coerce_one_of": True, "lenient": True}
#: Keywords the mask does not enforce; the output is validated against them after generation.
CHECKED_AFTER = frozenset({"uniqueItems", "not", "if", "then", "else", "contains", "minContains", "maxContains",
                           "dependentRequired", "dependentSchemas", "dependencies", "propertyNames",
                           "unevaluatedProperties", "unevaluatedItems", "contentSchema", "format", "oneOf"})
_UNIMPLEMENTED = re.compile(r"Unimplemented keys: (\[.*?\])")
_UNKNOWN_FORMAT = re.compile(r"Unknown format: (.+)")
_ONE_OF = re.compile(r"oneOf")
#: Keywords an engine message may be about, most specific first.
_KEYWORDS = ("exclusiveMinimum", "exclusiveMaximum", "minimum", "maximum", "multipleOf", "minLength", "maxLength",
             "minItems", "maxItems", "minProperties", "maxProperties", "additionalProperties", "patternProperties",
             "prefixItems", "required", "properties", "items", "allOf", "anyOf", "oneOf", "enum", "const",
             "format", "type")
#: The engine's resource limits (per compile and per token), so a hostile schema fails fast instead of hogging.
LIMITS = {"max_grammar_size": 500_000, "max_lexer_states": 250_000, "initial_lexer_fuel": 2_000_000,
          "step_lexer_fuel": 400_000, "step_max_items": 100_000}


#: Schema levels kept nested in the engine's copy; deeper ones move under ``$defs`` (the engine parses its
#: schema with a JSON nesting limit of 128).
HOIST_EVERY = 16
#: Keywords that say more about an object's keys (or combine it with others): such an object is not closed.
_OPEN_KEYS = frozenset({"additionalProperties", "patternProperties", "unevaluatedProperties", "propertyNames",
                        "dependencies", "dependentSchemas", "if", "allOf", *REF_KEYS})
_DROPPED = frozenset({"$recursiveAnchor", "$dynamicAnchor", "$anchor", "$id", "$schema", "x-guidance"})


def engine_schema(schema: Mapping[str, Any], *, closed: bool = True) -> dict[str, Any]:
    """``schema`` as llguidance reads it: references as pointers from the root, draft-7-and-older ``$ref``
    siblings dropped (they are ignored there), recursive/dynamic references made static, deep levels moved
    under ``$defs``, layout options set.

    ``closed``: an object with ``properties`` and no word on other keys (no ``additionalProperties``,
    ``patternProperties``...) is generated with those properties only, as llama.cpp's converter did: the
    output is still valid (a subset), and a small model does not wander into extra keys until ``max_tokens``.
    """
    root = dict(schema)
    draft = draft_of(root)
    refs = resolve_references("the JSON schema", root, draft)
    targets = {(ref.at, ref.keyword): ref.target for ref in refs}
    out = _Rewrite(draft, targets, _dynamic_anchor_counts(root), closed).run(root)
    out["x-guidance"] = JSON_OPTIONS
    return out


class _Rewrite:
    """One copy of a schema for the engine (recursion depth stays under :data:`HOIST_EVERY` levels)."""

    def __init__(self, draft: str, targets: dict[Any, Pointer], dynamic: dict[str, int], closed: bool) -> None:
        self.draft, self.targets, self.dynamic, self.closed = draft, targets, dynamic, closed
        self.refs: list[tuple[dict[str, Any], Pointer]] = []
        self.moved: dict[Pointer, Pointer] = {}
        self.hoisted: dict[str, Any] = {}

    def run(self, root: dict[str, Any]) -> dict[str, Any]:
        pending: list[tuple[Any, Pointer, dict[str, Any]]] = []
        out: dict[str, Any] = self.copy(root, (), 0, pending)
        while pending:  # levels cut off below HOIST_EVERY, each copied from a fresh depth
            node, at, slot = pending.pop()
            name = f"runanywhere-deep-{len(self.hoisted)}"
            self.moved[at] = ("$defs", name)
            self.hoisted[name] = self.copy(node, at, 0, pending)
            slot["$ref"] = pointer_text(("$defs", name))
        if self.hoisted:
            out["$defs"] = {**out.get("$defs", {}), **self.hoisted}
        for slot, target in self.refs:
            slot["$ref"] = pointer_text(self.relocated(target))
        return out

    def relocated(self, target: Pointer) -> Pointer:
        """Where ``target`` (a pointer into the caller's schema) is in the copy, following moved levels."""
        for cut in range(len(target), 0, -1):
            if target[:cut] in self.moved:
                return self.moved[target[:cut]] + target[cut:]
        return target

    def copy(self, node: Any, at: Pointer, level: int, pending: list[tuple[Any, Pointer, dict[str, Any]]]) -> Any:
        if not isinstance(node, Mapping):
            return node
        if level >= HOIST_EVERY:
            slot: dict[str, Any] = {}
            pending.append((node, at, slot))
            return slot
        out: dict[str, Any] = {}
        refs = [key for key in REF_KEYS if key in node]
        keep = set(node) if not (refs and self.draft in ("4", "6", "7")) else {*refs, "definitions", "$defs"}
        for key in refs:
            name = node[key].lstrip("#")
            if key == "$dynamicRef" and self.dynamic.get(name, 0) > 1:
                raise _refused(f"$dynamicRef {node[key]!r} resolves by dynamic scope (several $dynamicAnchor "
                               f"{name!r}); the engine follows static references only", "$dynamicRef")
            self.refs.append((out, self.targets[(at, key)]))
        children = {path[0] for path in dict(subschemas(node))}
        for key, value in node.items():
            if key not in keep or key in REF_KEYS or key in _DROPPED or (key == "id" and self.draft == "4"):
                continue
            if key not in children:
                out[key] = value
            elif isinstance(value, Mapping) and key in _NAMED:
                out[key] = {k: self.copy(v, (*at, key, k), level + 1, pending) for k, v in value.items()}
            elif isinstance(value, list):
                out[key] = [self.copy(v, (*at, key, str(i)), level + 1, pending) for i, v in enumerate(value)]
            else:
                out[key] = self.copy(value, (*at, key), level + 1, pending)
        if self.closed and _closable(node):
            out["additionalProperties"] = False
        return out


def _closable(node: Mapping[str, Any]) -> bool:
    """An object schema that names its properties and says nothing else about keys (all it requires named)."""
    properties, required = node.get("properties"), node.get("required", [])
    return (isinstance(properties, Mapping) and bool(properties) and not _OPEN_KEYS.intersection(node)
            and isinstance(required, list) and all(name in properties for name in required))


def _dynamic_anchor_counts(root: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    pending = [root]
    while pending:
        node = pending.pop()
        if isinstance(node, Mapping):
            name = node.get("$dynamicAnchor")
            if isinstance(name, str):
                counts[name] = counts.get(name, 0) + 1
            pending.extend(child for _, child in subschemas(node))
    return counts


def schema_grammar(schema: Mapping[str, Any], *, closed: bool = True) -> str:
    """The llguidance grammar of a checked schema (:func:`checked_grammar` says whether the engine takes it)."""
    llguidance = require_engine("llguidance", "llm")
    return str(llguidance.LLMatcher.grammar_from_json_schema(json.dumps(engine_schema(schema, closed=closed))))


def checked_grammar(grammar: str, tokenizer: Any = None) -> tuple[str, ...]:
    """The keywords ``grammar`` leaves to validation; an InvalidInputError when the engine refuses it."""
    llguidance = require_engine("llguidance", "llm")
    failed, messages = llguidance.LLMatcher.validate_grammar_with_warnings(
        grammar, tokenizer, limits=llguidance.LLParserLimits(**LIMITS))
    if failed:
        raise refusal(messages[0] if messages else "the engine refused the grammar")
    after: set[str] = set()
    for message in messages:
        if match := _UNIMPLEMENTED.search(message):
            keys = set(json.loads(match.group(1)))
            if not keys <= CHECKED_AFTER:
                raise _refused(f"the JSON schema uses {', '.join(sorted(keys - CHECKED_AFTER))}, which the "
                               "constraint engine cannot enforce", sorted(keys - CHECKED_AFTER)[0])
            after |= keys
        elif _UNKNOWN_FORMAT.search(message):
            after.add("format")
        elif _ONE_OF.search(message):
            after.add("oneOf")
    return tuple(sorted(after))


def refusal(message: str) -> InvalidInputError:
    """The typed error for an engine message, naming the keyword the message is about."""
    text = " ".join(message.split())
    if "regex" in text:
        keyword = "pattern"
    elif "Resource" in text or "$ref" in text:
        keyword = "$ref"
    elif re.search(r"too (large|complex|many)|limit", text, re.IGNORECASE):
        keyword = "size"
    else:
        keyword = next((kw for kw in _KEYWORDS if re.search(rf"\b{re.escape(kw)}\b", text)), "schema")
    return _refused(f"the constraint engine cannot use this JSON schema ({keyword}): {text[:400]}", keyword)


def _refused(message: str, keyword: str) -> InvalidInputError:
    return InvalidInputError(message, code=SDKErrorCode.INVALID_PARAMETER, details={"keyword": keyword})


def tool_call_lark(tools: Sequence[tuple[str, Mapping[str, Any]]], start: str, end: str,
                   special: Mapping[str, int], *, closed: bool = True) -> str:
    """A Lark grammar admitting one ``{"name": ..., "arguments": ...}`` call of one of ``tools`` in ``start``/``end``.

    Each tool's arguments are its own parameter schema, exactly (an inline ``%json``); a tag that is one
    special token of the model (``special``: tag text -> token id) may be written as that token or as text.
    """
    if not tools:
        raise InvalidInputError("a forced tool call needs at least one tool", code=SDKErrorCode.INVALID_PARAMETER)
    lines = []
    calls = []
    for index, (name, parameters) in enumerate(tools):
        head = _lark_literal('{"name": ' + json.dumps(name, ensure_ascii=False) + ', "arguments": ')
        lines.append(f"call_{index}: {head} args_{index} \"}}\"")
        lines.append(f"args_{index}: %json {json.dumps(engine_schema(parameters, closed=closed))}")
        calls.append(f"call_{index}")
    body = " | ".join(calls)
    if start:
        lines.insert(0, f"start: open WS? ({body}) WS? close")
        lines += [f"open: {_tag(start, special)}", f"close: {_tag(end, special)}", r"WS: /[ \t\n]{1,4}/"]
    else:
        lines.insert(0, f"start: {body}")
    return "\n".join(lines) + "\n"


def _tag(text: str, special: Mapping[str, int]) -> str:
    literal = _lark_literal(text)
    return f"{literal} | <[{special[text]}]>" if text in special else literal


def _lark_literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)

"""One small JSON schema per problem issue 17 names, with what a correct structured-output engine must do.

``expect`` is ``"accept"`` (the schema compiles; generated output validates under the declared
draft, enforced while decoding or checked afterwards) or ``"refuse:<keyword>"`` (a typed error
naming that keyword, up front, never a crash). ``valid``/``invalid`` hold example instances
(empty where none is meaningful); tests/test_schema_corpus.py checks them against each schema
with the declared draft's validator and its format checker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DRAFT4 = "http://json-schema.org/draft-04/schema#"
DRAFT6 = "http://json-schema.org/draft-06/schema#"
DRAFT7 = "http://json-schema.org/draft-07/schema#"
DRAFT2019 = "https://json-schema.org/draft/2019-09/schema"
DRAFT2020 = "https://json-schema.org/draft/2020-12/schema"

NESTING = 200
ENUM_SIZE = 20_000


@dataclass(frozen=True)
class KeywordCase:
    """A schema exercising one keyword or limit, the engine's required answer and example instances."""

    id: str
    schema: Any
    expect: str
    valid: tuple[Any, ...] = ()
    invalid: tuple[Any, ...] = ()

    @property
    def refused_keyword(self) -> str | None:
        """The keyword a refusal must name, or None when the schema must be accepted."""
        return self.expect.split(":", 1)[1] if self.expect.startswith("refuse:") else None


def nested(depth: int, leaf: Callable[[], Any], wrap: Callable[[Any], Any]) -> Any:
    """``wrap`` applied ``depth`` times around ``leaf()``, iteratively (no recursion at any depth)."""
    value = leaf()
    for _ in range(depth):
        value = wrap(value)
    return value


def deep_object_schema(depth: int) -> dict[str, Any]:
    """An object with one required property ``a``, nested ``depth`` levels, an integer at the bottom."""
    schema: dict[str, Any] = nested(depth, lambda: {"type": "integer"},
                                    lambda inner: {"type": "object", "properties": {"a": inner}, "required": ["a"],
                                                   "additionalProperties": False})
    return {"$schema": DRAFT2020, **schema}


def deep_instance(depth: int, leaf: Any) -> Any:
    """``{"a": {"a": ... leaf}}`` nested ``depth`` levels."""
    return nested(depth, lambda: leaf, lambda inner: {"a": inner})


def _string(**keywords: Any) -> dict[str, Any]:
    return {"$schema": DRAFT2020, "type": "string", **keywords}


def _format(name: str, valid: str, invalid: str) -> KeywordCase:
    return KeywordCase(f"format_{name.replace('-', '_')}", _string(format=name), "accept", (valid,), (invalid,))


_ENUM = [f"item-{i:05d}" for i in range(ENUM_SIZE)]
_POINT = {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}}, "required": ["x", "y"]}

CASES: tuple[KeywordCase, ...] = (
    # Strings: patterns are unanchored in JSON Schema; escapes are ECMA-262 regex escapes, not GBNF.
    KeywordCase("pattern_unanchored", _string(pattern="[0-9]{3}"), "accept", ("ab123", "123"), ("12a",)),
    KeywordCase("pattern_escape_digit", _string(pattern="^\\d{4}-\\d{2}$"), "accept", ("2024-05",), ("20x4-05",)),
    KeywordCase("pattern_escape_colon", _string(pattern="^[a-z]+\\:[0-9]+$"), "accept", ("port:80",), ("port80",)),
    KeywordCase("pattern_escape_word", _string(pattern="^\\w+$"), "accept", ("abc_1",), ("a b",)),
    KeywordCase("max_length_32767", _string(maxLength=32767), "accept", ("abc",), ("x" * 32768,)),
    # Annotation-only, empty and boolean subschemas.
    KeywordCase("description_only_subschema",
                {"$schema": DRAFT2020, "type": "object", "properties": {"note": {"description": "free text"}},
                 "required": ["note"]}, "accept", ({"note": 3}, {"note": "x"}), ({},)),
    KeywordCase("items_empty", {"$schema": DRAFT2020, "type": "array", "items": {}}, "accept",
                ([1, "a", None],), ({"a": 1},)),
    KeywordCase("true_false_subschemas",
                {"$schema": DRAFT2020, "type": "object", "properties": {"any": True, "never": False},
                 "required": ["any"]}, "accept", ({"any": [1]},), ({"any": 1, "never": 0},)),
    KeywordCase("items_false_after_prefix",
                {"$schema": DRAFT2020, "type": "array", "prefixItems": [{"type": "integer"}], "items": False},
                "accept", ([1], []), ([1, 2],)),
    KeywordCase("true_schema", True, "accept", ({"a": 1}, "x")),
    KeywordCase("false_schema", False, "refuse:false", (), ({},)),
    # References: to an $id, to an $anchor, draft-07 plain-name ids, definition names that are not identifiers.
    KeywordCase("ref_to_id",
                {"$schema": DRAFT2020, "type": "object", "properties": {"p": {"$ref": "https://example.com/point"}},
                 "required": ["p"], "$defs": {"point": {"$id": "https://example.com/point", **_POINT}}},
                "accept", ({"p": {"x": 1, "y": 2}},), ({"p": {"x": 1}},)),
    KeywordCase("ref_to_relative_id",
                {"$schema": DRAFT2020, "$id": "https://example.com/schemas/root.json", "type": "object",
                 "properties": {"p": {"$ref": "point.json"}}, "required": ["p"],
                 "$defs": {"point": {"$id": "point.json", **_POINT}}},
                "accept", ({"p": {"x": 1, "y": 2}},), ({"p": {"y": 2}},)),
    KeywordCase("ref_to_anchor",
                {"$schema": DRAFT2020, "type": "object", "properties": {"who": {"$ref": "#name"}}, "required": ["who"],
                 "$defs": {"n": {"$anchor": "name", "type": "string", "minLength": 1}}},
                "accept", ({"who": "Ada"},), ({"who": ""},)),
    KeywordCase("ref_to_plain_name_id_draft7",
                {"$schema": DRAFT7, "type": "object", "properties": {"n": {"$ref": "#item"}}, "required": ["n"],
                 "definitions": {"item": {"$id": "#item", "type": "integer"}}},
                "accept", ({"n": 3},), ({"n": "3"},)),
    KeywordCase("definition_names_with_dots",
                {"$schema": DRAFT4, "$ref": "#/definitions/io.k8s.api.core.v1.PodSpec",
                 "definitions": {"io.k8s.api.core.v1.PodSpec": {
                     "type": "object", "properties": {"image": {"type": "string"}}, "required": ["image"]}}},
                "accept", ({"image": "nginx"},), ({},)),
    KeywordCase("definition_names_with_pointer_escapes",
                {"$schema": DRAFT7, "type": "object",
                 "properties": {"a": {"$ref": "#/definitions/a~1b"}, "b": {"$ref": "#/definitions/c~0d"},
                                "c": {"$ref": "#/definitions/with%20space"}},
                 "required": ["a", "b", "c"],
                 "definitions": {"a/b": {"type": "integer"}, "c~d": {"type": "boolean"},
                                 "with space": {"type": "null"}}},
                "accept", ({"a": 1, "b": True, "c": None},), ({"a": 1, "b": 1, "c": None},)),
    KeywordCase("remote_ref",
                {"$schema": DRAFT2020, "type": "object",
                 "properties": {"a": {"$ref": "https://example.com/schemas/a.json"}}}, "refuse:$ref"),
    KeywordCase("remote_ref_relative_file",
                {"$schema": DRAFT7, "type": "object", "properties": {"a": {"$ref": "common.json#/definitions/a"}}},
                "refuse:$ref"),
    # Numbers.
    KeywordCase("minimum_maximum", {"$schema": DRAFT2020, "type": "integer", "minimum": 1, "maximum": 10},
                "accept", (1, 10), (11,)),
    KeywordCase("minimum_maximum_number", {"$schema": DRAFT2020, "type": "number", "minimum": -1.5, "maximum": 2.5},
                "accept", (-1.5, 0.25), (2.75,)),
    KeywordCase("exclusive_minimum_draft4_boolean",
                {"$schema": DRAFT4, "type": "number", "minimum": 0, "exclusiveMinimum": True}, "accept",
                (0.5,), (0,)),
    KeywordCase("exclusive_maximum_draft4_boolean",
                {"$schema": DRAFT4, "type": "integer", "maximum": 10, "exclusiveMaximum": True}, "accept",
                (9,), (10,)),
    KeywordCase("exclusive_minimum_draft6_numeric", {"$schema": DRAFT6, "type": "integer", "exclusiveMinimum": 0},
                "accept", (1,), (0,)),
    KeywordCase("exclusive_minimum_2020_numeric", {"$schema": DRAFT2020, "type": "number", "exclusiveMinimum": 0},
                "accept", (0.5,), (0,)),
    KeywordCase("multiple_of_integer", {"$schema": DRAFT2020, "type": "integer", "multipleOf": 5}, "accept",
                (15, 0), (7,)),
    KeywordCase("multiple_of_number", {"$schema": DRAFT2020, "type": "number", "multipleOf": 0.25}, "accept",
                (1.75,), (1.3,)),
    # Arrays.
    KeywordCase("unique_items", {"$schema": DRAFT2020, "type": "array", "items": {"type": "integer"},
                                 "uniqueItems": True}, "accept", ([1, 2],), ([1, 1],)),
    KeywordCase("tuple_items_additional_items_draft7",
                {"$schema": DRAFT7, "type": "array", "items": [{"type": "string"}, {"type": "integer"}],
                 "additionalItems": False}, "accept", (["a", 1], ["a"]), (["a", 1, 2], [1, "a"])),
    KeywordCase("tuple_items_additional_schema_draft4",
                {"$schema": DRAFT4, "type": "array", "items": [{"type": "string"}],
                 "additionalItems": {"type": "boolean"}}, "accept", (["a", True, False],), (["a", 1],)),
    KeywordCase("max_items_huge", {"$schema": DRAFT2020, "type": "array", "items": {"type": "integer"},
                                   "maxItems": 1_000_000}, "accept", ([1, 2],), (["x"],)),
    # Combinators.
    KeywordCase("one_of_exclusive",
                {"$schema": DRAFT2020, "oneOf": [{"type": "integer", "multipleOf": 3},
                                                 {"type": "integer", "multipleOf": 5}]},
                "accept", (9, 10), (15, 7)),
    KeywordCase("one_of_objects",
                {"$schema": DRAFT2020, "oneOf": [
                    {"type": "object", "properties": {"kind": {"const": "cat"}, "lives": {"type": "integer"}},
                     "required": ["kind", "lives"], "additionalProperties": False},
                    {"type": "object", "properties": {"kind": {"const": "dog"}, "good": {"type": "boolean"}},
                     "required": ["kind", "good"], "additionalProperties": False}]},
                "accept", ({"kind": "cat", "lives": 9},), ({"kind": "cat", "good": True},)),
    KeywordCase("all_of_non_object",
                {"$schema": DRAFT2020, "allOf": [{"type": "string"}, {"minLength": 2}, {"maxLength": 5}]},
                "accept", ("abc",), ("a", "abcdef")),
    KeywordCase("all_of_number_bounds",
                {"$schema": DRAFT2020, "allOf": [{"type": "integer"}, {"minimum": 0}, {"maximum": 100}]},
                "accept", (42,), (-1, 101)),
    # Objects.
    KeywordCase("pattern_properties",
                {"$schema": DRAFT2020, "type": "object", "patternProperties": {"^x-": {"type": "string"}},
                 "additionalProperties": False}, "accept", ({"x-a": "b"}, {}), ({"y": "b"}, {"x-a": 1})),
    KeywordCase("dependencies_property_draft7",
                {"$schema": DRAFT7, "type": "object",
                 "properties": {"card": {"type": "string"}, "billing": {"type": "string"}},
                 "dependencies": {"card": ["billing"]}},
                "accept", ({"card": "1", "billing": "x"}, {"billing": "x"}), ({"card": "1"},)),
    KeywordCase("dependencies_schema_draft4",
                {"$schema": DRAFT4, "type": "object", "properties": {"name": {"type": "string"}},
                 "dependencies": {"name": {"properties": {"age": {"type": "integer"}}, "required": ["age"]}}},
                "accept", ({"name": "a", "age": 3},), ({"name": "a"},)),
    KeywordCase("defs_and_anchor_2019_09",
                {"$schema": DRAFT2019, "type": "object", "properties": {"tag": {"$ref": "#/$defs/tag"}},
                 "required": ["tag"], "$defs": {"tag": {"type": "string", "enum": ["a", "b"]}}},
                "accept", ({"tag": "a"},), ({"tag": "c"},)),
    # Formats (enforced while decoding or validated afterwards, with a typed error).
    _format("date", "2024-02-29", "2024-02-30"),
    _format("time", "12:30:00Z", "25:00:00Z"),
    _format("date-time", "2024-02-29T12:30:00Z", "2024-02-29 12:30"),
    _format("email", "ada@example.com", "ada.example.com"),
    _format("uri", "https://example.com/a?b=c", "not a uri"),
    _format("uuid", "123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456"),
    _format("ipv4", "192.168.0.1", "256.1.1.1"),
    _format("ipv6", "2001:db8::1", "2001:db8:::1"),
    # Size limits: handled without exhausting the stack or memory.
    KeywordCase("nesting_200_levels", deep_object_schema(NESTING), "accept",
                (deep_instance(NESTING, 1),), (deep_instance(NESTING, "1"),)),
    KeywordCase("enum_20000_strings", {"$schema": DRAFT2020, "type": "string", "enum": _ENUM}, "accept",
                ("item-12345",), ("item-20000",)),
)
"""Every keyword case, ids unique."""


def case(case_id: str) -> KeywordCase:
    """The keyword case with this id."""
    for candidate in CASES:
        if candidate.id == case_id:
            return candidate
    raise KeyError(f"no keyword case {case_id!r}")

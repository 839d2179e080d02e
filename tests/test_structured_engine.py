"""Structured output on the llguidance constraint engine: every keyword case, a real-world sample, real models.

Each keyword case of tests/schemacases.py is its own test: an accepted schema compiles against
the real SmolLM2 tokenizer, its valid instances pass the engine's mask and the draft's validator,
and each invalid instance is stopped by one of them (the mask, or the validation after generation);
a refused schema raises an InvalidInputError naming the keyword. The real-world sample (seeded,
from JSONSchemaBench) must compile at >= 99 % (easy) and >= 95 % (medium), with no untyped error.
SmolLM2 and Qwen2.5-Coder then generate under the constraint: outputs validate under the declared draft.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runanywhere import (
    ContextLengthError,
    EventBus,
    InvalidInputError,
    SDKError,
    StructuredOutputGenerator,
    TextGenerator,
    ToolCaller,
    ToolCallFormat,
    ToolDefinition,
)
from runanywhere.backends.llguidance_schema import checked_grammar, schema_grammar
from runanywhere.core.json_schema import checked_schema
from runanywhere.core.schema_drafts import validator_for

from . import schemacases, schemacorpus
from .schemacases import DRAFT4, DRAFT7, DRAFT2019, DRAFT2020, KeywordCase, deep_object_schema

GREEDY: dict[str, Any] = {"temperature": 0.0}


@pytest.fixture(scope="module")
def smol(smollm2: Path) -> Iterator[TextGenerator]:
    generator = TextGenerator(events=EventBus())
    generator.load_model(smollm2, n_ctx=2048)
    yield generator
    generator.unload()


def admitted(generator: TextGenerator, schema: Any, value: Any) -> bool:
    """Whether the engine's mask lets the model write ``value`` (laid out as the engine writes JSON) whole."""
    import llguidance

    tokenizer = generator.engine.constraints.tokenizer
    matcher = llguidance.LLMatcher(tokenizer, schema_grammar(checked_schema("schema", schema)), log_level=0)
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    return bool(matcher.consume_tokens(tokenizer.tokenize_str(text))) and bool(matcher.is_accepting())


@pytest.mark.parametrize("case", schemacases.CASES, ids=[c.id for c in schemacases.CASES])
def test_keyword_case(smol: TextGenerator, case: KeywordCase) -> None:
    keyword = case.keyword
    if case.allowed == {"refused"}:
        with pytest.raises(InvalidInputError) as refused:
            smol.engine.compile_grammar(json_schema=case.schema)
        assert (refused.value.details or {}).get("keyword") == keyword and keyword in refused.value.message
        return
    # "accept", and "accept-or-refuse" too: the SDK's limits (512 levels, 50,000 values) are above the cases'
    constraint = smol.engine.compile_grammar(json_schema=case.schema)
    schema = checked_schema("schema", case.schema)
    for value in case.valid:
        assert admitted(smol, schema, value), value
        assert not list(validator_for(schema).iter_errors(value)), value
    for value in case.invalid:
        if admitted(smol, schema, value):  # the mask lets it through: the validation after must catch it,
            errors = list(validator_for(schema).iter_errors(value))  # on a keyword the mask leaves to it
            broken = {str(part) for e in errors for part in (e.validator, *e.schema_path)}
            assert broken & {*constraint.checked_after, "format"}, (value, constraint.checked_after, broken)


@pytest.mark.parametrize("split, floor", [("github_easy", 0.99), ("github_medium", 0.95)])
def test_the_real_world_sample_compiles(smol: TextGenerator, split: str, floor: float) -> None:
    cases = schemacorpus.load(split)
    accepted, refused, untyped = 0, [], []
    for case in cases:
        try:
            smol.engine.compile_grammar(json_schema=case.schema)
            accepted += 1
        except SDKError as exc:
            refused.append((case.id, exc.message[:120]))
        except Exception as exc:  # the test is that there are none
            untyped.append((case.id, repr(exc)[:200]))
    assert untyped == []
    assert accepted / len(cases) >= floor, refused


def test_a_refused_schema_names_its_keyword() -> None:
    for schema, keyword in (({"type": "string", "pattern": "^(?=a)b$"}, "pattern"),
                            ({"type": "integer", "minimum": 5, "maximum": 1}, "minimum"),
                            ({"$ref": "https://example.com/a.json"}, "$ref"),
                            ({"$schema": "http://json-schema.org/draft-03/schema#"}, "$schema"),
                            (False, "false"),
                            (deep_object_schema(300), "depth"),  # 600 levels of objects and maps: over 512
                            ({"enum": list(range(60_000))}, "size"),
                            ({"$defs": {"a": {"$dynamicAnchor": "n"}, "b": {"$dynamicAnchor": "n"}},
                              "$dynamicRef": "#n"}, "$dynamicRef")):
        with pytest.raises(InvalidInputError) as refused:
            checked_grammar(schema_grammar(checked_schema("schema", schema)))  # no model needed to refuse
        assert (refused.value.details or {}).get("keyword") == keyword, refused.value


# -------------------------------------------------------------------------------- real models generating
PERSON = {"$schema": DRAFT2020, "type": "object", "properties": {
    "name": {"type": "string", "maxLength": 24}, "age": {"type": "integer", "minimum": 0, "maximum": 130},
    "email": {"type": "string", "format": "email"}}, "required": ["name", "age", "email"],
    "additionalProperties": False}
EVENT_DRAFT4 = {"$schema": DRAFT4, "type": "object", "properties": {
    "title": {"type": "string", "maxLength": 30}, "day": {"$ref": "#/definitions/day.of.week"},
    "attendees": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 50}},
    "required": ["title", "day", "attendees"], "additionalProperties": False,
    "definitions": {"day.of.week": {"enum": ["monday", "tuesday", "wednesday", "thursday", "friday"]}}}
POINTS_DRAFT7 = {"$schema": DRAFT7, "type": "object", "properties": {
    "pair": {"type": "array", "items": [{"type": "integer"}, {"type": "string", "maxLength": 8}],
             "additionalItems": False, "minItems": 2}, "when": {"type": "string", "format": "date"}},
    "required": ["pair", "when"], "additionalProperties": False}
TAGS_2019 = {"$schema": DRAFT2019, "type": "object", "properties": {
    "tags": {"type": "array", "items": {"$ref": "#tag"}, "minItems": 1, "maxItems": 3},
    "id": {"type": "string", "format": "uuid"}}, "required": ["tags", "id"], "additionalProperties": False,
    "$defs": {"t": {"$anchor": "tag", "type": "string", "pattern": "^[a-z]{2,8}$"}}}
SCHEMAS = {"person_2020_12": PERSON, "event_draft4": EVENT_DRAFT4, "points_draft7": POINTS_DRAFT7,
           "tags_2019_09": TAGS_2019}
PROMPTS = {"person_2020_12": "Describe Ada, a 36 year old engineer, as JSON.",
           "event_draft4": "A team meeting on Tuesday with 6 people, as JSON.",
           "points_draft7": "Give a number and a short word, and today's date, as JSON.",
           "tags_2019_09": "Tag an article about cooking pasta, as JSON."}


def structured_outputs_validate(generator: TextGenerator, name: str) -> None:
    schema = SCHEMAS[name]
    result = StructuredOutputGenerator(generator).generate(PROMPTS[name], schema, max_tokens=160, **GREEDY)
    assert result.generation.finish_reason == "stop", result.text
    assert not list(validator_for(schema).iter_errors(result.value)), result.text
    assert result.text == json.dumps(result.value, ensure_ascii=False, separators=(", ", ": ")), result.text


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_smollm2_output_validates_under_the_declared_draft(smol: TextGenerator, name: str) -> None:
    structured_outputs_validate(smol, name)



@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_qwen_output_validates_under_the_declared_draft(qwen: TextGenerator, name: str) -> None:
    structured_outputs_validate(qwen, name)


def test_batched_generations_follow_their_own_schemas(smollm2: Path) -> None:
    generator = TextGenerator(events=EventBus())
    generator.load_model(smollm2, n_ctx=2048, max_sequences=4)
    try:
        structured = StructuredOutputGenerator(generator)

        async def all_at_once() -> list[Any]:
            return await asyncio.gather(*(structured.agenerate(PROMPTS[name], SCHEMAS[name], max_tokens=160, **GREEDY)
                                          for name in sorted(SCHEMAS)))

        for name, result in zip(sorted(SCHEMAS), asyncio.run(all_at_once()), strict=True):
            assert result.generation.finish_reason == "stop", result.text
            assert not list(validator_for(SCHEMAS[name]).iter_errors(result.value)), result.text
    finally:
        generator.unload()


def test_a_huge_max_length_generates_without_crashing(smol: TextGenerator) -> None:
    schema = {"type": "object", "properties": {"text": {"type": "string", "maxLength": 32767}},
              "required": ["text"], "additionalProperties": False}
    result = StructuredOutputGenerator(smol).generate("Write one word.", schema, max_tokens=64, **GREEDY)
    assert isinstance(result.value["text"], str) and len(result.value["text"]) <= 32767


def test_a_schema_longer_than_the_context_says_so_and_works_unshown(smol: TextGenerator) -> None:
    properties = {f"field_{i}": {"type": "integer", "description": "a number " * 8} for i in range(60)}
    schema = {"type": "object", "properties": {**properties, "answer": {"type": "boolean"}}, "required": ["answer"],
              "additionalProperties": False}
    structured = StructuredOutputGenerator(smol)
    with pytest.raises(ContextLengthError, match="include_schema=False"):
        structured.generate("Is the sky blue?", schema, max_tokens=40, **GREEDY)
    small = {"type": "object", "properties": {"answer": {"type": "boolean"}}, "required": ["answer"],
             "additionalProperties": False}
    assert structured.generate("Is the sky blue?", small, include_schema=False, max_tokens=20, **GREEDY).value in (
        {"answer": True}, {"answer": False})


# -------------------------------------------------------------------------------- forced tool calls
ADD = ToolDefinition("add", "Add two integers.", {
    "$schema": DRAFT7, "type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"], "additionalProperties": False})
WEATHER = ToolDefinition("get_weather", "Current weather for a city.", {
    "type": "object", "properties": {"city": {"type": "string", "maxLength": 40},
                                     "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"], "additionalProperties": False})


@pytest.mark.parametrize("fmt", [ToolCallFormat.HERMES, ToolCallFormat.JSON])
def test_a_forced_call_follows_its_tools_schema_exactly(smol: TextGenerator, fmt: ToolCallFormat) -> None:
    caller = ToolCaller(smol)
    for tool in (ADD, WEATHER):
        caller.register_tool(tool, lambda arguments: arguments)
    for question in ("What is 2 plus 3?", "Weather in Paris?"):
        result = caller.generate_with_tools(question, tool_choice="required", format=fmt, auto_execute=False,
                                            max_tokens=80, **GREEDY)
        (call,) = result.tool_calls
        tool = {"add": ADD, "get_weather": WEATHER}[call.name]
        assert not list(validator_for(tool.parameters).iter_errors(call.arguments)), call


def test_qwen_writes_a_forced_call_with_its_own_tag_tokens(qwen: TextGenerator) -> None:
    caller = ToolCaller(qwen)
    caller.register_tool(WEATHER, lambda arguments: arguments)
    result = caller.generate_with_tools("Weather for Lyon, please.", tool_choice="required", auto_execute=False,
                                        max_tokens=60, **GREEDY)
    assert result.generations[0].text.startswith("<tool_call>")
    (call,) = result.tool_calls
    assert call.name == "get_weather" and call.arguments["city"] == "Lyon" and call.arguments["unit"] in (
        "celsius", "fahrenheit")

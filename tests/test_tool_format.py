"""Tool calling without a model: definitions, prompts, safe parsing of calls, and a grammar that forces a call.

Each test is written as a usage example: define tools, show what a model replied, and check what the SDK makes
of it. The grammar tests at the end run the constraint engine (llguidance) on real llama.cpp, with a tiny
random model and with SmolLM2-135M.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runanywhere import EventBus, GenerationOptions, GenerationRequest, TextGenerator
from runanywhere.backends.base import ToolCallGrammar
from runanywhere.backends.llguidance_schema import tool_call_lark
from runanywhere.core.errors import InvalidInputError
from runanywhere.features.tools import (
    ToolCall,
    ToolCallFormat,
    ToolDefinition,
    ToolResult,
    parse_tool_calls,
    render_tool_prompt,
    tool_call_grammar,
    validate_arguments,
)

WEATHER = ToolDefinition(
    name="get_weather",
    description="Get the current weather for a city.",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name, e.g. London"},
            "unit": {"enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
)
ADD = ToolDefinition(
    name="add",
    description="Add two integers.",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
)
TOOLS = [WEATHER, ADD]
KNOWN = [tool.name for tool in TOOLS]


def as_pairs(calls: list[ToolCall]) -> list[tuple[str, dict[str, Any]]]:
    return [(call.name, call.arguments) for call in calls]


# --------------------------------------------------------------------------------------------------- definitions
def test_a_tool_definition_is_an_openai_tool() -> None:
    assert WEATHER.to_openai() == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city.",
            "parameters": WEATHER.parameters,
        },
    }
    assert ToolDefinition.from_openai(WEATHER.to_openai()) == WEATHER
    assert WEATHER.required == ["city"]


def test_a_definition_keeps_its_own_copy_of_the_schema() -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"q": {"type": "string"}}}
    tool = ToolDefinition("search", "Search the web.", schema)
    schema["properties"]["q"]["type"] = "integer"
    assert tool.parameters["properties"]["q"]["type"] == "string"


def test_a_tool_without_parameters_takes_none() -> None:
    now = ToolDefinition("get_time", "The current time.")
    assert now.parameters == {"type": "object", "properties": {}}
    assert validate_arguments(now, {}) == []


@pytest.mark.parametrize(
    "parameters",
    [
        {"type": "object", "properties": {"city": {"type": "strin"}}},  # not a JSON Schema type
        {"type": "object", "required": "city"},  # "required" must be a list
        {"type": "string"},  # arguments are always an object
        {"properties": {"city": {"type": "string"}}},  # "type": "object" is missing
        ["city"],  # not a schema at all
    ],
)
def test_an_invalid_parameters_schema_is_refused(parameters: Any) -> None:
    with pytest.raises(InvalidInputError, match="get_weather"):
        ToolDefinition("get_weather", "Weather.", parameters)


@pytest.mark.parametrize("name", ["", "1st", "get weather", "rm -rf", "a" * 65, "get_weather\n", "f(x)"])
def test_a_tool_name_must_be_identifier_like(name: str) -> None:
    with pytest.raises(InvalidInputError):
        ToolDefinition(name, "A tool.")


def test_validate_arguments_explains_what_is_wrong() -> None:
    assert validate_arguments(WEATHER, {"city": "Paris"}) == []
    assert validate_arguments(WEATHER, {"unit": "celsius"}) == ["'city' is a required property"]
    problems = validate_arguments(ADD, {"a": "one", "b": 2})
    assert len(problems) == 1 and problems[0].startswith("a: 'one' is not of type 'integer'")


def test_a_tool_result_becomes_a_tool_message() -> None:
    call = ToolCall("get_weather", {"city": "Paris"})
    done = ToolResult(call.id, call.name, result={"temperature_c": 21, "sky": "clear"})
    assert done.ok
    assert done.to_message() == {
        "role": "tool",
        "name": "get_weather",
        "tool_call_id": call.id,
        "content": '{"temperature_c": 21, "sky": "clear"}',
    }
    failed = ToolResult(call.id, call.name, error="city not found: Atlantis")
    assert not failed.ok
    assert json.loads(failed.to_message()["content"]) == {"error": "city not found: Atlantis"}


def test_generated_call_ids_never_repeat() -> None:
    first, _ = parse_tool_calls('<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>')
    second, _ = parse_tool_calls('<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>')
    assert first[0].id.startswith("call_") and first[0].id != second[0].id
    assert first[0].to_openai() == {
        "id": first[0].id,
        "type": "function",
        "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'},
    }


# --------------------------------------------------------------------------------------------------------- Hermes
def test_hermes_call_and_the_text_around_it() -> None:
    reply = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    calls, text = parse_tool_calls(reply, ToolCallFormat.HERMES)
    assert as_pairs(calls) == [("get_weather", {"city": "Paris"})]
    assert text == "Let me check."


def test_several_calls_in_one_reply_come_back_in_order() -> None:
    reply = (
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>\n'
        '<tool_call>{"name": "add", "arguments": {"a": 2, "b": 3}}</tool_call>\n'
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}</tool_call>'
    )
    calls, text = parse_tool_calls(reply, "hermes")
    assert as_pairs(calls) == [
        ("get_weather", {"city": "Paris"}),
        ("add", {"a": 2, "b": 3}),
        ("get_weather", {"city": "Oslo", "unit": "celsius"}),
    ]
    assert text == ""
    assert len({call.id for call in calls}) == 3


def test_arguments_written_as_a_json_string_are_decoded() -> None:
    reply = '<tool_call>{"name": "add", "arguments": "{\\"a\\": 2, \\"b\\": 3}"}</tool_call>'
    calls, _ = parse_tool_calls(reply)
    assert as_pairs(calls) == [("add", {"a": 2, "b": 3})]


def test_parameters_is_a_synonym_of_arguments() -> None:
    calls, _ = parse_tool_calls('<tool_call>{"name": "get_weather", "parameters": {"city": "Rome"}}</tool_call>')
    assert as_pairs(calls) == [("get_weather", {"city": "Rome"})]


def test_a_call_cut_before_its_closing_tag_still_counts() -> None:
    calls, text = parse_tool_calls('Sure! <tool_call> {"name": "get_weather", "arguments": {"city": "Lima"}}')
    assert as_pairs(calls) == [("get_weather", {"city": "Lima"})]
    assert text == "Sure!"


def test_a_close_tag_written_inside_an_argument_does_not_end_the_call() -> None:
    # What SmolLM2 wrote under the forced-call grammar, whose strings admit any character.
    reply = ('<tool_call>{"name": "calculator", "arguments": {"expression": "17 * 23}}</tool_call>\n\nThe '
             'calculator is not" }}\n</tool_call> Done. <tool_call>{"name": "add", "arguments": {}}</tool_call>')
    calls, text = parse_tool_calls(reply, ToolCallFormat.HERMES, known=["calculator", "add"])
    assert as_pairs(calls) == [("calculator", {"expression": "17 * 23}}</tool_call>\n\nThe calculator is not"}),
                               ("add", {})]
    assert text == "Done."


def test_a_fenced_call_inside_the_tags() -> None:
    reply = '<tool_call>\n```json\n{"name": "add", "arguments": {"a": 1, "b": 1}}\n```\n</tool_call>'
    assert as_pairs(parse_tool_calls(reply)[0]) == [("add", {"a": 1, "b": 1})]


@pytest.mark.parametrize(
    "reply",
    [
        "<tool_call>{'name': 'get_weather', 'arguments': {'city': 'Paris'}}</tool_call>",  # single quotes: not JSON
        '<tool_call>{name: "get_weather", arguments: {city: "Paris"}}</tool_call>',  # unquoted keys
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}</tool_call>',  # unbalanced
        '<tool_call>{"name": "get_weather", "arguments": ["Paris"]}</tool_call>',  # arguments not an object
        '<tool_call>{"name": "get_weather", "arguments": "city=Paris"}</tool_call>',  # string that is not JSON
        '<tool_call>{"name": "get weather", "arguments": {}}</tool_call>',  # not a tool name
        '<tool_call>{"name": "add", "arguments": {"a": NaN, "b": 1}}</tool_call>',  # NaN is not JSON
        "<tool_call></tool_call>",
    ],
)
def test_malformed_hermes_calls_stay_in_the_text(reply: str) -> None:
    assert parse_tool_calls(reply) == ([], reply)


# ----------------------------------------------------------------------------------------------------------- LFM2
def test_lfm2_pythonic_calls() -> None:
    reply = (
        'Checking both.<|tool_call_start|>[get_weather(city="Paris", unit="celsius"), add(a=1, b=-2)]<|tool_call_end|>'
    )
    calls, text = parse_tool_calls(reply, ToolCallFormat.LFM2)
    assert as_pairs(calls) == [("get_weather", {"city": "Paris", "unit": "celsius"}), ("add", {"a": 1, "b": -2})]
    assert text == "Checking both."


def test_lfm2_literal_values_become_json_values() -> None:
    reply = (
        "<|tool_call_start|>[plot(points=[(0, 1), (2, 3.5)], style={'color': 'red'}, grid=True, title=None,"
        " legend=false, note=null)]<|tool_call_end|>"
    )
    calls, _ = parse_tool_calls(reply, "lfm2")
    assert as_pairs(calls) == [
        (
            "plot",
            {
                "points": [[0, 1], [2, 3.5]],
                "style": {"color": "red"},
                "grid": True,
                "title": None,
                "legend": False,
                "note": None,
            },
        )
    ]


def hostile_replies(marker: Path) -> list[str]:
    """Pythonic "calls" that would run code if anything evaluated them; each would create ``marker``."""
    path = str(marker)
    return [
        f"[f(a=__import__('os').system('touch {path}'))]",
        f"[f(a=open({path!r}, 'w'))]",
        f"[f(a=[open({path!r}, 'w')])]",
        f"[f(a={{'k': open({path!r}, 'w')}})]",
        f"[f(a=(lambda: open({path!r}, 'w'))())]",
        f"[open({path!r}, 'w')]",
        f"[f(open({path!r}, 'w'))]",
        f"[os.system('touch {path}')]",
        f"[__import__('os').system('touch {path}')]",
        f"[f(**{{'a': open({path!r}, 'w')}})]",
        f"[f(a=exec(\"open({path!r}, 'w')\"))]",
        f"[f(a=[x for x in open({path!r}, 'w')])]",
    ]


def test_hostile_pythonic_calls_are_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for body in hostile_replies(marker):
        reply = f"<|tool_call_start|>{body}<|tool_call_end|>"
        for fmt in ToolCallFormat:
            calls, text = parse_tool_calls(reply, fmt)
            assert calls == [], body
            assert text == reply
    assert not marker.exists()


@pytest.mark.parametrize(
    "body",
    [
        "[f(1)]",  # positional argument
        "[f(a=b)]",  # a name that is not a literal
        "[os.system('x')]",  # attribute access
        "[f(a=x.y)]",  # attribute in a value
        "[f(a=g())]",  # a call inside an argument
        "[f(a=1+1)]",  # arithmetic
        "[f(a={1, 2})]",  # a set has no JSON form
        "[f(a=b'bytes')]",  # nor do bytes
        "[f(a=1e999)]",  # nor infinity
        "[f(a=1, a=2)]",  # repeated keyword
        "[f(**kwargs)]",
        "[1, 2]",  # not calls at all
        "f(a=",  # not Python
        "[f(a=1)] + [g(b=2)]",
    ],
)
def test_pythonic_calls_accept_only_keyword_literals(body: str) -> None:
    reply = f"<|tool_call_start|>{body}<|tool_call_end|>"
    assert parse_tool_calls(reply, ToolCallFormat.LFM2) == ([], reply)


def test_a_bad_pythonic_call_is_skipped_and_the_good_one_kept() -> None:
    reply = '<|tool_call_start|>[get_weather(city="Paris"), f(a=open("x"))]<|tool_call_end|>'
    calls, text = parse_tool_calls(reply, ToolCallFormat.LFM2)
    assert as_pairs(calls) == [("get_weather", {"city": "Paris"})]
    assert text == '<|tool_call_start|>[f(a=open("x"))]<|tool_call_end|>'


# ----------------------------------------------------------------------------------------------------------- JSON
def test_a_bare_json_call_in_a_code_fence() -> None:
    reply = 'I will add them.\n```json\n{"name": "add", "arguments": {"a": 40, "b": 2}}\n```'
    calls, text = parse_tool_calls(reply, ToolCallFormat.JSON)
    assert as_pairs(calls) == [("add", {"a": 40, "b": 2})]
    assert text == "I will add them."


def test_openai_style_tool_calls_keep_their_ids() -> None:
    reply = json.dumps(
        {
            "tool_calls": [
                {"id": "call_abc", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}},
                {
                    "id": "call_def",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Oslo"}},
                },
            ]
        }
    )
    calls, text = parse_tool_calls(reply, ToolCallFormat.JSON)
    assert [(call.id, call.name, call.arguments) for call in calls] == [
        ("call_abc", "add", {"a": 1, "b": 2}),
        ("call_def", "get_weather", {"city": "Oslo"}),
    ]
    assert text == ""


def test_a_json_list_of_calls() -> None:
    reply = '[{"name": "add", "arguments": {"a": 1, "b": 2}}, {"name": "get_weather", "parameters": {"city": "Bern"}}]'
    calls, _ = parse_tool_calls(reply, ToolCallFormat.JSON)
    assert as_pairs(calls) == [("add", {"a": 1, "b": 2}), ("get_weather", {"city": "Bern"})]


@pytest.mark.parametrize(
    "reply",
    [
        'Here is the user: {"name": "Bob", "age": 42}.',  # JSON, but a record, not a call
        'Config: {"name": "add"}',  # no arguments: not a call in bare JSON
        "Use {'name': 'add', 'arguments': {}} to add.",  # single quotes are not JSON
        "Sets look like {1, 2} and lists like [1, 2].",
    ],
)
def test_json_that_is_not_a_call_is_left_alone(reply: str) -> None:
    assert parse_tool_calls(reply, ToolCallFormat.JSON) == ([], reply)
    assert parse_tool_calls(reply) == ([], reply)


# ----------------------------------------------------------------------------------------------- AUTO and known
def test_auto_reads_every_format_in_reply_order() -> None:
    reply = (
        'First <|tool_call_start|>[add(a=1, b=2)]<|tool_call_end|> then <tool_call>{"name": "get_weather", '
        '"arguments": {"city": "Paris"}}</tool_call> and {"name": "add", "arguments": {"a": 3, "b": 4}}'
    )
    calls, text = parse_tool_calls(reply)
    assert as_pairs(calls) == [("add", {"a": 1, "b": 2}), ("get_weather", {"city": "Paris"}), ("add", {"a": 3, "b": 4})]
    assert text == "First  then  and"
    assert [int(call.id.removeprefix("call_")) for call in calls] == sorted(
        int(call.id.removeprefix("call_")) for call in calls
    )


@pytest.mark.parametrize(
    ("fmt", "unknown", "good"),
    [
        (
            ToolCallFormat.HERMES,
            '<tool_call>{"name": "delete_files", "arguments": {"path": "/"}}</tool_call>',
            '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}</tool_call>',
        ),
        (
            ToolCallFormat.LFM2,
            '<|tool_call_start|>[delete_files(path="/")]<|tool_call_end|>',
            "<|tool_call_start|>[add(a=1, b=2)]<|tool_call_end|>",
        ),
        (
            ToolCallFormat.JSON,
            '{"name": "delete_files", "arguments": {"path": "/"}}',
            '{"name": "add", "arguments": {"a": 1, "b": 2}}',
        ),
    ],
)
def test_calls_to_unknown_tools_are_dropped(fmt: ToolCallFormat, unknown: str, good: str) -> None:
    calls, text = parse_tool_calls(f"{unknown}\n{good}", fmt, known=KNOWN)
    assert as_pairs(calls) == [("add", {"a": 1, "b": 2})]
    assert text == unknown


def test_unknown_calls_in_one_block_are_kept_with_their_markup() -> None:
    reply = '<|tool_call_start|>[add(a=1, b=2), delete_files(path="/")]<|tool_call_end|>'
    calls, text = parse_tool_calls(reply, known=KNOWN)
    assert as_pairs(calls) == [("add", {"a": 1, "b": 2})]
    assert text == '<|tool_call_start|>[delete_files(path="/")]<|tool_call_end|>'


def test_a_stray_open_tag_does_not_hide_later_calls() -> None:
    reply = "<tool_call> hmm, let me think. <|tool_call_start|>[add(a=1, b=2)]<|tool_call_end|>"
    calls, text = parse_tool_calls(reply, known="add")
    assert as_pairs(calls) == [("add", {"a": 1, "b": 2})]
    assert text == "<tool_call> hmm, let me think."


def test_a_reply_without_calls_is_returned_as_is() -> None:
    assert parse_tool_calls("  The capital of France is Paris.\n") == ([], "The capital of France is Paris.")
    assert parse_tool_calls("") == ([], "")


def test_an_unknown_format_is_an_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="hermes"):
        parse_tool_calls("hi", "xml")


def test_random_garbage_never_breaks_the_parser() -> None:
    pieces = [
        "<tool_call>",
        "</tool_call>",
        "<|tool_call_start|>",
        "<|tool_call_end|>",
        "{",
        "}",
        "[",
        "]",
        "(",
        ")",
        '"name"',
        '"arguments"',
        '"add"',
        ":",
        ",",
        "add",
        "a=",
        "1",
        "'x'",
        "```json",
        "```",
        "\n",
        " ",
        "\\",
        '"',
        "open(",
        "__import__",
        "tool_calls",
        "null",
        "NaN",
    ]
    rng = random.Random(7)
    for _ in range(2000):
        reply = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
        calls, _ = parse_tool_calls(reply)
        for call in calls:
            assert isinstance(call.arguments, dict)
            json.dumps(call.arguments, allow_nan=False)


def test_huge_nested_replies_are_parsed_safely() -> None:
    for reply in ["[" * 100_000, "<|tool_call_start|>" + "(" * 100_000, '{"' * 50_000, "<tool_call>" * 10_000]:
        assert parse_tool_calls(reply)[0] == []


# ---------------------------------------------------------------------------------------------------- prompting
@pytest.mark.parametrize(
    ("fmt", "example"),
    [
        (ToolCallFormat.HERMES, '<tool_call>{"name": "get_weather", "arguments": {"city": "..."}}</tool_call>'),
        (ToolCallFormat.LFM2, '<|tool_call_start|>[get_weather(city="...")]<|tool_call_end|>'),
        (ToolCallFormat.JSON, '{"name": "get_weather", "arguments": {"city": "..."}}'),
    ],
)
def test_the_tool_prompt_lists_each_tool_and_the_call_syntax(fmt: ToolCallFormat, example: str) -> None:
    prompt = render_tool_prompt(TOOLS, fmt)
    assert 'get_weather(city: string, unit?: "celsius" | "fahrenheit"): Get the current weather' in prompt
    assert "add(a: integer, b: integer): Add two integers." in prompt
    assert "City name, e.g. London" in prompt
    assert example in prompt
    # The example in the prompt is itself a call the parser understands.
    assert [call.name for call in parse_tool_calls(prompt, fmt)[0]] == ["get_weather"]
    assert len(prompt) < 800  # small models follow short instructions


def test_no_tools_no_prompt() -> None:
    assert render_tool_prompt([], ToolCallFormat.HERMES) == ""


# ------------------------------------------------------------------------------------------------------ grammar
@pytest.fixture(scope="module")
def tiny(tiny_llm: Path) -> Iterator[TextGenerator]:
    generator = TextGenerator(events=EventBus())
    generator.load_model(tiny_llm, n_ctx=1024)
    yield generator
    generator.unload()


def test_the_tool_call_grammar_compiles_for_the_model(tiny: TextGenerator) -> None:
    deep = ToolDefinition(
        "create_event",
        "Create a calendar event.",
        {
            "type": "object",
            "properties": {
                "title": {"type": "string", "minLength": 1, "maxLength": 40},
                "when": {"type": "string", "format": "date"},
                "attendees": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
                "reminder": {"type": "object", "properties": {"minutes": {"type": "integer"}}},
                "priority": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
            },
            "required": ["title", "when"],
        },
    )
    for tools in ([WEATHER], TOOLS, [*TOOLS, deep], [ToolDefinition("get_time", "Now.")]):
        spec = tool_call_grammar(tools)
        assert (spec.start, spec.end) == ("<tool_call>", "</tool_call>")
        assert [name for name, _ in spec.tools] == [tool.name for tool in tools]
        assert tiny.engine.compile_grammar(tool_call=spec) is not None
        assert tiny.engine.compile_grammar(tool_call=tool_call_grammar(tools, ToolCallFormat.JSON)) is not None
    lookahead = ToolDefinition("f", "", {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=x)"}}})
    with pytest.raises(InvalidInputError, match="pattern"):  # the check itself can fail
        tiny.engine.compile_grammar(tool_call=tool_call_grammar([lookahead]))


def test_the_grammar_is_for_json_calls_only() -> None:
    with pytest.raises(InvalidInputError, match="LFM2"):
        tool_call_grammar(TOOLS, ToolCallFormat.LFM2)
    with pytest.raises(InvalidInputError):
        tool_call_grammar([])


def constrained(generator: TextGenerator, prompt: str, spec: ToolCallGrammar, **options: Any) -> str:
    result = generator.start(GenerationRequest(prompt, GenerationOptions(max_tokens=200, raw=True, **options),
                                               grammar=spec)).wait()
    assert result.finish_reason == "stop"  # the grammar ended the reply, not max_tokens
    return result.text


def test_a_random_model_under_the_grammar_always_writes_a_valid_call(tiny: TextGenerator) -> None:
    # A random model writes strings until it happens to close them; bounded strings keep the test short.
    city = ToolDefinition(
        "get_weather",
        "Weather.",
        {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 12}, "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    )
    # Integers too, and no extra properties (JSON Schema allows any unless told not to, and a random model's
    # extra keys and digits never end).
    small = {"type": "integer", "minimum": -999, "maximum": 999}
    add = ToolDefinition("add", "Add two integers.", {
        "type": "object", "properties": {"a": small, "b": small}, "required": ["a", "b"],
        "additionalProperties": False})
    tools = {tool.name: tool for tool in (city, add)}
    spec = tool_call_grammar(list(tools.values()))
    replies = [constrained(tiny, "What is the weather in Paris?", spec, temperature=0.0)]
    replies += [constrained(tiny, "add two and three", spec, temperature=1.0, seed=seed) for seed in range(6)]
    replies += [constrained(tiny, "add", tool_call_grammar([add]), temperature=1.0, seed=seed) for seed in range(3)]
    names = set()
    for reply in replies:
        calls, rest = parse_tool_calls(reply, ToolCallFormat.HERMES, known=tools)
        assert len(calls) == 1 and rest == "", reply
        assert validate_arguments(tools[calls[0].name], calls[0].arguments) == [], reply
        names.add(calls[0].name)
    assert "add" in names


def test_the_grammar_keeps_raw_control_characters_out_of_argument_strings(tiny: TextGenerator) -> None:
    # A raw newline inside a JSON string is not JSON: the mask never admits it, though an escaped one is fine.
    import llguidance

    note = ToolDefinition("note", "Note.", {
        "type": "object", "properties": {"text": {"type": "string", "maxLength": 8}}, "required": ["text"]})
    tokenizer = tiny.engine.constraints.tokenizer
    for text, admitted in (("a\\nb", True), ("a\nb", False)):
        reply = '<tool_call>{"name": "note", "arguments": {"text": "' + text + '"}}</tool_call>'
        grammar = llguidance.LLMatcher.grammar_from_lark(tool_call_lark(
            [("note", note.parameters)], "<tool_call>", "</tool_call>", {}))
        matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
        assert (matcher.consume_tokens(tokenizer.tokenize_str(reply)) and matcher.is_accepting()) is admitted, reply


@pytest.mark.slow
def test_smollm2_under_the_grammar_calls_the_right_tool(smollm2: Path) -> None:
    generator = TextGenerator(events=EventBus())
    generator.load_model(smollm2, n_ctx=1024)
    try:
        answers = {}
        for question in ("What is the weather in Paris?", "What is 2 plus 3?"):
            messages = [
                {"role": "system", "content": render_tool_prompt(TOOLS)},
                {"role": "user", "content": question},
            ]
            result = generator.start(GenerationRequest(messages, GenerationOptions(temperature=0.0, max_tokens=80),
                                                       grammar=tool_call_grammar(TOOLS))).wait()
            answers[question] = parse_tool_calls(result.text, known=KNOWN)[0]
    finally:
        generator.unload()
    assert as_pairs(answers["What is the weather in Paris?"]) == [("get_weather", {"city": "Paris"})]
    assert as_pairs(answers["What is 2 plus 3?"]) == [("add", {"a": 2, "b": 3})]

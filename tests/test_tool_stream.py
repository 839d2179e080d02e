"""Tool calls in a model's own syntax, read from a streamed reply: text passes on at once, each call once complete.

No model here: replies are fed to :class:`CallSplitter` in small pieces, as tokens arrive. The chat template
the syntax is read from is Qwen2.5's own (the GGUF of the packaged Qwen2.5-Coder model holds the same text).
"""

from __future__ import annotations

from typing import Any

import pytest

from runanywhere import CallSplitter, ToolCall, ToolCallFormat
from runanywhere.features.tools import parse_tool_calls, template_format

QWEN_TEMPLATE_PART = (
    '{{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within '
    '<tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": '
    '<args-json-object>}\\n</tool_call><|im_end|>\\n" }}'
)
LFM2_TEMPLATE_PART = "List of tools: <|tool_list_start|>[...]<|tool_list_end|> ... <|tool_call_start|>"
CHATML = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
KNOWN = ["get_weather", "get_time"]
PARIS = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
TOKYO = '{"name": "get_time", "arguments": {"zone": "Asia/Tokyo"}}'


def streamed(reply: str, fmt: ToolCallFormat | str, *, step: int = 3) -> list[str | ToolCall]:
    """What a splitter hands on for ``reply`` arriving ``step`` characters at a time (text pieces joined)."""
    splitter = CallSplitter(fmt, known=KNOWN)
    items: list[str | ToolCall] = []
    for start in range(0, len(reply), step):
        items.extend(splitter.feed(reply[start:start + step]))
    items.extend(splitter.finish())
    joined: list[str | ToolCall] = []
    for item in items:
        if isinstance(item, str) and joined and isinstance(joined[-1], str):
            joined[-1] += item
        else:
            joined.append(item)
    return joined


def calls_of(items: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(item.name, item.arguments) for item in items if isinstance(item, ToolCall)]


@pytest.mark.parametrize(("template", "fmt"), [
    (QWEN_TEMPLATE_PART, ToolCallFormat.QWEN),
    (LFM2_TEMPLATE_PART, ToolCallFormat.LFM2),
    (CHATML, ToolCallFormat.AUTO),
    (None, ToolCallFormat.AUTO),
])
def test_the_call_syntax_is_the_one_the_models_template_teaches(template: str | None, fmt: ToolCallFormat) -> None:
    assert template_format(template) is fmt


def test_text_before_a_call_streams_and_each_call_comes_once_complete() -> None:
    reply = f"Let me check both.\n<tool_call>\n{PARIS}\n</tool_call>\n<tool_call>\n{TOKYO}\n</tool_call>"
    splitter = CallSplitter(ToolCallFormat.QWEN, known=KNOWN)
    assert splitter.feed("Let me check both.\n<tool") == ["Let me check both."]  # the tag's start is held
    assert splitter.feed("_call>\n" + PARIS[:20]) == []
    (call,) = splitter.feed(PARIS[20:] + "\n</tool_call>\n")
    assert (call.name, call.arguments) == ("get_weather", {"city": "Paris"})
    assert calls_of(splitter.feed(f"<tool_call>\n{TOKYO}\n</tool_call>") + splitter.finish()) == [
        ("get_time", {"zone": "Asia/Tokyo"})]
    assert calls_of(streamed(reply, "qwen")) == calls_of(parse_tool_calls(reply, "qwen")[0])


def test_qwen_calls_written_without_their_tags_are_calls_too() -> None:
    reply = f"{PARIS}\n{TOKYO}"  # what Qwen2.5-Coder-0.5B writes at temperature 0
    assert calls_of(streamed(reply, ToolCallFormat.QWEN)) == [("get_weather", {"city": "Paris"}),
                                                               ("get_time", {"zone": "Asia/Tokyo"})]
    assert streamed(reply, ToolCallFormat.HERMES) == [reply]  # strict Hermes reads tags only


def test_an_answer_streams_unchanged_and_json_it_quotes_stays_text() -> None:
    haiku = "Waves fold into foam,\nsalt wind writes on the <b>sand</b> -\nthe tide keeps no name."
    assert streamed(haiku, ToolCallFormat.QWEN, step=1) == [haiku]
    quoted = f"The call would be {PARIS}, but I know it: sunny."
    assert streamed(quoted, ToolCallFormat.QWEN) == [quoted]


def test_a_block_that_is_no_call_is_handed_on_as_text() -> None:
    unknown = '<tool_call>{"name": "delete_files", "arguments": {"path": "/"}}</tool_call>'
    assert streamed(f"Sure. {unknown} Done.", ToolCallFormat.QWEN) == [f"Sure. {unknown} Done."]


def test_a_call_cut_before_its_close_tag_counts_when_its_json_is_whole() -> None:
    assert calls_of(streamed(f"<tool_call>\n{PARIS}", ToolCallFormat.QWEN)) == [("get_weather", {"city": "Paris"})]
    assert streamed('<tool_call>\n{"name": "get_wea', ToolCallFormat.QWEN) == ['<tool_call>\n{"name": "get_wea']


def test_lfm2_calls_stream_in_their_own_syntax() -> None:
    items = streamed('Checking. <|tool_call_start|>[get_weather(city="Paris")]<|tool_call_end|>', "lfm2", step=2)
    assert items[0] == "Checking." and calls_of(items) == [("get_weather", {"city": "Paris"})]

"""Reading tool calls while a reply streams (``CallStream``): text at once, a call's name, then its arguments."""

from __future__ import annotations

import json

import pytest

from runanywhere.core.errors import GenerationError
from runanywhere.features.tools.incremental import ArgumentText, CallDone, CallStarted, CallStream, Piece, Text
from runanywhere.features.tools.types import ToolCallFormat

REPLY = ('Let me check. <tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris </tool_call> Nord"}}\n'
         '</tool_call>\n<tool_call>{"name": "get_time", "arguments": {"zone": "CET"}}</tool_call>')


def streamed(reply: str, size: int, known: tuple[str, ...] = ("get_weather", "get_time"), *,
             cut: bool = False, fmt: ToolCallFormat = ToolCallFormat.HERMES) -> list[Piece]:
    """Feed ``reply`` to a CallStream ``size`` characters at a time (as tokens arrive)."""
    calls = CallStream(known, fmt)
    pieces = [piece for i in range(0, len(reply), size) for piece in calls.feed(reply[i : i + size])]
    return pieces + calls.close(cut=cut)


@pytest.mark.parametrize("size", [1, 3, 7, len(REPLY)])
def test_text_then_each_call_name_first_then_its_arguments_in_pieces(size: int):
    pieces = streamed(REPLY, size)
    text = "".join(p.text for p in pieces if isinstance(p, Text))
    assert text.strip() == "Let me check."
    starts = [p for p in pieces if isinstance(p, CallStarted)]
    assert [(s.index, s.name) for s in starts] == [(0, "get_weather"), (1, "get_time")]
    for start in starts:
        after = pieces[pieces.index(start) + 1 :]
        fragments = [p.text for p in after if isinstance(p, ArgumentText) and p.index == start.index]
        [done] = [p for p in after if isinstance(p, CallDone) and p.index == start.index]
        assert done.call.id == start.id and json.loads("".join(fragments)) == done.call.arguments
    weather = [p.text for p in pieces if isinstance(p, ArgumentText) and p.index == 0]
    assert len(weather) == 1 if size == len(REPLY) else len(weather) > 1  # fragments as the characters came
    assert [p.call.arguments for p in pieces if isinstance(p, CallDone)] == [{"city": "Paris </tool_call> Nord"},
                                                                             {"zone": "CET"}]


def test_a_call_to_an_unknown_tool_stays_text():
    pieces = streamed('<tool_call>{"name": "launch", "arguments": {}}</tool_call> done', 2)
    assert "".join(p.text for p in pieces if isinstance(p, Text)) == \
        '<tool_call>{"name": "launch", "arguments": {}}</tool_call> done'
    assert not any(isinstance(p, CallStarted) for p in pieces)


def test_a_lone_angle_bracket_or_partial_tag_is_text_once_it_cannot_be_a_tag():
    assert "".join(p.text for p in streamed("1 < 3 and <tool", 1) if isinstance(p, Text)) == "1 < 3 and <tool"


def test_arguments_written_as_a_json_string_come_whole_once_decoded():
    pieces = streamed('<tool_call>{"name": "get_time", "arguments": "{\\"zone\\": \\"UTC\\"}"}</tool_call>', 4)
    assert [p.text for p in pieces if isinstance(p, ArgumentText)] == ['{"zone": "UTC"}']


def test_a_call_cut_short_is_left_unfinished_but_a_broken_one_is_an_error():
    cut = streamed('<tool_call>{"name": "get_time", "arguments": {"zone": "CE', 3, cut=True)
    assert not any(isinstance(p, CallDone) for p in cut) and any(isinstance(p, ArgumentText) for p in cut)
    with pytest.raises(GenerationError, match="get_time"):
        streamed('<tool_call>{"name": "get_time", "arguments": {"zone": "CE', 3)


@pytest.mark.parametrize("size", [1, 4, 50])
def test_a_reply_opening_with_untagged_call_json_is_a_call_where_the_format_allows_it(size: int):
    reply = '\n{"name": "get_weather", "arguments": {"city": "Paris"}}\nDone.'
    calls = CallStream(("get_weather",), ToolCallFormat.QWEN)
    pieces = [p for i in range(0, len(reply), size) for p in calls.feed(reply[i : i + size])] + calls.close()
    [done] = [p for p in pieces if isinstance(p, CallDone)]
    assert done.call.name == "get_weather" and done.call.arguments == {"city": "Paris"}
    assert "".join(p.text for p in pieces if isinstance(p, ArgumentText)) == '{"city": "Paris"}'
    assert "".join(p.text for p in pieces if isinstance(p, Text)).strip() == "Done."
    assert next(p.text for p in streamed(reply, size) if isinstance(p, Text)).strip().startswith("{")  # Hermes: text


def test_json_later_in_a_reply_stays_text_even_where_untagged_calls_are_read():
    reply = 'Here is JSON: {"name": "get_weather", "arguments": {"city": "Paris"}}'
    calls = CallStream(("get_weather",), ToolCallFormat.QWEN)
    pieces = calls.feed(reply) + calls.close()
    assert all(isinstance(p, Text) for p in pieces) and "".join(p.text for p in pieces) == reply


@pytest.mark.parametrize("size", [1, 5, 200])
def test_lfm2_pythonic_calls_come_whole_when_their_block_closes(size: int):
    reply = 'Checking.<|tool_call_start|>[get_weather(city="Paris"), get_time(zone="CET")]<|tool_call_end|>Done.'
    pieces = streamed(reply, size, fmt=ToolCallFormat.LFM2)
    assert "".join(p.text for p in pieces if isinstance(p, Text)) == "Checking.Done."
    assert [(p.index, p.call.name, p.call.arguments) for p in pieces if isinstance(p, CallDone)] == [
        (0, "get_weather", {"city": "Paris"}), (1, "get_time", {"zone": "CET"})]
    starts = [p for p in pieces if isinstance(p, CallStarted)]
    assert [s.name for s in starts] == ["get_weather", "get_time"]


def test_auto_reads_whichever_markers_come_first():
    reply = 'A <|tool_call_start|>[get_time(zone="UTC")]<|tool_call_end|> B <tool_call>{"name": "get_time", ' \
            '"arguments": {"zone": "CET"}}</tool_call>'
    pieces = streamed(reply, 3, fmt=ToolCallFormat.AUTO)
    assert [p.call.arguments for p in pieces if isinstance(p, CallDone)] == [{"zone": "UTC"}, {"zone": "CET"}]
    assert "".join(p.text for p in pieces if isinstance(p, Text)).split() == ["A", "B"]

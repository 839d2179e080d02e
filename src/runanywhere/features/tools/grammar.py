"""A grammar that forces one well-formed tool call (``tool_choice="required"``), as GBNF text."""

from __future__ import annotations

from collections.abc import Sequence

from ...backends.llama_grammar import json_call_grammar
from ...core.errors import InvalidInputError
from .types import HERMES_END, HERMES_START, ToolCallFormat, ToolDefinition, as_format


def tool_call_grammar(tools: Sequence[ToolDefinition], fmt: ToolCallFormat | str = ToolCallFormat.HERMES) -> str:
    """GBNF admitting exactly one call of one of ``tools`` with arguments shaped by its schema.

    ``HERMES`` (and ``AUTO``) wrap the call in ``<tool_call>...</tool_call>``; ``JSON`` is the bare object.
    The pythonic LFM2 syntax has no JSON-Schema converter, so it is refused.
    """
    fmt = as_format(fmt)
    if fmt is ToolCallFormat.LFM2:
        raise InvalidInputError("a tool-call grammar exists for the HERMES and JSON formats, not LFM2")
    start, end = ("", "") if fmt is ToolCallFormat.JSON else (HERMES_START, HERMES_END)
    return json_call_grammar([(tool.name, tool.parameters) for tool in tools], start=start, end=end)

"""The constraint that forces one well-formed tool call (``tool_choice="required"`` or a named tool)."""

from __future__ import annotations

from collections.abc import Sequence

from ...backends.base import ToolCallGrammar
from ...core.errors import InvalidInputError
from .types import HERMES_END, HERMES_START, ToolCallFormat, ToolDefinition, as_format


def tool_call_grammar(tools: Sequence[ToolDefinition],
                      fmt: ToolCallFormat | str = ToolCallFormat.HERMES) -> ToolCallGrammar:
    """The constraint admitting exactly one call of one of ``tools``, its arguments following the tool's schema.

    ``HERMES``, ``QWEN`` and ``AUTO`` wrap the call in ``<tool_call>...</tool_call>``; ``JSON`` is the bare object.
    The pythonic LFM2 syntax is not JSON, so it is refused.
    """
    fmt = as_format(fmt)
    if fmt is ToolCallFormat.LFM2:
        raise InvalidInputError("a tool-call grammar exists for the HERMES and JSON formats, not LFM2")
    if not tools:
        raise InvalidInputError("a tool-call grammar needs at least one tool")
    start, end = ("", "") if fmt is ToolCallFormat.JSON else (HERMES_START, HERMES_END)
    return ToolCallGrammar(tuple((tool.name, tool.parameters) for tool in tools), start, end)


def forced_call_grammar(tools: Sequence[ToolDefinition], fmt: ToolCallFormat | str) -> ToolCallGrammar:
    """The constraint forcing one call from a model that writes calls in ``fmt``: a bare object for ``JSON``, else
    in ``<tool_call>`` tags (Qwen's own syntax; LFM2's pythonic one is not JSON, so its models get the tags)."""
    bare = as_format(fmt) is ToolCallFormat.JSON
    return tool_call_grammar(tools, ToolCallFormat.JSON if bare else ToolCallFormat.HERMES)

"""Tool calling: tool definitions, parsing the formats models write calls in, and the call loop."""

from .calling import ToolCaller, ToolCalling, ToolCallingResult, ToolChoice, ToolExecutor, ToolRun
from .grammar import tool_call_grammar
from .parsing import parse_tool_calls
from .prompts import render_tool_prompt, validate_arguments
from .types import ToolCall, ToolCallFormat, ToolDefinition, ToolResult

__all__ = ["ToolCall", "ToolCallFormat", "ToolCaller", "ToolCalling", "ToolCallingResult", "ToolChoice",
           "ToolDefinition", "ToolExecutor", "ToolResult", "ToolRun", "parse_tool_calls", "render_tool_prompt",
           "tool_call_grammar", "validate_arguments"]

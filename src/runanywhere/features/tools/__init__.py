"""Tool calling: tool definitions, parsing the formats models write calls in, and the call loop."""

from .calling import ToolCaller, ToolCalling, ToolCallingResult, ToolChoice, ToolExecutor, ToolRun
from .format import ToolCall, ToolCallFormat, ToolDefinition, ToolResult, parse_tool_calls

__all__ = ["ToolCall", "ToolCallFormat", "ToolCaller", "ToolCalling", "ToolCallingResult", "ToolChoice",
           "ToolDefinition", "ToolExecutor", "ToolResult", "ToolRun", "parse_tool_calls"]

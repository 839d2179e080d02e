"""Tool calling: tool definitions, parsing the formats models write calls in, and the call loop."""

from .calling import ToolCaller, ToolCalling, ToolCallingResult, ToolChoice, ToolExecutor, ToolRun, ToolRunEvent
from .grammar import forced_call_grammar, tool_call_grammar
from .parsing import parse_tool_calls, template_format
from .prompts import render_tool_prompt, validate_arguments
from .streaming import CallSplitter
from .types import ToolCall, ToolCallFormat, ToolDefinition, ToolResult

__all__ = ["CallSplitter", "ToolCall", "ToolCallFormat", "ToolCaller", "ToolCalling", "ToolCallingResult",
           "ToolChoice", "ToolDefinition", "ToolExecutor", "ToolResult", "ToolRun", "ToolRunEvent",
           "forced_call_grammar", "parse_tool_calls",
           "render_tool_prompt", "template_format", "tool_call_grammar", "validate_arguments"]

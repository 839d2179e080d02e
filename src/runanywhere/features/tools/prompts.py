"""Teaching a model the tools: a system-prompt section for templates without ``tools``, and argument checks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...core.schema_drafts import validator_for
from .types import HERMES_END, HERMES_START, LFM2_END, LFM2_START, ToolCallFormat, ToolDefinition, as_format, dump_json


def render_tool_prompt(tools: Sequence[ToolDefinition], fmt: ToolCallFormat | str = ToolCallFormat.HERMES) -> str:
    """A system-prompt section listing the tools and the exact call syntax, for templates without ``tools``.

    Small models follow short, concrete instructions best, so this is a compact list of signatures plus one
    example call in the chosen syntax (``AUTO`` teaches the Hermes syntax). Empty when there are no tools.
    """
    fmt = as_format(fmt)
    if not tools:
        return ""
    lines = ["You can call these tools:"]
    for tool in tools:
        lines.append(f"- {_signature(tool)}" + (f": {tool.description.strip()}" if tool.description.strip() else ""))
        for name, schema in _properties(tool):
            description = schema.get("description") if isinstance(schema, dict) else None
            if isinstance(description, str) and description.strip():
                lines.append(f"    {name}: {description.strip()}")
    example = tools[0]
    arguments = {name: _example_value(schema) for name, schema in _properties(example) if name in example.required}
    if fmt is ToolCallFormat.LFM2:
        call = ", ".join(f"{key}={_python_literal(value)}" for key, value in arguments.items())
        lines += [
            "To call a tool, answer only with:",
            f"{LFM2_START}[{example.name}({call})]{LFM2_END}",
            "To call several tools, list the calls inside the brackets, separated by commas.",
        ]
    elif fmt is ToolCallFormat.JSON:
        lines += [
            "To call a tool, answer only with a JSON object:",
            dump_json({"name": example.name, "arguments": arguments}),
            "To call several tools, answer with a JSON list of such objects.",
        ]
    else:
        lines += [
            "To call a tool, answer only with:",
            f"{HERMES_START}{dump_json({'name': example.name, 'arguments': arguments})}{HERMES_END}",
            f"To call several tools, write one {HERMES_START}...{HERMES_END} per call.",
        ]
    lines.append("Use only the tools listed. If no tool is needed, answer normally.")
    return "\n".join(lines)


def _properties(tool: ToolDefinition) -> list[tuple[str, Any]]:
    properties = tool.parameters.get("properties", {})
    return [(str(name), schema) for name, schema in properties.items()] if isinstance(properties, dict) else []


def _signature(tool: ToolDefinition) -> str:
    required = set(tool.required)
    params = [f"{name}{'' if name in required else '?'}: {_type_text(schema)}" for name, schema in _properties(tool)]
    return f"{tool.name}({', '.join(params)})"


def _type_text(schema: Any) -> str:
    """A one-word rendering of a property schema: ``string``, ``"a" | "b"``, ``array of number``..."""
    if not isinstance(schema, dict):
        return "any"
    if isinstance(schema.get("enum"), list):
        return " | ".join(dump_json(value) for value in schema["enum"])
    if "const" in schema:
        return dump_json(schema["const"])
    alternatives = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(alternatives, list):
        return " | ".join(_type_text(alternative) for alternative in alternatives)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(str(k) for k in kind)
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"array of {_type_text(schema['items'])}"
    return str(kind) if isinstance(kind, str) else "any"


def _example_value(schema: Any) -> Any:
    """A plausible value for the example call: the schema's own example, default or first choice if it has one."""
    if not isinstance(schema, dict):
        return "..."
    if isinstance(schema.get("examples"), list) and schema["examples"]:
        return schema["examples"][0]
    for key in ("default", "const"):
        if key in schema:
            return schema[key]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) and kind else kind
    return {"integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}, "null": None}.get(str(kind), "...")


def _python_literal(value: Any) -> str:
    """A JSON value written as a Python literal (for the pythonic call syntax)."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{dump_json(str(k))}: {_python_literal(v)}" for k, v in value.items()) + "}"
    return dump_json(value)


def validate_arguments(tool: ToolDefinition, arguments: Any) -> list[str]:
    """The reasons ``arguments`` do not match the tool's parameter schema, one message each; empty when valid."""
    validator = validator_for(tool.parameters)
    messages = []
    for error in sorted(validator.iter_errors(arguments), key=lambda e: [str(p) for p in e.absolute_path]):
        where = ".".join(str(part) for part in error.absolute_path)
        messages.append(f"{where}: {error.message}" if where else error.message)
    return messages

"""An OpenAI chat completion request, read into the SDK's typed :class:`GenerationRequest`.

Messages (``developer`` read as ``system``; text content parts joined; tool
calls and results), ``tools`` with ``tool_choice`` (``required`` and a named
function are forced by a grammar), and ``response_format`` (``json_object`` and
``json_schema`` are forced by a grammar and validated after). Image parts, in
user messages to a model with a vision projector, are ``data:`` URLs: the server
fetches nothing unless the operator allows remote images (then https URLs have
been fetched into data: URLs before this reads them); any other URL is a 400.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .. import GenerationRequest, TextGenerator, ToolCallFormat, ToolDefinition
from ..backends.base import ToolCallGrammar
from ..core.json_schema import checked_schema
from ..features.structured_output import schema_prompt
from ..features.tools import forced_call_grammar, render_tool_prompt, template_format
from ..features.tools.types import HERMES_END, HERMES_START
from .errors import bad_request, unsupported
from .params import Params
from .sampling import generation_options

_DATA_URL = re.compile(r"^data:image/[\w.+-]+;base64,", re.IGNORECASE)
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}


@dataclass(frozen=True)
class ChatPlan:
    """What to generate and how to read the reply: the tools offered, whether a call is forced, the call syntax
    of the model, the schema to validate against."""

    request: GenerationRequest
    tools: tuple[ToolDefinition, ...]
    forced: bool
    tool_format: ToolCallFormat
    schema: dict[str, Any] | None
    stream: bool
    include_usage: bool
    parallel_tool_calls: bool

    @property
    def tool_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tools)


def chat_plan(params: Params, generator: TextGenerator, n_ctx: int, *, images: bool = False) -> ChatPlan:
    """Read a chat completion body (its ``model`` already taken) for a loaded generator (``images``: it sees)."""
    template = generator.engine.chat_template or ""
    native, fmt = "tools" in template, template_format(template)  # the model's own call syntax, if it has one
    stream = params.take("stream", bool, False)
    stream_options = params.take("stream_options", dict, {})
    if stream_options and not stream:
        raise bad_request("'stream_options' is only allowed with stream=true", "stream_options")
    unknown = sorted(set(stream_options) - {"include_usage"})
    if unknown:
        raise unsupported(f"stream_options.{unknown[0]}")
    offered, forced = _tools(params)
    parallel = params.take("parallel_tool_calls", bool, True)
    messages = chat_messages(params.take("messages", list, required=True), native, images=images)
    schema = _response_format(params)
    if forced and schema is not None:
        raise bad_request("a forced tool call and a JSON response_format cannot both shape one reply", "tool_choice")
    if offered and not native:
        messages = _with_system(messages, render_tool_prompt(offered, fmt))
    prompt = schema_prompt(messages, schema) if schema is not None else messages
    grammar: ToolCallGrammar | dict[str, Any] | None = forced_call_grammar(forced, fmt) if forced else schema
    request = GenerationRequest(prompt, generation_options(params, n_ctx), grammar=grammar,
                                tools=tuple(t.to_openai() for t in offered) if native else ())
    return ChatPlan(request, tuple(offered), bool(forced), fmt, schema, stream,
                    bool(stream_options.get("include_usage")), parallel)


def chat_messages(raw: list[Any], native_tools: bool, *, images: bool = False) -> list[dict[str, Any]]:
    """OpenAI messages as the chat template reads them; with ``images``, a user's image parts stay parts."""
    if not raw:
        raise bad_request("'messages' must hold at least one message", "messages")
    messages = []
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise bad_request(f"{where} needs a 'role' of {', '.join(ROLES)}", where)
        role = ROLES[message["role"]]
        parts = _content(message.get("content"), where, images and role == "user")
        content = "\n".join(p["text"] for p in parts if p["type"] == "text")
        seen = any(p["type"] == "image_url" for p in parts)
        out: dict[str, Any] = {"role": role, "content": parts if seen else content}
        if role == "assistant" and message.get("tool_calls"):
            calls = [_call(call, f"{where}.tool_calls[{j}]") for j, call in enumerate(message["tool_calls"])]
            if native_tools:
                out["tool_calls"] = calls
            else:
                out["content"] = content + "".join(_hermes(c["function"]) for c in calls)
        elif role == "tool":
            out["tool_call_id"] = str(message.get("tool_call_id", ""))
        messages.append(out)
    return messages


def _hermes(function: dict[str, Any]) -> str:
    """A call as a template without tool support reads it back: the syntax the model was taught to write."""
    call = {"name": function["name"], "arguments": function["arguments"]}
    return f"{HERMES_START}{json.dumps(call, ensure_ascii=False)}{HERMES_END}"


def _content(content: Any, where: str, images: bool) -> list[dict[str, Any]]:
    """A message's content as text and (where ``images``) ``image_url`` parts holding checked data: URLs."""
    if content is None or isinstance(content, str):
        return [{"type": "text", "text": content or ""}]
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or a list of content parts", f"{where}.content")
    parts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "image_url" and images:
            parts.append({"type": "image_url", "image_url": {"url": _image_url(part, f"{where}.content[{j}]")}})
        elif kind == "image_url":
            raise bad_request(f"{where}.content[{j}] is an image: only a user message to a model with a vision "
                              "projector can hold one (GET /v1/models lists those with 'vision')",
                              f"{where}.content[{j}]", "image_input_not_supported")
        else:
            raise unsupported(f"{where}.content[{j}]", f"content parts of type {kind!r} are not available")
    return parts


def _image_url(part: dict[str, Any], where: str) -> str:
    """The ``data:`` URL of an image part; the server fetches nothing, so any other URL is refused."""
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, dict) else spec
    if isinstance(spec, dict) and spec.get("detail", "auto") != "auto":
        raise unsupported(f"{where}.image_url.detail", "images are shrunk to the model's size; use 'auto'")
    if not isinstance(url, str) or not _DATA_URL.match(url):
        raise bad_request(f"{where}.image_url.url must be a data:image/...;base64,... URL: this server reads no "
                          "files and fetches https URLs only when started with --allow-remote-images; send the "
                          "image's bytes inline",
                          f"{where}.image_url.url", "image_url_not_allowed")
    return url


def _call(call: Any, where: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise bad_request(f"{where} needs a function with a name", where)
    arguments = function.get("arguments") or "{}"
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    except json.JSONDecodeError:
        raise bad_request(f"{where}.function.arguments is not JSON", where) from None
    return {"id": str(call.get("id", "")), "type": "function",
            "function": {"name": function["name"], "arguments": parsed}}


def _tools(params: Params) -> tuple[list[ToolDefinition], list[ToolDefinition]]:
    """(tools offered to the model, tools one of which it must call) from ``tools`` and ``tool_choice``."""
    raw = params.take("tools", list, [])
    tools = []
    for i, spec in enumerate(raw):
        if not isinstance(spec, dict) or spec.get("type") != "function":
            raise bad_request(f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}", f"tools[{i}]")
        tools.append(ToolDefinition.from_openai(spec))
    choice = params.take("tool_choice", (str, dict), "auto" if tools else "none")
    if choice == "none":
        return [], []
    if not tools:
        raise bad_request("'tool_choice' needs 'tools'", "tool_choice")
    if choice == "auto":
        return tools, []
    if choice == "required":
        return tools, tools
    name = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    named = [t for t in tools if t.name == name]
    if not isinstance(choice, dict) or choice.get("type") != "function" or not named:
        raise bad_request("'tool_choice' is 'none', 'auto', 'required' or {'type': 'function', 'function': "
                          "{'name': <one of the tools>}}", "tool_choice")
    return tools, named


def _response_format(params: Params) -> dict[str, Any] | None:
    """The JSON schema ``response_format`` asks for (the reply's grammar, and what it is validated against)."""
    fmt = params.take("response_format", dict, {"type": "text"})
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise bad_request("response_format.json_schema.schema must be a JSON schema object",
                              "response_format.json_schema.schema")
        return checked_schema("response_format.json_schema.schema", schema)
    raise bad_request("response_format.type is 'text', 'json_object' or 'json_schema'", "response_format")


def _with_system(messages: list[dict[str, Any]], section: str) -> list[dict[str, Any]]:
    if messages[0]["role"] == "system":
        return [{**messages[0], "content": f"{messages[0]['content']}\n\n{section}"}, *messages[1:]]
    return [{"role": "system", "content": section}, *messages]

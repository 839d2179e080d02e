"""What to generate: :class:`GenerationOptions` and the typed :class:`GenerationRequest`.

Every text generation (plain, streaming, structured output, tool calling, and
later vision and the HTTP server) starts from one request. It carries specs,
not engine objects: a grammar is GBNF text or a JSON schema, compiled by the
engine on its own worker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ...backends.base import Sampling, ToolCallGrammar
from ...core.errors import InvalidInputError, SDKErrorCode
from ...core.json_schema import checked_schema
from ...core.validation import (
    MAX_THREADS,
    flag,
    integer,
    json_value,
    mapping,
    number,
    positive_number,
    shown,
    text,
    texts,
)

_C_INT_MAX = 2**31 - 1
_SEED_MAX = 2**32 - 1  # llama.cpp seeds are uint32
Message = Mapping[str, Any]
Prompt = str | Sequence[Message]
GrammarSpec = str | Mapping[str, Any] | ToolCallGrammar
"""GBNF text (llama.cpp's grammar), a JSON schema (a dict) the output must match, or a forced tool call
(both constrained by the llguidance engine)."""


@dataclass(frozen=True)
class GenerationOptions:
    """How to generate. ``temperature=0`` is greedy; ``seed`` makes sampling reproducible.

    ``raw=True`` sends a string prompt as-is, without the chat template.
    ``grammar`` (GBNF text) constrains the output, as llama.cpp grammars do.
    """

    max_tokens: int = 256
    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    system_prompt: str | None = None
    threads: int | None = None
    raw: bool = False
    grammar: str | None = None

    def __post_init__(self) -> None:
        integer("max_tokens", self.max_tokens, low=1, high=_C_INT_MAX)
        positive_number("temperature", self.temperature, allow_zero=True)
        integer("top_k", self.top_k, low=0, high=_C_INT_MAX)
        number("top_p", self.top_p, low=0, high=1, low_open=True)
        number("min_p", self.min_p, low=0, high=1)
        positive_number("repeat_penalty", self.repeat_penalty)
        object.__setattr__(self, "stop", texts("stop", self.stop, single=True))
        if self.seed is not None:
            integer("seed", self.seed, low=0, high=_SEED_MAX)
        if self.system_prompt is not None:
            text("system_prompt", self.system_prompt)
        if self.threads is not None:
            integer("threads", self.threads, low=1, high=MAX_THREADS)
        flag("raw", self.raw)
        if self.grammar is not None:
            text("grammar", self.grammar)

    def sampling(self) -> Sampling:
        return Sampling(self.temperature, self.top_k if self.temperature > 0 else 1, self.top_p, self.min_p,
                        self.repeat_penalty, self.seed)


def options_with(options: GenerationOptions | None, overrides: Mapping[str, Any]) -> GenerationOptions:
    """``options`` (or the defaults) with some fields replaced, as the ``**overrides`` of the public methods."""
    base = options or GenerationOptions()
    unknown = sorted(set(overrides) - {f.name for f in fields(GenerationOptions)})
    if unknown:
        raise InvalidInputError(f"unknown generation options: {', '.join(unknown)}",
                                code=SDKErrorCode.INVALID_PARAMETER)
    return replace(base, **overrides) if overrides else base


@dataclass(frozen=True)
class GenerationRequest:
    """One generation: a prompt string or chat messages, the options, and what shapes the output.

    ``grammar`` is a :data:`GrammarSpec` (GBNF text or a JSON schema; ``options.grammar``
    when not given); ``tools`` are OpenAI-style function specs handed to the chat
    template; ``images`` is reserved for vision-language models (empty for text models).
    """

    prompt: Prompt
    options: GenerationOptions = field(default_factory=GenerationOptions)
    grammar: GrammarSpec | None = None
    tools: tuple[Mapping[str, Any], ...] = ()
    images: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.options, GenerationOptions):
            raise InvalidInputError("options must be GenerationOptions", code=SDKErrorCode.INVALID_PARAMETER)
        object.__setattr__(self, "prompt", checked_prompt(self.prompt, raw=self.options.raw))
        grammar = self.grammar if self.grammar is not None else self.options.grammar or None
        if isinstance(grammar, str):
            text("grammar", grammar)
        elif grammar is not None and not isinstance(grammar, ToolCallGrammar):
            if not isinstance(grammar, Mapping):
                raise InvalidInputError("a grammar is GBNF text, a JSON schema dict or a ToolCallGrammar",
                                        code=SDKErrorCode.INVALID_PARAMETER)
            grammar = checked_schema("the grammar's JSON schema", grammar)
        object.__setattr__(self, "grammar", grammar)
        if isinstance(self.tools, (str, bytes, Mapping)) or not isinstance(self.tools, Sequence):
            raise InvalidInputError("tools must be a sequence of OpenAI-style function specs (dicts)",
                                    code=SDKErrorCode.INVALID_PARAMETER)
        object.__setattr__(self, "tools", tuple(json_value(f"tools[{i}]", mapping(f"tools[{i}]", t))
                                                for i, t in enumerate(self.tools)))
        if isinstance(self.images, (str, bytes)) or not isinstance(self.images, Sequence):
            raise InvalidInputError("images must be a list of images", code=SDKErrorCode.INVALID_PARAMETER)
        object.__setattr__(self, "images", tuple(self.images))

    def messages(self) -> list[dict[str, Any]] | None:
        """The chat messages to render (with the options' system prompt), or None for a raw completion."""
        if isinstance(self.prompt, str):
            if self.options.raw:
                return None
            messages: list[dict[str, Any]] = [{"role": "user", "content": self.prompt}]
        else:
            messages = [dict(m) for m in self.prompt]
        system = self.options.system_prompt
        if system and messages[0]["role"] != "system":
            messages.insert(0, {"role": "system", "content": system})
        return messages

    def preview(self) -> str:
        """The prompt, or its last message, cut for an event."""
        text = self.prompt if isinstance(self.prompt, str) else str(self.prompt[-1].get("content", ""))
        return text[:100]


def checked_prompt(prompt: Any, *, raw: bool = False) -> Prompt:
    """A string prompt as is, or the messages as a tuple of private copies; bad ones are an InvalidInputError.

    A message is a dict with a ``role`` (str) and a ``content`` (text, or a list of content parts), all JSON.
    """
    if isinstance(prompt, str):
        return text("the prompt", prompt, allow_empty=not raw)
    return checked_messages(prompt)


def checked_messages(prompt: Any) -> tuple[dict[str, Any], ...]:
    """Chat messages as a tuple of private copies, each checked; anything else is an InvalidInputError."""
    if isinstance(prompt, (str, bytes, bytearray)) or not isinstance(prompt, Sequence) or not all(
            isinstance(m, Mapping) for m in prompt):
        raise InvalidInputError(f"a prompt is a str or a list of chat messages (dicts), got {_kind(prompt)}",
                                code=SDKErrorCode.INVALID_PROMPT)
    if not prompt:
        raise InvalidInputError("the message list is empty", code=SDKErrorCode.INVALID_PROMPT)
    messages = []
    for i, message in enumerate(prompt):
        checked = json_value(f"message {i}", mapping(f"message {i}", message))
        if "role" not in checked or "content" not in checked:
            raise InvalidInputError(f"message {i} needs a 'role' and a 'content': {shown(checked)}",
                                    code=SDKErrorCode.INVALID_PROMPT)
        text(f"the role of message {i}", checked["role"], allow_empty=False)
        if not isinstance(checked["content"], (str, list)) and not (checked["content"] is None
                                                                   and checked.get("tool_calls")):
            raise InvalidInputError(f"the content of message {i} must be text or a list of content parts, "
                                    f"got {type(checked['content']).__name__}", code=SDKErrorCode.INVALID_PROMPT)
        messages.append(checked)
    return tuple(messages)


def _kind(value: Any) -> str:
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        return f"a list holding a {type(next(m for m in value if not isinstance(m, Mapping))).__name__}"
    return type(value).__name__

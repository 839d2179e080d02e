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

from ...backends.base import Sampling
from ...core.errors import InvalidInputError, SDKErrorCode
from ...core.validation import positive_int, positive_number

Message = Mapping[str, Any]
Prompt = str | Sequence[Message]
GrammarSpec = str | Mapping[str, Any]
"""GBNF text, or a JSON schema (a dict) the output must match."""


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
        positive_int("max_tokens", self.max_tokens)
        positive_number("temperature", self.temperature, allow_zero=True)
        if not 0 < self.top_p <= 1:
            raise InvalidInputError(f"top_p must be in (0, 1], got {self.top_p}")
        object.__setattr__(self, "stop", tuple(self.stop))

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
        object.__setattr__(self, "prompt", _checked_prompt(self.prompt, self.options))
        grammar = self.grammar if self.grammar is not None else self.options.grammar or None
        if grammar is not None and not isinstance(grammar, (str, Mapping)):
            raise InvalidInputError("a grammar is GBNF text or a JSON schema dict",
                                    code=SDKErrorCode.INVALID_PARAMETER)
        object.__setattr__(self, "grammar", dict(grammar) if isinstance(grammar, Mapping) else grammar)
        if isinstance(self.tools, (str, Mapping)) or not all(isinstance(t, Mapping) for t in self.tools):
            raise InvalidInputError("tools must be a sequence of OpenAI-style function specs (dicts)",
                                    code=SDKErrorCode.INVALID_PARAMETER)
        object.__setattr__(self, "tools", tuple(dict(t) for t in self.tools))
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


def _checked_prompt(prompt: Any, options: GenerationOptions) -> Prompt:
    """A string prompt as is, or the messages as a tuple of private copies; bad ones are an InvalidInputError."""
    if isinstance(prompt, str):
        if not prompt.strip() and options.raw:
            raise InvalidInputError("the prompt is empty")
        return prompt
    if not isinstance(prompt, Sequence) or not all(isinstance(m, Mapping) for m in prompt):
        raise InvalidInputError("a prompt is a string or a list of chat messages (dicts)",
                                code=SDKErrorCode.INVALID_PROMPT)
    if not prompt:
        raise InvalidInputError("the message list is empty")
    for m in prompt:
        if "role" not in m or "content" not in m:
            raise InvalidInputError(f"each message needs 'role' and 'content': {dict(m)!r}")
    return tuple(dict(m) for m in prompt)

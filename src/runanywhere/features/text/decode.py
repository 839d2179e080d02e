"""One generation on the model's worker: the request's prompt as tokens, the sampling loop, the result.

Everything here runs on the worker that owns the engine (grammar compilation
included), and keeps the llama session's KV-prefix state up to date.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from ...backends.base import LanguageModel, ToolCallGrammar
from ...core.cancel import CancelToken
from ...core.errors import CancelledError
from ...core.events import GenerationCompleted
from ...runtime.llama import LlamaSession
from .markup import StopMatcher, ThinkTracker, split_thinking
from .request import GenerationOptions, GenerationRequest, GrammarSpec
from .result import FinishReason, GenerationResult, TokenEvent

#: Whether a chat without a system message gets the default system prompt its template may insert. No: the
#: default model's own (SmolLM2's "You are a helpful AI assistant named SmolLM") makes it answer plain
#: questions in French ("What is the capital of France?" -> "L'Étoile, la Cité..."); with no system turn it
#: answers "The capital of France is Paris." (tests/test_default_system.py checks a dozen such questions).
#: A caller who wants a system prompt passes one (``GenerationOptions.system_prompt`` or a system message).
TEMPLATE_DEFAULT_SYSTEM = False


def compile_grammar(engine: LanguageModel, spec: GrammarSpec | None) -> Any:
    """The engine's grammar for a spec, or None; a bad spec raises InvalidInputError."""
    if spec is None:
        return None
    if isinstance(spec, str):
        return engine.compile_grammar(gbnf=spec)
    if isinstance(spec, ToolCallGrammar):
        return engine.compile_grammar(tool_call=spec)
    return engine.compile_grammar(json_schema=dict(spec))


def completed(result: GenerationResult) -> GenerationCompleted:
    """The event that says ``result``'s generation ended (how, with how many tokens, in how long)."""
    return GenerationCompleted(model_id=result.model_id, tokens_used=result.output_tokens,
                               latency_ms=result.latency_ms, finish_reason=result.finish_reason)


def run_generation(session: LlamaSession, model_id: str, request: GenerationRequest, grammar: Any,
                   cancel: CancelToken, emit: Callable[[Any], None], queue_ms: float,
                   prepare: PromptBuilder | None = None) -> GenerationResult:
    """Generate for ``request`` with an already compiled ``grammar``, emitting :class:`TokenEvent` pieces.

    ``prepare`` turns the request into prompt tokens (default :func:`prompt_tokens`); a vision model's
    also evaluates its images there, so the time to first token includes them.
    """
    started = time.perf_counter()
    prompt = (prepare or prompt_tokens)(session, request)
    session.forget()
    engine = session.engine
    sampler = Sampler(engine, prompt.stops, emit)
    sampler.run(prompt.tokens, request.options, grammar, cancel,
                max_tokens=min(request.options.max_tokens, engine.n_ctx - len(prompt.tokens)))
    if sampler.finish != "cancelled":
        session.remember(prompt.text + sampler.thinking.text, prompt.tokens + sampler.generated)
    return result_of(model_id, prompt, sampler, started, queue_ms)


@dataclass(frozen=True)
class PromptTokens:
    """A request's prompt as the engine reads it: text, tokens, stop strings, and how many need evaluating."""

    text: str
    tokens: list[int]
    stops: tuple[str, ...]
    evaluated: int


PromptBuilder = Callable[[LlamaSession, GenerationRequest], PromptTokens]


def prompt_tokens(session: LlamaSession, request: GenerationRequest) -> PromptTokens:
    """Render the chat (or take the raw prompt) and tokenize it, reusing the session's cached tokens."""
    text, add_bos, special, stops = prompt_text(session.engine, request)
    tokens = session.tokenize(text, add_bos=add_bos, special=special)
    return PromptTokens(text, tokens, stops, len(tokens) - session.engine.cached_prefix(tokens))


def prompt_text(engine: LanguageModel, request: GenerationRequest) -> tuple[str, bool, bool, tuple[str, ...]]:
    """The request's prompt text, whether it takes a BOS and special tokens, and its stop strings."""
    messages = request.messages()
    stops = request.options.stop
    if messages is None:
        return cast(str, request.prompt), True, False, stops  # no messages: a raw string prompt
    chat = engine.render_chat(messages, [dict(t) for t in request.tools] or None,
                              default_system=TEMPLATE_DEFAULT_SYSTEM)
    return chat.text, chat.add_bos, True, stops + chat.stop


class Sampler:
    """The sampling loop: tokens become text pieces (held back near stop strings) and counts."""

    def __init__(self, engine: LanguageModel, stops: tuple[str, ...], emit: Callable[[Any], None]) -> None:
        self.engine, self.emit = engine, emit
        self.matcher = StopMatcher(stops)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.thinking = ThinkTracker()
        self.generated: list[int] = []
        self.first_at: float | None = None
        self.ended = 0.0
        self.finish: FinishReason = "length"
        self.hit_stop_string = False

    def run(self, tokens: list[int], options: GenerationOptions, grammar: Any, cancel: CancelToken, *,
            max_tokens: int) -> None:
        """Sample until the end token, a stop string, ``max_tokens`` or cancellation."""
        try:
            for token in self.engine.generate(tokens, options.sampling(), cancel, grammar=grammar,
                                              n_threads=options.threads):
                if self.take(token, max_tokens):
                    break
            if cancel.cancelled:
                self.finish = "cancelled"
        except CancelledError:
            self.finish = "cancelled"
        self.close()

    def take(self, token: int, max_tokens: int) -> bool:
        """Handle one sampled token; True when the generation ends with it."""
        if self.first_at is None:
            self.first_at = time.perf_counter()
        if self.engine.is_end(token):
            self.finish = "stop"
            return True
        self.generated.append(token)
        count = len(self.generated)
        decoded = self.decoder.decode(self.engine.piece(token))
        in_thought = self.thinking.feed(decoded)
        piece, self.hit_stop_string = self.matcher.feed(decoded)
        if piece:
            self.emit(TokenEvent(piece, token, count - 1, in_thought))
        if self.hit_stop_string:
            self.finish = "stop"
            return True
        return count >= max_tokens

    def close(self) -> None:
        """The generation ended: emit the text held back for stop strings (unless cancelled) and note the time."""
        if self.finish != "cancelled" and not self.hit_stop_string:
            tail = self.matcher.feed(self.decoder.decode(b"", final=True))[0] + self.matcher.flush()
            if tail:
                self.emit(TokenEvent(tail, -1, len(self.generated), self.thinking.inside()))
        self.ended = time.perf_counter()

    def text(self) -> str:
        """The reply: all of it, or only what was streamed when the generation was cancelled."""
        return self.matcher.text[:self.matcher.emitted] if self.finish == "cancelled" else self.matcher.text


def result_of(model_id: str, prompt: PromptTokens, sampler: Sampler, started: float,
              queue_ms: float) -> GenerationResult:
    """The result of a finished :class:`Sampler` run (``started``: when the generation left the queue)."""
    count, first_at, end = len(sampler.generated), sampler.first_at, sampler.ended
    ttft = (first_at - started) if first_at is not None else None
    decode_s = end - first_at if first_at is not None else 0.0
    thought, answer = split_thinking(sampler.text())
    return GenerationResult(
        text=answer, model_id=model_id, input_tokens=len(prompt.tokens), output_tokens=count,
        prompt_tokens_evaluated=prompt.evaluated, latency_ms=(end - started) * 1000,
        time_to_first_token_ms=ttft * 1000 if ttft is not None else None,
        prefill_tokens_per_second=prompt.evaluated / ttft if ttft else None,
        decode_tokens_per_second=(count - 1) / decode_s if count > 1 and decode_s > 0 else None,
        finish_reason=sampler.finish, thinking_content=thought, thinking_tokens=sampler.thinking.count(),
        response_tokens=count - sampler.thinking.count(), queue_ms=queue_ms,
    )

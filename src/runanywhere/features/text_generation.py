"""Text generation and chat with llama.cpp: blocking, streaming and async, cancellable.

``TextGeneration`` is the default :class:`TextGenerator`; create more to hold
several models at once. Each loaded model is owned by a worker thread, so
concurrent callers queue in order and never touch the engine together.
Chat prompts use the model's own template, and the KV cache keeps the longest
common prefix with the previous call, so the next turn of a conversation only
evaluates its new tokens (``GenerationResult.prompt_tokens_evaluated``).
"""

from __future__ import annotations

import codecs
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..backends.llamacpp import Sampling
from ..core.cancel import CancelToken
from ..core.errors import CancelledError, InvalidInputError
from ..core.events import (
    GenerationCompleted,
    GenerationFailed,
    GenerationStarted,
)
from ..core.validation import positive_int, positive_number
from ..runtime.llama import LlamaHolder, _Loaded
from ..runtime.worker import ResultStream, Stream

FinishReason = Literal["stop", "length", "cancelled"]
Message = Mapping[str, Any]
Prompt = str | Sequence[Message]


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


@dataclass(frozen=True)
class TokenEvent:
    """One piece of streamed text. ``is_thinking`` marks text inside ``<think>…</think>``."""

    text: str
    token_id: int
    index: int
    is_thinking: bool = False


@dataclass(frozen=True)
class GenerationResult:
    """A finished generation and its metrics.

    ``input_tokens`` is the prompt's length; ``prompt_tokens_evaluated`` how many
    of them llama.cpp had to evaluate (the rest came from the KV cache).
    ``time_to_first_token_ms`` runs from the call (after queueing) to the first
    sampled token; ``prefill_tokens_per_second`` is evaluated prompt tokens over
    that time; ``decode_tokens_per_second`` is tokens after the first over the
    time after it. ``latency_ms`` is the whole call.
    """

    text: str
    model_id: str
    input_tokens: int
    output_tokens: int
    prompt_tokens_evaluated: int
    latency_ms: float
    time_to_first_token_ms: float | None
    prefill_tokens_per_second: float | None
    decode_tokens_per_second: float | None
    finish_reason: FinishReason
    thinking_content: str | None = None
    thinking_tokens: int = 0
    response_tokens: int = 0
    queue_ms: float = 0.0

    @property
    def tokens_per_second(self) -> float:
        """Output tokens over the whole latency, as the reference SDK reports it."""
        return self.output_tokens / (self.latency_ms / 1000) if self.latency_ms > 0 else 0.0

    @property
    def tokens_used(self) -> int:
        return self.output_tokens

    @property
    def reused_prompt_tokens(self) -> int:
        return self.input_tokens - self.prompt_tokens_evaluated


class GenerationStream(ResultStream[TokenEvent, GenerationResult]):
    """Token events as they are generated; :attr:`result` holds the full result at the end.

    Breaking out of the loop, :meth:`cancel`, or cancelling an ``async for``
    stops the engine (prefill included).
    """

    def text(self) -> Iterator[str]:
        """Just the text pieces."""
        for event in self:
            yield event.text

    async def atext(self) -> AsyncIterator[str]:
        """Async twin of :meth:`text`."""
        async for event in self:
            yield event.text


class TextGenerator(LlamaHolder):
    """Loads one GGUF language model and generates text with it."""

    component = "llm"

    # ------------------------------------------------------------ generating
    def generate(self, prompt: Prompt, options: GenerationOptions | None = None, *,
                 cancel: CancelToken | None = None, **overrides: Any) -> GenerationResult:
        """Generate a full answer to a prompt string or a list of chat messages."""
        return self._start(prompt, options, cancel, overrides, deliver=False).wait()

    def generate_stream(self, prompt: Prompt, options: GenerationOptions | None = None, *,
                        cancel: CancelToken | None = None, **overrides: Any) -> GenerationStream:
        """Stream :class:`TokenEvent` objects; the stream's ``result`` is the full result."""
        return GenerationStream(self._start(prompt, options, cancel, overrides))

    async def agenerate(self, prompt: Prompt, options: GenerationOptions | None = None, *,
                        cancel: CancelToken | None = None, **overrides: Any) -> GenerationResult:
        """Async twin of :meth:`generate`; cancelling the task cancels the generation."""
        stream = self._start(prompt, options, cancel, overrides, deliver=False)
        async for _ in stream:
            pass
        return stream.result

    def agenerate_stream(self, prompt: Prompt, options: GenerationOptions | None = None, *,
                         cancel: CancelToken | None = None, **overrides: Any) -> GenerationStream:
        """Async twin of :meth:`generate_stream`: use ``async for``."""
        return self.generate_stream(prompt, options, cancel=cancel, **overrides)

    def prefill(self, messages: Sequence[Mapping[str, Any]], *, cancel: CancelToken | None = None) -> int:
        """Evaluate a conversation so far into the KV cache; returns the tokens it evaluated.

        The next generation whose prompt continues ``messages`` (the same
        messages plus a new user turn) then evaluates only the new turn: an
        app can do the work while it waits for the user, e.g. after changing
        the system prompt or shortening the history. Cancelling stops it.
        """
        return self._start_prefill(messages, cancel).wait()

    async def aprefill(self, messages: Sequence[Mapping[str, Any]], *, cancel: CancelToken | None = None) -> int:
        """Async twin of :meth:`prefill`; cancelling the task stops it."""
        return await self._start_prefill(messages, cancel).await_result()

    def _start_prefill(self, messages: Sequence[Mapping[str, Any]], cancel: CancelToken | None) -> Stream[int]:
        loaded = self._require()
        token = cancel or CancelToken()

        def produce(cancel_token: CancelToken, emit: Callable[[Any], None]) -> int:
            engine = loaded.engine
            chat = engine.render_chat([dict(m) for m in messages], add_generation_prompt=False)
            tokens = engine.tokenize(chat.text, add_bos=chat.add_bos, special=True)
            loaded.context_text, loaded.context_tokens = "", []
            evaluated = len(tokens) - engine.cached_prefix(tokens)
            for _ in engine.generate(tokens, GenerationOptions(temperature=0.0).sampling(), cancel_token):
                break  # the prompt is in the cache once the first token is sampled; that token is not kept
            cancel_token.raise_if_cancelled("prefill")
            loaded.context_text, loaded.context_tokens = chat.text, tokens
            return evaluated

        return loaded.worker.stream(produce, token, deliver=False)

    def _start(self, prompt: Prompt, options: GenerationOptions | None, cancel: CancelToken | None,
               overrides: Mapping[str, Any], grammar: Any = None,
               tools: Sequence[Mapping[str, Any]] | None = None, *, deliver: bool = True) -> Stream[GenerationResult]:
        loaded = self._require()
        opts = replace(options or GenerationOptions(), **overrides) if overrides else (options or GenerationOptions())
        messages = _messages(prompt, opts)
        if grammar is None and opts.grammar:
            grammar = loaded.engine.compile_grammar(gbnf=opts.grammar)
        token = cancel or CancelToken()
        submitted = time.perf_counter()

        events = self._events
        preview = prompt if isinstance(prompt, str) else str(prompt[-1].get("content", ""))

        def produce(cancel_token: CancelToken, emit: Callable[[Any], None]) -> GenerationResult:
            events.emit(GenerationStarted(model_id=loaded.model_id, prompt=preview[:100]))
            try:
                result = _run(loaded, messages, prompt, opts, grammar, tools, cancel_token, emit, submitted)
            except Exception as exc:
                events.emit(GenerationFailed(model_id=loaded.model_id, error=str(exc)))
                raise
            events.emit(GenerationCompleted(model_id=loaded.model_id, tokens_used=result.output_tokens,
                                            latency_ms=result.latency_ms, finish_reason=result.finish_reason))
            return result

        return loaded.worker.stream(produce, token, deliver=deliver)

    # Used by structured output and tool calling, which compose this feature.
    def _start_with(self, prompt: Prompt, options: GenerationOptions, cancel: CancelToken | None, grammar: Any,
                    tools: Sequence[Mapping[str, Any]] | None = None, *,
                    deliver: bool = False) -> Stream[GenerationResult]:
        """Start a generation constrained by ``grammar`` and/or offering ``tools`` to the template
        (result-only unless ``deliver``: then its token events stream too)."""
        return self._start(prompt, options, cancel, {}, grammar, tools, deliver=deliver)


def _messages(prompt: Prompt, opts: GenerationOptions) -> list[dict[str, Any]] | None:
    """The chat messages for a prompt, or None for a raw completion."""
    if isinstance(prompt, str):
        if not prompt.strip() and opts.raw:
            raise InvalidInputError("the prompt is empty")
        if opts.raw:
            return None
        messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    else:
        messages = [dict(m) for m in prompt]
        if not messages:
            raise InvalidInputError("the message list is empty")
        for m in messages:
            if "role" not in m or "content" not in m:
                raise InvalidInputError(f"each message needs 'role' and 'content': {m!r}")
    if opts.system_prompt and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": opts.system_prompt})
    return messages


class _StopMatcher:
    """Emits text while holding back any tail that could still grow into a stop string."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.text = ""
        self.emitted = 0

    def feed(self, piece: str) -> tuple[str, bool]:
        """Returns (text safe to emit now, whether a stop string was hit)."""
        self.text += piece
        for stop in self.stops:
            at = self.text.find(stop, max(0, self.emitted - len(stop)))
            if at != -1:
                self.text = self.text[:at]
                out = self.text[self.emitted:]
                self.emitted = len(self.text)
                return out, True
        hold = max((_overlap(self.text, s) for s in self.stops), default=0)
        out = self.text[self.emitted:len(self.text) - hold]
        self.emitted += len(out)
        return out, False

    def flush(self) -> str:
        out = self.text[self.emitted:]
        self.emitted = len(self.text)
        return out


def _overlap(text: str, stop: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``stop``."""
    for n in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:n]):
            return n
    return 0


def _run(loaded: _Loaded, messages: list[dict[str, Any]] | None, prompt: Prompt, opts: GenerationOptions,
         grammar: Any, tools: Sequence[Mapping[str, Any]] | None, cancel: CancelToken, emit: Callable[[Any], None],
         submitted: float) -> GenerationResult:
    engine = loaded.engine
    started = time.perf_counter()
    if messages is None:
        assert isinstance(prompt, str)
        text, add_bos, special, stops = prompt, True, False, list(opts.stop)
    else:
        chat = engine.render_chat(messages, [dict(t) for t in tools] if tools else None)
        text, add_bos, special, stops = chat.text, chat.add_bos, True, list(opts.stop) + list(chat.stop)
    if loaded.context_text and text.startswith(loaded.context_text):
        # The conversation goes on: keep the tokens already in the cache, tokenize only the new text.
        tokens = loaded.context_tokens + engine.tokenize(text[len(loaded.context_text):], add_bos=False,
                                                         special=special)
    else:
        tokens = engine.tokenize(text, add_bos=add_bos, special=special)
    loaded.context_text, loaded.context_tokens = "", []
    generated: list[int] = []
    evaluated = len(tokens) - engine.cached_prefix(tokens)
    max_tokens = min(opts.max_tokens, engine.n_ctx - len(tokens))
    matcher = _StopMatcher(stops)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    thinking = _ThinkTracker()
    first_at: float | None = None
    count = 0
    finish: FinishReason = "length"
    hit_stop_string = False
    try:
        for token in engine.generate(tokens, opts.sampling(), cancel, grammar=grammar, n_threads=opts.threads):
            if first_at is None:
                first_at = time.perf_counter()
            if engine.is_end(token):
                finish = "stop"
                break
            count += 1
            generated.append(token)
            decoded = decoder.decode(engine.piece(token))
            in_thought = thinking.feed(decoded)
            piece, hit_stop_string = matcher.feed(decoded)
            if piece:
                emit(TokenEvent(piece, token, count - 1, in_thought))
            if hit_stop_string:
                finish = "stop"
                break
            if count >= max_tokens:
                break
        if cancel.cancelled:
            finish = "cancelled"
    except CancelledError:
        finish = "cancelled"
    if finish != "cancelled" and not hit_stop_string:
        tail = matcher.feed(decoder.decode(b"", final=True))[0] + matcher.flush()
        if tail:
            emit(TokenEvent(tail, -1, count, thinking.inside()))
    end = time.perf_counter()
    if finish != "cancelled":
        loaded.context_text, loaded.context_tokens = text + thinking.text, tokens + generated
    text = matcher.text[:matcher.emitted] if finish == "cancelled" else matcher.text
    ttft = (first_at - started) if first_at is not None else None
    decode_s = end - first_at if first_at is not None else 0.0
    thought, answer = _split_thinking(text)
    return GenerationResult(
        text=answer, model_id=loaded.model_id, input_tokens=len(tokens), output_tokens=count,
        prompt_tokens_evaluated=evaluated, latency_ms=(end - started) * 1000,
        time_to_first_token_ms=ttft * 1000 if ttft is not None else None,
        prefill_tokens_per_second=evaluated / ttft if ttft else None,
        decode_tokens_per_second=(count - 1) / decode_s if count > 1 and decode_s > 0 else None,
        finish_reason=finish, thinking_content=thought, thinking_tokens=thinking.count(),
        response_tokens=count - thinking.count(), queue_ms=(started - submitted) * 1000,
    )


class _ThinkTracker:
    """Which generated tokens belong to ``<think>…</think>`` (tags included), from their text spans."""

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self.text = ""
        self.spans: list[tuple[int, int]] = []

    def feed(self, piece: str) -> bool:
        """Add one token's text; True when it is (or may be becoming) part of a thought."""
        start = len(self.text)
        self.text += piece
        self.spans.append((start, len(self.text)))
        return self._overlaps(start, len(self.text)) or self.inside()

    def inside(self) -> bool:
        """True while a thought is open, or the text ends with the start of an opening tag."""
        opened, closed = self.text.rfind(self.OPEN), self.text.rfind(self.CLOSE)
        return opened > closed or _overlap(self.text, self.OPEN) > 0

    def count(self) -> int:
        return sum(1 for start, end in self.spans if self._overlaps(start, end))

    def _overlaps(self, start: int, end: int) -> bool:
        at = self.text.find(self.OPEN)
        while at != -1 and at < end:
            close = self.text.find(self.CLOSE, at)
            block_end = len(self.text) + 1 if close == -1 else close + len(self.CLOSE)
            if start < block_end and end > at:
                return True
            at = self.text.find(self.OPEN, block_end)
        return False


def _split_thinking(text: str) -> tuple[str | None, str]:
    start = text.find("<think>")
    if start == -1:
        return None, text
    end = text.find("</think>", start)
    if end == -1:
        return text[start + 7:].strip(), ""
    return text[start + 7:end].strip(), (text[:start] + text[end + 8:]).strip()


TextGeneration = TextGenerator()

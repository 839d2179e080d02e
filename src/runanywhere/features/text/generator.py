"""Text generation and chat with llama.cpp: blocking, streaming and async, cancellable.

``TextGeneration`` is the default :class:`TextGenerator`; create more to hold
several models at once. Each loaded model is owned by a worker thread, so callers
never touch the engine together; the KV cache keeps each conversation's tokens,
so its next turn only evaluates its new tokens
(``GenerationResult.prompt_tokens_evaluated``).

A loaded model runs up to ``max_sequences`` generations at once (by default 4 on a
small CPU, fewer for a long ``n_ctx``: :func:`~runanywhere.runtime.llama.default_max_sequences`):
a :class:`~.scheduler.BatchScheduler` on the worker decodes them together by continuous
batching (the rest queue in order), each with a context of ``n_ctx`` tokens and its
finished conversation kept for its next turn; a greedy reply is token for token the one
the request gets alone. ``max_sequences=1`` runs one generation at a time in a single
llama.cpp context. A vision-language model runs one request at a time (its requests
queue on the model's worker).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from ...core.cancel import CancelToken
from ...core.errors import InvalidInputError, SDKErrorCode
from ...core.events import GenerationFailed, GenerationStarted
from ...runtime.llama import LlamaHolder, LoadedLlama
from ...runtime.worker import ResultStream, Stream
from .decode import TEMPLATE_DEFAULT_SYSTEM, compile_grammar, completed, run_generation
from .request import GenerationOptions, GenerationRequest, Prompt, checked_messages, options_with
from .result import GenerationResult, TokenEvent
from .scheduler import BatchScheduler


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

    def wait(self) -> GenerationResult:
        """Run to the end and return the result (raises the generation's error, e.g. a bad grammar)."""
        for _ in self:
            pass
        return self.result


@dataclass
class LoadedText(LoadedLlama):
    """A loaded language model and the scheduler that batches its generations (made on first use)."""

    scheduler: BatchScheduler | None = field(default=None, init=False)


class TextGenerator(LlamaHolder):
    """Loads one GGUF language model and generates text with it."""

    component = "llm"
    batching = True
    loaded_type = LoadedText

    # ------------------------------------------------------------ generating
    def start(self, request: GenerationRequest, *, cancel: CancelToken | None = None,
              deliver: bool = True) -> GenerationStream:
        """Queue ``request`` on the model's worker and return its stream (the one entry every generation uses).

        The grammar is compiled there, on the engine's own thread; a bad one raises
        :class:`InvalidInputError` from the stream. ``deliver=False`` keeps only the
        result (no token events are queued), for callers that just wait.
        """
        if not isinstance(request, GenerationRequest):
            raise InvalidInputError("start() takes a GenerationRequest", code=SDKErrorCode.INVALID_PARAMETER)
        if request.images:
            raise InvalidInputError("a text model takes no images; load a vision-language model",
                                    code=SDKErrorCode.INVALID_INPUT)
        loaded = self._require()
        if loaded.engine.batch is not None:
            return GenerationStream(self._scheduler().submit(request, cancel or CancelToken(), deliver=deliver))
        submitted = time.perf_counter()
        events = self._events

        def produce(cancel_token: CancelToken, emit: Callable[[Any], None]) -> GenerationResult:
            dequeued = time.perf_counter()
            grammar = compile_grammar(loaded.engine, request.grammar)
            events.emit(GenerationStarted(model_id=loaded.model_id, prompt=request.preview()))
            try:
                result = run_generation(loaded.session, loaded.model_id, request, grammar, cancel_token, emit,
                                        queue_ms=(dequeued - submitted) * 1000)
            except Exception as exc:
                events.emit(GenerationFailed(model_id=loaded.model_id, error=str(exc)))
                raise
            events.emit(completed(result))
            return result

        return GenerationStream(loaded.worker.stream(produce, cancel or CancelToken(), deliver=deliver))

    @property
    def max_sequences(self) -> int:
        """How many generations the loaded model runs at once (1: one at a time, queued in order)."""
        return self._scheduler().max_sequences if self._batched() else 1

    @property
    def max_sequence_tokens(self) -> int:
        """The most tokens (prompt + reply) one generation holds: its own context. A longer prompt fails up
        front with :class:`ContextLengthError`; a reply stops where the context ends (``finish_reason="length"``)."""
        return self._require().engine.n_ctx

    @property
    def running_sequences(self) -> int:
        """Batched generations decoding (or evaluating their prompt) right now (0 without batching)."""
        return self._scheduler().running if self._batched() else 0

    @property
    def queued_sequences(self) -> int:
        """Batched generations waiting for a free sequence or context budget, in order (0 without batching)."""
        return self._scheduler().queued if self._batched() else 0

    def forget_conversations(self) -> None:
        """Drop every conversation kept in the model's KV cache for its next turn.

        The next request evaluates its whole prompt, and no earlier conversation's state stays in the
        model's memory (e.g. when another user takes over). It runs on the model's worker once the model
        is idle (no generation running or queued; those go on unchanged) and returns then.
        """
        loaded, forget = self._forgetting()
        loaded.worker.call(forget)

    async def aforget_conversations(self) -> None:
        """Async twin of :meth:`forget_conversations`."""
        loaded, forget = self._forgetting()
        await loaded.worker.acall(lambda _: forget(), CancelToken())

    def _forgetting(self) -> tuple[LoadedText, Callable[[], None]]:
        """The loaded model and the job that empties its caches (run on its worker)."""
        loaded = cast(LoadedText, self._require())
        scheduler = self._scheduler() if self._batched() else None

        def forget() -> None:
            loaded.session.forget()
            loaded.engine.clear_cache()
            if scheduler is not None:
                scheduler.forget_parked()

        return loaded, forget

    def _batched(self) -> bool:
        return self._require().engine.batch is not None

    def _scheduler(self) -> BatchScheduler:
        """The loaded model's scheduler, made on first use."""
        loaded = cast(LoadedText, self._require())
        with self._state_lock:
            if loaded.scheduler is None:
                loaded.scheduler = BatchScheduler(loaded.engine, loaded.worker, loaded.model_id, self._events)
            return loaded.scheduler

    def generate(self, prompt: Prompt, options: GenerationOptions | None = None, *,
                 cancel: CancelToken | None = None, **overrides: Any) -> GenerationResult:
        """Generate a full answer to a prompt string or a list of chat messages."""
        return self.start(_request(prompt, options, overrides), cancel=cancel, deliver=False).wait()

    def generate_stream(self, prompt: Prompt, options: GenerationOptions | None = None, *,
                        cancel: CancelToken | None = None, **overrides: Any) -> GenerationStream:
        """Stream :class:`TokenEvent` objects; the stream's ``result`` is the full result."""
        return self.start(_request(prompt, options, overrides), cancel=cancel)

    async def agenerate(self, prompt: Prompt, options: GenerationOptions | None = None, *,
                        cancel: CancelToken | None = None, **overrides: Any) -> GenerationResult:
        """Async twin of :meth:`generate`; cancelling the task cancels the generation."""
        stream = self.start(_request(prompt, options, overrides), cancel=cancel, deliver=False)
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
        conversation = list(checked_messages(messages))
        loaded = self._require()
        token = cancel or CancelToken()
        if loaded.engine.batch is not None:
            return self._scheduler().submit(None, token, deliver=False, prefill=conversation)

        def produce(cancel_token: CancelToken, emit: Callable[[Any], None]) -> int:
            session = loaded.session
            engine = session.engine
            chat = engine.render_chat(conversation, add_generation_prompt=False,
                                      default_system=TEMPLATE_DEFAULT_SYSTEM)
            tokens = engine.tokenize(chat.text, add_bos=chat.add_bos, special=True)
            session.forget()
            evaluated = len(tokens) - engine.cached_prefix(tokens)
            for _ in engine.generate(tokens, GenerationOptions(temperature=0.0).sampling(), cancel_token):
                break  # the prompt is in the cache once the first token is sampled; that token is not kept
            cancel_token.raise_if_cancelled("prefill")
            session.remember(chat.text, tokens)
            return evaluated

        return loaded.worker.stream(produce, token, deliver=False)


def _request(prompt: Prompt, options: GenerationOptions | None, overrides: Mapping[str, Any]) -> GenerationRequest:
    return GenerationRequest(prompt, options_with(options, overrides))


TextGeneration = TextGenerator()

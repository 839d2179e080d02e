"""Continuous batching: up to ``max_sequences`` generations decoded together on one loaded model.

Requests wait in a FIFO queue; each step of the loop (a job on the model's worker) admits the
queue's head while fewer than ``max_sequences`` run, then evaluates prompt chunks (at most 63
tokens each, ``n_batch`` in all) of the sequences still in prefill and one token of every decoding
sequence together. Each sequence has a KV stream and a context of ``n_ctx`` tokens of its own: a
prompt that does not fit fails up front with :class:`ContextLengthError`, a reply ends with
``finish_reason="length"`` where the context does. A sequence that ends (stop, length, cancelled,
failed) leaves at once and frees its cells; a finished one stays parked for its conversation's
next turn. Each sequence has its own sampler chain, grammar, stops, seed, stream and metrics.
Cancelling one (in prefill too) only removes it: the others' batches go on unchanged. Other jobs
on the worker (loads, token counts) run between loops.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any, cast

from ...backends.base import LanguageModel
from ...backends.llamacpp_batch import MAX_ROWS_PER_SEQUENCE, Chunk, SequenceSampler
from ...core.bridge import Channel
from ...core.cancel import CancelToken
from ...core.errors import CancelledError, ContextLengthError, ModelNotLoadedError
from ...core.events import EventBus, GenerationFailed, GenerationStarted
from ...runtime.llama import LlamaSession
from ...runtime.worker import EngineWorker, Stream
from .conversations import SequenceIds
from .decode import TEMPLATE_DEFAULT_SYSTEM, PromptTokens, Sampler, compile_grammar, completed, prompt_text, result_of
from .request import GenerationOptions, GenerationRequest

#: A chat conversation so far, to evaluate into the cache with no reply (``TextGenerator.prefill``).
Prefill = list[dict[str, Any]]


@dataclass
class _Job:
    """A queued request: what to run, how to report it, and when it was submitted."""

    request: GenerationRequest | None
    prefill: Prefill | None
    cancel: CancelToken
    emit: Callable[[Any], None]
    future: Future[Any]
    submitted: float = field(default_factory=time.perf_counter)
    prompt: PromptTokens | None = None


@dataclass
class _Sequence:
    """A running generation: its id, tokens in the cache, next token to decode, and its own samplers."""

    job: _Job
    seq: int
    prompt: PromptTokens
    in_cache: int
    chain: SequenceSampler | None
    text: Sampler
    max_tokens: int
    started: float
    next_token: int | None = None


class BatchScheduler:
    """Runs the generations of one loaded model together, ``max_sequences`` at a time."""

    def __init__(self, engine: LanguageModel, worker: EngineWorker, model_id: str, events: EventBus) -> None:
        batch = engine.batch
        if batch is None:
            raise ModelNotLoadedError("this model was loaded without max_sequences; it generates one at a time")
        self.engine, self.batch, self.worker, self.model_id, self.events = engine, batch, worker, model_id, events
        self.max_sequences = batch.n_seq // 2
        self._ids = SequenceIds(batch, self.max_sequences)
        self._session = LlamaSession(engine)
        self._queue: deque[_Job] = deque()
        self._running: list[_Sequence] = []
        self._lock = threading.Lock()
        self._looping = False
        self._threads = batch.threads

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def forget_parked(self) -> None:
        """Free the parked conversations. Call on the worker, outside the loop (nothing runs then)."""
        self._ids.forget()

    def submit(self, request: GenerationRequest | None, cancel: CancelToken, *, deliver: bool = True,
               prefill: Prefill | None = None) -> Stream[Any]:
        """Queue a generation (or a conversation to ``prefill``); its stream of token events and result."""
        items: Channel[Any] = Channel()
        job = _Job(request, prefill, cancel, items.put if deliver else _discard, Future())
        job.future.add_done_callback(lambda _: items.close())
        with self._lock:
            self._queue.append(job)
            if not self._looping:
                self._looping = self._start_loop()
        return Stream(items, job.future, cancel)

    def _start_loop(self) -> bool:
        """Submit the loop to the worker (lock held); False (the queue failed) when the worker is closed."""
        try:
            self.worker.stream(self._loop, CancelToken(), deliver=False)
        except RuntimeError:  # the model was unloaded: its worker takes no more jobs
            while self._queue:
                self._queue.popleft().future.set_exception(ModelNotLoadedError("the language model was unloaded"))
            return False
        return True

    # ------------------------------------------------------------------ the loop, on the worker
    def _loop(self, cancel: CancelToken, _emit: Callable[[Any], None]) -> None:
        """Admit and step until nothing runs or waits; a cancelled loop (unload, ``cancel()``) ends its running."""
        while True:
            if cancel.cancelled:
                for sequence in self._running:
                    sequence.job.cancel.cancel()
            elif self.batch.ctx is None:
                self._fail_all(ModelNotLoadedError("the language model was unloaded; load it again"))
            else:
                self._admit()
            self._leave_cancelled()
            if not self._running:
                with self._lock:
                    if not self._queue or cancel.cancelled:
                        self._looping = bool(self._queue) and self._start_loop()
                        return
                continue
            try:
                self._step()
            except Exception as exc:  # llama.cpp failed the whole batch: every running sequence ends with it
                for sequence in list(self._running):
                    self._end(sequence, error=exc)

    def _admit(self) -> None:
        """Start queued requests in order while fewer than ``max_sequences`` run."""
        while len(self._running) < self.max_sequences:
            with self._lock:
                job = self._queue[0] if self._queue else None
            if job is None:
                return
            try:
                if job.cancel.cancelled:
                    self._pop(job)
                    if job.request is None:
                        self._prefilled(job, 0)
                    else:
                        job.future.set_result(self._cancelled_result(job))
                    continue
                self._start(job)
            except Exception as exc:
                self._pop(job)
                self.events.emit(GenerationFailed(model_id=self.model_id, error=str(exc)))
                job.future.set_exception(exc)

    def _pop(self, job: _Job) -> None:
        with self._lock:
            self._queue.remove(job)

    def _start(self, job: _Job) -> None:
        """Make ``job`` a running sequence, in its conversation's parked sequence when it continues one."""
        started = time.perf_counter()
        prompt = job.prompt = job.prompt or self._prompt(job)
        n_ctx = self.batch.n_ctx_seq
        if len(prompt.tokens) >= n_ctx:
            raise ContextLengthError(
                f"the prompt is {len(prompt.tokens)} tokens but the context holds {n_ctx}; "
                "shorten it or load the model with a larger n_ctx",
                details={"prompt_tokens": len(prompt.tokens), "n_ctx": n_ctx})
        options = job.request.options if job.request is not None else GenerationOptions(max_tokens=1)
        max_tokens = 0 if job.prefill else min(options.max_tokens, n_ctx - len(prompt.tokens))
        match, reuse = self._ids.best_match(prompt.tokens)
        chain = None
        if job.request is not None:
            grammar = compile_grammar(self.engine, job.request.grammar)
            chain = self.batch.sampler(options.sampling(), grammar)
            self.events.emit(GenerationStarted(model_id=self.model_id, prompt=job.request.preview()))
        self._pop(job)
        seq = self._ids.take(match, reuse)
        prompt = PromptTokens(prompt.text, prompt.tokens, prompt.stops, len(prompt.tokens) - reuse)
        self._running.append(_Sequence(job, seq, prompt, reuse, chain, Sampler(self.engine, prompt.stops, job.emit),
                                       max_tokens, started))

    def _prompt(self, job: _Job) -> PromptTokens:
        """The job's prompt as tokens, keeping a parked conversation's exact tokens when it continues one."""
        if job.request is None:
            chat = self.engine.render_chat(cast(Prefill, job.prefill), add_generation_prompt=False,
                                           default_system=TEMPLATE_DEFAULT_SYSTEM)
            tokens = self._ids.tokenize(self._session, chat.text, add_bos=chat.add_bos, special=True)
            return PromptTokens(chat.text, tokens, (), 0)
        text, add_bos, special, stops = prompt_text(self.engine, job.request)
        return PromptTokens(text, self._ids.tokenize(self._session, text, add_bos=add_bos, special=special), stops, 0)

    def _step(self) -> None:
        """Prompt chunks while ``n_batch`` has room, then one token of every decoding sequence (one micro-batch).

        Chunks first: a request admitted now gets its first token without waiting for the others' step.
        """
        self.batch.set_threads(max((s.job.request.options.threads or 0 for s in self._running
                                    if s.job.request is not None), default=0) or self._threads)
        room = self.batch.n_batch
        for sequence in [s for s in self._running if s.next_token is None]:
            if room <= 0:
                break
            rest = sequence.prompt.tokens[sequence.in_cache:sequence.in_cache + min(room, MAX_ROWS_PER_SEQUENCE)]
            ends = sequence.in_cache + len(rest) == len(sequence.prompt.tokens)
            self._evaluate([Chunk(sequence.seq, rest, sequence.in_cache, ends and sequence.chain is not None)])
            room -= len(rest)
        decoding = [s for s in self._running if s.next_token is not None]
        if decoding:
            self._evaluate([Chunk(s.seq, [cast(int, s.next_token)], s.in_cache, True) for s in decoding])

    def _evaluate(self, chunks: list[Chunk]) -> None:
        """Decode ``chunks`` and move their sequences on: sample a token, or end a finished one."""
        rows = self.batch.decode(chunks)
        for chunk in chunks:
            sequence = next(s for s in self._running if s.seq == chunk.seq_id)
            sequence.in_cache += len(chunk.tokens)
            if sequence.chain is None and sequence.in_cache == len(sequence.prompt.tokens):
                self._end(sequence)  # a prefill: the conversation is in the cache
            elif chunk.seq_id in rows and sequence.chain is not None:
                token = sequence.chain.sample(self.batch.ctx, rows[chunk.seq_id])
                if sequence.text.take(token, sequence.max_tokens):
                    self._end(sequence)
                else:
                    sequence.next_token = token

    def _leave_cancelled(self) -> None:
        for sequence in list(self._running):
            if sequence.job.cancel.cancelled:
                sequence.text.finish = "cancelled"
                self._end(sequence)

    def _end(self, sequence: _Sequence, error: Exception | None = None) -> None:
        """The sequence leaves: its cells are freed (or parked when it finished) and its caller gets the result."""
        self._running.remove(sequence)
        if sequence.chain is not None:
            sequence.chain.close()
        text, job, prompt = sequence.text, sequence.job, sequence.prompt
        if text.finish == "cancelled":  # only what was evaluated before the cancel counts
            reused = len(prompt.tokens) - prompt.evaluated
            prompt = replace(prompt, evaluated=max(0, min(sequence.in_cache, len(prompt.tokens)) - reused))
        if error is None and text.finish != "cancelled":
            session = LlamaSession(self.engine)
            if job.request is None:
                session.remember(prompt.text, prompt.tokens)
            else:
                session.remember(prompt.text + text.thinking.text, prompt.tokens + text.generated)
            self._ids.park(sequence.seq, session, sequence.in_cache)
        else:
            self._ids.release(sequence.seq)
        if error is not None:
            self.events.emit(GenerationFailed(model_id=self.model_id, error=str(error)))
            job.future.set_exception(error)
        elif job.request is None:
            self._prefilled(job, prompt.evaluated)
        else:
            text.close()
            result = result_of(self.model_id, prompt, text, sequence.started,
                               (sequence.started - job.submitted) * 1000)
            self.events.emit(completed(result))
            job.future.set_result(result)

    @staticmethod
    def _prefilled(job: _Job, evaluated: int) -> None:
        """A prefill's outcome: the tokens it evaluated, or a CancelledError when it was cancelled."""
        try:
            job.cancel.raise_if_cancelled("prefill")
        except CancelledError as exc:
            job.future.set_exception(exc)
        else:
            job.future.set_result(evaluated)

    def _cancelled_result(self, job: _Job) -> Any:
        """What a request cancelled while queued gives: a cancelled, empty result (its events said, as when it
        is cancelled once running)."""
        request = cast(GenerationRequest, job.request)
        self.events.emit(GenerationStarted(model_id=self.model_id, prompt=request.preview()))
        now = time.perf_counter()
        sampler = Sampler(self.engine, (), job.emit)
        sampler.finish = "cancelled"
        sampler.close()
        result = result_of(self.model_id, PromptTokens("", [], (), 0), sampler, now, (now - job.submitted) * 1000)
        self.events.emit(completed(result))
        return result

    def _fail_all(self, error: Exception) -> None:
        with self._lock:
            jobs, self._queue = list(self._queue), deque()
        for job in jobs:
            job.future.set_exception(error)


def _discard(item: Any) -> None:
    pass


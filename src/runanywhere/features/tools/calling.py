"""Tool calling: the generate → parse calls → run tools → feed results back loop.

Tools are described to the model through its chat template's ``tools``
support when it has one, otherwise by a short system-prompt section. Calls are
parsed (Hermes, LFM2 pythonic, plain JSON) without ever evaluating model
output; an executor's exception goes back to the model as a tool error.
``tool_choice="required"`` forces a well-formed first call with a grammar.
A model whose template teaches a call syntax (Qwen2.5's ``<tool_call>``) is
read in that syntax only; :meth:`ToolRun.events` streams text and calls.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Literal

from ...backends.base import ToolCallGrammar
from ...core.bridge import run_in_thread
from ...core.cancel import CancelToken
from ...core.errors import GenerationError, InvalidInputError
from ...core.logging import SDKLogger
from ...core.validation import choice, flag, mapping, positive_int, positive_number
from ..text import (
    GenerationOptions,
    GenerationRequest,
    GenerationResult,
    GenerationStream,
    Prompt,
    TextGeneration,
    TextGenerator,
    TokenEvent,
)
from ..text.request import checked_prompt, options_with
from .grammar import forced_call_grammar
from .parsing import parse_tool_calls, template_format
from .prompts import render_tool_prompt, validate_arguments
from .streaming import CallSplitter
from .types import ToolCall, ToolCallFormat, ToolDefinition, ToolResult, as_format

ToolExecutor = Callable[[dict[str, Any]], Any] | Callable[[dict[str, Any]], Awaitable[Any]]
ToolChoice = Literal["auto", "required", "none"]
ToolRunEvent = str | ToolCall | ToolResult
"""What :meth:`ToolRun.events` yields: reply text, a call the model wrote, a tool's result."""
TOOL_CHOICES: tuple[ToolChoice, ...] = ("auto", "required", "none")
DEFAULT_TOOL_TIMEOUT_S = 60.0
_log = SDKLogger("ToolCalling")


@dataclass(frozen=True)
class ToolCallingResult:
    """The final answer, every call made and its result, and each round's generation."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    tool_results: tuple[ToolResult, ...]
    generations: tuple[GenerationResult, ...]
    is_complete: bool

    @property
    def rounds(self) -> int:
        return len(self.generations)


class ToolCaller:
    """Registers tools and runs the tool-calling loop with a :class:`TextGenerator`."""

    def __init__(self, generator: TextGenerator | None = None) -> None:
        self.generator = generator or TextGeneration
        self._tools: dict[str, tuple[ToolDefinition, ToolExecutor | None]] = {}
        self._timeouts: dict[str, float | None] = {}
        self._lock = threading.Lock()

    @property
    def tools(self) -> list[ToolDefinition]:
        with self._lock:
            return [definition for definition, _ in self._tools.values()]

    def register_tool(self, definition: ToolDefinition | Mapping[str, Any], executor: ToolExecutor, *,
                      timeout_s: float | None = DEFAULT_TOOL_TIMEOUT_S) -> ToolDefinition:
        """Add a tool (a :class:`ToolDefinition` or an OpenAI-style dict) and the function that runs it.

        A call that runs past ``timeout_s`` (None: no limit) is reported to the model, and in the
        result, as that tool's error; the run goes on.
        """
        tool = definition if isinstance(definition, ToolDefinition) else ToolDefinition.from_openai(
            mapping("the tool definition", definition))
        if not callable(executor):
            raise InvalidInputError(f"the executor of tool {tool.name!r} is not callable")
        if timeout_s is not None:
            positive_number("timeout_s", timeout_s)
        with self._lock:
            self._tools[tool.name] = (tool, executor)
            self._timeouts[tool.name] = timeout_s
        return tool

    def declare_tool(self, definition: ToolDefinition | Mapping[str, Any]) -> ToolDefinition:
        """Offer the model a tool that the caller runs itself (e.g. a remote client): a run with
        ``auto_execute=False`` returns its calls; a run that executes tells the model it cannot run here."""
        tool = definition if isinstance(definition, ToolDefinition) else ToolDefinition.from_openai(dict(definition))
        with self._lock:
            self._tools[tool.name] = (tool, None)
            self._timeouts[tool.name] = None
        return tool

    def unregister_tool(self, name: str) -> None:
        with self._lock:
            self._tools.pop(name, None)

    def clear_tools(self) -> None:
        with self._lock:
            self._tools.clear()

    # ------------------------------------------------------------------ loop
    def generate_with_tools(
        self, prompt: Prompt, options: GenerationOptions | None = None, *, max_tool_calls: int = 5,
        auto_execute: bool = True, format: ToolCallFormat | str = ToolCallFormat.AUTO,
        tool_choice: ToolChoice = "auto", cancel: CancelToken | None = None, **overrides: Any,
    ) -> ToolCallingResult:
        """Answer ``prompt``, calling registered tools as the model asks (at most ``max_tool_calls``)."""
        loop = _Loop(self, prompt, options, max_tool_calls, auto_execute, format, tool_choice, cancel, overrides)
        run = ToolRun(self, loop, stream_tokens=False)
        for stream in run:
            stream.result  # noqa: B018 (waits for the round)
        return run.result()

    def start_run(
        self, prompt: Prompt, options: GenerationOptions | None = None, *, max_tool_calls: int = 5,
        auto_execute: bool = True, format: ToolCallFormat | str = ToolCallFormat.AUTO,
        tool_choice: ToolChoice = "auto", cancel: CancelToken | None = None,
        before_calls: Callable[[], None] | None = None, **overrides: Any,
    ) -> ToolRun:
        """The loop of :meth:`generate_with_tools`, read round by round as each generation streams.

        ``before_calls`` runs before each round's tools do; it may wait (for the
        go-ahead to have side effects) or raise to end the run without them.
        """
        return ToolRun(self, _Loop(self, prompt, options, max_tool_calls, auto_execute, format, tool_choice, cancel,
                                   overrides), before_calls=before_calls)

    async def agenerate_with_tools(
        self, prompt: Prompt, options: GenerationOptions | None = None, *, max_tool_calls: int = 5,
        auto_execute: bool = True, format: ToolCallFormat | str = ToolCallFormat.AUTO,
        tool_choice: ToolChoice = "auto", cancel: CancelToken | None = None, **overrides: Any,
    ) -> ToolCallingResult:
        """Async twin of :meth:`generate_with_tools`; async executors are awaited."""
        loop = _Loop(self, prompt, options, max_tool_calls, auto_execute, format, tool_choice, cancel, overrides)
        while (request := loop.next_generation()) is not None:
            stream = self.generator.start(request, cancel=loop.cancel, deliver=False)
            async for _ in stream:
                pass
            if loop.take(stream.result):
                loop.record([await self._aexecute(call) for call in loop.pending])
        return loop.result()

    def _resolve(self, call: ToolCall) -> tuple[ToolExecutor, float | None]:
        """The executor of a call and its time limit; :class:`_Rejected` for an unknown tool or bad arguments."""
        with self._lock:
            found = self._tools.get(call.name)
            timeout_s = self._timeouts.get(call.name)
        if found is None:
            raise _Rejected(f"unknown tool {call.name!r}")
        if found[1] is None:
            raise _Rejected(f"tool {call.name!r} is run by the caller, not here")
        problems = validate_arguments(found[0], call.arguments)
        if problems:
            raise _Rejected("invalid arguments: " + "; ".join(problems))
        return found[1], timeout_s

    def _execute(self, call: ToolCall) -> ToolResult:
        """Run a call on a thread of its own, waiting at most the tool's time limit (async tools: an event loop)."""
        try:
            executor, timeout_s = self._resolve(call)
            started = time.monotonic()
            value = _wait(_in_thread(executor, dict(call.arguments), call.name), timeout_s, call.name)
            if inspect.isawaitable(value):
                left = None if timeout_s is None else max(0.0, timeout_s - (time.monotonic() - started))
                value = asyncio.run(_limited(value, left, call.name))
        except Exception as exc:  # the model hears about a failing tool; the loop goes on
            return _failure(call, exc)
        return ToolResult(call.id, call.name, result=value)

    async def _aexecute(self, call: ToolCall) -> ToolResult:
        """Async tools are awaited on the loop, others run on a thread of their own; both within the time limit."""
        try:
            executor, timeout_s = self._resolve(call)
            if inspect.iscoroutinefunction(executor):
                value = await _limited(executor(dict(call.arguments)), timeout_s, call.name)
            else:
                value = await _limited(run_in_thread(lambda _token: executor(dict(call.arguments)),
                                                     name=f"tool-{call.name}"), timeout_s, call.name)
                if inspect.isawaitable(value):
                    value = await _limited(value, timeout_s, call.name)
        except Exception as exc:
            return _failure(call, exc)
        return ToolResult(call.id, call.name, result=value)


class ToolRun:
    """A tool-calling run, round by round: iterating gives each round's :class:`GenerationStream`.

    Read each stream to its end before asking for the next round: the calls it
    asked for run in between (e.g. a voice turn speaks an answer as it streams
    and stays silent while tools run). :meth:`result` is the run's outcome.
    """

    def __init__(self, owner: ToolCaller, loop: _Loop, *, stream_tokens: bool = True,
                 before_calls: Callable[[], None] | None = None) -> None:
        self._owner, self._loop, self._stream_tokens = owner, loop, stream_tokens
        self._before_calls = before_calls  # may block, or raise to stop the run before any tool runs

    @property
    def tool_names(self) -> list[str]:
        return [t.name for t in self._loop.tools]

    def __iter__(self) -> Iterator[GenerationStream]:
        loop = self._loop
        while (request := loop.next_generation()) is not None:
            stream = self._owner.generator.start(request, cancel=loop.cancel, deliver=self._stream_tokens)
            yield stream
            self._run_calls(stream.result)

    def events(self) -> Iterator[ToolRunEvent]:
        """The run as it happens: reply text as it streams (``str``), each :class:`ToolCall` as soon as its
        markup closes, then each :class:`ToolResult` as its tool returns; :meth:`result` afterwards."""
        loop = self._loop
        while (request := loop.next_generation()) is not None:
            stream = self._owner.generator.start(request, cancel=loop.cancel)
            split = _Split(loop)
            for event in stream:
                yield from split.feed(event)
            yield from split.finish()
            yield from self._run_calls(stream.result, split.parsed())

    async def aevents(self) -> AsyncIterator[ToolRunEvent]:
        """Async twin of :meth:`events`; async tools are awaited."""
        loop, owner = self._loop, self._owner
        while (request := loop.next_generation()) is not None:
            stream = owner.generator.start(request, cancel=loop.cancel)
            split = _Split(loop)
            async for event in stream:
                for item in split.feed(event):
                    yield item
            for item in split.finish():
                yield item
            if loop.take(stream.result, split.parsed()):
                if (gate := self._before_calls) is not None:
                    await run_in_thread(lambda _token: gate(), name="tool-gate")
                results = [await owner._aexecute(call) for call in loop.pending]
                loop.record(results)
                for result in results:
                    yield result

    def _run_calls(self, generation: GenerationResult,
                   parsed: tuple[list[ToolCall], str] | None = None) -> list[ToolResult]:
        """Record a round and run the calls it asked for (after ``before_calls``); their results."""
        loop = self._loop
        if not loop.take(generation, parsed):
            return []
        if self._before_calls is not None:
            self._before_calls()
        results = [self._owner._execute(call) for call in loop.pending]
        loop.record(results)
        return results

    def result(self) -> ToolCallingResult:
        return self._loop.result()


class _Split:
    """One round's stream read with the run's call syntax: what to yield, and the calls and text it held."""

    def __init__(self, loop: _Loop) -> None:
        self.splitter = CallSplitter(loop.fmt, known=[t.name for t in loop.tools])
        self.calls: list[ToolCall] = []
        self.text: list[str] = []

    def feed(self, event: TokenEvent) -> list[ToolRunEvent]:
        return self._seen(self.splitter.feed(event.text)) if not event.is_thinking else []

    def finish(self) -> list[ToolRunEvent]:
        return self._seen(self.splitter.finish())

    def _seen(self, items: list[str | ToolCall]) -> list[ToolRunEvent]:
        for item in items:
            if isinstance(item, str):
                self.text.append(item)
            else:
                self.calls.append(item)
        return list(items)

    def parsed(self) -> tuple[list[ToolCall], str]:
        return self.calls, "".join(self.text).strip()


class _Rejected(Exception):
    """A call that never reached its executor (unknown tool, invalid arguments)."""


def _failure(call: ToolCall, exc: Exception) -> ToolResult:
    if isinstance(exc, _Rejected):
        return ToolResult(call.id, call.name, error=str(exc))
    _log.warning("tool %s failed: %r", call.name, exc)
    return ToolResult(call.id, call.name, error=f"{type(exc).__name__}: {exc}")


class ToolTimeoutError(Exception):
    """A tool ran past its time limit; the model is told, and the tool's thread is left to finish on its own."""


def _in_thread(executor: ToolExecutor, arguments: dict[str, Any], name: str) -> Future[Any]:
    future: Future[Any] = Future()

    def work() -> None:
        try:
            future.set_result(executor(arguments))
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=work, name=f"runanywhere-tool-{name}", daemon=True).start()
    return future


def _wait(future: Future[Any], timeout_s: float | None, name: str) -> Any:
    try:
        return future.result(timeout_s)
    except FutureTimeout:
        raise ToolTimeoutError(f"tool {name!r} did not return within {timeout_s:g} s") from None


async def _limited(value: Awaitable[Any], timeout_s: float | None, name: str) -> Any:
    try:
        return await asyncio.wait_for(value, timeout_s)
    except TimeoutError:
        raise ToolTimeoutError(f"tool {name!r} did not return within {timeout_s:g} s") from None


class _Loop:
    """The conversation state of one tool-calling run, shared by the sync and async drivers."""

    def __init__(self, owner: ToolCaller, prompt: Prompt, options: GenerationOptions | None, max_tool_calls: int,
                 auto_execute: bool, fmt: ToolCallFormat | str, tool_choice: ToolChoice, cancel: CancelToken | None,
                 overrides: Mapping[str, Any]) -> None:
        positive_int("max_tool_calls", max_tool_calls, allow_zero=True)
        self.tool_choice = choice("tool_choice", tool_choice, TOOL_CHOICES)
        template = owner.generator.engine.chat_template
        self.fmt = as_format(fmt)
        if self.fmt is ToolCallFormat.AUTO:
            self.fmt = template_format(template)  # the syntax the model's own template teaches, if any
        self.auto_execute = flag("auto_execute", auto_execute)
        self.tools = owner.tools if tool_choice != "none" else []
        if tool_choice == "required" and not self.tools:
            raise InvalidInputError("tool_choice='required' needs at least one registered tool")
        self.options = options_with(options, overrides)
        self.max_tool_calls = max_tool_calls
        self.cancel = cancel
        self.native = bool(self.tools) and "tools" in (template or "")
        self.messages = self._initial_messages(checked_prompt(prompt, raw=self.options.raw))
        self.question = next((str(m["content"]) for m in reversed(self.messages) if m.get("role") == "user"), "")
        self.calls: list[ToolCall] = []
        self.results: list[ToolResult] = []
        self.generations: list[GenerationResult] = []
        self.pending: list[ToolCall] = []
        self.text = ""
        self.answer_only = False
        self.forced = False
        self.done = False
        self.complete = True

    def _initial_messages(self, prompt: Prompt) -> list[dict[str, Any]]:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else [dict(m) for m in prompt]
        system = self.options.system_prompt
        self.options = options_with(self.options, {"system_prompt": None})
        if messages and messages[0].get("role") == "system":
            system = f"{messages.pop(0)['content']}\n\n{system}" if system else str(messages[0]["content"])
        # Without native tool support the tools are described in the system message; the answer-only
        # variant (after the budget is spent, or when the model repeats itself) leaves them out.
        section = render_tool_prompt(self.tools, self.fmt) if self.tools and not self.native else ""
        self.system_with_tools = "\n\n".join(p for p in (system, section) if p) or None
        self.system_plain = system or None
        return messages

    def _conversation(self, offer_tools: bool) -> list[dict[str, Any]]:
        system = self.system_with_tools if offer_tools else self.system_plain
        return ([{"role": "system", "content": system}] if system else []) + self.messages

    def next_generation(self) -> GenerationRequest | None:
        """The next generation to run, or None when the loop is over."""
        if self.done:
            return None
        offer = bool(self.tools) and len(self.calls) < self.max_tool_calls and not self.answer_only
        self.forced = offer and self.tool_choice == "required" and not self.calls
        grammar = self._grammar() if self.forced else None
        tools = tuple(t.to_openai() for t in self.tools) if offer and self.native else ()
        return GenerationRequest(self._conversation(offer), self.options, grammar=grammar, tools=tools)

    def _grammar(self) -> ToolCallGrammar:
        """The constraint forcing one well-formed call (compiled by the engine on its worker)."""
        return forced_call_grammar(self.tools, self.fmt)

    def take(self, generation: GenerationResult, parsed: tuple[list[ToolCall], str] | None = None) -> bool:
        """Record a generation; True when it asked for tool calls that should run now.

        ``parsed`` are the calls and remaining text already read from the streamed reply (else it is parsed).
        """
        self.generations.append(generation)
        if generation.finish_reason == "cancelled":
            self.text, self.done, self.complete = generation.text, True, False
            return False
        calls, remaining = parsed or parse_tool_calls(generation.text, self.fmt, known=[t.name for t in self.tools])
        if self.forced and not calls:  # never an answer: the grammar admits only a call
            cut = generation.finish_reason == "length"
            raise GenerationError("max_tokens cut the forced tool call short; raise max_tokens" if cut else
                                  "the forced tool call came out malformed despite its grammar; report it",
                                  details={"text": generation.text})
        fresh = [c for c in calls if not self._already_made(c)]
        if calls and not fresh and self.auto_execute and not self.answer_only:
            self.answer_only = True  # it only repeats calls it has the results of: ask for the answer
            return False
        budget = self.max_tool_calls - len(self.calls)
        if not fresh or budget <= 0 or not self.auto_execute or self.answer_only:
            self.text = remaining.strip() if calls else generation.text.strip()
            if not self.auto_execute:
                self.calls.extend(calls)
            self.done = True
            self.complete = not fresh or not self.auto_execute
            return False
        self.pending = fresh[:budget]
        # A template with tools writes the calls itself (arguments as objects): the content is the text around them.
        content = remaining.strip() if self.native else generation.text
        self.messages.append({"role": "assistant", "content": content,
                              "tool_calls": [c.to_openai(arguments_as_text=not self.native) for c in self.pending]})
        return True

    def _already_made(self, call: ToolCall) -> bool:
        return any(c.name == call.name and c.arguments.items() <= call.arguments.items() for c in self.calls)

    def record(self, results: list[ToolResult]) -> None:
        """Add a round's results to the conversation: one user message that quotes them and repeats the question.

        Small models need the nudge, even with a template that knows ``tool`` messages: given its results as
        ``tool`` messages, Qwen2.5-Coder-0.5B writes the same call again; quoted, it answers from them.
        """
        self.calls.extend(self.pending)
        self.results.extend(results)
        quoted = "\n".join(f"The tool {r.name} returned: {r.content}" for r in results)
        self.messages.append({"role": "user", "content": f"{quoted}\nUse this to answer my question: {self.question}"})

    def result(self) -> ToolCallingResult:
        return ToolCallingResult(self.text, tuple(self.calls), tuple(self.results), tuple(self.generations),
                                 self.complete)


ToolCalling = ToolCaller()

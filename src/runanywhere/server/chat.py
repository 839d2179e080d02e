"""``POST /v1/chat/completions``: one reply, or its chunks as server-sent events.

A streamed reply sends its content as it is generated; with tools offered, the
reply is read as it streams (:class:`CallStream`), so each call goes out as
``tool_calls`` deltas the way OpenAI sends them: its ``index``, ``id`` and
function name first, then its arguments in fragments. Every call's arguments
are checked against its tool's parameter schema; a call that does not match is
a 500 in OpenAI's error shape (the stream's last event once streaming), never
passed on as valid.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import CancelToken, GenerationResult, TextGenerator, ToolCall, VisionLanguageModel
from ..features.structured_output import validate
from ..features.tools import parse_tool_calls, validate_arguments
from ..features.tools.incremental import ArgumentText, CallDone, CallStarted, CallStream, Piece, Text
from .chat_request import ChatPlan, chat_plan
from .errors import APIError
from .params import json_body
from .remote_images import inline_remote_images
from .replies import FINISH, completion_id, created, runs, text_template, timings, usage
from .state import ServerState
from .streaming import event_stream, unless_disconnected


async def chat_completions(request: Request) -> Response:
    state: ServerState = request.app.state.server
    params = await json_body(request)
    model_id = state.chat_model_id(params.take("model", str, required=True))
    generator = await state.chat(model_id)
    if state.config.remote_images and isinstance(generator, VisionLanguageModel):
        await inline_remote_images(params.peek("messages"), max_bytes=state.config.max_body_bytes)
    plan = chat_plan(params, generator, state.config.n_ctx, images=isinstance(generator, VisionLanguageModel))
    params.finish()
    reply = Reply(state, model_id, generator, plan)
    release = state.admit(model_id)
    if plan.stream:
        return event_stream(reply.chunks(), release=release)
    try:
        return JSONResponse(await unless_disconnected(request, reply.complete()))
    finally:
        release()


class Reply:
    """One chat completion being generated."""

    def __init__(self, state: ServerState, model_id: str, generator: TextGenerator, plan: ChatPlan) -> None:
        self.state, self.model_id, self.generator, self.plan = state, model_id, generator, plan
        self.id, self.created = completion_id("chatcmpl"), created()

    async def complete(self) -> dict[str, Any]:
        result = await self.generator.start(self.plan.request, cancel=CancelToken(), deliver=False).aresult()
        self._observe(result)
        content, calls, finish = self._read(result)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = calls
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model_id,
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                "usage": usage(result), "timings": timings(result), "system_fingerprint": None}

    async def chunks(self) -> AsyncIterator[dict[str, Any] | str]:
        """The reply's chunks: each read of the stream takes every token already generated into one delta."""
        yield self._chunk({"role": "assistant", "content": ""})
        calls = CallStream(self.plan.tool_names, self.plan.tool_format) if self.plan.tools else None
        text = {thinking: text_template(self._chunk, "reasoning_content" if thinking else "content")
                for thinking in (False, True)}
        stream = self.generator.start(self.plan.request, cancel=CancelToken())
        async for event in stream:
            for thinking, piece in runs([event, *stream.drain()]):
                if thinking or calls is None:
                    yield text[thinking](piece)
                    continue
                for delta in self._deltas(calls.feed(piece)):
                    yield self._chunk(delta)
        result = stream.result
        self._observe(result)
        if calls is None:
            finish = self._read(result)[2]
        else:
            for delta in self._deltas(calls.close(cut=result.finish_reason != "stop")):
                yield self._chunk(delta)
            finish = "tool_calls" if calls.calls else self._unfinished_call(result)[2] if self.plan.forced \
                else FINISH[result.finish_reason]
        yield {**self._chunk({}, finish), "timings": timings(result)}
        if self.plan.include_usage:
            yield {**self._chunk({}), "choices": [], "usage": usage(result)}

    def _deltas(self, pieces: list[Piece]) -> list[dict[str, Any]]:
        """OpenAI's deltas for streamed pieces of a reply with tools (only the first call without parallel calls)."""
        deltas: list[dict[str, Any]] = []
        for piece in pieces:
            if isinstance(piece, Text):
                deltas.append({"content": piece.text})
            elif piece.index > 0 and not self.plan.parallel_tool_calls:
                continue
            elif isinstance(piece, CallStarted):
                deltas.append({"tool_calls": [{"index": piece.index, "id": piece.id, "type": "function",
                                               "function": {"name": piece.name, "arguments": ""}}]})
            elif isinstance(piece, ArgumentText):
                deltas.append({"tool_calls": [{"index": piece.index, "function": {"arguments": piece.text}}]})
            elif isinstance(piece, CallDone):
                self._check_arguments(piece.call)
        return deltas

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model_id,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
                "system_fingerprint": None}

    def _read(self, result: GenerationResult) -> tuple[str | None, list[dict[str, Any]], str]:
        """(content, tool calls, finish reason) of a finished generation; a schema reply is validated."""
        if self.plan.tools:
            calls, remaining = parse_tool_calls(result.text, self.plan.tool_format, known=self.plan.tool_names)
            if calls:
                calls = calls if self.plan.parallel_tool_calls else calls[:1]
                for call in calls:
                    self._check_arguments(call)
                return remaining or None, [c.to_openai() for c in calls], "tool_calls"
            if self.plan.forced:
                return self._unfinished_call(result)
        if self.plan.schema is not None and result.finish_reason == "stop":
            check = validate(result.text, self.plan.schema)
            if not check.is_valid:
                raise APIError(500, "the reply does not match the JSON schema: " + "; ".join(check.errors),
                               code="schema_mismatch")
        return result.text, [], FINISH[result.finish_reason]

    def _check_arguments(self, call: ToolCall) -> None:
        """A call's arguments must match its tool's parameter schema: a mismatch is the server's failure (500)."""
        tool = next(t for t in self.plan.tools if t.name == call.name)
        errors = validate_arguments(tool, call.arguments)
        if errors:
            raise APIError(500, f"the model's call of {call.name!r} has arguments that do not match its parameter "
                                f"schema: {'; '.join(errors)}", code="tool_arguments_invalid")

    def _unfinished_call(self, result: GenerationResult) -> tuple[None, list[dict[str, Any]], str]:
        """A forced call that did not come out whole: cut short (never shown as content), or a grammar failure."""
        if result.finish_reason != "stop":
            return None, [], FINISH[result.finish_reason]
        raise APIError(500, "the forced tool call came out malformed despite its grammar: "
                       f"{result.text[:200]!r}", code="tool_call_mismatch")

    def _observe(self, result: GenerationResult) -> None:
        metrics = self.state.metrics
        metrics.observe("time_to_first_token_ms", self.model_id, result.time_to_first_token_ms)
        metrics.observe("prefill_tokens_per_second", self.model_id, result.prefill_tokens_per_second)
        metrics.observe("decode_tokens_per_second", self.model_id, result.decode_tokens_per_second)

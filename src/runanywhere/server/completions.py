"""``POST /v1/completions``: a raw text prompt continued (no chat template), whole or streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import CancelToken, GenerationRequest, GenerationResult, ModelCategory
from .errors import bad_request
from .params import Params, json_body
from .replies import FINISH, completion_id, created, timings, usage
from .sampling import generation_options
from .state import ServerState
from .streaming import event_stream, unless_disconnected


async def completions(request: Request) -> Response:
    state: ServerState = request.app.state.server
    params = await json_body(request)
    model_id = state.model_id(params.take("model", str, required=True), ModelCategory.LANGUAGE)
    prompt = _prompt(params)
    stream = params.take("stream", bool, False)
    include_usage = bool(params.take("stream_options", dict, {}).get("include_usage"))
    params.refuse_unless("echo", False, "the prompt is not echoed")
    params.refuse_unless("best_of", 1, "one candidate per request")
    params.refuse_unless("suffix", "", "insertion (a suffix) is not available")
    generation = GenerationRequest(prompt, generation_options(params, state.config.n_ctx, raw=True))
    params.finish()
    generator = await state.chat(model_id)
    ident, when = completion_id("cmpl"), created()

    def body(text: str, finish: str | None) -> dict[str, Any]:
        return {"id": ident, "object": "text_completion", "created": when, "model": model_id,
                "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}]}

    def final(result: GenerationResult) -> dict[str, Any]:
        return {"usage": usage(result), "timings": timings(result)}

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        running = generator.start(generation, cancel=CancelToken())
        async for event in running:  # every token already generated goes out in one chunk
            text = "".join(e.text for e in (event, *running.drain()))
            if text:
                yield body(text, None)
        result = running.result
        yield {**body("", FINISH[result.finish_reason]), "timings": timings(result)}
        if include_usage:
            yield {**body("", None), "choices": [], "usage": usage(result)}

    release = state.admit(model_id)
    if stream:
        return event_stream(chunks(), release=release)
    try:
        result = await unless_disconnected(
            request, generator.start(generation, cancel=CancelToken(), deliver=False).aresult())
    finally:
        release()
    return JSONResponse({**body(result.text, FINISH[result.finish_reason]), **final(result)})


def _prompt(params: Params) -> str:
    prompt = params.take("prompt", (str, list), required=True)
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise bad_request("'prompt' is one string (a list of prompts or of token ids is not supported)",
                              "prompt")
        prompt = prompt[0]
    if not prompt.strip():
        raise bad_request("'prompt' is empty", "prompt")
    return str(prompt)

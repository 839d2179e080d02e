"""``POST /v1/embeddings``: a string or a list of strings to vectors, as floats or base64 float32."""

from __future__ import annotations

import base64

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .. import ModelCategory
from .errors import bad_request, unsupported
from .params import json_body
from .state import ServerState
from .streaming import unless_disconnected


async def embeddings(request: Request) -> Response:
    state: ServerState = request.app.state.server
    params = await json_body(request)
    model_id = state.model_id(params.take("model", str, required=True), ModelCategory.EMBEDDING)
    given = params.take("input", (str, list), required=True)
    texts = [given] if isinstance(given, str) else given
    if not texts or not all(isinstance(t, str) and t for t in texts):
        raise bad_request("'input' is a non-empty string or a list of them (token arrays are not supported)",
                          "input")
    encoding = params.take("encoding_format", str, "float")
    if encoding not in ("float", "base64"):
        raise bad_request("'encoding_format' is 'float' or 'base64'", "encoding_format")
    dimensions = params.take("dimensions", int)
    params.take("user", str)
    params.finish()
    embedder = await state.embedder(model_id)
    release = state.admit(model_id)
    try:
        vectors = await unless_disconnected(request, embedder.aembed_batch(texts))
        tokens = sum([await embedder.acount_tokens(t) for t in texts])
    finally:
        release()
    if dimensions is not None and dimensions != vectors.shape[1]:
        raise unsupported("dimensions", f"{model_id} gives {vectors.shape[1]} dimensions and cannot shorten them")
    data = [{"object": "embedding", "index": i,
             "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if encoding == "base64" else v.tolist()}
            for i, v in enumerate(vectors)]
    return JSONResponse({"object": "list", "data": data, "model": model_id,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

"""The sampling parameters chat and text completions share, read into :class:`GenerationOptions`."""

from __future__ import annotations

from .. import GenerationOptions
from .errors import bad_request
from .params import Params


def generation_options(params: Params, n_ctx: int, **extra: object) -> GenerationOptions:
    """``temperature``, ``top_p``, ``seed``, ``stop``, ``max_tokens`` / ``max_completion_tokens``; the
    OpenAI parameters whose only supported value is their default (``n=1``, no logprobs, no penalties)
    are accepted with it and refused otherwise. Unset ``max_tokens``: up to the end of the context."""
    params.refuse_unless("n", 1, "one choice per request")
    params.refuse_unless("logprobs", False, "token log-probabilities are not reported")
    params.refuse_unless("top_logprobs", 0, "token log-probabilities are not reported")
    params.refuse_unless("frequency_penalty", 0, "only a zero frequency penalty is available")
    params.refuse_unless("presence_penalty", 0, "only a zero presence penalty is available")
    params.refuse_unless("logit_bias", {}, "logit biases are not available")
    params.take("user", str)  # an end-user id for abuse tracking: nothing to do for a local server
    limit = params.take("max_completion_tokens", int) or params.take("max_tokens", int) or n_ctx
    params.take("max_tokens", int)
    stop = params.take("stop", (str, list), [])
    stops = [stop] if isinstance(stop, str) else stop
    if len(stops) > 4 or not all(isinstance(s, str) and s for s in stops):
        raise bad_request("'stop' is a string or a list of up to 4 non-empty strings", "stop")
    options = {"max_tokens": limit, "stop": tuple(stops), "seed": params.take("seed", int)}
    temperature = params.take("temperature", float)
    if temperature is not None:
        if not 0 <= temperature <= 2:
            raise bad_request(f"'temperature' must be between 0 and 2, got {temperature}", "temperature")
        options["temperature"] = float(temperature)
    top_p = params.take("top_p", float)
    if top_p is not None:
        if not 0 < top_p <= 1:
            raise bad_request(f"'top_p' must be in (0, 1], got {top_p}", "top_p")
        options["top_p"] = float(top_p)
    return GenerationOptions(**options, **extra)  # type: ignore[arg-type]

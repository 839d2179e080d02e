"""Reading a request's parameters strictly: each is type-checked as it is taken, and any left over is a 400.

That is how "every parameter is honoured or refused, never silently dropped"
holds: an endpoint takes what it honours, and :meth:`Params.finish` refuses the
rest by name (a parameter sent with its no-op default, such as ``n=1``, is fine
when the endpoint lists it as such).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from .errors import APIError, bad_request, unsupported

_KINDS: dict[type, str] = {str: "a string", bool: "a boolean", int: "an integer", float: "a number",
                           dict: "an object", list: "an array"}


async def json_body(request: Request) -> Params:
    """The request's JSON object as :class:`Params`; malformed JSON or another type is a 400."""
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise APIError(400, "the request body must be a JSON object", code="invalid_json")
    return Params(data)


class Params:
    """A request's parameters, taken one by one."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)
        self._taken: set[str] = set()

    def __contains__(self, name: str) -> bool:
        return self._data.get(name) is not None

    def peek(self, name: str) -> Any:
        """The raw value of ``name`` (None when absent), without taking it."""
        return self._data.get(name)

    def take(self, name: str, kind: type | tuple[type, ...], default: Any = None, *, required: bool = False) -> Any:
        """The parameter's value (``default`` when absent or null), checked to be of ``kind``."""
        self._taken.add(name)
        value = self._data.get(name)
        if value is None:
            if required:
                raise bad_request(f"'{name}' is required", name, "missing_parameter")
            return default
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and int not in kinds:
            kinds = (*kinds, int)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            wanted = " or ".join(_KINDS.get(k, k.__name__) for k in kinds if not (k is int and float in kinds))
            raise bad_request(f"'{name}' must be {wanted}, got {json.dumps(value)[:80]}", name)
        return value

    def refuse_unless(self, name: str, allowed: Any, why: str) -> None:
        """Accept ``name`` only when absent or equal to ``allowed`` (its no-op value); else a 400 saying why."""
        self._taken.add(name)
        value = self._data.get(name)
        if value is not None and value != allowed:
            raise unsupported(name, why)

    def finish(self) -> None:
        """Refuse every parameter not taken (a 400 naming the first)."""
        for name, value in self._data.items():
            if name not in self._taken and value is not None:
                raise unsupported(name, "this server does not implement it")

"""Shared checks of caller input: text, numbers and whole numbers in ranges, choices, mappings, lists, JSON.

Every check raises :class:`InvalidInputError` naming the parameter and saying
what it takes, in one wording, so bad input never surfaces as a bare
``TypeError``, ``ValueError`` or ``UnicodeEncodeError`` from deep inside.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from .errors import InvalidInputError, SDKError

Options = TypeVar("Options")

#: More threads than any machine this runs on has cores; llama.cpp aborts the process on absurd counts.
MAX_THREADS = 512
#: How deeply a JSON value from a caller (a chat message, a tool spec) may nest.
MAX_NESTING = 32


# --------------------------------------------------------------- text-side checks (types, ranges, choices)
def text(name: str, value: Any, *, max_chars: int | None = None, allow_empty: bool = True) -> str:
    """``value`` when it is a ``str`` that UTF-8 can encode (no lone surrogates), within ``max_chars``."""
    if not isinstance(value, str):
        hint = "; decode bytes first (data.decode('utf-8'))" if isinstance(value, (bytes, bytearray)) else ""
        raise InvalidInputError(f"{name} must be a str, got {type(value).__name__}{hint}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(f"{name} has a lone surrogate at position {exc.start}, which UTF-8 cannot encode; "
                                "pass valid text (decode bytes with errors='replace')") from None
    if not allow_empty and not value.strip():
        raise InvalidInputError(f"{name} must not be empty")
    if max_chars is not None and len(value) > max_chars:
        raise InvalidInputError(f"{name} is {len(value)} characters; at most {max_chars} are accepted")
    return value


def number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, error: type[SDKError] = InvalidInputError) -> float:
    """``value`` as a float when it is a finite real number in the range (``low`` excluded with ``low_open``)."""
    try:
        real = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an int too big for a float
        real = math.nan
    if (not math.isfinite(real) or (low is not None and (real < low or (low_open and real == low)))
            or (high is not None and real > high)):
        raise error(f"{name} must be {_number_range(low, high, low_open)}, got {shown(value)}")
    return real


def integer(name: str, value: Any, *, low: int | None = None, high: int | None = None,
            error: type[SDKError] = InvalidInputError) -> int:
    """``value`` when it is a whole number (not a bool) from ``low`` to ``high``."""
    whole = int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else None
    if whole is None or (low is not None and whole < low) or (high is not None and whole > high):
        raise error(f"{name} must be {_integer_range(low, high)}, got {shown(value)}")
    return whole


def flag(name: str, value: Any) -> bool:
    """``value`` when it is ``True`` or ``False`` (a truthy string is not a yes)."""
    if not isinstance(value, bool):
        raise InvalidInputError(f"{name} must be True or False, got {shown(value)}")
    return value


def choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` (a str, or a str-valued enum member) when it is one of ``choices``."""
    allowed = list(choices)
    if isinstance(value, str) and value in allowed:
        return allowed[allowed.index(value)]  # the plain str, also for a str-valued enum member
    raise InvalidInputError(f"{name} must be one of {', '.join(allowed)}; got {shown(value)}")


def mapping(name: str, value: Any) -> dict[str, Any]:
    """A private copy of ``value`` when it is a mapping with ``str`` keys."""
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{name} must be a dict, got {type(value).__name__}")
    bad = next((key for key in value if not isinstance(key, str)), None)
    if bad is not None:
        raise InvalidInputError(f"{name} must have str keys, got the key {shown(bad)}")
    return dict(value)


def texts(name: str, value: Any, *, single: bool = False, allow_empty: bool = True,
          max_items: int | None = None) -> tuple[str, ...]:
    """``value`` as a tuple of checked strings: a list or tuple of ``str`` (one ``str`` too, with ``single``)."""
    if isinstance(value, str) and single:
        return (text(name, value),)
    if isinstance(value, (str, bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        raise InvalidInputError(f"{name} must be a list of str, got {type(value).__name__}")
    items = tuple(value)
    if not items and not allow_empty:
        raise InvalidInputError(f"{name} must not be an empty list")
    if max_items is not None and len(items) > max_items:
        raise InvalidInputError(f"{name} has {len(items)} items; at most {max_items} are accepted")
    return tuple(text(f"{name}[{i}]", item) for i, item in enumerate(items))


def shown(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for messages (a huge int or a broken ``__repr__`` too)."""
    try:
        rendered = repr(value)
    except Exception:  # repr of a 5000-digit int raises ValueError; a caller's object may raise anything
        rendered = f"an int of {value.bit_length()} bits" if isinstance(value, int) else f"a {type(value).__name__}"
    return rendered if len(rendered) <= limit else rendered[:limit - 3] + "..."


def json_value(name: str, value: Any, depth: int = 0) -> Any:
    """``value`` when everything in it is JSON (str keys, valid text, finite numbers); tuples become lists."""
    if depth > MAX_NESTING:
        raise InvalidInputError(f"{name} nests deeper than {MAX_NESTING} levels")
    if isinstance(value, str):
        return text(name, value)
    if isinstance(value, Mapping):
        return {text(f"a key in {name}", k): json_value(f"{name}.{k}", v, depth + 1)
                for k, v in mapping(name, value).items()}
    if isinstance(value, (list, tuple)):
        return [json_value(f"{name}[{i}]", item, depth + 1) for i, item in enumerate(value)]
    if isinstance(value, float):
        return number(name, value)
    if value is None or isinstance(value, (bool, int)):
        return value
    raise InvalidInputError(f"{name} must hold only JSON values (text, numbers, lists, dicts), "
                            f"got a {type(value).__name__}")


def _number_range(low: float | None, high: float | None, low_open: bool) -> str:
    if low is not None and high is not None:
        return f"a finite number in {'(' if low_open else '['}{low:g}, {high:g}]"
    if low == 0:
        return "a positive finite number" if low_open else "a finite number of at least 0"
    if low is not None:
        return f"a finite number {'above' if low_open else 'of at least'} {low:g}"
    return "a finite number" if high is None else f"a finite number of at most {high:g}"


def _integer_range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"a whole number from {low} to {high}"
    if low in (0, 1):
        return "a positive whole number" if low == 1 else "a whole number of at least 0"
    if low is not None:
        return f"a whole number of at least {low}"
    return "a whole number" if high is None else f"a whole number of at most {high}"


# ------------------------------------------------------------------------------- positive values, options
def positive_number(name: str, value: Any, *, allow_zero: bool = False,
                    error: type[SDKError] = InvalidInputError) -> float:
    """``value`` as a float when it is a finite real number above zero (or zero, with ``allow_zero``)."""
    return number(name, value, low=0, low_open=not allow_zero, error=error)


def positive_int(name: str, value: Any, *, allow_zero: bool = False, error: type[SDKError] = InvalidInputError) -> int:
    """``value`` when it is a whole number above zero (or zero, with ``allow_zero``)."""
    return integer(name, value, low=0 if allow_zero else 1, error=error)


def with_overrides(options: Options, overrides: Mapping[str, Any]) -> Options:
    """``options`` (a dataclass) with the fields named in ``overrides`` replaced; validated again."""
    if not overrides:
        return options
    known = {f.name for f in dataclasses.fields(options)}  # type: ignore[arg-type]
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise InvalidInputError(f"unknown option(s) {', '.join(unknown)} for {type(options).__name__}; "
                                f"known: {', '.join(sorted(known))}")
    return dataclasses.replace(options, **overrides)  # type: ignore[type-var]


def number_in_range(name: str, value: Any, low: float, high: float, *, unit: str = "",
                    error: type[SDKError] = InvalidInputError) -> float:
    """``value`` as a float when it is a finite real number from ``low`` to ``high``; the error names the range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low <= float(value) <= high:
        raise error(f"{name} must be a number from {low:g} to {high:g}{unit}, got {value!r}")  # NaN is in no range
    return float(value)

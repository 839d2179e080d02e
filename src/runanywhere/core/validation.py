"""Shared checks of caller input: positive numbers, and options objects with keyword overrides.

Every check raises :class:`InvalidInputError` naming the parameter, so bad
input never surfaces as a bare ``TypeError`` or ``ValueError`` from deep inside.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any, TypeVar

from .errors import InvalidInputError, SDKError

Options = TypeVar("Options")


def positive_number(name: str, value: Any, *, allow_zero: bool = False,
                    error: type[SDKError] = InvalidInputError) -> float:
    """``value`` as a float when it is a finite real number above zero (or zero, with ``allow_zero``)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or value < 0 or (value == 0 and not allow_zero)):
        wanted = "a finite number of at least 0" if allow_zero else "a positive finite number"
        raise error(f"{name} must be {wanted}, got {value!r}")
    return float(value)


def positive_int(name: str, value: Any, *, allow_zero: bool = False, error: type[SDKError] = InvalidInputError) -> int:
    """``value`` when it is a whole number above zero (or zero, with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < (0 if allow_zero else 1):
        wanted = "a whole number of at least 0" if allow_zero else "a positive whole number"
        raise error(f"{name} must be {wanted}, got {value!r}")
    return int(value)


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

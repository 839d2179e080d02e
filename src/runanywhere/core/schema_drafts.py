"""Which JSON Schema draft a schema is written in (its ``$schema``), and that draft's ``jsonschema`` validator.

Drafts 4, 6, 7, 2019-09 and 2020-12 are read; a schema without ``$schema`` is 2020-12, as is one
naming a meta-schema outside json-schema.org (a custom dialect); draft 3 and unknown json-schema.org
versions are refused. Validation uses the draft's own validator with a format checker that also
checks ``date-time``, ``time`` and ``uri`` (jsonschema needs optional packages for those).
"""

from __future__ import annotations

import datetime
import re
import sys
from collections.abc import Mapping
from functools import cache
from typing import Any

from .errors import InvalidInputError, SDKErrorCode

#: Draft names by the version part of a json-schema.org meta-schema URI.
_VERSIONS = {"draft-04": "4", "draft-06": "6", "draft-07": "7", "draft/2019-09": "2019-09", "draft/2020-12": "2020-12"}
_VALIDATORS = {"4": "Draft4Validator", "6": "Draft6Validator", "7": "Draft7Validator",
               "2019-09": "Draft201909Validator", "2020-12": "Draft202012Validator"}
#: The recursion limit checking a schema nested as deeply as allowed needs (jsonschema recurses ~8 frames a level).
RECURSION_FLOOR = 4096
_META = re.compile(r"^https?://json-schema\.org/(?:(draft-0\d|draft/\d{4}-\d\d)/)?(?:hyper-)?schema#?$")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([zZ]|[+-]([01]\d|2[0-3]):[0-5]\d)$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]*$")


def draft_of(schema: Any) -> str:
    """The draft ``schema`` is written in: "4", "6", "7", "2019-09" or "2020-12" (refused: draft 3, unknown ones)."""
    uri = schema.get("$schema") if isinstance(schema, Mapping) else None
    if uri is None:
        return "2020-12"
    if not isinstance(uri, str):
        raise _bad(f"$schema must be a meta-schema URI (a string), got {type(uri).__name__}")
    match = _META.match(uri.strip())
    if match is None:
        return "2020-12"  # a custom meta-schema: its vocabulary is read as 2020-12's
    version = match.group(1)
    if version is None:
        return "2020-12"  # http://json-schema.org/schema: the latest draft
    if version not in _VERSIONS:
        raise _bad(f"$schema {uri!r} names a draft this SDK does not read; use draft 4, 6, 7, 2019-09 or 2020-12")
    return _VERSIONS[version]


def validator_class(draft: str) -> Any:
    """The ``jsonschema`` validator class of a draft name returned by :func:`draft_of`."""
    import jsonschema  # deferred: a slow import most programs never need

    if sys.getrecursionlimit() < RECURSION_FLOOR:  # raised once, never lowered: other threads may be deep
        sys.setrecursionlimit(RECURSION_FLOOR)
    return getattr(jsonschema, _VALIDATORS[draft])


def validator_for(schema: Any) -> Any:
    """A validator of ``schema`` under its own draft, checking formats too."""
    cls = validator_class(draft_of(schema))
    return cls(schema, format_checker=_format_checker(cls.__name__))


@cache
def _format_checker(name: str) -> Any:
    """The draft's format checker with ``date-time``, ``time`` and ``uri`` checks added where jsonschema has none."""
    import jsonschema

    checker = getattr(jsonschema, name).FORMAT_CHECKER
    extra = jsonschema.FormatChecker(formats=list(checker.checkers))
    for fmt, check in (("date-time", _is_date_time), ("time", _is_time), ("uri", _is_uri)):
        if fmt not in extra.checkers:
            extra.checks(fmt)(check)
    return extra


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    date, sep, time = value.partition("T") if "T" in value else value.partition("t")
    return bool(sep) and _is_date(date) and _is_time(time)


def _is_date(value: str) -> bool:
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return len(value) == 10


def _is_time(value: object) -> bool:
    return not isinstance(value, str) or _TIME.match(value) is not None


def _is_uri(value: object) -> bool:
    return not isinstance(value, str) or _URI.match(value) is not None


def _bad(message: str) -> InvalidInputError:
    return InvalidInputError(message, code=SDKErrorCode.INVALID_PARAMETER, details={"keyword": "$schema"})

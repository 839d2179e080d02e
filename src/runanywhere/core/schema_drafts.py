"""Which JSON Schema draft a schema is written in (its ``$schema``), and that draft's ``jsonschema`` validator.

Drafts 4, 6, 7, 2019-09 and 2020-12 are read; a schema without ``$schema`` is 2020-12, as is one
naming a meta-schema outside json-schema.org (a custom dialect); draft 3 and unknown json-schema.org
versions are refused. Validation uses the draft's own validator and format checker (``date-time``,
``time`` and ``uri`` are checked with rfc3339-validator and rfc3986-validator, dependencies of the SDK).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any

from .errors import InvalidInputError, SDKErrorCode

#: Draft names by the version part of a json-schema.org meta-schema URI.
_VERSIONS = {"draft-04": "4", "draft-06": "6", "draft-07": "7", "draft/2019-09": "2019-09", "draft/2020-12": "2020-12"}
_VALIDATORS = {"4": "Draft4Validator", "6": "Draft6Validator", "7": "Draft7Validator",
               "2019-09": "Draft201909Validator", "2020-12": "Draft202012Validator"}
#: The recursion limit checking a schema nested as deeply as allowed needs (jsonschema recurses ~8 frames a level).
RECURSION_FLOOR = 4096
_META = re.compile(r"^https?://json-schema\.org/(?:(draft-0\d|draft/\d{4}-\d\d)/)?(?:hyper-)?schema#?$")


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
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _bad(message: str) -> InvalidInputError:
    return InvalidInputError(message, code=SDKErrorCode.INVALID_PARAMETER, details={"keyword": "$schema"})

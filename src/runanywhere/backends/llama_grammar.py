"""GBNF grammars for tool calls, built with llama-cpp-python's JSON-Schema converter.

Plain values in and out (tool names, parameter schemas, GBNF text), so the tool-calling feature can force a
well-formed call without knowing llama.cpp; the engine compiles the text on its worker like any grammar.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.errors import InvalidInputError
from ..core.json_schema import local_refs_only
from ..core.validation import text
from . import require_engine

_RULE_RE = re.compile(r"^([A-Za-z0-9-]+)\s*::=\s*(.*)$")
#: The longest GBNF text compiled: llama.cpp's parse and per-token matching grow with it (100 KB ~ 5000 alternatives).
MAX_GRAMMAR_CHARS = 200_000


def bounded_grammar(gbnf: Any) -> str:
    """``gbnf`` when it is text short enough to compile and sample in reasonable time; else an InvalidInputError."""
    return text("the grammar", gbnf, max_chars=MAX_GRAMMAR_CHARS)


#: llama-cpp-python's converter lets raw control characters (a newline...) into JSON strings, which is not JSON;
#: llama.cpp's own converter excludes them, as this does.
_LOOSE_CHAR = 'char ::= [^"\\\\]'
_STRICT_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F]'


def json_schema_gbnf(schema: Mapping[str, Any]) -> str:
    """GBNF admitting exactly the JSON values of ``schema`` (strings without raw control characters)."""
    converter = require_engine("llama_cpp.llama_grammar", "llm")
    return str(converter.json_schema_to_gbnf(json.dumps(schema))).replace(_LOOSE_CHAR, _STRICT_CHAR)


def json_call_grammar(tools: Sequence[tuple[str, Mapping[str, Any]]], *, start: str = "", end: str = "") -> str:
    """A GBNF grammar that admits exactly one ``{"name": ..., "arguments": ...}`` call of one of ``tools``.

    ``tools`` are (name, parameters JSON Schema) pairs; the call is wrapped in ``start``...``end`` when given.
    Each schema goes through llama-cpp-python's own converter (so keywords it cannot express are handled the
    way structured output handles them); its rules are renamed ``t<i>-...`` so the tools share one grammar.
    """
    if not tools:
        raise InvalidInputError("a tool-call grammar needs at least one tool")
    rules: list[str] = []
    alternatives: list[str] = []
    for index, (name, parameters) in enumerate(tools):
        local_refs_only(f"the parameters of tool {name!r}", parameters)  # the converter fetches https:// refs
        try:
            gbnf = json_schema_gbnf(parameters)
        except Exception as exc:  # the converter raises many kinds (asserts too); all mean "no grammar for it"
            raise InvalidInputError(
                f"the parameters of tool {name!r} cannot be turned into a grammar: {exc}"
            ) from exc
        prefix = f"t{index}-"
        rules.extend(_prefixed_rules(str(gbnf), prefix))
        name_literal = _gbnf_literal(json.dumps(name, ensure_ascii=False))
        alternatives.append(f"call-{index}")
        rules.append(
            f'call-{index} ::= "{{" ws? "\\"name\\"" ws? ":" ws? {name_literal} ws? "," ws? '
            f'"\\"arguments\\"" ws? ":" ws? {prefix}root ws? "}}"'
        )
    root = f"root ::= {_gbnf_literal(start)} ws? tool-call ws? {_gbnf_literal(end)}" if start else "root ::= tool-call"
    header = [root, f"tool-call ::= {' | '.join(alternatives)}", r"ws ::= [ \t\n]"]
    return bounded_grammar("\n".join(header + rules) + "\n")


def _gbnf_literal(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def _prefixed_rules(gbnf: str, prefix: str) -> list[str]:
    """Rename every rule of a grammar (and every reference to it) with ``prefix``."""
    parsed: list[list[str]] = []
    for line in gbnf.splitlines():
        match = _RULE_RE.match(line)
        if match:
            parsed.append([match.group(1), match.group(2)])
        elif parsed and line.strip():
            parsed[-1][1] += "\n" + line  # a rule body continued on the next line
    names = {name for name, _ in parsed}
    return [f"{prefix}{name} ::= {_rename_references(body, names, prefix)}" for name, body in parsed]


def _rename_references(body: str, names: set[str], prefix: str) -> str:
    """Prefix rule references in a GBNF rule body, leaving literals, character classes and counts untouched."""
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        char = body[i]
        if char in '"[{':
            close = {'"': '"', "[": "]", "{": "}"}[char]
            j = i + 1
            while j < n and body[j] != close:
                j += 2 if body[j] == "\\" else 1
            out.append(body[i : j + 1])
            i = j + 1
        elif char == "#":
            j = body.find("\n", i)
            j = n if j == -1 else j
            out.append(body[i:j])
            i = j
        elif char.isascii() and (char.isalnum() or char == "-"):
            j = i
            while j < n and body[j].isascii() and (body[j].isalnum() or body[j] == "-"):
                j += 1
            word = body[i:j]
            out.append(prefix + word if word in names else word)
            i = j
        else:
            out.append(char)
            i += 1
    return "".join(out)

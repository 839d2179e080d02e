"""Raw GBNF grammars a caller passes: llama.cpp's own grammar format, bounded before llama.cpp parses them.

JSON schemas and forced tool calls do not come here: the llguidance engine constrains them
(:mod:`.llguidance_constraint`).
"""

from __future__ import annotations

from typing import Any

from ..core.validation import text

#: The longest GBNF text compiled: llama.cpp's parse and per-token matching grow with it (100 KB ~ 5000 alternatives).
MAX_GRAMMAR_CHARS = 200_000


def bounded_grammar(gbnf: Any) -> str:
    """``gbnf`` when it is text short enough to compile and sample in reasonable time; else an InvalidInputError."""
    return text("the grammar", gbnf, max_chars=MAX_GRAMMAR_CHARS)

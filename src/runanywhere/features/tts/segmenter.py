"""Cutting text into pieces to speak: whole sentences, and a short first clause so audio starts early.

A TTS voice speaks a sentence at a time, and text from a language model
arrives a few characters at a time. :class:`TextSegmenter` buffers the text
and hands out each sentence as soon as it is complete; in ``first_clause``
mode the very first piece ends already at the first clause mark (, ; : —) or
sentence end after a few words, or, in a long sentence without either, before
the first conjunction or preposition after five words ("The play Romeo and
Juliet | by William Shakespeare ..."): a phrase boundary, where a pause sounds
natural, so the voice starts without waiting for the whole sentence. A run without any boundary is cut at a
clause mark or a word gap (or hard, for one endless word), so no piece is
longer than ``max_chars``: over-long text never reaches the engine in one go.

A boundary counts only once non-space text follows it. So the end of the
text is known only at :meth:`TextSegmenter.flush`, and the piece that
``flush`` returns last is always the text's last piece.
"""

from __future__ import annotations

import re

MAX_CHARS = 300
"""Longest piece handed to the engine (about 20 s of speech)."""

_CLOSERS = "\"'”’)\\]}»"
_SENTENCE = rf"[.!?…]+[{_CLOSERS}]*\s+(?=\S)|\s*\n\s*(?=\S)"
_CLAUSE = rf"[,;:—][{_CLOSERS}]*\s+(?=\S)"
_SENTENCE_END = re.compile(_SENTENCE)
_ANY_END = re.compile(f"{_SENTENCE}|{_CLAUSE}")
_CLAUSE_END = re.compile(_CLAUSE)
_GAP = re.compile(r"\s+(?=\S)")
_WORDS = re.compile(r"\S+")
_NON_SPACE = re.compile(r"\S")
_LOOKAHEAD = 2  # a piece's end is looked for in the next 2 x max_chars characters: bounded work per piece
_PHRASE_STARTS = frozenset({"and", "but", "or", "so", "because", "which", "that", "who", "where", "when", "while",
                            "if", "by", "with", "for", "from", "to", "in", "on", "at", "about", "as"})
# A period after these does not end a sentence ("Dr. Smith", "e.g. this"); nor after an initial ("J. K.").
_ABBREVIATIONS = frozenset({"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "e.g", "i.e", "cf"})


class TextSegmenter:
    """Feed text in any pieces; get back the pieces to speak, in order."""

    def __init__(self, *, first_clause: bool = False, min_first_words: int = 3, min_phrase_words: int = 5,
                 max_chars: int = MAX_CHARS) -> None:
        self._buffer = ""
        self._early = first_clause
        self.min_first_words = min_first_words
        self.min_phrase_words = min_phrase_words
        self.max_chars = max_chars

    def feed(self, text: str) -> list[str]:
        """Add text; returns the pieces now known to be complete."""
        buffer, at = self._buffer + text, 0
        pieces = []
        while (cut := self._next_cut(buffer, at)) is not None:
            piece, at = buffer[at:cut].strip(), cut
            if piece:
                pieces.append(piece)
                self._early = False
        rest = buffer[at:]  # one copy per feed, not one per piece: linear in the text's length
        self._buffer = rest if _NON_SPACE.search(rest) else ""  # spaces before a piece never count
        return pieces

    def flush(self) -> list[str]:
        """The text is complete: returns the remaining pieces (the last one ends the text)."""
        pieces = self.feed("")
        rest, self._buffer = self._buffer.strip(), ""
        return [*pieces, rest] if rest else pieces

    def _next_cut(self, text: str, at: int) -> int | None:
        """Where the piece starting at ``at`` ends (None: not known yet); looks at most 2 x ``max_chars`` ahead."""
        first = _NON_SPACE.search(text, at)
        if first is None:
            return None  # only spaces so far
        at, limit = first.start(), self.max_chars
        end = self._boundary(text, at, min(len(text), at + _LOOKAHEAD * limit))
        if end is not None and end - at <= limit:
            return end
        if _NON_SPACE.search(text, at + limit) is None:
            return None  # what is left fits in one piece: wait for a boundary or the end
        for pattern in (_CLAUSE_END, _GAP):
            if ends := [m.end() for m in pattern.finditer(text, at, at + limit + 1) if m.start() > at]:
                return ends[-1]
        return at + limit

    def _boundary(self, text: str, at: int, end: int) -> int | None:
        """End of the first boundary in ``text[at:end]`` that may close the next piece (None: none yet)."""
        phrase = self._phrase_start(text, at, end) if self._early else None
        for match in (_ANY_END if self._early else _SENTENCE_END).finditer(text, at, end):
            if phrase is not None and match.start() >= phrase:
                break
            before = text[at: match.start()]
            if self._early and len(before.split()) < self.min_first_words:
                continue
            if match.group().startswith(".") and _is_abbreviation(before):
                continue
            return match.end()
        return phrase

    def _phrase_start(self, text: str, at: int, end: int) -> int | None:
        """Where the first phrase after ``min_phrase_words`` words in ``text[at:end]`` starts (a whole word
        that opens one)."""
        words = list(_WORDS.finditer(text, at, end))
        for i in range(self.min_phrase_words, len(words) - 1):  # the last word may still be growing
            if words[i].group().lower() in _PHRASE_STARTS:
                return words[i].start()
        return None


def _is_abbreviation(before: str) -> bool:
    words = before.rsplit(None, 1)  # the last word only: no work on the text before it
    word = words[-1].lstrip("(\"'“‘").lower() if words else ""
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def split_text(text: str, *, first_clause: bool = False, max_chars: int = MAX_CHARS) -> list[str]:
    """All pieces of a complete text at once."""
    segmenter = TextSegmenter(first_clause=first_clause, max_chars=max_chars)
    return [*segmenter.feed(text), *segmenter.flush()]

"""Word error rate, the yardstick of speech tests (TTS round trips, transcription of known recordings).

Both texts are normalised first, so only words count: lower case, punctuation
dropped (apostrophes inside words kept: "don't"), hyphens split words,
whitespace collapsed.
"""

from __future__ import annotations

import re

_NON_WORD = re.compile(r"[^\w\s']|(?<!\w)'|'(?!\w)")


def words(text: str) -> list[str]:
    """The normalised words of a text."""
    return _NON_WORD.sub(" ", text.lower().replace("-", " ")).split()


def wer(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words; 0.0 is perfect, can exceed 1.0.

    An empty reference gives 0.0 for an empty hypothesis, else 1.0.
    """
    ref, hyp = words(reference), words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))  # Levenshtein distance over words, one row at a time
    for i, ref_word in enumerate(ref, 1):
        current = [i]
        for j, hyp_word in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word)))
        previous = current
    return previous[-1] / len(ref)

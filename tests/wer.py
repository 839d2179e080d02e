"""Word and character error rates, the yardsticks of speech tests (TTS round trips, known recordings).

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
    return _error_rate(words(reference), words(hypothesis))


def cer(reference: str, hypothesis: str) -> float:
    """The same over the characters of the normalised words (spaces count): kinder to homophone merges
    on short texts ("France is" heard as "Francis" is 2 of 30 characters, but 2 of 6 words)."""
    return _error_rate(list(" ".join(words(reference))), list(" ".join(words(hypothesis))))


def _error_rate(ref: list[str], hyp: list[str]) -> float:
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))  # Levenshtein distance, one row at a time
    for i, ref_item in enumerate(ref, 1):
        current = [i]
        for j, hyp_item in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_item != hyp_item)))
        previous = current
    return previous[-1] / len(ref)

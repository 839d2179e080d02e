"""Text bookkeeping of a reply as it streams: stop strings held back, and ``<think>`` spans."""

from __future__ import annotations

from collections.abc import Sequence


class StopMatcher:
    """Emits text while holding back any tail that could still grow into a stop string."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.text = ""
        self.emitted = 0

    def feed(self, piece: str) -> tuple[str, bool]:
        """Returns (text safe to emit now, whether a stop string was hit)."""
        self.text += piece
        for stop in self.stops:
            at = self.text.find(stop, max(0, self.emitted - len(stop)))
            if at != -1:
                self.text = self.text[:at]
                out = self.text[self.emitted:]
                self.emitted = len(self.text)
                return out, True
        hold = max((overlap(self.text, s) for s in self.stops), default=0)
        out = self.text[self.emitted:len(self.text) - hold]
        self.emitted += len(out)
        return out, False

    def flush(self) -> str:
        out = self.text[self.emitted:]
        self.emitted = len(self.text)
        return out


def overlap(text: str, stop: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``stop``."""
    for n in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:n]):
            return n
    return 0


class ThinkTracker:
    """Which generated tokens belong to ``<think>…</think>`` (tags included), from their text spans."""

    OPEN, CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self.text = ""
        self.spans: list[tuple[int, int]] = []

    def feed(self, piece: str) -> bool:
        """Add one token's text; True when it is (or may be becoming) part of a thought."""
        start = len(self.text)
        self.text += piece
        self.spans.append((start, len(self.text)))
        return self._overlaps(start, len(self.text)) or self.inside()

    def inside(self) -> bool:
        """True while a thought is open, or the text ends with the start of an opening tag."""
        opened, closed = self.text.rfind(self.OPEN), self.text.rfind(self.CLOSE)
        return opened > closed or overlap(self.text, self.OPEN) > 0

    def count(self) -> int:
        return sum(1 for start, end in self.spans if self._overlaps(start, end))

    def _overlaps(self, start: int, end: int) -> bool:
        at = self.text.find(self.OPEN)
        while at != -1 and at < end:
            close = self.text.find(self.CLOSE, at)
            block_end = len(self.text) + 1 if close == -1 else close + len(self.CLOSE)
            if start < block_end and end > at:
                return True
            at = self.text.find(self.OPEN, block_end)
        return False


def split_thinking(text: str) -> tuple[str | None, str]:
    """(the thought, the answer) of a reply; no thought is None, an unclosed one leaves no answer."""
    start = text.find("<think>")
    if start == -1:
        return None, text
    end = text.find("</think>", start)
    if end == -1:
        return text[start + 7:].strip(), ""
    return text[start + 7:end].strip(), (text[:start] + text[end + 8:]).strip()

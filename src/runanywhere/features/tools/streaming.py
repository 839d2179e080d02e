"""Tool calls read from a reply as it streams: its text passes on at once, each call as soon as it is complete.

A :class:`CallSplitter` is fed the reply's text pieces. Outside call markup the text is passed on (holding
back only a tail that may still become an opening marker); a tagged call block is held until its closing
marker, then handed on as :class:`ToolCall` objects, or as text if it is not a call. Bare JSON (``JSON``,
``QWEN`` and ``AUTO``) is recognised only at the start of the reply, which is then held until the reply ends.
"""

from __future__ import annotations

from collections.abc import Collection

from .parsing import first_opening, parse_tool_calls, partial_opening, syntaxes_of
from .types import ToolCall, ToolCallFormat, as_format

_JSON_OPENERS = "{[`"


class CallSplitter:
    """Splits a streamed reply into text pieces (``str``) and :class:`ToolCall` objects, in reply order."""

    def __init__(self, fmt: ToolCallFormat | str = ToolCallFormat.AUTO, known: Collection[str] | None = None) -> None:
        self.fmt = as_format(fmt)
        self.known = known
        self._syntaxes, self._bare = syntaxes_of(self.fmt)
        self._pending = ""  # text not handed on yet
        self._end: str | None = None  # the closing marker of the open call block
        self._started = False  # some non-blank text was handed on (bare JSON no longer opens a call)

    def feed(self, piece: str) -> list[str | ToolCall]:
        """What of the reply so far can be handed on now (whitespace before a call or at the end waits)."""
        self._pending += piece
        out: list[str | ToolCall] = []
        while self._pending:
            if self._end is not None:
                close = self._pending.find(self._end)
                if close == -1:
                    break
                cut = close + len(self._end)
                block, self._pending, self._end = self._pending[:cut], self._pending[cut:], None
                out.extend(self._parse(block))
                continue
            head = self._pending.lstrip()
            if self._bare and not self._started and (not head or head[0] in _JSON_OPENERS):
                break  # may be a bare call: held to the end
            opening = first_opening(self._pending, self._syntaxes)
            if opening is None:
                hold = partial_opening(self._pending, self._syntaxes)
                text = self._pending[:len(self._pending) - hold].rstrip()
                self._text(out, text)
                self._pending = self._pending[len(text):]
                break
            at, syntax = opening
            text = self._pending[:at].rstrip()  # the whitespace before a call goes with it
            self._text(out, text)
            self._pending, self._end = self._pending[len(text):], syntax.end
        return out

    def finish(self) -> list[str | ToolCall]:
        """The rest, once the reply has ended: an unclosed call block still counts if its JSON is whole."""
        rest, self._pending, self._end = self._pending, "", None
        return self._parse(rest) if rest.strip() else []

    def _parse(self, block: str) -> list[str | ToolCall]:
        """A held block as its calls and the text that is no call; a block with no call is text, unchanged."""
        calls, remaining = parse_tool_calls(block, self.fmt, known=self.known)
        out: list[str | ToolCall] = list(calls)
        self._text(out, remaining if calls else block)
        return out

    def _text(self, out: list[str | ToolCall], text: str) -> None:
        if text:
            self._started = self._started or bool(text.strip())
            out.append(text)

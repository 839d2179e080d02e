"""Reading tool calls while the reply streams: text as it comes, each call's name, then its argument text.

:class:`CallStream` is fed the reply piece by piece, in one :class:`ToolCallFormat`. Text outside call markers
(``<tool_call>``, LFM2's ``<|tool_call_start|>``...) is passed on at once (a possible start of a marker, and
blank text, are held back). Inside JSON markup a small scanner finds the ``"name"`` (passed on once whole and
one of the known tools) and the ``"arguments"`` object, passed on character by character; other markup
(LFM2's pythonic calls) is passed on whole when its block closes. :func:`parse_tool_calls` reads each closed
block whole: that parse is the truth, and argument text already sent must decode to the same arguments (else
:class:`GenerationError`). Where the format reads untagged JSON calls (Qwen's models often leave the tags
out), a reply that opens with ``{`` is read as one call block too, ending where its JSON object ends.

:class:`~runanywhere.features.tools.streaming.CallSplitter` is the SDK's whole-call reader (a call handed on
once complete, bare JSON anywhere the format allows it); this one serves clients that show arguments as they
are written (the server's streamed ``tool_calls`` deltas).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass

from ...core.errors import GenerationError
from .parsing import CallSyntax, first_opening, parse_tool_calls, partial_opening, syntaxes_of
from .types import ToolCall, ToolCallFormat, as_format, dump_json, next_call_id

_NAME_KEY, _ARGUMENT_KEYS = "name", ("arguments", "parameters")


@dataclass(frozen=True)
class Text:
    """Reply text outside any call."""

    text: str


@dataclass(frozen=True)
class CallStarted:
    """A call's id and tool name, known before its arguments."""

    index: int
    id: str
    name: str


@dataclass(frozen=True)
class ArgumentText:
    """The next piece of a call's arguments as JSON text (the pieces joined are the arguments object)."""

    index: int
    text: str


@dataclass(frozen=True)
class CallDone:
    """A whole call as its complete block parses (with the id :class:`CallStarted` gave it)."""

    index: int
    call: ToolCall


Piece = Text | CallStarted | ArgumentText | CallDone


class _Scanner:
    """Where a call's JSON body stands: its top-level key, the tool name, and the span of the arguments object."""

    def __init__(self) -> None:
        self.depth = 0
        self.opened = self.in_string = self.escaped = self.expect_key = False
        self.string_start = 0
        self.key: str | None = None
        self.name: str | None = None
        self.arguments: tuple[int, int | None] | None = None  # (start, end once the object has closed)

    @property
    def ended(self) -> bool:
        """True once the body's top-level JSON value has closed."""
        return self.opened and self.depth == 0 and not self.in_string

    def step(self, body: str, i: int) -> None:
        char = body[i]
        if self.in_string:
            if self.escaped:
                self.escaped = False
            elif char == "\\":
                self.escaped = True
            elif char == '"':
                self.in_string = False
                self._string(body[self.string_start : i + 1])
        elif char == '"':
            self.in_string, self.string_start = True, i
        elif char in "{[":
            if self.depth == 1 and self.key in _ARGUMENT_KEYS and char == "{" and self.arguments is None:
                self.arguments = (i, None)
            self.depth += 1
            self.opened, self.expect_key = True, self.depth == 1
        elif char in "}]":
            self.depth -= 1
            if self.depth == 1 and self.arguments is not None and self.arguments[1] is None:
                self.arguments = (self.arguments[0], i + 1)
        elif self.depth == 1 and char in ":,":
            self.expect_key, self.key = char == ",", self.key if char == ":" else None

    def _string(self, literal: str) -> None:
        if self.depth != 1:
            return
        try:
            value = json.loads(literal, strict=False)
        except ValueError:
            return
        if self.expect_key:
            self.key = value
        elif self.key == _NAME_KEY and self.name is None and isinstance(value, str):
            self.name = value


class CallStream:
    """Feeds on a streamed reply and returns :data:`Piece` objects; ``known`` are the tools a call may name."""

    def __init__(self, known: Collection[str], fmt: ToolCallFormat | str = ToolCallFormat.HERMES) -> None:
        self.known = frozenset(known)
        self.fmt = as_format(fmt)
        self.calls: list[ToolCall] = []
        self._syntaxes, self._bare_first = syntaxes_of(self.fmt)  # may the reply open with untagged JSON?
        self._pending = ""  # text outside calls not yet passed on
        self._body: str | None = None  # inside a block: its body so far
        self._syntax: CallSyntax | None = None  # the open block's markers (None: an untagged block)
        self._reset()

    def _reset(self) -> None:
        self._scanner = _Scanner()
        self._scanned = 0
        self._started: CallStarted | None = None
        self._sent = 0  # how many characters of the arguments object went out

    def feed(self, text: str) -> list[Piece]:
        """The pieces that ``text`` (the reply's next characters) completes."""
        pieces: list[Piece] = []
        if self._body is None:
            self._pending += text
        else:
            self._body += text
        while True:
            if self._body is None and self._bare_first:
                opening = self._pending.lstrip()
                if not opening:
                    return pieces  # only blank text yet: it may still open with a call
                self._bare_first = False
                if opening.startswith("{"):
                    self._body, self._pending, self._syntax = opening, "", None
            if self._body is None:
                found = first_opening(self._pending, self._syntaxes)
                if found is None:
                    held = partial_opening(self._pending, self._syntaxes)
                    return pieces + self._release(len(self._pending) - held)
                start, self._syntax = found
                before = self._pending[:start]
                pieces += [Text(before)] if before.strip() else []  # blank text before a call is dropped
                self._body, self._pending = self._pending[start + len(self._syntax.start) :], ""
            end = self._scan()
            pieces += self._progress()
            if end is None:
                return pieces
            close = self._syntax.end if self._syntax else ""
            body, self._pending, self._body = self._body[:end], self._body[end + len(close) :], None
            pieces += self._block(body, close)

    def close(self, *, cut: bool = False) -> list[Piece]:
        """The pieces left when the reply ends: held text, or the block the reply stopped inside (``cut``: the
        reply was cut short, so a call it stopped in the middle of is left unfinished, not an error)."""
        if self._body is not None:
            body, self._body = self._body, None
            return self._block(body, "", cut=cut)
        rest, self._pending = self._pending, ""
        return [Text(rest)] if rest.strip() else []

    def _release(self, upto: int) -> list[Piece]:
        """Pass on ``_pending[:upto]``, unless it is blank (held until something visible follows)."""
        chunk = self._pending[:upto]
        if not chunk.strip():
            return []
        self._pending = self._pending[upto:]
        return [Text(chunk)]

    def _scan(self) -> int | None:
        """Scan the new part of the block body; where its close tag starts once the call's JSON ended, else None."""
        body, syntax = self._body or "", self._syntax
        if syntax is not None and not syntax.json_body:
            found = body.find(syntax.end)
            return found if found >= 0 else None
        while self._scanned < len(body) and not self._scanner.ended:
            self._scanner.step(body, self._scanned)
            self._scanned += 1
        if syntax is None:
            return self._scanned if self._scanner.ended else None
        found = body.find(syntax.end, self._scanned) if self._scanner.ended else -1
        return found if found >= 0 else None

    def _progress(self) -> list[Piece]:
        """The call's start once its name is known, then the new characters of its arguments object."""
        scanner = self._scanner
        pieces: list[Piece] = []
        if self._started is None and scanner.name in self.known:
            self._started = CallStarted(len(self.calls), next_call_id(), scanner.name or "")
            pieces.append(self._started)
        if self._started is None or scanner.arguments is None:
            return pieces
        start, end = scanner.arguments
        upto = end if end is not None else self._scanned
        if upto > start + self._sent:
            pieces.append(ArgumentText(self._started.index, (self._body or "")[start + self._sent : upto]))
            self._sent = upto - start
        return pieces

    def _block(self, body: str, close: str, *, cut: bool = False) -> list[Piece]:
        """A finished block as it parses whole: its call(s), or its markup as text when it holds none."""
        started, arguments = self._started, self._scanner.arguments
        sent = body[arguments[0] : arguments[0] + self._sent] if arguments is not None else ""
        syntax, self._syntax = self._syntax, None
        self._reset()
        block = syntax.start + body + close if syntax else body
        calls, _ = parse_tool_calls(block, self.fmt, known=self.known)
        if not calls:
            if started is not None and not cut:
                raise GenerationError(f"the call of {started.name!r} came out malformed: {body[:200]!r}")
            return [] if started is not None or cut else [Text(block)]
        pieces: list[Piece] = []
        for position, call in enumerate(calls):
            index = len(self.calls)
            if position == 0 and started is not None:
                pieces += self._confirm(started, sent, call)
                continue
            whole = ToolCall(call.name, call.arguments, next_call_id())
            pieces += [CallStarted(index, whole.id, whole.name), ArgumentText(index, dump_json(whole.arguments))]
            pieces.append(self._done(index, whole))
        return pieces

    def _confirm(self, started: CallStarted, sent: str, call: ToolCall) -> list[Piece]:
        """The call whose name (and maybe some arguments) went out already: they must agree with the whole parse."""
        if not sent:
            pieces: list[Piece] = [ArgumentText(started.index, dump_json(call.arguments))]
        else:
            try:
                agrees = call.name == started.name and json.loads(sent) == call.arguments
            except ValueError:
                agrees = False
            if not agrees:
                raise GenerationError(f"the streamed arguments of {started.name!r} ({sent[:200]!r}) do not read as "
                                      "the call parsed whole")
            pieces = []
        return [*pieces, self._done(started.index, ToolCall(call.name, call.arguments, started.id))]

    def _done(self, index: int, call: ToolCall) -> CallDone:
        self.calls.append(call)
        return CallDone(index, call)

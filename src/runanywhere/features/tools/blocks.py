"""The machinery every call syntax's parser shares: blocks of call markup found in a reply, and what replaces them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple


class Call(NamedTuple):
    """A parsed call before it becomes a :class:`ToolCall` (ids are numbered in reply order, at the end)."""

    name: str
    arguments: dict[str, Any]
    id: str | None = None


@dataclass
class Block:
    """A stretch of the reply that looked like call markup, and what to leave in its place."""

    start: int
    end: int
    calls: list[Call]
    replacement: str


@dataclass
class Item:
    """One call candidate inside a block: the parsed call (None if rejected) and its text, kept if rejected."""

    call: Call | None
    source: str


def _start(block: Block) -> int:
    return block.start


def without_overlaps(blocks: list[Block]) -> list[Block]:
    """The blocks in reply order, without any that starts inside an earlier one."""
    kept: list[Block] = []
    for block in sorted(blocks, key=_start):
        if not kept or block.start >= kept[-1].end:
            kept.append(block)
    return kept


def finish(
    start: int,
    end: int,
    text: str,
    items: list[Item],
    names: frozenset[str] | None,
    rebuild: Callable[[list[str]], str],
) -> Block:
    """Keep accepted calls, and leave the rejected ones (bad or unknown) in the text, re-wrapped in their markup."""
    accepted: list[Call] = []
    rejected: list[str] = []
    for item in items:
        if item.call is not None and (names is None or item.call.name in names):
            accepted.append(item.call)
        else:
            rejected.append(item.source)
    if not accepted:
        replacement = text[start:end]
    elif rejected:
        replacement = rebuild(rejected)
    else:
        replacement = ""
    return Block(start, end, accepted, replacement)


def tag_bodies(text: str, open_tag: str, close_tag: str) -> Iterator[tuple[int, int, int, bool]]:
    """Yield ``(start, body_start, body_end, closed)`` for each open tag; an unclosed body runs to the next tag.

    Linear in the reply's length (each tag is searched for once), so a reply full of tags cannot stall parsing.
    """
    opens = [match.start() for match in re.finditer(re.escape(open_tag), text)]
    close = -1  # the first close tag at or after the current body, len(text) once there is none
    position = 0
    for index, start in enumerate(opens):
        if start < position:
            continue
        body_start = start + len(open_tag)
        if close < body_start:
            found = text.find(close_tag, body_start)
            close = found if found != -1 else len(text)
        following = opens[index + 1] if index + 1 < len(opens) else len(text)
        if close < len(text) and close < following:
            yield start, body_start, close, True
            position = close + len(close_tag)
        else:
            yield start, body_start, following, False
            position = following

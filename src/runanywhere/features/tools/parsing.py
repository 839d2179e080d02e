"""Finding the tool calls in a model's reply, in every syntax of :class:`ToolCallFormat`.

Each syntax has a finder (``json_calls``, ``pythonic``) that returns the blocks of call markup it
recognises; :data:`TAGGED_FORMATS` is the registry. Model output is untrusted: it is only ever parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from .blocks import Block, without_overlaps
from .json_calls import hermes_blocks, json_blocks
from .pythonic import lfm2_blocks
from .types import ToolCall, ToolCallFormat, as_format

BlockFinder = Callable[[str, frozenset[str] | None], list[Block]]

#: The syntaxes with markers of their own and their finders. ``AUTO`` reads them all, then bare JSON in the
#: text between their blocks. A new syntax is a :class:`ToolCallFormat` member, a finder and one line here.
TAGGED_FORMATS: dict[ToolCallFormat, BlockFinder] = {
    ToolCallFormat.HERMES: hermes_blocks,
    ToolCallFormat.LFM2: lfm2_blocks,
}


def parse_tool_calls(
    text: str,
    fmt: ToolCallFormat | str = ToolCallFormat.AUTO,
    known: Collection[str] | None = None,
) -> tuple[list[ToolCall], str]:
    """Find the tool calls in a model's reply; return them in order and the reply with their markup removed.

    Several calls per reply are allowed. A candidate that is malformed (not JSON, single-quoted keys, a pythonic
    call with a positional argument or a non-literal value...) is skipped and stays in the remaining text, as do
    calls to names outside ``known`` when it is given. Arguments written as a JSON string are decoded, and
    ``"parameters"`` is read as a synonym of ``"arguments"``. The reply is only ever *parsed* (``json``,
    ``ast.parse``/``ast.literal_eval``), never executed.
    """
    fmt = as_format(fmt)
    if isinstance(known, str):  # one name, not a collection of characters
        known = [known]
    names = frozenset(known) if known is not None else None
    blocks = _find_blocks(text, fmt, names)
    calls: list[ToolCall] = []
    pieces: list[str] = []
    position = 0
    for block in blocks:
        if not block.calls:
            continue
        for name, arguments, call_id in block.calls:
            calls.append(ToolCall(name, arguments, call_id) if call_id else ToolCall(name, arguments))
        pieces.append(text[position : block.start])
        pieces.append(block.replacement)
        position = block.end
    pieces.append(text[position:])
    return calls, "".join(pieces).strip()



def _find_blocks(text: str, fmt: ToolCallFormat, names: frozenset[str] | None) -> list[Block]:
    """The call blocks of ``text`` in reply order: one syntax's, or (``AUTO``) every syntax's."""
    if fmt is ToolCallFormat.JSON:
        return json_blocks(text, 0, len(text), names)
    if fmt is not ToolCallFormat.AUTO:
        return TAGGED_FORMATS[fmt](text, names)
    tagged = without_overlaps([block for find in TAGGED_FORMATS.values() for block in find(text, names)])
    blocks: list[Block] = []
    position = 0
    # Bare JSON only counts outside tag blocks, so JSON inside a rejected tag block is not picked up again.
    for block in [*tagged, None]:
        gap_end = block.start if block is not None else len(text)
        blocks.extend(json_blocks(text, position, gap_end, names))
        if block is not None:
            blocks.append(block)
            position = block.end
    return blocks

"""Finding the tool calls in a model's reply, in every syntax of :class:`ToolCallFormat`.

Each syntax has a finder (``json_calls``, ``pythonic``) that returns the blocks of call markup it
recognises; :data:`TAGGED_FORMATS` is the registry, and :func:`template_format` tells which one a model's chat
template teaches it. Model output is untrusted: it is only ever parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from operator import itemgetter

from ..text.markup import overlap
from .blocks import Block, without_overlaps
from .json_calls import hermes_blocks, json_blocks
from .pythonic import lfm2_blocks
from .types import HERMES_END, HERMES_START, LFM2_END, LFM2_START, ToolCall, ToolCallFormat, as_format

BlockFinder = Callable[[str, frozenset[str] | None], list[Block]]


@dataclass(frozen=True)
class CallSyntax:
    """A call syntax with markers of its own: what opens and closes a call, and the finder of its blocks.

    ``bare_json``: its models also write a call's JSON without the markers. ``taught_by``: the text that marks
    a chat template as teaching this syntax (None: the syntax is only ever chosen by name). ``json_body``: the
    calls between the markers are JSON (a stream reader can follow them as they come).
    """

    start: str
    end: str
    find: BlockFinder
    bare_json: bool = False
    taught_by: str | None = None
    json_body: bool = True


#: The syntaxes with markers of their own. ``AUTO`` reads them all, then bare JSON in the text between their
#: blocks. A new syntax is a :class:`ToolCallFormat` member, a finder and one line here.
TAGGED_FORMATS: dict[ToolCallFormat, CallSyntax] = {
    ToolCallFormat.HERMES: CallSyntax(HERMES_START, HERMES_END, hermes_blocks),
    ToolCallFormat.QWEN: CallSyntax(HERMES_START, HERMES_END, hermes_blocks, bare_json=True, taught_by=HERMES_START),
    ToolCallFormat.LFM2: CallSyntax(LFM2_START, LFM2_END, lfm2_blocks, taught_by=LFM2_START, json_body=False),
}


def template_format(chat_template: str | None) -> ToolCallFormat:
    """The syntax a chat template teaches its model (the one whose marker it writes), else ``AUTO``.

    Qwen2.5's template writes ``<tool_call>``: its model's calls are read as ``QWEN`` only, so LFM2 markup
    or JSON that an answer quotes in the middle of a reply is never taken for a call.
    """
    found = [fmt for fmt, syntax in TAGGED_FORMATS.items() if syntax.taught_by and syntax.taught_by in
             (chat_template or "")]
    return found[0] if len(found) == 1 else ToolCallFormat.AUTO


def syntaxes_of(fmt: ToolCallFormat) -> tuple[list[CallSyntax], bool]:
    """The tagged syntaxes a format reads, and whether it also reads bare JSON calls."""
    if fmt is ToolCallFormat.JSON:
        return [], True
    if fmt is ToolCallFormat.AUTO:
        unique = {syntax.find: syntax for syntax in TAGGED_FORMATS.values()}  # one finder reads one syntax
        return list(unique.values()), True
    return [TAGGED_FORMATS[fmt]], TAGGED_FORMATS[fmt].bare_json


def first_opening(text: str, syntaxes: Sequence[CallSyntax]) -> tuple[int, CallSyntax] | None:
    """Where the first call marker of ``syntaxes`` starts in ``text``, and its syntax; None when there is none."""
    found = [(at, syntax) for syntax in syntaxes if (at := text.find(syntax.start)) >= 0]
    return min(found, key=itemgetter(0)) if found else None


def partial_opening(text: str, syntaxes: Sequence[CallSyntax]) -> int:
    """How many characters at the end of ``text`` could still begin a call marker (held back until they can't)."""
    return max((overlap(text, syntax.start) for syntax in syntaxes), default=0)


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
    """The call blocks of ``text`` in reply order: the format's tagged syntaxes, then any bare JSON it reads."""
    syntaxes, bare = syntaxes_of(fmt)
    tagged = without_overlaps([block for syntax in syntaxes for block in syntax.find(text, names)])
    if not bare:
        return tagged
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

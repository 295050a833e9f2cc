"""A tool input as a request message shows it: its known fields (``tools.tool``), the rest
as JSON, and what a Modify changed."""

from __future__ import annotations

from typing import Any

from ... import text
from ...approvals import edits, tools
from ...approvals.model import ApprovalRequest
from .. import limits, mrkdwn
from .kit import as_json, context, plain_text, section
from .rooms import ROOMS, Room

_NOTE_ROOM = 100
"""Room kept in a section for the "… [N more characters]" note."""


def _labelled_code(label: str, value: str, preview: int = limits.PREVIEW_TEXT) -> tuple[dict[str, Any], int]:
    """A section: bold label, then the value as an inert code block."""
    heading = f"*{label}*\n"
    code, hidden = mrkdwn.code_block(value, min(preview, limits.SECTION_TEXT - len(heading) - _NOTE_ROOM))
    if hidden:
        code += "\n" + text.message.TRUNCATED.format(hidden=hidden)
    return section(heading + code), hidden


def input_blocks(
    tool_name: str, tool_input: dict[str, Any], preview: int = limits.PREVIEW_TEXT
) -> tuple[list[dict[str, Any]], bool]:
    """A readable rendering of a tool input (the fields ``tools.tool`` names first), and whether
    any of it was cut.

    ``preview``: characters each field may show (as Slack counts them)."""
    blocks: list[dict[str, Any]] = []
    shown: set[str] = set()
    truncated = False
    shape = tools.tool(tool_name)
    for field in shape.shown_as_text:
        value = tool_input.get(field.key)
        if isinstance(value, str) and value:
            line = f"{field.label}: {value}"
            plain = plain_text(line, min(preview, limits.SECTION_TEXT))
            blocks.append({"type": "section", "text": plain})
            truncated |= plain["text"] != mrkdwn.clean(line)
            shown.add(field.key)
    for field in shape.shown_as_code:
        value = tool_input.get(field.key)
        if value is None:
            continue
        block, hidden = _labelled_code(
            field.label, value if isinstance(value, str) else as_json(value), preview
        )
        blocks.append(block)
        truncated |= hidden > 0
        shown.add(field.key)
    rest = {k: v for k, v in tool_input.items() if k not in shown}
    if rest or not blocks:
        block, hidden = _labelled_code("Input" if not shown else "Other input", as_json(rest), preview)
        blocks.append(block)
        truncated |= hidden > 0
    return blocks, truncated


def input_summary(tool_input: dict[str, Any]) -> str:
    """What the call does in one line (``tools.summary``), else its whole input as JSON."""
    shown = tools.summary(tool_input)
    return shown if shown is not None else as_json(tool_input)


def diff_sections(request: ApprovalRequest, room: Room = ROOMS[0]) -> tuple[list[dict[str, Any]], bool]:
    """A compact before/after of the fields a person changed (one section each), and whether any was cut."""
    if request.updated_input is None:
        return [], False
    changed = edits.changed_fields(request.tool_input, request.updated_input)
    sections = []
    truncated = False
    for number, key in enumerate(changed[:3]):
        (before, cut_before), (after, cut_after) = (
            _code_preview(_as_text(side.get(key)), room.diff)
            for side in (request.tool_input, request.updated_input)
        )
        truncated |= cut_before or cut_after
        # The key comes from the agent's input: its backticks must not close the fences around the values.
        line = text.message.CHANGED_FIELD.format(
            key=mrkdwn.inline_inert(key, 100), before=before, after=after
        )
        sections.append(section((text.message.CHANGES_HEADING + "\n" if number == 0 else "") + line))
    if len(changed) > 3:
        sections.append(
            context(text.message.ALSO_CHANGED.format(keys=mrkdwn.inline(", ".join(changed[3:]), room.line)))
        )
    return sections, truncated


def _code_preview(value: str, budget: int) -> tuple[str, bool]:
    """The start of ``value`` for inside a code fence, "…" when cut (never empty: "``````" would not
    render), and whether it was cut."""
    shown, hidden = mrkdwn.fit(value, budget - 3)  # 3: the "…" and a zero-width space at either end
    return mrkdwn.unfenced_ends(shown + mrkdwn.ELLIPSIS if hidden else shown) or " ", hidden > 0


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else as_json(value)

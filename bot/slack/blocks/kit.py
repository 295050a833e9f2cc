"""The Block Kit pieces every builder is made of, each cut to ``limits``, and the message they make.

Every piece of tool input goes through ``mrkdwn``, so it can neither ping anyone nor break the layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ... import text
from .. import limits, mrkdwn
from ..ids import Action, Modal, form_metadata


@dataclass(frozen=True)
class Message:
    """A message to post or update: ``chat.postMessage``'s ``text`` and ``blocks``."""

    text: str
    """Fallback and notification text."""
    blocks: list[dict[str, Any]]


def plain_text(value: str, budget: int) -> dict[str, Any]:
    """A plain_text object of ``value``, cleaned and cut to ``budget``."""
    return {"type": "plain_text", "text": mrkdwn.plain(value, budget), "emoji": True}


def mrkdwn_text(markdown: str, budget: int) -> dict[str, Any]:
    """A mrkdwn object of ``markdown`` (already escaped), cut to ``budget``."""
    # verbatim: without it Slack links URLs and #channel names and parses some
    # mentions even when escaped; our own <@U…> and <!date…> tokens still render.
    return {"type": "mrkdwn", "text": mrkdwn.cut(markdown, budget), "verbatim": True}


def section(markdown: str) -> dict[str, Any]:
    """A section of ``markdown`` (already escaped)."""
    return {"type": "section", "text": mrkdwn_text(markdown, limits.SECTION_TEXT)}


def plain_section(value: str) -> dict[str, Any]:
    """A section of plain text."""
    return {"type": "section", "text": plain_text(value, limits.SECTION_TEXT)}


def context(*markdown: str) -> dict[str, Any]:
    """A context block: one element per line of ``markdown`` (already escaped)."""
    return {
        "type": "context",
        "elements": [mrkdwn_text(m, limits.CONTEXT_TEXT) for m in markdown[: limits.CONTEXT_ELEMENTS]],
    }


def as_json(value: Any) -> str:
    """A tool input (or a part of it) as people read it: indented JSON."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def when(template: str, epoch: float) -> str:
    """``template`` with ``epoch`` for its ``<!date>`` token, and its fallback."""
    return template.format(epoch=int(epoch), fallback=text.notation.utc(epoch))


def text_size(blocks: list[dict[str, Any]]) -> int:
    """All the text of ``blocks`` as Slack counts it against a message's total (``mrkdwn.size``)."""
    total = 0
    stack: list[Any] = [blocks]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") in ("plain_text", "mrkdwn") and isinstance(item.get("text"), str):
                total += mrkdwn.size(item["text"])
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return total


def button(label: str, action: Action, value: str, style: str | None = None) -> dict[str, Any]:
    """A button that sends ``action`` with ``value`` (a request id)."""
    element: dict[str, Any] = {
        "type": "button",
        "text": plain_text(label, limits.BUTTON_TEXT),
        "action_id": action.value,
        "value": value,
    }
    if style:
        element["style"] = style
    return element


def input_block(
    block_id: str, label: str, element: dict[str, Any], *, optional: bool, hint: str = ""
) -> dict[str, Any]:
    """A modal's input block around ``element``."""
    block = {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": plain_text(label, 2000),
        "element": element,
    }
    if hint:
        block["hint"] = plain_text(hint, 2000)
    return block


def text_input(action_id: str, *, multiline: bool, initial: str = "") -> dict[str, Any]:
    """A plain_text_input holding as much as Slack lets one hold."""
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": action_id,
        "multiline": multiline,
        "max_length": limits.PLAIN_TEXT_INPUT,
    }
    if initial:
        element["initial_value"] = initial
    return element


def form(
    callback: Modal,
    title: str,
    submit: str,
    request_id: str,
    blocks: list[dict[str, Any]],
    *,
    revision: int | None = None,
) -> dict[str, Any]:
    """A modal about one request: its id (and the revision shown) ride in private_metadata
    for the submission."""
    metadata = form_metadata(request_id, revision)
    return modal(
        callback, title, blocks, submit=plain_text(submit, limits.MODAL_BUTTON), private_metadata=metadata
    )


def modal(callback: Modal, title: str, blocks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A modal view; ``extra`` adds its other fields (``submit``, ``private_metadata``)."""
    view = {
        "type": "modal",
        "callback_id": callback.value,
        "title": plain_text(title, limits.MODAL_TITLE),
        "close": plain_text(text.modals.CLOSE, limits.MODAL_BUTTON),
        "blocks": blocks[: limits.MODAL_BLOCKS],
    }
    view.update(extra)
    return view

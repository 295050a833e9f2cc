"""*View full input*: every character of an input, over as many modal pages as it needs."""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from ... import text
from ...approvals.model import ApprovalRequest, State
from .. import limits, mrkdwn
from ..ids import Action, Modal
from .kit import as_json, button, modal, plain_section, section

_PAGE_RESERVE = 4_000
"""Bytes of a page kept for its heading and the Previous/Next buttons."""


def full_input_modal(request: ApprovalRequest, page: int = 0) -> dict[str, Any]:
    """The whole input as pretty JSON: every character, over as many pages as it needs.

    After a change, what runs comes first, then the input as the agent asked it.
    One page is one view within ``limits.VIEW_BUDGET`` bytes and
    ``limits.MODAL_BLOCKS`` blocks; *Previous* and *Next* (``Action.INPUT_PREVIOUS``,
    ``Action.INPUT_NEXT``, value ``"<request id> <page>"``) turn to another page with ``views.update``.
    """
    documents = [("", as_json(request.tool_input))]
    if request.state is State.ANSWERED and request.updated_input is not None:
        documents = [("", as_json(request.updated_input))]  # the questions, and the answers sent
    elif request.modified:
        documents = [
            (text.modals.FULL_INPUT_CHANGED, as_json(request.updated_input)),
            (text.modals.FULL_INPUT_ASKED, documents[0][1]),
        ]
    starts = _page_starts(tuple(documents))
    page = max(0, min(page, len(starts) - 1))
    shown = _page(tuple(documents), starts, page)
    title = f"{request.tool_name} · request {request.id}"
    if len(starts) > 1:
        title += " · " + text.modals.FULL_INPUT_PAGE.format(page=page + 1, pages=len(starts))
    blocks: list[dict[str, Any]] = [plain_section(title), *shown]
    turns = []
    if page > 0:
        turns.append(button(text.modals.PREVIOUS_PAGE, Action.INPUT_PREVIOUS, f"{request.id} {page - 1}"))
    if page < len(starts) - 1:
        turns.append(
            button(text.modals.NEXT_PAGE, Action.INPUT_NEXT, f"{request.id} {page + 1}", style="primary")
        )
    if turns:
        blocks.append({"type": "actions", "elements": turns})
    return modal(Modal.FULL_INPUT, text.modals.FULL_INPUT_TITLE, blocks, private_metadata=request.id)


_CODE_PIECE = limits.SECTION_TEXT - 10
"""Room for a piece of the input inside its fenced section."""


@dataclass(frozen=True)
class _PageStart:
    """Where a page of *View full input* begins: in which document, before its heading or at
    which character of it (always where ``mrkdwn.split`` starts a piece)."""

    document: int
    heading: bool
    """Before the document's heading (when it has one): the page shows it first."""
    offset: int


_PAGES_KEPT = 64
"""Inputs whose page starts a worker remembers. Only the starts (a few numbers a page), never
the input nor a rendered page: inputs have no size cap, and a whole 1 MB input with its pages
took ~25 MB, times every input cached."""
_page_starts_kept: OrderedDict[bytes, tuple[_PageStart, ...]] = OrderedDict()
_page_starts_lock = threading.Lock()
"""Pages are built off the event loop (bot.slack.listeners.modal_clicks), so threads share the cache."""


def _digest(documents: tuple[tuple[str, str], ...]) -> bytes:
    digest = hashlib.sha256()
    for heading, document in documents:
        for part in (heading, document):
            data = part.encode("utf-8", "surrogatepass")  # tool input may hold lone surrogates
            digest.update(len(data).to_bytes(8, "big") + data)
    return digest.digest()


def _page_starts(documents: tuple[tuple[str, str], ...]) -> tuple[_PageStart, ...]:
    """Where each page begins, remembered by the documents' digest: turning the pages of a 2 MB
    input costs one split of it, then one page's rendering per turn."""
    key = _digest(documents)
    with _page_starts_lock:
        starts = _page_starts_kept.get(key)
        if starts is not None:
            _page_starts_kept.move_to_end(key)
            return starts
    starts = _split_pages(documents)
    with _page_starts_lock:
        _page_starts_kept[key] = starts
        while len(_page_starts_kept) > _PAGES_KEPT:
            _page_starts_kept.popitem(last=False)
    return starts


def _code_section(piece: str) -> dict[str, Any]:
    return section(f"```\n{mrkdwn.inert_code(piece)}\n```")


def _split_pages(documents: tuple[tuple[str, str], ...]) -> tuple[_PageStart, ...]:
    """Code sections holding every character of each document, grouped into pages of at most
    ``limits.VIEW_BUDGET`` bytes (less ``_PAGE_RESERVE``) and ``limits.MODAL_BLOCKS`` blocks:
    where each page begins. Each section is rendered to be weighed, then dropped."""
    starts = [_PageStart(0, True, 0)]
    used = count = 0
    for number, (heading, document) in enumerate(documents):
        sections = [(_PageStart(number, True, 0), "", heading)] if heading else []
        offset = 0
        for piece in mrkdwn.split(document, _CODE_PIECE):
            sections.append((_PageStart(number, False, offset), piece, ""))
            offset += len(piece)
        for start, piece, heading_text in sections:
            # Slack's client sends JSON with non-ASCII escaped: measure it so.
            weight = len(json.dumps(section(heading_text) if heading_text else _code_section(piece)))
            if count and (
                used + weight > limits.VIEW_BUDGET - _PAGE_RESERVE or count >= limits.MODAL_BLOCKS - 2
            ):
                starts.append(start)
                used = count = 0
            count += 1
            used += weight
    return tuple(starts)


def _page(
    documents: tuple[tuple[str, str], ...], starts: tuple[_PageStart, ...], page: int
) -> list[dict[str, Any]]:
    """The sections of one page: only its part of the documents is split and rendered."""
    start = starts[page]
    end = starts[page + 1] if page + 1 < len(starts) else _PageStart(len(documents), True, 0)
    out: list[dict[str, Any]] = []
    for number in range(start.document, min(end.document, len(documents) - 1) + 1):
        heading, document = documents[number]
        from_heading = number > start.document or start.heading
        if heading and from_heading and (number < end.document or not end.heading):
            out.append(section(heading))
        first = 0 if from_heading else start.offset
        last = len(document) if number < end.document else (0 if end.heading else end.offset)
        if first < last:
            # A page begins where a piece does, so its pieces are the very ones the whole split made.
            out += [_code_section(piece) for piece in mrkdwn.split(document[first:last], _CODE_PIECE)]
    return out

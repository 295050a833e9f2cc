"""The steps of a :class:`~bot.demo.scripted_model.ScriptedModel`'s script: what the "model" says next."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

StopReason = Literal["end_turn", "tool_use"]


@dataclass(frozen=True)
class Step:
    """One scripted assistant message: its content blocks and stop reason."""

    content: tuple[dict[str, Any], ...]
    stop_reason: StopReason

    @property
    def tool_use_ids(self) -> list[str]:
        """Ids of the tool_use blocks in this step, in order."""
        return [block["id"] for block in self.content if block["type"] == "tool_use"]


def text(message: str) -> Step:
    """A final assistant answer: one text block, stop_reason ``end_turn``."""
    return Step(content=({"type": "text", "text": message},), stop_reason="end_turn")


def tool_use(name: str, input: Mapping[str, Any], id: str | None = None) -> Step:
    """An assistant message calling one tool (stop_reason ``tool_use``).

    ``id`` defaults to a fresh ``toolu_01...`` id, readable via
    :attr:`Step.tool_use_ids`.
    """
    block = {
        "type": "tool_use",
        "id": id or f"toolu_01{uuid.uuid4().hex[:22]}",
        "name": name,
        "input": dict(input),
    }
    return Step(content=(block,), stop_reason="tool_use")


def tool_uses(*calls: Step) -> Step:
    """Merge several :func:`tool_use` steps into one message (parallel calls)."""
    if not calls:
        raise ValueError("tool_uses() needs at least one tool_use() step")
    blocks = tuple(block for call in calls for block in call.content)
    if any(block["type"] != "tool_use" for block in blocks):
        raise ValueError("tool_uses() only accepts tool_use() steps")
    return Step(content=blocks, stop_reason="tool_use")

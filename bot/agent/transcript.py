"""What the session transcript says about the current turn's tool calls.

The CLI writes the model's message to the session's JSONL transcript, one
entry per content block, before it runs the PreToolUse hooks for its calls.
The gate reads the end of it to defer only a call made alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

TRANSCRIPT_TAIL = 1 << 20
"""Bytes read from the end of the transcript to find the current turn."""


def _tail_entries(transcript_path: str) -> Iterator[dict[str, Any]]:
    """The JSON entries in the transcript's last ``TRANSCRIPT_TAIL`` bytes; nothing if it cannot be read."""
    try:
        with open(transcript_path, "rb") as transcript:
            transcript.seek(0, os.SEEK_END)
            transcript.seek(max(0, transcript.tell() - TRANSCRIPT_TAIL))
            tail = transcript.read()
    except (OSError, ValueError):
        return
    for line in tail.splitlines():
        if b'"tool_use"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # the first line of the tail may be cut
        if isinstance(entry, dict) and isinstance(entry.get("message"), dict):
            yield entry


def _blocks(entry: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    content = entry["message"].get("content")
    return (
        [b for b in content if isinstance(b, dict) and b.get("type") == kind]
        if isinstance(content, list)
        else []
    )


def calls_in_turn(transcript_path: str, tool_use_id: str) -> int:
    """How many tool calls the model made in the message holding this one (0: not found).

    Only a call made alone can be deferred: when one call of several is
    deferred, the CLI ends the turn without running or replaying the others
    (seen with CLI 2.1.329), so they would be lost.
    """
    calls: dict[str, set[str]] = {}
    owner = None
    for entry in _tail_entries(transcript_path):
        if entry.get("type") != "assistant":
            continue
        ids = {b.get("id") for b in _blocks(entry, "tool_use")}
        message_id = str(entry["message"].get("id"))
        calls.setdefault(message_id, set()).update(i for i in ids if isinstance(i, str))
        if tool_use_id in ids:
            owner = message_id
    return len(calls[owner]) if owner is not None else 0

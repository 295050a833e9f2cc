"""Editing a tool input before approving it: which fields, and what is valid.

Known tools are edited field by field (``tools.Tool.editable``); any other tool as one JSON object.
Nothing here knows about Slack: the modal is built from ``fields_for`` and
its values come back through ``apply``.
"""

from __future__ import annotations

import json
from typing import Any

from .tools import Field, tool

WHOLE_INPUT = "__json__"
"""Pseudo field name: the whole input as JSON (tools without a known shape)."""


def fields_for(tool_name: str, tool_input: dict[str, Any]) -> tuple[Field, ...]:
    """The fields a person edits for this tool (JSON of the whole input otherwise)."""
    known = tool(tool_name).editable
    if known and all(isinstance(tool_input.get(f.key, ""), str) for f in known):
        return known
    return (Field(WHOLE_INPUT, "Input (JSON object)", multiline=True),)


def current_value(field: Field, tool_input: dict[str, Any]) -> str:
    if field.key == WHOLE_INPUT:
        return json.dumps(tool_input, indent=2, ensure_ascii=False)
    return str(tool_input.get(field.key, ""))


class InvalidEdit(Exception):
    """The edited values cannot become a tool input; ``errors`` maps field key → reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def apply(tool_name: str, tool_input: dict[str, Any], edited: dict[str, str | None]) -> dict[str, Any]:
    """The new input: ``tool_input`` with the edited fields replaced.

    ``edited`` holds only the fields the form offered (a field too large to
    edit is not offered and keeps its value). Raises ``InvalidEdit``.
    """
    fields = {f.key: f for f in fields_for(tool_name, tool_input)}
    if WHOLE_INPUT in fields:
        raw = edited.get(WHOLE_INPUT)
        if raw is None:
            return dict(tool_input)
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            raise InvalidEdit({WHOLE_INPUT: f"Not valid JSON: {exc}"}) from None
        if not isinstance(parsed, dict):
            raise InvalidEdit({WHOLE_INPUT: "The input must be a JSON object ({…})."})
        missing = [k for k in tool_input if k not in parsed]
        if missing:
            raise InvalidEdit(
                {
                    WHOLE_INPUT: f"Missing key: {', '.join(missing[:5])}. Set it to null rather than removing it."
                }
            )
        return parsed
    result = dict(tool_input)
    errors = {}
    for key, value in edited.items():
        field = fields.get(key)
        if field is None:
            continue
        value = value or ""
        if field.required and not value.strip():
            errors[key] = f"{field.label} is required."
        result[key] = value
    if errors:
        raise InvalidEdit(errors)
    return result


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Keys whose value differs, in a stable order."""
    keys = list(before) + [k for k in after if k not in before]
    return [k for k in keys if before.get(k) != after.get(k)]

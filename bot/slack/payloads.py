"""The parts of Slack's interaction payloads the listeners use, validated.

A payload that does not have them is malformed: the listener acks, logs and
changes nothing.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import limits
from .ids import (
    CHOICE_INPUT,
    CHOICE_PREFIX,
    EDIT_INPUT,
    OWN_ANSWER_INPUT,
    OWN_ANSWER_PREFIX,
    edit_key,
    parse_form_metadata,
    question_index,
    shown_request,
    shown_revision,
)
from .ids import Field as InputField

_REQUEST_ID = re.compile(r"^[0-9a-f]{24}$")


def _request_id(value: str) -> str:
    if not _REQUEST_ID.match(value):
        raise ValueError("not a request id")
    return value


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SlackUser(_Payload):
    id: str = Field(min_length=1)
    username: str = ""
    name: str = ""

    @property
    def display(self) -> str:
        return self.username or self.name


class _Channel(_Payload):
    id: str = Field(min_length=1)


class _Action(_Payload):
    action_id: str
    value: str
    block_id: str = ""

    _check = field_validator("value")(_request_id)


class OnMessage(_Payload):
    """A ``block_actions`` payload from an element of a request message: who, and where."""

    user: SlackUser
    channel: _Channel
    trigger_id: str = ""


class ButtonClick(OnMessage):
    """A ``block_actions`` payload for one of our buttons."""

    actions: list[_Action] = Field(min_length=1)

    @property
    def request_id(self) -> str:
        return self.actions[0].value

    @property
    def revision(self) -> int | None:
        """The request revision the clicked message showed."""
        return shown_revision(self.actions[0].block_id)


class _SelectedOption(_Payload):
    value: str = Field(max_length=limits.OPTION_TEXT)


class _MenuAction(_Payload):
    action_id: str
    block_id: str
    selected_option: _SelectedOption

    @field_validator("block_id")
    @classmethod
    def _names_a_request(cls, value: str) -> str:
        _request_id(shown_request(value) or "")
        return value


class MenuChoice(OnMessage):
    """A ``block_actions`` payload for a pick in one of our ``static_select`` menus.

    A menu has no ``value``: the request id and the revision shown ride in its
    block_id, and the option picked in ``selected_option.value``."""

    actions: list[_MenuAction] = Field(min_length=1)

    @property
    def request_id(self) -> str:
        return shown_request(self.actions[0].block_id) or ""

    @property
    def revision(self) -> int | None:
        return shown_revision(self.actions[0].block_id)

    @property
    def picked(self) -> str:
        """The option's value as sent: an option index (labels can exceed the 75-character value limit), or anything a forger wrote."""
        return self.actions[0].selected_option.value


class _RuleAction(_Payload):
    action_id: str
    value: str = Field(pattern=r"^[0-9a-f]{16}$")


class RuleClick(_Payload):
    """A click on a rule's Remove button (in the ephemeral slash-command answer)."""

    user: SlackUser
    actions: list[_RuleAction] = Field(min_length=1)

    @property
    def rule_id(self) -> str:
        return self.actions[0].value


class _ModalView(_Payload):
    callback_id: str = ""
    """Which of our forms it is (``ids.Modal``): the listener Bolt chose by it."""
    private_metadata: str
    state: dict[str, Any]

    @field_validator("private_metadata")
    @classmethod
    def _ours(cls, value: str) -> str:
        _request_id(parse_form_metadata(value)[0])
        return value

    @property
    def values(self) -> dict[str, Any]:
        """``state.values``: block_id → action_id → the input's state."""
        values = self.state.get("values")
        return values if isinstance(values, dict) else {}


class Submission(_Payload):
    """A ``view_submission`` of one of our modals; the request id rides in private_metadata."""

    user: SlackUser
    view: _ModalView

    @property
    def request_id(self) -> str:
        return parse_form_metadata(self.view.private_metadata)[0]

    @property
    def revision(self) -> int | None:
        """The request revision the form showed (Modify), if it carries one."""
        return parse_form_metadata(self.view.private_metadata)[1]

    def _inputs(self, prefix: str) -> dict[int, dict[str, Any]]:
        found = {}
        for block_id, inputs in self.view.values.items():
            index = question_index(block_id, prefix)
            if index is not None and isinstance(inputs, dict):
                found[index] = inputs
        return found


class ModifySubmission(Submission):
    """The Modify modal."""

    @property
    def edited(self) -> dict[str, str | None]:
        """Field key → submitted text, for the fields the modal offered."""
        values = {}
        for block_id, inputs in self.view.values.items():
            key = edit_key(block_id)
            if key is not None and isinstance(inputs, dict):
                values[key] = (inputs.get(EDIT_INPUT) or {}).get("value")
        return values


class AnswerSubmission(Submission):
    """The answer form: options picked and text typed, per question."""

    @property
    def chosen(self) -> dict[int, list[int]]:
        """Question index → indexes of the options picked."""
        picked: dict[int, list[int]] = {}
        for index, inputs in self._inputs(CHOICE_PREFIX).items():
            state = inputs.get(CHOICE_INPUT) or {}
            options = state.get("selected_options") or (
                [state["selected_option"]] if state.get("selected_option") else []
            )
            picked[index] = [int(o["value"]) for o in options if str(o.get("value", "")).isdigit()]
        return picked

    @property
    def typed(self) -> dict[int, str]:
        """Question index → the answer typed instead of (or with) the options."""
        return {
            index: (inputs.get(OWN_ANSWER_INPUT) or {}).get("value") or ""
            for index, inputs in self._inputs(OWN_ANSWER_PREFIX).items()
        }


class DenySubmission(Submission):
    """The deny modal."""

    @property
    def reason(self) -> str:
        block = self.view.values.get(InputField.REASON_BLOCK.value, {})
        return (block.get(InputField.REASON_INPUT.value) or {}).get("value") or ""


_PERSON_SUBTYPES = frozenset({"thread_broadcast", "file_share", "me_message"})


def is_person_reply(message: dict[str, Any], bot_user: str) -> bool:
    """A reply a person wrote: not the bot's own posts, not edits or deletions, not other bots."""
    if message.get("bot_id") or not message.get("user") or message.get("user") == bot_user:
        return False
    subtype = message.get("subtype")
    return subtype is None or subtype in _PERSON_SUBTYPES

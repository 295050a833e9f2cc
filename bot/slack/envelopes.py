"""What Slack may POST to ``/slack/events``, checked before Bolt reads it.

Bolt indexes into payloads without checking them (``body["view"]["type"]``,
``body["actions"][0]["action_id"]``, ``"id" in payload["team"]``…) while it
builds its context and matches listeners, and answers 500 to whatever
raises there. So the worker checks, before dispatch, every field Bolt and
the listeners read, with the type they read it as; a request that fails is
answered 400 and changes nothing. Only what the app subscribes to is
accepted: interactions (``block_actions``, ``view_submission``,
``view_closed``) as a form field ``payload``, the ``/approvals`` command as a
form, the Events API (``event_callback``, ``url_verification``,
``app_rate_limited``) as JSON (docs.slack.dev, "Handling user interaction",
"Implementing slash commands", "The Events API").
"""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

INTERACTIONS = ("block_actions", "view_submission", "view_closed")
EVENTS_API = ("event_callback", "url_verification", "app_rate_limited")


class Malformed(ValueError):
    """The request is signed but is not a shape Slack sends; the message says why (for the log)."""


class _Part(BaseModel):
    # Slack adds fields over time: only the ones read are checked.
    model_config = ConfigDict(extra="allow")


Id = StrictStr | None


class _Ref(_Part):
    """An object Bolt takes an id from (``"id" in payload["team"]``)."""

    id: Id = None


class _Team(_Ref):
    enterprise_id: Id = None


class _User(_Ref):
    team_id: Id = None


class _ResponseUrl(_Part):
    response_url: Id = None


class _Context(_Part):
    """What Bolt reads from any payload, and from the objects it recurses into,
    to build its context (``slack_bolt.request.internals.build_context``)."""

    enterprise: StrictStr | _Ref | None = None
    team: StrictStr | _Team | None = None
    user: StrictStr | _User | None = None
    channel: StrictStr | _Ref | None = None
    team_id: Id = None
    enterprise_id: Id = None
    user_id: Id = None
    channel_id: Id = None
    thread_ts: Id = None
    user_team: Id = None
    is_enterprise_install: StrictBool | StrictStr | None = None
    authorizations: list[_Context] | None = None
    message: _Context | None = None
    previous_message: _Context | None = None
    item: _Context | None = None
    assistant_thread: _Context | None = None
    response_url: Id = None
    response_urls: list[_ResponseUrl] = Field(default_factory=list)
    """Bolt takes ``len()`` of it whenever the key is there, null or not."""
    function_execution_id: Id = None
    function_data: dict[str, Any] | None = None


class _Option(_Part):
    value: Id = None


class _InputState(_Part):
    """One input's state in ``view.state.values`` (the listeners read these fields)."""

    type: Id = None
    value: Id = None
    selected_option: _Option | None = None
    selected_options: list[_Option] | None = None


class _ViewState(_Part):
    values: dict[str, dict[str, _InputState]] = Field(default_factory=dict)


class _View(_Part):
    id: StrictStr
    type: StrictStr
    callback_id: StrictStr
    private_metadata: Id = None
    team_id: Id = None
    app_installed_team_id: Id = None
    state: _ViewState | None = None


class _PersonsPayload(_Context):
    user: _User
    view: _View | None = None
    trigger_id: Id = None


class _BlockAction(_Part):
    action_id: StrictStr
    block_id: Id = None
    value: Id = None
    type: Id = None


class _Container(_Part):
    type: Id = None
    channel_id: Id = None
    message_ts: Id = None


class BlockActions(_PersonsPayload):
    """A click on a button (in a message, an ephemeral message, a modal or App Home)."""

    type: Literal["block_actions"]
    trigger_id: StrictStr = Field(min_length=1)
    """Every click carries one (the modals open with it)."""
    actions: list[_BlockAction] = Field(min_length=1)
    container: _Container | None = None
    state: _ViewState | None = None


class ViewPayload(_PersonsPayload):
    """A modal submitted or closed."""

    type: Literal["view_submission", "view_closed"]
    view: _View


class _Event(_Context):
    type: StrictStr
    subtype: Id = None
    ts: Id = None
    event_ts: Id = None
    text: Id = None
    bot_id: Id = None
    channel_type: Id = None
    tab: Id = None
    source_team: Id = None


class _MessageEvent(_Event):
    # The thread listener keeps ``user`` as the author's id.
    user: Id = None


class EventCallback(_Context):
    type: Literal["event_callback"]
    event: _Event
    event_id: Id = None
    is_ext_shared_channel: StrictBool | None = None


class UrlVerification(_Part):
    type: Literal["url_verification"]
    challenge: StrictStr


class SlashCommand(_Part):
    command: StrictStr = Field(min_length=1)
    user_id: StrictStr = Field(min_length=1)
    team_id: StrictStr = Field(min_length=1)
    text: StrictStr = ""


def parse(body: bytes, content_type: str) -> dict[str, Any]:
    """The request Bolt will see, as Bolt will parse it; ``Malformed`` if Slack would not send it."""
    try:
        decoded = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("body is not UTF-8") from None
    if content_type == JSON:
        data = _json(decoded, "body")
        if not isinstance(data, dict) or data.get("type") not in EVENTS_API:
            raise Malformed("a JSON body that is not an Events API request")
    elif content_type == FORM:
        data = _form(decoded)
    else:
        raise Malformed(f"unexpected content type {content_type!r}")
    check(data)
    return data


def check(data: dict[str, Any]) -> None:
    """``Malformed`` unless every field Bolt and the listeners read has the type they read."""
    kind = data.get("type")
    if "command" in data and kind is not None:
        # Bolt takes anything with a "command" key for a slash command.
        raise Malformed("a payload that is both an interaction or event and a command")
    model: type[BaseModel]
    if "command" in data:
        model = SlashCommand
    elif kind == "block_actions":
        model = BlockActions
    elif kind in ("view_submission", "view_closed"):
        model = ViewPayload
    elif kind == "event_callback":
        model = EventCallback
    elif kind == "url_verification":
        model = UrlVerification
    elif kind == "app_rate_limited":
        model = _Context
    else:
        raise Malformed(f"unsupported payload type {kind!r}")
    try:
        model.model_validate(data)
        if kind == "event_callback" and data["event"].get("type") == "message":
            _MessageEvent.model_validate(data["event"])
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        raise Malformed(f"{kind or 'command'}: {where}: {first['msg']}") from None


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        raise Malformed(f"{what} is not JSON") from None


def _form(decoded: str) -> dict[str, Any]:
    if decoded.startswith("{"):
        # Bolt parses any body starting with "{" as JSON, whatever its content type.
        raise Malformed("a form body that Bolt would read as JSON")
    pairs = parse_qsl(decoded, keep_blank_values=True)
    fields = dict(pairs)
    if len(fields) != len(pairs):
        # Bolt keeps the last of repeated fields: checking the first would check another request.
        raise Malformed("a form field is repeated")
    if "payload" in fields:
        if len(fields) != 1:
            raise Malformed("an interaction form with fields besides payload")
        payload = _json(fields["payload"], "payload")
        if not isinstance(payload, dict) or payload.get("type") not in INTERACTIONS:
            raise Malformed("payload is not an interaction the app handles")
        return payload
    if "command" not in fields:
        raise Malformed("a form that is neither an interaction nor a command")
    return fields

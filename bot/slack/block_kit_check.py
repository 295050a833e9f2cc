"""Block Kit as Slack checks it: the reasons Slack would refuse a message or a view.

Both stand-ins for Slack's Web API use it, the playground's (``bot.demo.slack_api``)
and the tests' fake, so a payload one refuses the other refuses too. It checks
with slack_sdk's own models through ``to_dict()`` (which, unlike
``validate_json()``, also validates nested elements such as buttons) plus the
checks slack_sdk does not make. The limits here are Slack's, written down
apart from the builders' own (``bot.slack.limits``) so that a builder that
trusts a wrong limit is caught.
"""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

# Slack's limits that are about the whole request, not a single block.
MAX_MESSAGE_BLOCKS = 50
MAX_TEXT = 40_000
MAX_SECTION_FIELD_TEXT = 2_000
MAX_MESSAGE_BLOCKS_TEXT = 12_000
"""Text all of a message's blocks may hold together; above it Slack answers
``msg_blocks_too_long`` (undocumented; bolt-js #2509: "roughly 12-13k")."""
MAX_SECTION_TEXT = 3_000
MAX_CONTEXT_TEXT = 3_000
MAX_OPTION_TEXT = 75
MAX_SELECT_OPTIONS = 100
MAX_CHECKBOX_OPTIONS = 10
MAX_INPUT_LENGTH = 3_000
MAX_VIEW_SIZE = 250_000
"""Characters of a view's JSON (as slack_sdk sends it, non-ASCII escaped); Slack
answers ``view_too_large`` above roughly this (undocumented)."""
VIEW_TYPES = ("modal", "home")
"""What ``views.open``/``update``/``publish`` take (workflow steps from apps are retired)."""


def _pointer(reason: str, where: str) -> str:
    # Slack appends a JSON pointer to each reason; keeping the format makes
    # failures read like the real ones.
    return f"{reason} [json-pointer:{where}]"


def _slack_length(text: str) -> int:
    """Length as Slack may count it: astral characters (most emoji) are two UTF-16 units.

    Text reaches Slack escaped (``&amp;``), and escaped text is what it measures."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def _too_long(text: Any, limit: int, where: str) -> list[str]:
    if isinstance(text, str) and _slack_length(text) > limit:
        return [_pointer(f"must be less than {limit + 1} characters (is {_slack_length(text)})", where)]
    return []


def _text_object_errors(obj: Any, where: str, *, plain_only: bool = False) -> list[str]:
    """Shape errors slack_sdk forgives: bare strings, unknown types, empty text."""
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if not isinstance(obj, dict):
        return [_pointer("expected a text object, not a bare value", where)]
    if obj.get("type") not in allowed:
        return [_pointer(f"text object type must be one of {allowed}, got {obj.get('type')!r}", where)]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [_pointer("must be more than 0 characters", f"{where}/text")]
    return []


def _option_errors(options: Any, where: str, *, limit: int) -> list[str]:
    """An element's ``options``: how many, and each option's text and description ≤ 75."""
    if not isinstance(options, list) or not options:
        return [_pointer("must provide at least 1 option", where)]
    errors: list[str] = []
    if len(options) > limit:
        errors.append(_pointer(f"no more than {limit} items allowed (has {len(options)})", where))
    for i, option in enumerate(options):
        if not isinstance(option, dict):
            errors.append(_pointer("expected an option object", f"{where}/{i}"))
            continue
        errors += _text_object_errors(option.get("text"), f"{where}/{i}/text")
        errors += _too_long((option.get("text") or {}).get("text"), MAX_OPTION_TEXT, f"{where}/{i}/text/text")
        if option.get("description") is not None:
            errors += _text_object_errors(option["description"], f"{where}/{i}/description", plain_only=True)
            errors += _too_long(
                option["description"].get("text"), MAX_OPTION_TEXT, f"{where}/{i}/description/text"
            )
        if not isinstance(option.get("value"), str) or not 0 < len(option["value"]) <= MAX_OPTION_TEXT:
            errors.append(_pointer("option value must be 1 to 75 characters", f"{where}/{i}/value"))
    return errors


def _element_errors(element: Any, where: str) -> list[str]:
    """Checks on a block element (button, select, ...) slack_sdk does not make."""
    if not isinstance(element, dict):
        return [_pointer("expected an element object", where)]
    kind = element.get("type")
    if kind == "button":
        return _text_object_errors(element.get("text"), f"{where}/text", plain_only=True)
    if kind in ("static_select", "multi_static_select"):
        return _option_errors(element.get("options"), f"{where}/options", limit=MAX_SELECT_OPTIONS)
    if kind in ("checkboxes", "radio_buttons"):
        return _option_errors(element.get("options"), f"{where}/options", limit=MAX_CHECKBOX_OPTIONS)
    if kind == "plain_text_input":
        errors: list[str] = []
        most = element.get("max_length", MAX_INPUT_LENGTH)
        if not isinstance(most, int) or not 0 < most <= MAX_INPUT_LENGTH:
            errors.append(_pointer(f"max_length must be 1 to {MAX_INPUT_LENGTH}", f"{where}/max_length"))
            most = MAX_INPUT_LENGTH
        errors += _too_long(element.get("initial_value"), most, f"{where}/initial_value")
        return errors
    return []


def _extra_block_errors(raw: dict[str, Any], parsed: Block, where: str) -> list[str]:
    """Slack rejections that ``Block.to_dict()`` lets through."""
    errors: list[str] = []
    kind = raw.get("type")
    # BlockElement.parse() turns unknown element types into None (it only logs),
    # and to_dict() then lets the None through.
    if kind in ("actions", "context"):
        parsed_elements = getattr(parsed, "elements", None) or []
        errors += [
            _pointer("unknown element type", f"{where}/elements/{i}")
            for i, element in enumerate(parsed_elements)
            if element is None
        ]
    for name in ("accessory", "element"):
        if raw.get(name) is not None and getattr(parsed, name, None) is None:
            errors.append(_pointer("unknown element type", f"{where}/{name}"))

    if kind == "section":
        if "text" in raw:
            errors += _text_object_errors(raw["text"], f"{where}/text")
            if isinstance(raw["text"], dict):
                errors += _too_long(raw["text"].get("text"), MAX_SECTION_TEXT, f"{where}/text/text")
        for i, item in enumerate(raw.get("fields") or []):
            errors += _text_object_errors(item, f"{where}/fields/{i}")
            if isinstance(item, dict) and len(str(item.get("text", ""))) > MAX_SECTION_FIELD_TEXT:
                reason = f"must be less than {MAX_SECTION_FIELD_TEXT + 1} characters"
                errors.append(_pointer(reason, f"{where}/fields/{i}/text"))
        if raw.get("accessory") is not None:
            errors += _element_errors(raw["accessory"], f"{where}/accessory")
    elif kind == "header":
        errors += _text_object_errors(raw.get("text"), f"{where}/text", plain_only=True)
    elif kind in ("actions", "context"):
        elements = raw.get("elements")
        if not isinstance(elements, list) or not elements:
            errors.append(_pointer("must provide at least 1 element", f"{where}/elements"))
        else:
            for i, element in enumerate(elements):
                if kind == "actions":
                    errors += _element_errors(element, f"{where}/elements/{i}")
                elif isinstance(element, dict) and element.get("type") in ("plain_text", "mrkdwn"):
                    errors += _text_object_errors(element, f"{where}/elements/{i}")
                    errors += _too_long(element.get("text"), MAX_CONTEXT_TEXT, f"{where}/elements/{i}/text")
            # action_ids must be unique within their block.
            action_ids = [str(e["action_id"]) for e in elements if isinstance(e, dict) and e.get("action_id")]
            for dup in sorted({a for a in action_ids if action_ids.count(a) > 1}):
                errors.append(_pointer(f"action_id {dup!r} is not unique in its block", f"{where}/elements"))
    elif kind == "input":
        errors += _text_object_errors(raw.get("label"), f"{where}/label", plain_only=True)
        errors += _element_errors(raw.get("element"), f"{where}/element")
    return errors


def _blocks_errors(blocks: Any, *, max_blocks: int | None, where: str) -> list[str]:
    """Every reason Slack would give for rejecting ``blocks`` (empty list = valid)."""
    if not isinstance(blocks, list):
        return [_pointer("must be an array of blocks", where)]
    errors: list[str] = []
    if max_blocks is not None and len(blocks) > max_blocks:
        errors.append(_pointer(f"no more than {max_blocks} items allowed", where))
    block_ids: list[str] = []
    for i, raw in enumerate(blocks):
        at = f"{where}/{i}"
        if not isinstance(raw, dict):
            errors.append(_pointer("expected a block object", at))
            continue
        try:
            parsed = Block.parse(raw)
        except Exception as exc:  # missing required field -> TypeError from the model's __init__
            errors.append(_pointer(f"invalid {raw.get('type')!r} block: {exc}", at))
            continue
        if parsed is None:
            errors.append(_pointer(f"unknown block type {raw.get('type')!r}", at))
            continue
        try:
            # to_dict() validates the block *and* its nested elements/text objects;
            # validate_json() alone would miss e.g. a 76-character button text.
            parsed.to_dict()
        except SlackObjectFormationError as exc:
            errors.append(_pointer(str(exc), at))
        except Exception as exc:  # malformed nested objects
            errors.append(_pointer(f"invalid block: {exc!r}", at))
        errors += _extra_block_errors(raw, parsed, at)
        if isinstance(raw.get("block_id"), str):
            block_ids.append(raw["block_id"])
    for dup in sorted({b for b in block_ids if block_ids.count(b) > 1}):
        errors.append(_pointer(f"block_id {dup!r} is not unique", where))
    return errors


def blocks_text_length(blocks: Any) -> int:
    """All text in ``blocks`` (every text object's, as :func:`_slack_length` counts it)."""
    total = 0
    stack = [blocks]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("type") in ("plain_text", "mrkdwn") and isinstance(item.get("text"), str):
                total += _slack_length(item["text"])
            else:
                stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return total


def message_text_budget_errors(blocks: Any) -> list[str]:
    """The reason Slack would answer ``msg_blocks_too_long`` (its total text budget), if any."""
    total = blocks_text_length(blocks)
    if total > MAX_MESSAGE_BLOCKS_TEXT:
        return [
            _pointer(
                f"blocks hold {total} characters of text (max about {MAX_MESSAGE_BLOCKS_TEXT})", "/blocks"
            )
        ]
    return []


def message_blocks_errors(blocks: Any) -> list[str]:
    """Reasons Slack would reject a message's ``blocks``: ``invalid_blocks``, and
    ``msg_blocks_too_long`` (:func:`message_text_budget_errors`) for too much text in all."""
    return _blocks_errors(
        blocks, max_blocks=MAX_MESSAGE_BLOCKS, where="/blocks"
    ) + message_text_budget_errors(blocks)


def view_errors(view: Any) -> list[str]:
    """Reasons Slack would answer ``invalid_arguments`` for a ``view`` payload."""
    if not isinstance(view, dict):
        return [_pointer("view must be an object", "/view")]
    errors: list[str] = []
    try:
        # View's own validators: type, title/submit/close ≤ 24, private_metadata
        # ≤ 3000, callback_id ≤ 255, 1..100 blocks. validate_json() is shallow on
        # purpose here: the blocks are checked below, each reason pointing at its block.
        View(**view).validate_json()
    except SlackObjectFormationError as exc:
        errors.append(_pointer(str(exc), "/view"))
    except Exception as exc:
        errors.append(_pointer(f"invalid view: {exc!r}", "/view"))
    blocks = view.get("blocks")
    if blocks is not None:
        errors += _blocks_errors(blocks, max_blocks=None, where="/view/blocks")
    if view.get("type") == "modal":
        if view.get("title") is None:
            errors.append(_pointer("missing required field: title", "/view/title"))
        else:
            errors += _text_object_errors(view["title"], "/view/title", plain_only=True)
        for name in ("submit", "close"):
            if view.get(name) is not None:
                errors += _text_object_errors(view[name], f"/view/{name}", plain_only=True)
        has_input = isinstance(blocks, list) and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        )
        if has_input and view.get("submit") is None:
            errors.append(
                _pointer("submit is required when an input block is within the blocks array", "/view/submit")
            )
    if view.get("type") not in VIEW_TYPES:
        errors.append(_pointer(f"view type must be one of {VIEW_TYPES}", "/view/type"))
    try:
        size = len(json.dumps(view))
    except (TypeError, ValueError):
        size = 0  # View(...) above already said why
    if size > MAX_VIEW_SIZE:
        errors.append(
            _pointer(f"view_too_large: {size} characters of JSON (max about {MAX_VIEW_SIZE})", "/view")
        )
    return errors


def message_refusal(text: Any, blocks: Any) -> tuple[str, list[str]] | None:
    """The error Slack answers for a message's ``text`` and ``blocks``, with its reasons (None: accepted).

    Whether a message needs text or blocks at all (``no_text``) is the caller's
    to say: ``chat.update`` may leave both out."""
    if isinstance(text, str) and len(text) > MAX_TEXT:
        return "msg_too_long", [f"text is {len(text)} characters (max {MAX_TEXT})"]
    if blocks is not None:
        if too_long := message_text_budget_errors(blocks):
            return "msg_blocks_too_long", too_long
        if reasons := message_blocks_errors(blocks):
            return "invalid_blocks", reasons
    return None

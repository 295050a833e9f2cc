"""The lists a person asks for: ``/approvals`` (pending), ``/approvals rules`` (the team
allow-list), and the App Home tab."""

from __future__ import annotations

from typing import Any

from ... import text
from ...approvals.allowlist import TeamRule
from ...approvals.audit import Entry
from ...approvals.model import ApprovalRequest
from .. import limits, mrkdwn
from ..ids import Action
from .kit import Message, button, context, mrkdwn_text, plain_text, section
from .preview import input_summary

_RULES_TEXT = 10_000
"""Text the rule lines of ``team_rules`` share (within ``limits.MESSAGE_TEXT_BUDGET``)."""
_RULE_LINE = 200
"""A rule line is never cut shorter than this."""


def team_rules(entries: list[TeamRule]) -> Message:
    """The team allow-list, one section per rule with a Remove button (ephemeral).

    Lines share ``_RULES_TEXT``, so that the whole listing fits Slack's text budget."""
    out: list[dict[str, Any]] = [
        {"type": "header", "text": plain_text(text.lists.RULES_HEADING, limits.HEADER_TEXT)},
        context(text.lists.RULES_INTRO if entries else text.lists.NO_RULES),
    ]
    shown = entries[: limits.MESSAGE_BLOCKS - 3]
    share = max(_RULE_LINE, min(limits.SECTION_TEXT, _RULES_TEXT // max(1, len(shown))))
    for entry in shown:
        line = text.lists.RULE_LINE.format(
            rule=mrkdwn.inline(str(entry.rule), share // 2),
            words=mrkdwn.inline(entry.rule.describe(), share // 3),
            user=mrkdwn.inline(entry.added_by, 30),
            route=mrkdwn.inline(entry.route or "default", 100),
            epoch=int(entry.added_at),
            fallback=text.notation.utc(entry.added_at),
        )
        out.append(
            {
                "type": "section",
                # verbatim: the rule came from a tool input; no auto-links or mentions.
                "text": mrkdwn_text(line, share),
                "accessory": button(text.lists.REMOVE, Action.REMOVE_RULE, entry.id, style="danger"),
            }
        )
    if len(entries) > len(shown):
        out.append(context(text.lists.RULES_MORE.format(count=len(entries) - len(shown))))
    return Message(text=text.lists.RULES_HEADING, blocks=out)


def permalink(workspace_url: str, channel: str, ts: str) -> str:
    """A link to a message: the workspace's URL (``auth.test``'s ``url``), ``archives/<channel>/p<ts without its dot>``.

    That is the form ``chat.getPermalink`` answers with, built without a call per
    message (``slack.com/archives/…`` is not a documented form)."""
    return f"{workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"


_LISTED = 20
"""Requests one pending list shows (each is a section)."""


def _pending_line(
    request: ApprovalRequest, workspace_url: str | None, tool: str, summary: str, agent: str
) -> str:
    """One request of a pending list, with its parts already escaped and cut."""
    values = {
        "tool": tool,
        "summary": summary,
        "agent": text.message.AGENT_LINE.format(agent=agent) + " · " if agent else "",
        "epoch": int(request.created_at),
        "fallback": text.notation.utc(request.created_at),
    }
    if request.posted and workspace_url:
        return text.lists.PENDING_LINE.format(
            link=permalink(workspace_url, request.posted_channel, request.ts), **values
        )
    if request.posted:
        # No workspace URL to link with: name the channel, which Slack links itself.
        return text.lists.PENDING_IN_CHANNEL.format(channel=mrkdwn.escape(request.posted_channel), **values)
    return text.lists.PENDING_NOT_POSTED.format(**values)


_PENDING_TEXT = 10_000
"""Text the lines of a pending list share (within ``limits.MESSAGE_TEXT_BUDGET``)."""


def _pending_sections(requests: list[ApprovalRequest], workspace_url: str | None) -> list[dict[str, Any]]:
    """One section per request (up to ``_LISTED``), sharing ``_PENDING_TEXT``: 20 long tool names
    and summaries would otherwise exceed what Slack accepts in one message (msg_blocks_too_long)."""
    out = []
    shown = requests[:_LISTED]
    share = min(limits.SECTION_TEXT, _PENDING_TEXT // max(1, len(shown)))
    for request in shown:
        # The link and the date are ours and kept whole; the names and summary (untrusted) share the rest.
        room = max(
            0,
            share - mrkdwn.size(_pending_line(request, workspace_url, "", "", "-" if request.agent else "")),
        )
        agent = mrkdwn.inline(request.agent, min(100, room // 6)) if request.agent else ""
        tool = mrkdwn.inline(request.tool_name, min(150, room // 3))
        summary = mrkdwn.inline(input_summary(request.proposed_input), min(200, room // 2))
        out.append(
            {
                "type": "section",
                "text": mrkdwn_text(_pending_line(request, workspace_url, tool, summary, agent), share),
            }
        )
    if len(requests) > _LISTED:
        out.append(context(text.lists.PENDING_MORE.format(count=len(requests) - _LISTED)))
    return out


def pending_list(requests: list[ApprovalRequest], workspace_url: str | None = None) -> Message:
    """``/approvals``: what the caller can decide now, with links into ``workspace_url`` (ephemeral)."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": plain_text(text.lists.PENDING_HEADING, limits.HEADER_TEXT)}
    ]
    blocks += _pending_sections(requests, workspace_url) or [context(text.lists.NOTHING_PENDING)]
    fallback = text.lists.PENDING_HEADING if requests else text.lists.NOTHING_PENDING
    return Message(text=fallback, blocks=blocks[: limits.MESSAGE_BLOCKS])


_RECENT = 15


def home_view(
    requests: list[ApprovalRequest], recent: list[Entry], workspace_url: str | None = None
) -> dict[str, Any]:
    """The App Home tab: the caller's pending list (links into ``workspace_url``), then their recent decisions."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": plain_text(text.lists.PENDING_HEADING, limits.HEADER_TEXT)},
        context(text.lists.HOME_INTRO),
    ]
    blocks += _pending_sections(requests, workspace_url) or [context(text.lists.NOTHING_PENDING)]
    blocks += [
        {"type": "divider"},
        {"type": "header", "text": plain_text(text.lists.RECENT_HEADING, limits.HEADER_TEXT)},
    ]
    lines = [
        text.lists.RECENT_LINE.format(
            event=text.lists.RECENT_EVENTS.get(entry.fields.get("event", ""), entry.fields.get("event", "")),
            request=mrkdwn.escape(entry.fields.get("request", "")),
            epoch=int(entry.at),
            fallback=text.notation.utc(entry.at),
        )
        for entry in recent[:_RECENT]
    ]
    blocks.append(section("\n".join(lines)) if lines else context(text.lists.NO_RECENT))
    return {"type": "home", "blocks": blocks[: limits.MODAL_BLOCKS]}

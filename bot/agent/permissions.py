"""The SDK's permission updates: the ones Slack may grant, and back to the SDK's type."""

from __future__ import annotations

from typing import Any

from claude_agent_sdk import PermissionUpdate
from claude_agent_sdk.types import PermissionRuleValue

from ..approvals.rules import Rule

# Suggestions that change what the agent may do without asking again. Mode
# changes (acceptEdits, bypassPermissions) are never taken from Slack.
_KEPT_TYPES = ("addRules", "replaceRules", "addDirectories")


def safe_suggestions(suggestions: list[PermissionUpdate]) -> list[dict[str, Any]]:
    """The suggestions Slack may grant, as storable dicts, scoped to the session.

    ``localSettings`` & co. would write the agent host's settings files, and a
    ``setMode`` would stop the agent asking at all: neither is taken.
    """
    kept = []
    for update in suggestions:
        if update.type not in _KEPT_TYPES:
            continue
        if update.type == "addDirectories":
            if update.directories:
                kept.append({"type": update.type, "directories": list(update.directories)})
            continue
        rules = [str(Rule(r.tool_name, r.rule_content or "")) for r in update.rules or []]
        if rules and update.behavior == "allow":
            kept.append({"type": update.type, "rules": rules, "behavior": "allow"})
    return kept



def to_permission_updates(stored: list[dict[str, Any]]) -> list[PermissionUpdate]:
    """Back to the SDK's type, always with ``destination="session"``."""
    updates = []
    for update in stored:
        if update["type"] == "addDirectories":
            updates.append(PermissionUpdate(type="addDirectories", directories=update["directories"], destination="session"))
        else:
            rules = [PermissionRuleValue(tool_name=r.tool, rule_content=r.content or None) for r in map(Rule.parse, update["rules"])]
            updates.append(PermissionUpdate(type=update["type"], rules=rules, behavior="allow", destination="session"))
    return updates

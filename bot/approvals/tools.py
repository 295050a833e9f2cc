"""What the bot knows about each of Claude Code's tools, in one place.

Any tool can be asked about (an MCP tool's name and input are the agent's
own); a few built-in ones have a known input shape, and this module says
which field is what: the command a rule matches, the path a rule globs, the
fields a request message shows and a person may edit. A tool not named here
is shown and edited as one JSON object. Nothing here knows about Slack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BASH = "Bash"
WRITE = "Write"
EDIT = "Edit"
MULTI_EDIT = "MultiEdit"
NOTEBOOK_EDIT = "NotebookEdit"
WEB_FETCH = "WebFetch"
READ = "Read"
ASK_USER_QUESTION = "AskUserQuestion"
"""Claude's clarifying questions (``approvals.questions``): answered, not approved."""

COMMAND = "command"
"""Bash's command line: what a ``Bash(…)`` rule and a policy rule's ``command`` match."""
FILE_PATH = "file_path"
"""The file a file tool works on: what a ``Write(…)`` rule and a policy rule's ``file_path`` match."""

PATH_FIELDS = (FILE_PATH, "notebook_path", "path")
"""Input fields of Claude Code's file tools that name a path."""

SUMMARY_FIELDS = (COMMAND, FILE_PATH, "url", "query")
"""The fields that say in one line what a call does, tried in order (a notification, a pending list)."""

GATED_TOOLS = f"{BASH}|{WRITE}|{EDIT}|{MULTI_EDIT}|{NOTEBOOK_EDIT}|{WEB_FETCH}|{ASK_USER_QUESTION}|mcp__.*"
"""The tools the gate hook asks about by default (a Claude Code hook matcher)."""


@dataclass(frozen=True)
class Field:
    """One input field, as a person sees it."""

    key: str
    label: str
    required: bool = True
    """A Modify form refuses it empty."""
    multiline: bool = False


@dataclass(frozen=True)
class Tool:
    """What the request message and the Modify form do with one tool's input."""

    name: str
    shown_as_text: tuple[Field, ...] = ()
    """Fields shown on one plain line each ("File: …"); any other keys follow as JSON."""
    shown_as_code: tuple[Field, ...] = ()
    """Fields shown whole in a code block (a command, a file's content, the two sides of an edit)."""
    editable: tuple[Field, ...] = ()
    """Fields a Modify form offers one by one; none: the whole input as one JSON object."""


_TOOLS = {
    tool.name: tool
    for tool in (
        Tool(
            BASH,
            shown_as_text=(Field("description", "Description"),),
            shown_as_code=(Field(COMMAND, "Command"),),
            editable=(
                Field(COMMAND, "Command", multiline=True),
                Field("description", "Description", required=False),
            ),
        ),
        Tool(
            WRITE,
            shown_as_text=(Field(FILE_PATH, "File"),),
            shown_as_code=(Field("content", "Content"),),
            editable=(
                Field(FILE_PATH, "File path"),
                Field("content", "Content", required=False, multiline=True),
            ),
        ),
        Tool(
            EDIT,
            shown_as_text=(Field(FILE_PATH, "File"),),
            shown_as_code=(Field("old_string", "Replace"), Field("new_string", "With")),
            editable=(
                Field(FILE_PATH, "File path"),
                Field("old_string", "Replace", multiline=True),
                Field("new_string", "With", required=False, multiline=True),
            ),
        ),
        Tool(
            MULTI_EDIT,
            shown_as_text=(Field(FILE_PATH, "File"),),
            shown_as_code=(Field("edits", "Edits"),),
        ),
    )
}


def tool(name: str) -> Tool:
    """What is known about the tool ``name``: nothing but its name for a tool not listed here."""
    return _TOOLS.get(name) or Tool(name)


def shell_command(tool_name: str, tool_input: dict[str, Any]) -> str | None:
    """The command line of a Bash call; None for any other tool, or a command that is not text."""
    command = tool_input.get(COMMAND) if tool_name == BASH else None
    return command if isinstance(command, str) else None


def rule_subject(tool_name: str) -> str:
    """The input field the content of a permission rule for ``tool_name`` matches
    (``Bash(npm test *)`` a command, ``Write(src/**)`` a path)."""
    return COMMAND if tool_name == BASH else FILE_PATH


def summary(tool_input: dict[str, Any]) -> str | None:
    """The first of ``SUMMARY_FIELDS`` the input holds as text; None when it holds none."""
    for key in SUMMARY_FIELDS:
        value = tool_input.get(key)
        if isinstance(value, str):
            return value
    return None

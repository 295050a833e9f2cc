"""The names Python and the Lua scripts share: audit events and job kinds.

The scripts never spell one: ``lua.fill`` writes each into them from here, so
a reader of the audit log or the jobs stream finds every name in this module.
"""

from __future__ import annotations

from enum import StrEnum


class AuditEvent(StrEnum):
    """The ``event`` of an audit entry (``approvals.audit``)."""

    # The chain's own entries (see ``approvals.audit``).
    GENESIS = "genesis"
    """The first entry ever written."""
    TRIMMED = "trimmed"
    """A trim removed the oldest entries: which, and the cap it kept to."""
    HEAD_LOST = "head_lost"
    """Written when the head was missing although the log was not new."""

    # A request's life, written by the scripts.
    CREATED = "created"
    INPUT_MISMATCH = "input_mismatch"
    """The request's ``tool_use_id`` was asked again with another call."""
    POSTED = "posted"
    TEAM_RULE_NOT_APPLIED = "team_rule_not_applied"
    """Team allow-list rules matched, but none could stand in for its granter here."""
    AUTO_ALLOWED = "auto_allowed"
    """The policy (or a team allow-list rule) allowed it without asking."""
    AUTO_DENIED = "auto_denied"
    ESCALATED = "escalated"

    # Decisions: a final state's own name, or a more precise one.
    APPROVED = "approved"
    ALWAYS_ALLOWED = "always_allowed"
    MODIFIED = "modified"
    """Approved with an edited input."""
    VOTE = "vote"
    MODIFIED_VOTE = "modified_vote"
    ANSWERED = "answered"
    ANSWER_PROPOSED = "answer_proposed"
    ANSWER_VOTE = "answer_vote"
    DENIED = "denied"
    DENIED_AND_STOPPED = "denied_and_stopped"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    UNDELIVERABLE = "undeliverable"
    ANSWERED_IN_TERMINAL = "answered_in_terminal"
    """The person at a Claude Code terminal answered its own prompt first."""
    LEFT_TO_TERMINAL = "left_to_terminal"
    """Slack's wait ran out while the terminal's prompt stayed up."""

    # Entries that are no request transition (``AuditLog.append``).
    RULE_ADDED = "rule_added"
    RULE_REMOVED = "rule_removed"
    POLICY_LOADED = "policy_loaded"
    """A policy version went live in a worker (``policy_hash``: the SHA-256 of the file;
    ``hash`` is the chain's)."""
    DISCUSSION = "discussion"
    """The people's replies in an ended request's thread."""


class JobKind(StrEnum):
    """The ``kind`` of a job on the workers' stream (``approvals.queue``)."""

    POST = "post"
    """Post a new request to Slack."""
    UPDATE = "update"
    """Re-render a request's Slack message from its stored state."""
    NOTIFY = "notify"
    """Tell one person something (an ephemeral message)."""
    REMIND = "remind"
    """Escalation steps fired: mention their approvers in the thread."""
    GATHER = "gather"
    """Read the request's Slack thread into the stored discussion."""

"""What the agent side answers by itself, without a decision from Slack: a failure (Redis,
the service, a deadline), a wait, two approvers racing, and the MCP permission tool's words.

Each deny says that the tool did not run, so the model can tell the user instead of retrying blindly.
"""

from __future__ import annotations

from ..approvals.model import ApprovalRequest

DEFER_REASON = "Waiting for approval in Slack; the run resumes once the team decides."
ASK_REASON = "Waiting for approval in Slack."


def racing_approver(prompt_tool: str) -> str:
    """A ``PermissionRequest`` gate under a Claude Code that also asks another approver."""
    other = (
        "the Agent SDK's can_use_tool"
        if prompt_tool == "stdio"
        else f"the permission prompt tool {prompt_tool!r}"
    )
    return (
        "Denied: this Claude Code asks two approvers about each call, the Slack approval hook and "
        f"{other}, and whichever answers first would win, so a quick allow could overrule the team. "
        "The tool was not run. Install only one of them."
    )


def racing_hook(where: str) -> str:
    """``SlackApprover.options()`` / ``settings()`` refusing settings that would stack two approvers."""
    return (
        f"{where} install a PermissionRequest hook, and can_use_tool would be asked about the same calls: "
        "Claude Code takes whichever answers first, so a quick allow could overrule the team. "
        "Remove that hook from these settings (or leave setting_sources out of the files that hold it)."
    )


TOO_MANY_SAME_CALLS = (
    "Denied: too many identical calls are waiting for approval in this session, so this one could not be "
    "told apart from the others. The tool was not run."
)


def still_waiting(request: ApprovalRequest) -> str:
    """What an interactive Claude Code session is told when the gate stops waiting."""
    channel = request.posted_channel or request.channel
    where = f"Slack channel {channel}" if channel else "Slack"
    return (
        f"Not run yet: still waiting for approval in {where} (request {request.id}). "
        "The request stays open; try the same call again later to pick up the decision."
    )


def deny_redis_silent(error: BaseException) -> str:
    """Redis took the connection but did not answer within the client's timeouts."""
    detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return (
        f"Denied: Redis did not answer in time ({detail}), so nobody could approve this call. "
        "The tool was not run."
    )


def gate_deadline(limit: float, hook_timeout: float) -> str:
    """The gate stopped at its own deadline, before its hook's timeout would let the call through."""
    return (
        f"Blocked: the approval gate got no answer in time: it stops after {limit:g} seconds, below its hook's "
        f"{hook_timeout:g}-second timeout, and Redis did not answer (or a cost estimator did not return) "
        "before then. The tool was not run."
    )


def gate_wait_too_long(wait: float, hook_timeout: float, route_wait: float, margin: float) -> str:
    """A ``--wait`` that the hook's timeout cannot hold: refused before anything is asked."""
    return (
        f"Blocked: the approval gate's --wait {wait:g} does not fit below its hook's {hook_timeout:g}-second "
        f"timeout: --wait + {route_wait:g} s (for the team rules) + {margin:g} s must be at most --hook-timeout. "
        'Lower --wait, or raise the hook\'s "timeout" in settings.json and pass the same number as '
        "--hook-timeout. The tool was not run."
    )


def gate_hook_timeout_too_short(hook_timeout: float, minimum: float) -> str:
    return (
        f"Blocked: the approval gate needs a hook timeout of at least {minimum:g} seconds "
        f'(--hook-timeout {hook_timeout:g}). Raise the hook\'s "timeout" in settings.json and pass the same '
        "number as --hook-timeout. The tool was not run."
    )


def gate_bad_seconds(option: str, value: float) -> str:
    return (
        f"Blocked: the approval gate's {option} must be a finite number of seconds (got {value!r}). "
        "The tool was not run."
    )


def deny_unreachable(error: BaseException) -> str:
    return (
        f"Denied: the approval service could not be reached ({type(error).__name__}: {error}), "
        "so nobody could approve this call. The tool was not run."
    )


def deny_internal_error(error: BaseException) -> str:
    return f"Denied: the approval service failed ({type(error).__name__}: {error}). The tool was not run."


DENY_SHUTDOWN = "Denied: the approval client was shut down before anyone decided. The tool was not run."


MCP_TOOL_DESCRIPTION = (
    "Asks the team in Slack whether a tool call may run, and waits for their decision. "
    "For Claude Code's --permission-prompt-tool: it answers JSON text, "
    '{"behavior": "allow", "updatedInput": {...}} or {"behavior": "deny", "message": "..."}.'
)
MCP_WAITING = "Waiting for a decision in Slack"
"""The progress message that keeps the host from giving up on a silent call."""


def deny_not_configured(problem: str) -> str:
    """Every call's deny when the MCP server could not be set up (e.g. REDIS_URL is not set)."""
    return (
        f"Denied: the approval server is not configured ({problem}), so nobody could approve this call. "
        "The tool was not run."
    )


def deny_bad_call(problem: str) -> str:
    """The deny for a permission-tool call whose arguments cannot be used."""
    return f"Denied: the approval tool was called with invalid arguments ({problem}). The tool was not run."


TERMINAL_ANSWERED = "answered in the terminal"
TERMINAL_LEFT = "left to the terminal"
"""Reasons of a request the person at a Claude Code terminal took over: they answered
Claude Code's own prompt first, or Slack's wait ran out while the prompt stayed up."""


def deny_bad_estimate(problem: str) -> str:
    """The deny when the agent's own cost estimator returned something unusable."""
    return (
        f"Denied: the agent's cost estimator failed ({problem}), so the call cannot be priced "
        "for the team's cost rules. The tool was not run."
    )

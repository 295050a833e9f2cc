"""``python -m bot claude-code install / uninstall / doctor``: the settings file, the hooks, the checks.

doctor: one line per check, "ok  ", "FAIL" or "warn", then what and why.
"""

from __future__ import annotations

SETTINGS_NOT_OBJECT = "the settings file must hold a JSON object"


def settings_bad_hooks(where: str, expected: str) -> str:
    return f"{where} must be {expected}, as Claude Code reads it"


def settings_unreadable(path: object, error: BaseException) -> str:
    return f"{path}: cannot read it ({error})"


def settings_not_json(path: object, error: BaseException) -> str:
    return f"{path}: not valid JSON ({error})"


def settings_refused(problem: str) -> str:
    return f"error: {problem}. The file was not changed."


def install_hook_timeout_too_short(seconds: float, least: float) -> str:
    return f"--hook-timeout {seconds:g} is too short: the gate needs at least {least:g} seconds to answer in"


def install_unchanged(path: object, event: str) -> str:
    return f"{path}: our {event} hook is already installed as asked; nothing to change."


def doctor_after_tool(code: int) -> str:
    if code == 0:
        return "exits 0 with Redis unreachable: a call that already ran is never reported as failed"
    return f"exit {code}: Claude Code would show the model an error for a call that already ran"


def install_added(path: object, event: str, command: str, timeout: int) -> str:
    return f"{path}: added a {event} hook (timeout {timeout} s):\n  {command}"


def install_replaced(event: str, command: str) -> str:
    return f"  replaced our {event} hook: {command}"


def install_second_approver(path: object, command: str) -> str:
    return (
        f"{path} already has another PermissionRequest hook ({command}). Claude Code would ask both, and "
        "take whichever answers first, so its allow could overrule the team. Remove it, then install."
    )


def install_other_kind(event: str, command: str) -> str:
    return f"  removed our {event} hook (both kinds would each ask about the same call): {command}"


def backup_written(backup: object | None) -> str:
    return f"  backup of the previous file: {backup}" if backup else "  (new file: no backup)"


INSTALL_NO_REDIS_URL = (
    "note: REDIS_URL is not set in this shell. The hook reads it from the environment claude is started in "
    "(the settings file never holds it): export it before running claude, or every call is blocked."
)


def install_next(doctor: str) -> str:
    return f"Check it: {doctor}"


def uninstall_nothing(path: object) -> str:
    return f"{path}: none of our hooks is installed; nothing to change."


def uninstall_removed(path: object, event: str, command: str) -> str:
    return f"{path}: removed our {event} hook: {command}"


def doctor_none_found(paths: str) -> str:
    return f"none of our hooks in {paths} (install it: python -m bot claude-code install)"


DOCTOR_SECRET_IN_COMMAND = "the command sets REDIS_URL: not run (a settings file must not hold it)"


def doctor_did_not_start(code: int, stderr: str) -> str:
    return f"exit {code}, so Claude Code would ignore the hook and carry on: {stderr or '(no stderr)'}"


def doctor_timed_out(seconds: float) -> str:
    return f"no answer within the hook's timeout ({seconds:g} s): Claude Code would ignore it and carry on"


def doctor_blocks(how: str) -> str:
    return f"with Redis unreachable it {how}, naming the failure"


def doctor_wrong_block(how: str) -> str:
    return f"it did not block for Redis being unreachable: {how}"


DOCTOR_NO_REDIS_URL = "REDIS_URL is not set in this shell; claude started from here would block every call"


def doctor_timeouts(hook: float, gate: float) -> str:
    return f'hook "timeout" {hook:g} s, gate --hook-timeout {gate:g} s'


def doctor_timeouts_differ(hook: float, gate: float) -> str:
    return (
        doctor_timeouts(hook, gate) + ": they must be the same number, or the gate answers after "
        "Claude Code gave up (the call then runs) or long before it needs to"
    )


def doctor_count(count: int) -> str:
    return (
        f"{count} of our hooks: each would ask about the same call; uninstall, then install one"
        if count > 1
        else "one of our hooks"
    )


def doctor_other_approver(where: str, command: str) -> str:
    return (
        f"another PermissionRequest hook in {where}: {command} — two approvers race, "
        "and the first answer wins"
    )

"""``python -m bot claude-code install | uninstall | doctor``: the command around ``claude_code`` and ``doctor``."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from .. import text
from ..approvals import bounds
from . import claude_code, claude_settings, doctor
from .deadline import MARGIN, BudgetError
from .gate_config import ROUTE_WAIT, GateConfig

EXIT_REFUSED = 2


def run(args: argparse.Namespace) -> int:
    """``install``/``uninstall`` change one settings file (backup, then atomic write) and exit 0,
    or 2 with the file untouched; ``doctor`` exits 1 if any check failed."""
    cwd = Path.cwd()
    scoped = {
        "user": claude_settings.user_settings(os.environ),
        "project": claude_settings.project_settings(cwd),
    }
    loaded = [*scoped.values(), claude_settings.project_local_settings(cwd)]
    path = args.settings_file.absolute() if args.settings_file else scoped.get(args.scope or "")
    if args.action == "doctor":
        return doctor.doctor([path] if path else loaded, os.environ, sys.stdout)
    path = path or scoped["user"]
    try:
        settings = claude_code.load(path)
        if args.action == "uninstall":
            return _uninstall(path, settings)
        spec = claude_code.HookSpec(
            defer=args.defer,
            hook_timeout=args.hook_timeout,
            agent_name=args.agent_name,
            requested_by=args.requested_by,
            channel=args.channel,
            timeout=None if args.timeout is None else bounds.seconds(args.timeout, "--timeout"),
        )
        try:
            # Refuse here what the gate would refuse on every call (a hook timeout it cannot answer within).
            GateConfig(hook_timeout=spec.hook_timeout).budget()
        except BudgetError:
            raise bounds.OutOfRange(
                text.setup.install_hook_timeout_too_short(spec.hook_timeout, MARGIN + ROUTE_WAIT)
            ) from None
        if not spec.defer:
            _refuse_a_second_approver([path, *loaded])
        changed, replaced = claude_code.install(settings or {}, spec)
    except (claude_code.SettingsError, bounds.OutOfRange, OSError) as exc:
        print(text.setup.settings_refused(str(exc)), file=sys.stderr)
        return EXIT_REFUSED
    if settings is not None and changed == settings:
        print(text.setup.install_unchanged(path, spec.event))
    else:
        try:
            backup = claude_code.save(path, changed)
        except OSError as exc:  # os.replace never ran: the file is as it was
            print(text.setup.settings_refused(str(exc)), file=sys.stderr)
            return EXIT_REFUSED
        for event, group in spec.groups().items():
            hook = group["hooks"][0]
            print(text.setup.install_added(path, event, hook["command"], hook["timeout"]))
        for found in replaced:
            print(
                text.setup.install_replaced(found.event, found.command)
                if found.event in spec.groups()
                else text.setup.install_other_kind(found.event, found.command)
            )
        print(text.setup.backup_written(backup))
        scope = (
            f"--settings-file {shlex.quote(str(path))}" if args.settings_file else f"--{args.scope or 'user'}"
        )
        print(text.setup.install_next(f"python -m bot claude-code doctor {scope}"))
    if not os.environ.get("REDIS_URL"):
        print(text.setup.INSTALL_NO_REDIS_URL)
    return 0


def _uninstall(path: Path, settings: dict | None) -> int:
    changed, removed = claude_code.remove(settings or {})
    if not removed:
        print(text.setup.uninstall_nothing(path))
        return 0
    backup = claude_code.save(path, changed)  # an OSError: refused by the caller, the file as it was
    for found in removed:
        print(text.setup.uninstall_removed(path, found.event, found.command))
    print(text.setup.backup_written(backup))
    return 0


def _refuse_a_second_approver(paths: list[Path]) -> None:
    """``SettingsError`` if Claude Code would also run another ``PermissionRequest`` hook: the first
    answer wins, so its quick allow would overrule the team."""
    for path in dict.fromkeys(paths):
        try:
            settings = claude_code.load(path)
        except claude_code.SettingsError:
            continue  # the file being changed is checked by load() itself; others are not ours to judge
        for hook in claude_code.others(settings or {}, claude_code.PERMISSION_REQUEST):
            raise claude_code.SettingsError(
                text.setup.install_second_approver(path, str(hook.get("command", hook)))
            )

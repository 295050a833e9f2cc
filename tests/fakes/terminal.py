"""The real interactive Claude Code TUI in a private tmux server, for tests.

``claude -p`` never shows the permission dialog, so whatever a person does in
the terminal (pick Yes / No, press Esc) can only be tested against the real
TUI. :class:`Terminal` starts the bundled CLI in a detached tmux session on
its own socket (``tmux -S <temp dir>/tmux.sock``: it never touches the
developer's tmux, and the socket file goes with the temp dir),
reads the screen with ``capture-pane`` and types with ``send-keys``.

The config dir is pre-seeded (:func:`tests.fakes.tui_setup.seed_config_dir`)
so no first-run screen shows: no theme picker, no "Do you want to use this API
key?", no "trust this folder" dialog. ``--permission-mode default`` is passed because CLI 2.1.337
starts in *auto* mode otherwise (a model-side classifier answers permission
prompts instead of the dialog).

Example::

    async with ScriptedModel.start([tool_use("Bash", {...}), text("done")]) as model:
        with Terminal.start(cwd=work, config_dir=cfg, env=model.cli_env(cfg),
                            settings={"hooks": {...}}) as term:
            await term.await_for(PROMPT_READY)
            term.type("go"); term.send("Enter")
            await term.answer_dialog("Enter")  # 1. Yes
            await term.await_for("done")

An in-process :class:`ScriptedModel` is served by the test's event loop, so
tests poll the screen with :meth:`Terminal.await_for`, which yields to it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tests.fakes.claude_cli import CLI
from tests.fakes.process_tree import descendants
from tests.fakes.tui_setup import clean_environ, seed_config_dir

TMUX_HINT = "tmux is not installed: apt-get install tmux (Debian/Ubuntu) or brew install tmux"

PROMPT_READY = re.compile(r"^❯\s*$", re.MULTILINE)
"""The empty input box: the TUI is idle and takes typing."""

PERMISSION_DIALOG = "Do you want to proceed?"
"""Question line of the tool permission dialog (options 1. Yes … No)."""

DIALOG_INPUT_GRACE = 0.5
"""Seconds to let a freshly shown dialog settle before pressing keys.

Measured on CLI 2.1.337: a key sent the instant the permission dialog is on
screen is swallowed (the TUI guards dialogs against keystrokes meant for
something else); sent 0.2 s later it is taken. No screen change marks the end
of that guard, so there is no event to wait for instead.
"""


class TerminalTimeout(AssertionError):
    """``await_for`` gave up; the message holds the last screen."""


class Terminal:
    """One interactive ``claude`` TUI running in a private tmux server.

    Create it with :meth:`start`; always :meth:`close` it (or use ``with``).
    """

    def __init__(self, workdir: Path, cwd: Path) -> None:
        """Wrap an already started session; use :meth:`start` instead."""
        self.socket = workdir / "tmux.sock"
        self.cwd = cwd
        self._workdir = workdir
        self._cli_pid: int | None = None

    # -- lifecycle ---------------------------------------------------------- #

    @classmethod
    def start(
        cls,
        *,
        cwd: Path,
        config_dir: Path,
        env: Mapping[str, str],
        settings: Mapping[str, Any] | str | None = None,
        args: Sequence[str] = (),
        permission_mode: str = "default",
        width: int = 200,
        height: int = 50,
    ) -> Terminal:
        """Start the CLI TUI in ``cwd`` with ``env`` (e.g. ``model.cli_env(config_dir)``).

        ``settings`` goes to ``--settings`` (a dict is JSON-encoded);
        ``--setting-sources ""`` keeps user/project settings files out.
        ``args`` are appended to the command line.
        """
        if shutil.which("tmux") is None:
            raise RuntimeError(TMUX_HINT)
        seed_config_dir(config_dir, cwd, env.get("ANTHROPIC_API_KEY", "test"))
        workdir = Path(tempfile.mkdtemp(prefix="claude-tui-"))
        argv = [str(CLI), "--setting-sources", "", "--permission-mode", permission_mode]
        if settings is not None:
            text = settings if isinstance(settings, str) else json.dumps(settings)
            argv += ["--settings", text]
        argv += list(args)
        # The pane runs a script, not a long tmux command line: settings JSON
        # may be larger than tmux accepts for a command.
        launcher = workdir / "launch.sh"
        launcher.write_text(
            f"cd {shlex.quote(str(cwd))}\nexec {shlex.join(argv)} 2>{shlex.quote(str(workdir / 'stderr'))}\n"
        )
        # remain-on-exit keeps the last screen readable if the CLI exits;
        # no user tmux.conf (-f) so key bindings and sizes are tmux defaults.
        conf = workdir / "tmux.conf"
        conf.write_text("set -g remain-on-exit on\nset -g focus-events on\nset -g history-limit 5000\n")
        term = cls(workdir, cwd)
        tmux_env = {**clean_environ(), **env, "TERM": "xterm-256color"}
        term._tmux(
            "-f",
            str(conf),
            "new-session",
            "-d",
            "-s",
            "main",
            "-x",
            str(width),
            "-y",
            str(height),
            f"bash {shlex.quote(str(launcher))}",
            env=tmux_env,
        )
        term._cli_pid = int(term._tmux("display-message", "-p", "-t", "main", "#{pane_pid}").strip())
        return term

    def close(self) -> None:
        """Kill the CLI, every process it left behind (hooks), and the tmux server.

        The CLI starts command hooks in their own session (setsid), and leaves
        a PermissionRequest hook running after the dialog was answered in the
        terminal, so killing the tmux server alone would leak them.
        """
        pids = descendants(self._cli_pid) if self._cli_pid else []
        if self._cli_pid:
            pids.insert(0, self._cli_pid)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(
            ["tmux", "-S", str(self.socket), "kill-server"],
            capture_output=True,
            timeout=10,
            check=False,
        )
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- screen and keys ---------------------------------------------------- #

    def screen(self) -> str:
        """The visible screen as text, trailing blank lines dropped."""
        return self._tmux("capture-pane", "-p", "-t", "main").rstrip("\n")

    def stderr(self) -> str:
        """What the CLI wrote to stderr so far."""
        try:
            return (self._workdir / "stderr").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def send(self, *keys: str) -> None:
        """Press tmux keys, e.g. ``send("Enter")``, ``send("Down", "Enter")``, ``send("Escape")``."""
        self._tmux("send-keys", "-t", "main", *keys)

    def type(self, text: str) -> None:
        """Type ``text`` literally (no key-name lookup)."""
        self._tmux("send-keys", "-t", "main", "-l", text)

    def _match(self, pattern: str | re.Pattern[str]) -> tuple[re.Match[str] | None, str]:
        screen = self.screen()
        regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
        return regex.search(screen), screen

    def _timeout(self, pattern: str | re.Pattern[str], timeout: float, screen: str) -> TerminalTimeout:
        shown = pattern.pattern if isinstance(pattern, re.Pattern) else pattern
        stderr = self.stderr().strip()
        return TerminalTimeout(
            f"{shown!r} not on screen after {timeout}s. Screen:\n{screen}"
            + (f"\n--- CLI stderr:\n{stderr[-2000:]}" if stderr else "")
        )

    async def await_for(
        self, pattern: str | re.Pattern[str], timeout: float = 10.0, interval: float = 0.1
    ) -> re.Match[str]:
        """The first match of ``pattern`` on the screen, polled every ``interval`` seconds;
        ``TerminalTimeout`` (with the last screen) after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            match, screen = self._match(pattern)
            if match:
                return match
            if time.monotonic() >= deadline:
                raise self._timeout(pattern, timeout, screen)
            await asyncio.sleep(interval)

    async def answer_dialog(self, *keys: str, timeout: float = 15.0) -> None:
        """Wait for the permission dialog, then press ``keys`` once it takes input.

        E.g. ``answer_dialog("Enter")`` for "1. Yes", ``answer_dialog("4")``
        for "No" (in 2.1.337 No also interrupts the turn), ``answer_dialog("Escape")``.
        """
        await self.await_for(PERMISSION_DIALOG, timeout)
        await asyncio.sleep(DIALOG_INPUT_GRACE)
        self.send(*keys)

    # -- internals ---------------------------------------------------------- #

    def _tmux(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        result = subprocess.run(
            ["tmux", "-S", str(self.socket), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            env=dict(env) if env is not None else None,
        )
        if result.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args[:2])} failed: {result.stderr.strip()}")
        return result.stdout

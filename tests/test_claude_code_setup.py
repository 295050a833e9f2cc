"""``python -m bot claude-code install / uninstall / doctor`` on a settings file that already holds other things."""

from __future__ import annotations

import copy
import json
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.agent import claude_code
from bot.agent.gate_command import GATED_TOOLS

ROOT = Path(__file__).resolve().parents[1]

ORIGINAL: dict[str, Any] = {
    "permissions": {
        "allow": ["Bash(npm run test:*)", "Read(~/notes/**)"],
        "deny": ["Bash(curl:*)", "Read(./.env)"],
    },
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "lint-guard --strict"}]}],
        "Notification": [
            {"matcher": "", "hooks": [{"type": "command", "command": "/opt/other/notify", "timeout": 30}]}
        ],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
    },
    "statusLine": {"type": "command", "command": "~/bin/status"},
}


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def bot(*args: str, cwd: Path, env: dict[str, str] | None = None, redis_url: str | None = None) -> Run:
    """The real CLI entry, as a user runs it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CLAUDE", "ANTHROPIC", "REDIS_URL"))}
    environ["PYTHONPATH"] = str(ROOT)
    if redis_url:
        environ["REDIS_URL"] = redis_url
    environ.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "bot", "claude-code", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def without_ours(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with the hook that install adds taken out again (by hand, not by our code)."""
    result = copy.deepcopy(settings)
    for event in ("PermissionRequest", "PreToolUse", "PostToolUse"):
        if event not in result["hooks"]:
            continue
        groups = result["hooks"][event]
        result["hooks"][event] = [
            g for g in groups if not any("-m bot gate" in h["command"] for h in g["hooks"])
        ]
        if not result["hooks"][event]:
            del result["hooks"][event]
    return result


def ours(settings: dict[str, Any], event: str) -> list[dict[str, Any]]:
    return [
        g for g in settings["hooks"].get(event, []) if any("-m bot gate" in h["command"] for h in g["hooks"])
    ]


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".*.bak"))


def settings_file(tmp_path: Path, content: dict[str, Any] | str = ORIGINAL) -> Path:
    path = tmp_path / "settings.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=4))
    path.chmod(0o640)
    return path


@pytest.mark.slow
def test_install_adds_one_hook_and_keeps_everything_else(tmp_path):
    path = settings_file(tmp_path)
    original_bytes = path.read_bytes()

    run = bot(
        "install",
        "--settings-file",
        str(path),
        "--agent-name",
        "my laptop",
        "--requested-by",
        "U0123ABCD",
        cwd=tmp_path,
    )

    assert run.code == 0, run.stderr
    settings = json.loads(path.read_text())
    assert without_ours(settings) == ORIGINAL
    assert list(settings) == list(ORIGINAL) and list(settings["hooks"]) == [
        *ORIGINAL["hooks"],
        "PermissionRequest",
        "PostToolUse",
    ]
    command = f"{shlex.quote(sys.executable)} -m bot gate --hook-timeout 600 --agent-name 'my laptop' --requested-by U0123ABCD"
    assert ours(settings, "PermissionRequest") == [
        {"matcher": "*", "hooks": [{"type": "command", "command": command, "timeout": 600}]}
    ]
    # Its companion: in a terminal, the call running is how the gate learns the person there said Yes.
    after = f"{shlex.quote(sys.executable)} -m bot gate --hook-timeout 30 --agent-name 'my laptop' --requested-by U0123ABCD"
    assert ours(settings, "PostToolUse") == [
        {"matcher": "*", "hooks": [{"type": "command", "command": after, "timeout": 30}]}
    ]
    assert "REDIS_URL" not in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o640
    [backup] = backups(path)
    assert backup.read_bytes() == original_bytes
    assert "PermissionRequest" in run.stdout and command in run.stdout and str(backup) in run.stdout
    assert "REDIS_URL is not set" in run.stdout

    again = bot(
        "install",
        "--settings-file",
        str(path),
        "--agent-name",
        "my laptop",
        "--requested-by",
        "U0123ABCD",
        cwd=tmp_path,
        redis_url="redis://127.0.0.1:1/0",
    )
    assert again.code == 0 and "nothing to change" in again.stdout
    assert json.loads(path.read_text()) == settings and backups(path) == [backup]
    assert "REDIS_URL is not set" not in again.stdout


@pytest.mark.slow
def test_defer_replaces_the_permission_request_hook_then_uninstall_restores_the_file(tmp_path):
    path = settings_file(tmp_path)
    assert bot("install", "--settings-file", str(path), cwd=tmp_path).code == 0

    run = bot(
        "install",
        "--settings-file",
        str(path),
        "--defer",
        "--hook-timeout",
        "300",
        "--channel",
        "C0APPROVE",
        cwd=tmp_path,
    )

    assert run.code == 0, run.stderr
    settings = json.loads(path.read_text())
    assert without_ours(settings) == ORIGINAL
    assert ours(settings, "PermissionRequest") == []
    # " || exit 2": an interpreter that cannot start blocks the call instead of giving no decision.
    command = f"{shlex.quote(sys.executable)} -m bot gate --mode defer --hook-timeout 300 --channel C0APPROVE || exit 2"
    assert ours(settings, "PreToolUse") == [
        {"matcher": GATED_TOOLS, "hooks": [{"type": "command", "command": command, "timeout": 300}]}
    ]
    assert "removed our PermissionRequest hook" in run.stdout

    removed = bot("uninstall", "--settings-file", str(path), cwd=tmp_path)
    assert removed.code == 0 and "removed our PreToolUse hook" in removed.stdout
    assert json.loads(path.read_text()) == ORIGINAL
    assert len(backups(path)) == 3

    nothing = bot("uninstall", "--settings-file", str(path), cwd=tmp_path)
    assert nothing.code == 0 and "nothing to change" in nothing.stdout
    assert len(backups(path)) == 3


@pytest.mark.slow
def test_install_creates_a_missing_file_and_uninstall_leaves_it_as_install_found_it(tmp_path):
    path = tmp_path / "new" / ".claude" / "settings.json"
    assert bot("install", "--settings-file", str(path), cwd=tmp_path).code == 0
    assert len(ours(json.loads(path.read_text()), "PermissionRequest")) == 1 and backups(path) == []
    assert bot("uninstall", "--settings-file", str(path), cwd=tmp_path).code == 0
    assert json.loads(path.read_text()) == {}


@pytest.mark.slow
def test_a_file_that_is_not_json_or_whose_hooks_are_misshapen_is_refused_untouched(tmp_path):
    for content in (
        '{"hooks": {"PreToolUse": [}',
        json.dumps({"hooks": {"PreToolUse": {"matcher": "Bash"}}}),
        "[]",
    ):
        path = settings_file(tmp_path, content)
        for action in ("install", "uninstall"):
            run = bot(action, "--settings-file", str(path), cwd=tmp_path)
            assert run.code == 2 and "not changed" in run.stderr, (content, run)
            assert path.read_text() == content and backups(path) == []


@pytest.mark.slow
def test_user_scope_is_the_claude_config_dir_when_set(tmp_path):
    config = tmp_path / "config"
    home = tmp_path / "home"
    run = bot("install", "--user", cwd=tmp_path, env={"CLAUDE_CONFIG_DIR": str(config), "HOME": str(home)})
    assert run.code == 0, run.stderr
    assert len(ours(json.loads((config / "settings.json").read_text()), "PermissionRequest")) == 1
    assert not (home / ".claude").exists()

    run = bot("install", cwd=tmp_path, env={"HOME": str(home)})  # the default scope is --user
    assert run.code == 0, run.stderr
    assert len(ours(json.loads((home / ".claude" / "settings.json").read_text()), "PermissionRequest")) == 1


@pytest.mark.slow
def test_doctor_passes_a_defer_hook_that_blocks_when_redis_is_unreachable(tmp_path, redis_server):
    path = settings_file(tmp_path)
    assert bot("install", "--settings-file", str(path), "--defer", cwd=tmp_path).code == 0

    run = bot("doctor", "--settings-file", str(path), cwd=tmp_path, redis_url=redis_server.url)

    assert run.code == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    for check in ("hook found", "timeouts", "command starts", "blocks", "one hook", "redis"):
        assert any(line.startswith("ok") and f" {check}:" in line for line in lines), (check, run.stdout)


@pytest.mark.slow
def test_doctor_passes_a_permission_request_hook_that_denies_when_redis_is_unreachable(
    tmp_path, redis_server
):
    """Needs the gate to answer PermissionRequest (a deny naming the Redis failure, or exit 2 naming it)."""
    path = settings_file(tmp_path)
    assert bot("install", "--settings-file", str(path), cwd=tmp_path).code == 0

    run = bot("doctor", "--settings-file", str(path), cwd=tmp_path, redis_url=redis_server.url)

    assert run.code == 0, run.stdout + run.stderr
    assert any(line.startswith("ok") and " blocks:" in line for line in run.stdout.splitlines()), run.stdout


@pytest.mark.slow
def test_doctor_fails_a_hook_that_cannot_start_or_blocks_for_another_reason(tmp_path, redis_server):
    broken = {
        "hooks": {
            "PreToolUse": [
                {
                    "matcher": "Bash",
                    "hooks": [
                        {
                            "type": "command",
                            "command": "/nonexistent/venv/bin/python3 -m bot gate --hook-timeout 600",
                            "timeout": 600,
                        }
                    ],
                }
            ]
        }
    }
    path = settings_file(tmp_path, broken)
    run = bot("doctor", "--settings-file", str(path), cwd=tmp_path, redis_url=redis_server.url)
    assert run.code == 1
    assert any(
        line.startswith("FAIL") and " command starts: exit 127" in line for line in run.stdout.splitlines()
    )

    # Blocks, but not because Redis is unreachable: the gate refuses its own options on every call.
    bad_wait = f"{shlex.quote(sys.executable)} -m bot gate --mode defer --wait 900 --hook-timeout 600"
    broken["hooks"]["PreToolUse"][0]["hooks"][0]["command"] = bad_wait
    path = settings_file(tmp_path, broken)
    run = bot("doctor", "--settings-file", str(path), cwd=tmp_path, redis_url=redis_server.url)
    assert run.code == 1
    assert any(line.startswith("FAIL") and " blocks:" in line for line in run.stdout.splitlines()), run.stdout


@pytest.mark.slow
def test_doctor_fails_disagreeing_timeouts_two_hooks_and_no_redis_url(tmp_path):
    command = f"{shlex.quote(sys.executable)} -m bot gate --mode defer --hook-timeout 600"
    settings = {
        "hooks": {
            "PreToolUse": [
                {"matcher": "Bash", "hooks": [{"type": "command", "command": command, "timeout": 120}]}
            ],
            "PermissionRequest": [{"matcher": "*", "hooks": [{"type": "command", "command": command}]}],
        }
    }
    path = settings_file(tmp_path, settings)
    run = bot("doctor", "--settings-file", str(path), cwd=tmp_path)
    assert run.code == 1
    failed = [line for line in run.stdout.splitlines() if line.startswith("FAIL")]
    assert any(' timeouts: hook "timeout" 120 s, gate --hook-timeout 600 s' in line for line in failed), (
        run.stdout
    )
    assert any(" one hook: 2 of our hooks" in line for line in failed)
    assert any(" redis: REDIS_URL is not set" in line for line in failed)


@pytest.mark.slow
def test_doctor_without_a_scope_looks_in_user_project_and_local_settings(tmp_path, redis_server):
    project = tmp_path / "project"
    (project / ".claude").mkdir(parents=True)
    config = tmp_path / "config"
    env = {"CLAUDE_CONFIG_DIR": str(config), "HOME": str(tmp_path / "home")}

    nothing = bot("doctor", cwd=project, env=env, redis_url=redis_server.url)
    assert nothing.code == 1 and "FAIL hook found" in nothing.stdout

    assert bot("install", "--project", "--defer", cwd=project, env=env).code == 0
    local = project / ".claude" / "settings.local.json"
    local.write_text((project / ".claude" / "settings.json").read_text())
    run = bot("doctor", cwd=project, env=env, redis_url=redis_server.url)
    assert run.code == 1
    assert str(project / ".claude" / "settings.json") in run.stdout and str(local) in run.stdout
    assert any(
        line.startswith("FAIL") and " one hook: 2 of our hooks" in line for line in run.stdout.splitlines()
    )


FAKE_GATE = """
import json, sys
from os import environ
from urllib.parse import urlsplit

# Answers as the gate's PermissionRequest contract says, or as a gate that gets it wrong.
url = urlsplit(environ["REDIS_URL"])
reason = (f"Denied: the approval service could not be reached (ConnectionError: Error 111 connecting to "
          f"{url.hostname}:{url.port}. Connection refused.), so nobody could approve this call. The tool was not run.")
event = json.load(sys.stdin)["hook_event_name"]
answer = environ["FAKE_ANSWER"]
decision = {"allow": {"behavior": "allow"}, "deny-other": {"behavior": "deny", "message": "Denied: no reason"},
            "deny": {"behavior": "deny", "message": reason}}[answer]
print(json.dumps({"hookSpecificOutput": {"hookEventName": event, "decision": decision}}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("answer, passes", [("deny", True), ("deny-other", False), ("allow", False)])
def test_doctor_accepts_only_a_permission_request_deny_naming_the_unreachable_redis(
    tmp_path, redis_server, answer, passes
):
    fake = tmp_path / "fake"
    (fake / "bot").mkdir(parents=True)
    (fake / "bot" / "__init__.py").write_text("")
    (fake / "bot" / "__main__.py").write_text(FAKE_GATE)
    # An interpreter that finds the fake gate first: the command keeps the exact shape install writes.
    python = fake / "bin" / "python3"
    python.parent.mkdir()
    python.write_text(
        f'#!/bin/sh\nPYTHONPATH={fake} FAKE_ANSWER={answer} exec {shlex.quote(sys.executable)} "$@"\n'
    )
    python.chmod(0o755)
    command = f"{python} -m bot gate --hook-timeout 600"
    hook = {"type": "command", "command": command, "timeout": 600}
    path = settings_file(tmp_path, {"hooks": {"PermissionRequest": [{"matcher": "*", "hooks": [hook]}]}})

    run = bot("doctor", "--settings-file", str(path), cwd=tmp_path, redis_url=redis_server.url)

    assert run.code == (0 if passes else 1), run.stdout
    status = "ok" if passes else "FAIL"
    assert any(line.startswith(status) and " blocks:" in line for line in run.stdout.splitlines()), run.stdout


@pytest.mark.slow
def test_install_refuses_to_put_ours_beside_another_permission_request_approver(tmp_path, redis_server):
    # Claude Code would ask both and take the first answer: the other's allow would overrule the team.
    other = {
        "hooks": {
            "PermissionRequest": [{"matcher": "*", "hooks": [{"type": "command", "command": "auto-yes"}]}]
        }
    }
    path = settings_file(tmp_path, other)
    before = path.read_bytes()
    run = bot("install", "--settings-file", str(path), cwd=tmp_path)
    assert run.code == 2 and "already has another PermissionRequest hook (auto-yes)" in run.stderr
    assert path.read_bytes() == before and backups(path) == []
    # The same hook in a file Claude Code also loads (the project's, here) is refused too.
    project = tmp_path / "project"
    (project / ".claude").mkdir(parents=True)
    (project / ".claude" / "settings.json").write_text(json.dumps(other))
    mine = tmp_path / "mine.json"
    run = bot("install", "--settings-file", str(mine), cwd=project)
    assert run.code == 2 and not mine.exists()
    # doctor fails a setup that has one.
    ours = claude_code.HookSpec().groups()["PermissionRequest"]
    both = {"hooks": {"PermissionRequest": [*other["hooks"]["PermissionRequest"], ours]}}
    path = settings_file(tmp_path, both)
    run = bot("doctor", "--settings-file", str(path), cwd=tmp_path, redis_url=redis_server.url)
    assert run.code == 1 and any(
        line.startswith("FAIL") and "auto-yes" in line for line in run.stdout.splitlines()
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        "echo gate -m bot gate",  # mentions the gate
        "./python -m bot gate --hook-timeout 600",  # an interpreter relative to the folder (a cloned repo's)
        "/usr/bin/python3 -m bot gate --hook-timeout 600; curl evil",  # more than the gate
        "/usr/bin/python3 -m bot gate --evil",  # an option the gate does not have
    ],
)
def test_only_a_hook_exactly_as_install_writes_it_is_ours(tmp_path, command):
    # Not removed by uninstall, and never run by doctor.
    theirs = {
        "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": command}]}]}
    }
    path = settings_file(tmp_path, theirs)
    assert "nothing" in bot("uninstall", "--settings-file", str(path), cwd=tmp_path).stdout
    assert json.loads(path.read_text()) == theirs
    run = bot("doctor", "--settings-file", str(path), cwd=tmp_path)
    assert "FAIL hook found" in run.stdout and "command starts" not in run.stdout


@pytest.mark.slow
def test_uninstall_keeps_another_tools_hook_that_shares_a_group_with_ours(tmp_path):
    mine = {"type": "command", "command": "/usr/bin/python3 -m bot gate --mode defer", "timeout": 600}
    theirs = {"type": "command", "command": "audit-log"}
    settings = {"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [mine, theirs]}], "Stop": []}}
    path = settings_file(tmp_path, settings)
    run = bot("uninstall", "--settings-file", str(path), cwd=tmp_path)
    assert run.code == 0 and mine["command"] in run.stdout
    assert json.loads(path.read_text()) == {
        "hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [theirs]}], "Stop": []}
    }


@pytest.mark.slow
def test_a_hook_timeout_the_gate_cannot_answer_within_is_refused(tmp_path):
    path = settings_file(tmp_path)
    run = bot("install", "--settings-file", str(path), "--hook-timeout", "5", cwd=tmp_path)
    assert run.code == 2 and "not changed" in run.stderr
    assert json.loads(path.read_text()) == ORIGINAL and backups(path) == []


@pytest.mark.slow
@pytest.mark.parametrize("kind", [[], ["--defer"]], ids=["permission-request", "defer"])
async def test_the_installed_hook_is_the_one_claude_code_runs_and_it_blocks(tmp_path, monkeypatch, kind):
    """The real CLI reads the file install wrote ($CLAUDE_CONFIG_DIR/settings.json) and the hook blocks
    the call when Redis refuses connections (PermissionRequest: needs the gate to answer that event)."""
    import asyncio

    import claude_agent_sdk

    from bot.agent.doctor import refusing_port
    from bot.demo.scripted_model import ScriptedModel, text, tool_use
    from tests.fakes.agent_env import clean_agent_env

    clean_agent_env(monkeypatch)
    config, work = tmp_path / "config", tmp_path / "work"
    work.mkdir()
    assert bot("install", "--user", *kind, cwd=work, env={"CLAUDE_CONFIG_DIR": str(config)}).code == 0
    cli = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
    marker = {"command": "echo ran >> marker.txt", "description": "Append to a marker file"}
    async with ScriptedModel.start([tool_use("Bash", marker), text("done")]) as model:
        with refusing_port() as port:
            env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
            env.update(
                model.cli_env(config_dir=config),
                REDIS_URL=f"redis://127.0.0.1:{port}/0",
                PYTHONPATH=str(ROOT),
            )
            process = await asyncio.create_subprocess_exec(
                str(cli),
                "-p",
                "do the task",
                "--tools",
                "Bash",
                "--output-format",
                "json",
                cwd=work,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        [result] = model.tool_results()
    assert not (work / "marker.txt").exists()
    assert "could not be reached" in result.content and f":{port}" in result.content, result.content


def test_a_defer_gate_whose_python_is_gone_still_blocks():
    # A shared project file on a teammate's machine, or a moved virtualenv: the shell cannot start the
    # gate (exit 127), which Claude Code would take for "no decision" and run what its rules allow.
    [group] = claude_code.HookSpec(defer=True, python="/nonexistent/venv/bin/python3").groups().values()
    done = subprocess.run(
        ["/bin/sh", "-c", group["hooks"][0]["command"]],
        input="{}",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2

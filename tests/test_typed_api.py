"""The package ships ``py.typed``: a user's script that builds ``ClaudeAgentOptions`` with
``SlackApprover`` type-checks under the pinned mypy in strict mode, against our annotations.

How mypy finds ``bot`` here: the editable install is an import hook
(``__editable___*_finder.py``), which mypy cannot follow ("Cannot find implementation or
library stub"). So the checkout goes on ``PYTHONPATH``: mypy treats the entries of the
interpreter's ``sys.path`` as installed packages, and uses a package there only if it has
``py.typed`` (else "module is installed, but missing library stubs or py.typed marker"),
exactly as for a wheel in site-packages. The script lives in a folder of its own, so the
checkout is never read as the user's own source.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

USER_SCRIPT = """\
from claude_agent_sdk import ClaudeAgentOptions

from bot import SlackApprover
from bot.approvals.model import ApprovalRequest


async def run() -> ApprovalRequest:
    async with SlackApprover("redis://localhost:6379/0", agent_name="ci", mode="defer") as approver:
        options: ClaudeAgentOptions = approver.options(cwd=".", allowed_tools=["Bash(npm test:*)"])
        plain = ClaudeAgentOptions(can_use_tool=approver.can_use_tool, settings=approver.settings())
        assert options.can_use_tool is not None and plain.settings
        return await approver.wait_for_decision("toolu_1", timeout=1.0)
"""

MISUSE = """\
from bot import SlackApprover

approver = SlackApprover("redis://localhost:6379/0", timeout="soon")
"""
"""Proves the annotations are read: with ``bot`` untyped (``Any``) this would pass."""


def _mypy(folder: Path, package_root: Path) -> subprocess.CompletedProcess[str]:
    (folder / "user_script.py").write_text(USER_SCRIPT)
    (folder / "misuse.py").write_text(MISUSE)
    (folder / "mypy.ini").write_text("[mypy]\n")  # no project configuration: a user's own run
    env = {k: v for k, v in os.environ.items() if k != "MYPYPATH"}
    env["PYTHONPATH"] = str(package_root)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            "mypy.ini",
            "--cache-dir",
            str(folder.parent / "mypy-cache"),  # shared by both runs: the SDK is analysed once
            "user_script.py",
            "misuse.py",
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )


def test_a_user_script_type_checks_against_the_shipped_annotations(tmp_path):
    if importlib.util.find_spec("mypy") is None:
        pytest.fail("mypy is not installed: pip install -e '.[lint]' (CI installs it)")
    assert (ROOT / "bot" / "py.typed").is_file()
    typed = tmp_path / "typed"
    typed.mkdir()
    done = _mypy(typed, ROOT)
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    wrong_timeout = 'Argument "timeout" to "SlackApprover" has incompatible type "str"; expected "float"'
    assert errors == [f"misuse.py:3: error: {wrong_timeout}  [arg-type]"], done.stdout + done.stderr

    # The same package without its marker: mypy skips it, so the marker is what made the difference.
    unmarked = tmp_path / "unmarked"
    shutil.copytree(ROOT / "bot", unmarked / "bot", ignore=shutil.ignore_patterns("__pycache__", "py.typed"))
    script_folder = tmp_path / "script"
    script_folder.mkdir()
    done = _mypy(script_folder, unmarked)
    skipped = (
        'error: Skipping analyzing "bot": module is installed, but missing library stubs or py.typed marker'
    )
    assert f"user_script.py:3: {skipped}" in done.stdout, done.stdout

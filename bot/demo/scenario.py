"""What the playground's agent does: one request of each kind, and a tip for each.

Without an API key a scripted model asks, in turn: a command to approve, a
deletion to deny with a reason, a deploy file two people must agree on
(modify, then approve), one question (answered from the menu on its message),
two questions at once (answered in a form), and a paid call only on-call may
approve. With a key, Claude gets a small task that needs the same kinds
of approval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..approvals.tools import shell_command
from .people import ALICE, BOB, CASEY
from .scripted_model import Step, text, tool_use

POLICY = Path(str(resources.files(__package__) / "policy.yaml"))
"""The playground's team rules; the same format as ``APPROVAL_POLICY``."""

TOOLS = ["Bash", "Write", "Read", "AskUserQuestion"]

GPU_HOUR_DOLLARS = 3.20
_GPU_HOURS = re.compile(r"(\d+(?:\.\d+)?) GPU-hours?")


def gpu_cost(tool_name: str, tool_input: dict[str, Any]) -> float | None:
    """The demo agent's cost estimator: renting GPU-hours costs money, nothing else does."""
    command = shell_command(tool_name, tool_input)
    found = _GPU_HOURS.search(command) if command is not None else None
    return round(float(found.group(1)) * GPU_HOUR_DOLLARS, 2) if found else None


def prepare(workdir: Path) -> None:
    """The folder the agent works in: a data folder worth keeping."""
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "customers.csv").write_text("id,name\n1,Ada\n2,Grace\n", encoding="utf-8")


@dataclass(frozen=True)
class Script:
    """The scripted model's turns, and what to try on each request (by ``tool_use_id``)."""

    steps: list[Step]
    tips: dict[str, str]


def scripted(workdir: Path) -> Script:
    """A fresh script: new tool_use ids each run, since a request is stored once per id."""
    asks = [
        (
            tool_use(
                "Bash",
                {
                    "command": "echo 'hello from the approvals playground' > hello.txt",
                    "description": "Write hello.txt",
                },
            ),
            "Approve it: the command runs and hello.txt appears in the work folder.",
        ),
        (
            tool_use("Bash", {"command": "rm -rf data", "description": "Delete the data folder"}),
            "Deny it and type a reason: the model reads your reason, and data/ stays.",
        ),
        (
            tool_use(
                "Write",
                {"file_path": str(workdir / "deploy.yaml"), "content": "service: web\nreplicas: 10\n"},
            ),
            (
                f"This file needs two of {ALICE.name} and {BOB.name}: as {ALICE.name}, Modify it (say replicas: 3), "
                f"then switch to {BOB.name} and Approve."
            ),
        ),
        (
            tool_use(
                "AskUserQuestion",
                {
                    "questions": [
                        {
                            "question": "Which version should I tag?",
                            "header": "Version",
                            "multiSelect": False,
                            "options": [
                                {"label": "v2.4.0-rc1", "description": "A release candidate first"},
                                {"label": "v2.4.0", "description": "The final release"},
                            ],
                        },
                    ]
                },
            ),
            (
                "One question: pick an answer in the menu on the message, and that is the answer. "
                "Other… opens a field for an answer of your own."
            ),
        ),
        (
            tool_use(
                "AskUserQuestion",
                {
                    "questions": [
                        {
                            "question": "Which environment should I deploy to?",
                            "header": "Environment",
                            "multiSelect": False,
                            "options": [
                                {"label": "staging", "description": "Safe to break"},
                                {"label": "production", "description": "Real users"},
                            ],
                        },
                        {
                            "question": "Which checks should run first?",
                            "header": "Checks",
                            "multiSelect": True,
                            "options": [
                                {"label": "unit tests", "description": "Fast"},
                                {"label": "lint", "description": "Style and typos"},
                                {"label": "smoke tests", "description": "Against the deployed service"},
                            ],
                        },
                    ]
                },
            ),
            "Click Answer…, answer both questions, and submit.",
        ),
        (
            tool_use(
                "Bash",
                {
                    "command": "echo 'rented 8 GPU-hours' >> gpu.log",
                    "description": "Rent 8 GPU-hours for the load test",
                },
            ),
            (
                f"Only on-call may approve spending: {ALICE.name} and {BOB.name} are told who may. Switch to {CASEY.name} "
                "(on-call) and Approve. "
                "The message shows today's spend against the $50 budget."
            ),
        ),
    ]
    steps = [step for step, _ in asks] + [text("That was one request of each kind. Run me again any time.")]
    tips = {step.tool_use_ids[0]: tip for step, tip in asks}
    return Script(steps, tips)


PROMPT = """\
You are showing a team how approvals of tool calls work. Work only in the current folder, one tool call
at a time:
1. With Bash, write a one-line greeting to hello.txt.
2. With the AskUserQuestion tool, ask one question: how long the poem should be (four lines or
   eight lines).
3. With the AskUserQuestion tool, ask two questions at once: which language the poem should be in
   (English, French or Spanish), and which topics it should cover (several may be picked: the sea,
   the mountains, the city).
4. With the Write tool, write poem.md: a poem following the answers.
5. With Bash, run `echo 'rented 2 GPU-hours' >> gpu.log`.
6. With Bash, run `rm -rf data` to tidy up.
If a step is denied, do not retry it: say so and go on. End with a short summary of what was approved,
changed or denied.
"""
"""The task for a real Claude agent (``ANTHROPIC_API_KEY`` set)."""

SCRIPTED_PROMPT = "Show the team each kind of approval request."

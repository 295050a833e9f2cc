"""The policy file: what it accepts, how it routes, and how it says what is wrong."""

from __future__ import annotations

import textwrap

import pytest

from bot.approvals.policy import Policy, PolicyError
from bot.approvals.policy_rule import Action, OnTimeout
from tests.test_cli import configured, run

POLICY_YAML = """
timezone: Europe/Paris
rules:
  - name: big-spend
    tool: "mcp__billing__*"
    cost_field: estimated_cost_usd
    when_cost_over: 50
    channel: C0ONCALL
    approvers: [S0ONCALL]
    mention: [S0ONCALL]
    daily_budget: 500
    timeout: 1h
    on_timeout: escalate
    escalation:
      - {after: 15m, approvers: [S0SECONDARY]}
      - {after: 0, approvers: [U0PRIMARY]}
  - name: billing
    tool: "mcp__billing__*"
    cost: 0.04
  - name: no-root-rm
    tool: Bash
    command: "rm -rf /(\\\\s|$)"
    action: deny
    message: Never delete the root file system.
  - name: read-logs
    tool: Bash
    command: "^tail "
    action: allow
  - name: deploys
    tool: Bash
    command: "^(kubectl|helm) "
    approvers: [U0ALICE, U0BOB, S0SRE]
    required_approvals: 2
  - name: infra-files
    tool: "Write"
    file_path: "/srv/infra/**"
    approvers: [S0SRE]
default:
  timeout: 2h
"""


@pytest.fixture
def policy(tmp_path) -> Policy:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY_YAML)
    return Policy.load(path)


def test_routes_by_tool_glob_input_and_cost(policy):
    costly = policy.route("mcp__billing__charge", {"estimated_cost_usd": 60})
    assert (costly.rule, costly.channel, costly.approvers, costly.mention) == (
        "big-spend",
        "C0ONCALL",
        ("S0ONCALL",),
        ("S0ONCALL",),
    )
    assert costly.cost == 60 and costly.daily_budget == 500 and costly.timeout == 3600
    assert costly.on_timeout is OnTimeout.ESCALATE
    assert [step.after for step in costly.escalation] == [0, 900]  # in firing order

    cheap = policy.route("mcp__billing__charge", {"estimated_cost_usd": 20})
    assert (cheap.rule, cheap.cost) == ("billing", 0.04)  # cost_field only applies to the rule that names it
    # The agent's own estimate wins over a rule's cost_field.
    assert policy.route("mcp__billing__charge", {"estimated_cost_usd": 1}, estimate=75).rule == "big-spend"

    assert policy.route("Bash", {"command": "rm -rf / "}).action is Action.DENY
    assert policy.route("Bash", {"command": "rm -rf /tmp/x"}).rule == "default"
    assert policy.route("Bash", {"command": "tail -f app.log"}).action is Action.ALLOW
    deploy = policy.route("Bash", {"command": "kubectl apply -f x.yaml"})
    assert (deploy.rule, deploy.required) == ("deploys", 2)

    assert (
        policy.route("Write", {"file_path": "/srv/infra/prod/main.tf", "content": ""}).rule == "infra-files"
    )
    assert policy.route("Write", {"file_path": "/srv/infra/../etc/passwd", "content": ""}).rule == "default"
    assert policy.route("Write", {"file_path": "/home/me/notes.md", "content": ""}).rule == "default"
    default = policy.route("WebFetch", {"url": "https://example.com"})
    assert (default.rule, default.action, default.approvers, default.timeout) == (
        "default",
        Action.ASK,
        (),
        7200,
    )


def test_toml_is_read_the_same_way(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(
        textwrap.dedent("""
        timezone = "America/New_York"

        [[rules]]
        name = "deploys"
        tool = "Bash"
        command = "^kubectl "
        approvers = ["S0SRE"]
        required_approvals = 2

        [[rules.escalation]]
        after = "30m"
        approvers = ["U0LEAD"]
    """)
    )
    policy = Policy.load(path)
    route = policy.route("Bash", {"command": "kubectl delete pod x"})
    assert (route.rule, route.required, route.escalation[0].after) == ("deploys", 2, 1800)
    # Budget days turn over at midnight in the policy's zone: 03:00 UTC is still the day before in New York.
    assert policy.today(1_763_694_000) == "2025-11-20"  # 2025-11-21T03:00Z


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "rules:\n  - name: deploys\n    approvers: [alice]\n",
            "rule 'deploys' (rules[0]), field approvers[0]: expected a Slack user id (U…) or user group id (S…), got 'alice'",
        ),
        ("rules:\n  - tool: Bash\n    command: '('\n", "rules[0], field command"),
        (
            "rules:\n  - name: x\n    timeout: soon\n",
            "rule 'x' (rules[0]), field timeout: expected a duration",
        ),
        (
            "rules:\n  - name: x\n    on_timeout: escalate\n    timeout: 1h\n",
            "on_timeout: escalate needs a timeout and at least one escalation step",
        ),
        (
            "rules:\n  - name: x\n    action: allow\n    approvers: [U0ALICE]\n",
            "action: allow decides at once",
        ),
        ("rules:\n  - name: x\n    required_approvals: 0\n", "field required_approvals"),
        ("rules:\n  - name: x\n    aprovers: [U0ALICE]\n", "field aprovers: Extra inputs are not permitted"),
        ("rules:\n  - name: x\n    channel: approvals\n", "field channel: expected a Slack channel id (C…)"),
        ("default:\n  tool: Bash\n", "default: default applies when no rule matches"),
        ("timezone: Mars/Olympus\n", "field timezone: unknown time zone 'Mars/Olympus'"),
        ("rules: [\n", "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping with 'rules'"),
    ],
)
def test_an_invalid_policy_names_the_rule_and_field(tmp_path, body, expected):
    path = tmp_path / "policy.yaml"
    path.write_text(body)
    with pytest.raises(PolicyError) as raised:
        Policy.load(path)
    assert str(raised.value).startswith(str(path))
    assert expected in str(raised.value)


def test_a_policy_file_must_exist_and_say_its_format(tmp_path):
    with pytest.raises(PolicyError, match="cannot read the policy file"):
        Policy.load(tmp_path / "missing.yaml")
    (tmp_path / "policy.json").write_text("{}")
    with pytest.raises(PolicyError, match=r"must end in \.yaml, \.yml or \.toml"):
        Policy.load(tmp_path / "policy.json")


@pytest.mark.slow
async def test_serve_with_an_invalid_policy_stops_with_one_line(tmp_path, redis_server, slack):
    (tmp_path / "policy.yaml").write_text("rules:\n  - name: deploys\n    required_approvals: two\n")
    values = configured(redis_server, slack, APPROVAL_POLICY=str(tmp_path / "policy.yaml"))
    code, _out, err = await run("serve", cwd=tmp_path, **values)
    assert code == 2
    [line] = err.strip().splitlines()
    assert line.startswith("error: ") and "rule 'deploys' (rules[0]), field required_approvals" in line

    code, out, _err = await run("check", cwd=tmp_path, **values)
    assert code == 1
    assert "FAIL policy" in out and "field required_approvals" in out

"""``policy check`` / ``policy explain`` as an operator runs them, and a worker reloading its policy."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
from pathlib import Path

import pytest

from bot.approvals.names import AuditEvent
from bot.cli import main
from bot.slack.ids import Action
from bot.web import POLICY
from tests.audit_streams import audit_stream
from tests.conftest import context, posted
from tests.test_cli import configured, run, serving

ROOT = Path(__file__).resolve().parents[1]


def readme_policy() -> str:
    """The example policy under the README's "## Team rules", as the README shows it."""
    section = (ROOT / "README.md").read_text().split("## Team rules", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def cli(capsys, *args: str) -> tuple[int, list[str], str]:
    code = main(["policy", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def example(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(readme_policy())
    return path


@pytest.mark.slow
async def test_check_prints_every_rule_of_the_readme_policy_in_words(tmp_path):
    path = example(tmp_path)
    code, out, err = await run("policy", "check", str(path), cwd=tmp_path)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{path}: valid, 6 rules and a default, daily budgets in Europe/Paris"
    headers = [line for line in lines if not line.startswith(" ")]
    assert headers[1:] == [
        "1. big-spend: mcp__billing__* calls costing more than $50",
        "2. billing: mcp__billing__* calls",
        "3. deploys: Bash calls whose command matches /^(kubectl|helm) /",
        "4. infra-files: Write calls whose file_path matches /srv/infra/**",
        "5. read-logs: Bash calls whose command matches /^tail /",
        "6. no-root-rm: Bash calls whose command matches /^rm -rf /$/",
        "default (default): every other call",
    ]
    text = "\n".join(lines)
    assert (
        "   → asked in channel C0DEPLOYS\n     who may decide: U0ALICE, U0BOB or members of S0SRE\n"
        "     2 different people must approve; one deny vetoes" in text
    )
    assert "after 15m: escalated to members of S0SECONDARY" in text
    assert "timeout: after 1h every escalation step not yet fired fires, then it is denied 1h later" in text
    assert "daily budget: $500 approved a day on this rule" in text
    assert "cost: the agent's estimate, else the input's estimated_cost_usd" in text
    assert "   → allowed at once: nothing is posted, the call runs (audited)" in text
    assert (
        '   → denied at once: nothing is posted; the model is told: "Never delete the root file system."'
        in text
    )
    assert "timeout: denied after 4h (the agent's APPROVAL_TIMEOUT caps it)" in text


async def test_check_of_an_invalid_file_is_the_workers_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "policy.yaml"
    path.write_text("rules:\n  - name: deploys\n    required_approvals: two\n")
    code, out, err = cli(capsys, "check", path)
    assert code == 2 and out == []
    [line] = err.strip().splitlines()
    assert line.startswith(f"error: {path}: rule 'deploys' (rules[0]), field required_approvals: ")


def test_explain_says_why_earlier_rules_do_not_match_and_where_the_call_goes(tmp_path, capsys):
    code, out, _err = cli(
        capsys,
        "explain",
        example(tmp_path),
        "--tool",
        "Bash",
        "--input",
        '{"command": "kubectl apply -f x"}',
        "--requested-by",
        "U0ALICE",
    )
    assert code == 0
    assert out == [
        'call: Bash {"command": "kubectl apply -f x"}',
        "rule 1 (big-spend): no, the tool is Bash, not mcp__billing__*",
        "rule 2 (billing): no, the tool is Bash, not mcp__billing__*",
        "rule 3 (deploys): matches",
        "→ asked in channel C0DEPLOYS",
        "  who may decide: U0ALICE, U0BOB or members of S0SRE",
        "  2 different people must approve; one deny vetoes",
        "  U0ALICE may not approve it, only deny or answer",
        "  timeout: none of its own (the agent's APPROVAL_TIMEOUT still applies)",
        "  the team allow-list (Always allow) is checked after the rules and may approve it at once",
    ]


def test_explain_a_denied_and_an_allowed_call(tmp_path, capsys):
    path = example(tmp_path)
    code, out, _err = cli(capsys, "explain", path, "--tool", "Bash", "--input", '{"command": "rm -rf /"}')
    assert code == 0
    assert "rule 3 (deploys): no, the command does not match /^(kubectl|helm) /" in out
    assert "rule 4 (infra-files): no, the tool is Bash, not Write" in out
    assert out[-2:] == [
        "rule 6 (no-root-rm): matches",
        '→ denied at once: nothing is posted; the model is told: "Never delete the root file system."',
    ]
    code, out, _err = cli(
        capsys, "explain", path, "--tool", "Bash", "--input", '{"command": "tail -n 5 app.log"}'
    )
    assert code == 0
    assert out[-2:] == [
        "rule 5 (read-logs): matches",
        "→ allowed at once: nothing is posted, the call runs (audited)",
    ]


def test_explain_routes_by_cost_over_a_threshold(tmp_path, capsys):
    path = example(tmp_path)
    refund = ("--tool", "mcp__billing__refund", "--input", '{"amount": 3}')
    code, out, _err = cli(capsys, "explain", path, *refund, "--cost", "12")
    assert code == 0
    assert out[1] == "rule 1 (big-spend): no, the cost, $12, is not more than $50"
    assert out[2:4] == ["rule 2 (billing): matches", "→ asked in channel APPROVAL_CHANNEL"]
    assert "  who may decide: anyone in the channel" in out and "  cost: $12" in out

    code, out, _err = cli(capsys, "explain", path, *refund, "--cost", "60")
    assert out[0] == 'call: mcp__billing__refund {"amount": 3}, estimated $60'
    assert out[1:3] == ["rule 1 (big-spend): matches", "→ asked in channel C0ONCALL"]
    assert "  paged when posted: members of S0PRIMARY" in out
    assert (
        "  after 45m: escalated to U0MANAGER, mentioned in the thread and able to decide from then on" in out
    )

    code, out, _err = cli(capsys, "explain", path, *refund)
    assert out[1] == "rule 1 (big-spend): no, the call's cost is unknown (the rule needs more than $50)"


def test_explain_refuses_input_it_cannot_use_with_exit_1(tmp_path, capsys):
    path = example(tmp_path)
    code, out, err = cli(capsys, "explain", path, "--tool", "Bash", "--input", '{"command": ')
    assert (code, out) == (1, []) and err.startswith("error: --input is not valid JSON")
    code, out, err = cli(capsys, "explain", path, "--tool", "Bash", "--input", '["ls"]')
    assert (code, out) == (1, []) and err.startswith("error: --input must be a JSON object")


# -- hot reload -------------------------------------------------------------------

ASKS = """
rules:
  - name: infra-apply
    tool: Bash
    command: "^terraform apply"
    channel: C0INFRA
    approvers: [U0ALICE]
"""

DENIES = """
rules:
  - name: no-apply
    tool: Bash
    command: "^terraform apply"
    action: deny
    message: Applies go through CI.
"""

INVALID = """
rules:
  - name: no-apply
    tool: Bash
    required_approvals: two
"""

APPLY = {"command": "terraform apply -auto-approve"}


def sha256(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


async def loaded(redis) -> list[tuple[str, str]]:
    """(hash, actor) of every ``policy_loaded`` audit entry, oldest first."""
    return [
        (f[b"policy_hash"].decode(), f[b"actor"].decode())
        for _id, f in await audit_stream(redis)
        if f[b"event"] == AuditEvent.POLICY_LOADED.encode()
    ]


async def until(check, timeout: float = 10) -> None:
    """Wait (bounded) for ``check()``, an async predicate on another process's or loop's doing."""

    async def poll() -> None:
        while not await check():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), timeout)


async def test_a_reload_applies_to_new_requests_and_posted_ones_keep_their_rule(
    tmp_path, start_worker, make_approver, slack, redis, caplog
):
    slack.add_channel("C0INFRA")
    path = tmp_path / "policy.yaml"
    path.write_text(ASKS)
    worker = await start_worker(approval_policy=path)
    holder = worker.app[POLICY]
    approver = await make_approver()
    before = asyncio.create_task(approver.can_use_tool("Bash", APPLY, context("toolu_before")))
    message = await posted(slack)
    assert message.channel == "C0INFRA" and "*Rule:* infra-apply" in str(message.blocks)
    await until(lambda: _has(redis, [(sha256(ASKS), "system")]))  # the version the worker started with

    # An invalid file changes nothing: one log line names the rule and field, nothing is audited.
    path.write_text(INVALID)
    with caplog.at_level(logging.INFO, logger="bot.approvals.policy_reload"):
        assert await holder.reload() is False  # what SIGHUP calls
    [line] = [r.getMessage() for r in caplog.records if r.name == "bot.approvals.policy_reload"]
    assert line.startswith(
        f"policy not reloaded, the one in force (sha256 {sha256(ASKS)[:12]}) stays: {path}: "
    )
    assert "rule 'no-apply' (rules[0]), field required_approvals" in line
    still = asyncio.create_task(approver.can_use_tool("Bash", APPLY, context("toolu_still")))
    assert (await posted(slack, 2)).channel == "C0INFRA"
    await cancelled_quietly(still)

    path.write_text(DENIES)
    assert await holder.reload() is True
    denied = await asyncio.wait_for(approver.can_use_tool("Bash", APPLY, context("toolu_after")), 5)
    assert denied.behavior == "deny"
    assert (
        denied.message
        == "Denied by the team's approval policy (rule no-apply). The tool was not run. Applies go through CI."
    )
    assert len(slack.roots()) == 2  # nothing posted for it

    # The request posted before the change keeps its rule: Alice may still approve it.
    await worker.click("U0ALICE", Action.APPROVE, message, name="alice")
    assert (await asyncio.wait_for(before, 5)).behavior == "allow"
    assert await loaded(redis) == [(sha256(ASKS), "system"), (sha256(DENIES), "system")]


async def test_a_changed_file_is_picked_up_without_a_signal(
    tmp_path, start_worker, make_approver, slack, redis
):
    path = tmp_path / "policy.yaml"
    path.write_text(ASKS)
    worker = await start_worker(approval_policy=path)
    changed = asyncio.Event()
    worker.app[POLICY].on_change(lambda _policy: changed.set())
    path.write_text(DENIES)
    await asyncio.wait_for(changed.wait(), 10)
    approver = await make_approver()
    denied = await asyncio.wait_for(approver.can_use_tool("Bash", APPLY, context("toolu_mtime")), 5)
    assert denied.behavior == "deny" and "rule no-apply" in denied.message
    await until(lambda: _has(redis, [(sha256(ASKS), "system"), (sha256(DENIES), "system")]))


@pytest.mark.slow
async def test_serve_reloads_its_policy_on_sighup(tmp_path, redis_server, slack, redis):
    path = tmp_path / "policy.yaml"
    path.write_text(ASKS)
    # A sweep an hour apart: only the signal can make this worker look at the file again.
    values = configured(redis_server, slack, APPROVAL_POLICY=str(path), SWEEP_INTERVAL="3600")
    async with serving(tmp_path, values) as served:
        await until(lambda: _has(redis, [(sha256(ASKS), "system")]))
        path.write_text(DENIES)
        os.kill(served.process.pid, signal.SIGHUP)
        await until(lambda: _has(redis, [(sha256(ASKS), "system"), (sha256(DENIES), "system")]))
    assert served.process.returncode == 0, served.stderr[-2000:]
    assert f"policy reloaded from {path} (sha256 {sha256(DENIES)[:12]}), rules: 1" in served.stderr


async def _has(redis, expected: list[tuple[str, str]]) -> bool:
    return await loaded(redis) == expected


async def cancelled_quietly(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_file_that_is_not_yaml_logs_one_line_and_an_unchanged_one_nothing(tmp_path, caplog):
    from bot.approvals.policy_reload import PolicyHolder

    path = tmp_path / "policy.yaml"
    path.write_text(ASKS)
    holder = PolicyHolder(path)
    first = holder.current
    path.write_text("rules: [\n  - name: x\n")
    with caplog.at_level(logging.INFO, logger="bot.approvals.policy_reload"):
        assert await holder.reload() is False
        path.write_text(ASKS)  # back as it was: the same bytes, nothing goes live
        assert await holder.reload() is False
    [record] = caplog.records
    assert "\n" not in record.getMessage() and f"{path}: not valid YAML: " in record.getMessage()
    assert holder.current is first and holder.digest == sha256(ASKS)


async def test_a_file_caught_while_it_is_written_never_goes_live(tmp_path):
    # Editors that write in place empty the file first; a file cut short may parse as a weaker policy.
    from bot.approvals.policy_reload import PolicyHolder

    path = tmp_path / "policy.yaml"
    path.write_text(ASKS)
    holder = PolicyHolder(path)
    first = holder.current
    path.write_text("")
    assert await holder.reload() is False and holder.current is first  # empty: refused, even on SIGHUP
    path.write_text(DENIES)
    await holder.check()
    assert holder.current is first  # a change seen once may still be being written
    await holder.check()
    assert holder.digest == sha256(DENIES)  # the same on the next look: read, and live

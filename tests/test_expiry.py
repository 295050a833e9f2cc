"""What ended a request: the model is told which timeout expired it (the rule's or the agent's own)."""

from __future__ import annotations

import asyncio

from bot.slack.ids import Action
from tests.cluster_fixtures import ON_BOTH
from tests.conftest import context, policy_file, posted

POLICY = """
rules:
  - name: deploys
    tool: Bash
    command: "^deploy "
    timeout: 1
  - name: migrations
    tool: Bash
    command: "^migrate "
    timeout: 1h
  - name: paged
    tool: Bash
    command: "^page "
    timeout: 1
    on_timeout: escalate
    escalation:
      - {after: 1h, approvers: [U0MANAGER]}
  - name: two-keys
    tool: Bash
    command: "^release "
    required_approvals: 2
    timeout: 2
default:
  timeout: 1
"""


async def _expired(approver, command: str, tool_use_id: str) -> str:
    result = await asyncio.wait_for(
        approver.can_use_tool("Bash", {"command": command}, context(tool_use_id)), 10
    )
    assert result.behavior == "deny"
    return result.message


@ON_BOTH
async def test_a_rule_timeout_is_named_with_its_rule(tmp_path, start_worker, make_approver, slack):
    await start_worker(approval_policy=policy_file(tmp_path, POLICY))
    approver = await make_approver(timeout=86400)
    assert await _expired(approver, "deploy api", "toolu_exp_rule") == (
        "Denied: nobody decided on this Bash call in Slack within 1 second, the timeout of rule 'deploys', "
        "so the request expired. The tool was not run."
    )
    # No rule matched: the default's timeout.
    assert "within 1 second, the team's default timeout, so the request expired." in await _expired(
        approver, "make lint", "toolu_exp_default"
    )


@ON_BOTH
async def test_the_agents_own_timeout_is_named_when_it_falls_due_first(
    tmp_path, start_worker, make_approver, slack
):
    await start_worker(approval_policy=policy_file(tmp_path, POLICY))
    approver = await make_approver(timeout=1)
    assert await _expired(approver, "migrate db", "toolu_exp_agent") == (
        "Denied: nobody decided on this Bash call in Slack within 1 second, the agent's own approval timeout, "
        "so the request expired. The tool was not run."
    )


@ON_BOTH
async def test_an_escalated_timeout_says_it_waited_once_more(tmp_path, start_worker, make_approver, slack):
    await start_worker(approval_policy=policy_file(tmp_path, POLICY))
    approver = await make_approver(timeout=86400)
    assert "within 1 second, the timeout of rule 'paged', nor within 1 second more after it escalated, " in (
        await _expired(approver, "page oncall", "toolu_exp_paged")
    )


@ON_BOTH
async def test_an_expired_n_of_m_request_says_how_many_approvals_it_had(
    tmp_path, start_worker, make_approver, slack
):
    worker = await start_worker(approval_policy=policy_file(tmp_path, POLICY))
    approver = await make_approver(timeout=86400)
    call = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "release v2"}, context("toolu_exp_votes"))
    )
    await worker.click("U0ALICE", Action.APPROVE, await posted(slack), name="alice")
    result = await asyncio.wait_for(call, 10)
    assert result.message == (
        "Denied: nobody decided on this Bash call in Slack within 2 seconds, the timeout of rule 'two-keys', "
        "so the request expired. It had 1 of the 2 approvals it needed. The tool was not run."
    )

"""On-call cost approvals: routing by cost, paging the group, daily budgets, escalation, timeouts."""

from __future__ import annotations

import asyncio

from bot.approvals import keys
from bot.slack.ids import Action
from tests.cluster_fixtures import ON_BOTH
from tests.conftest import context, policy_file, posted
from tests.fakes.bot_settings import CHANNEL
from tests.test_team_rules import audit_events, shown

POLICY = """
timezone: Europe/Paris
rules:
  - name: big-spend
    tool: "mcp__billing__*"
    when_cost_over: 50
    channel: C0ONCALL
    approvers: [S0PRIMARY]
    mention: [S0PRIMARY]
    daily_budget: 500
    escalation:
      - {after: 0.4, approvers: [S0SECONDARY]}
  - name: billing
    tool: "mcp__billing__*"
    cost_field: estimated_cost_usd
"""


def dollars(tool_name: str, tool_input: dict) -> float | None:
    """The agent's own estimate, as a team would write one."""
    amount = tool_input.get("amount_cents")
    return amount / 100 if isinstance(amount, int) else None


@ON_BOTH
async def test_a_costly_call_pages_on_call_escalates_and_counts_against_the_budget(
    tmp_path, start_worker, make_approver, slack, redis
):
    slack.add_channel("C0ONCALL", "oncall")
    slack.usergroups.update({"S0PRIMARY": ["U0PRIYA"], "S0SECONDARY": ["U0SAM"]})
    worker = await start_worker(approval_policy=policy_file(tmp_path, POLICY))
    approver = await make_approver(cost_estimator=dollars)

    call = asyncio.create_task(
        approver.can_use_tool(
            "mcp__billing__refund", {"order": "A-1", "amount_cents": 6000}, context("toolu_refund")
        )
    )
    message = await posted(slack)
    assert message.channel == "C0ONCALL"
    assert message.text.startswith("<!subteam^S0PRIMARY> ")  # the push notification pages the group
    assert ":rotating_light: <!subteam^S0PRIMARY>: approval needed" in shown(message)
    assert "*Estimated cost:* $60.00" in shown(message)
    assert "Approved today on `big-spend`: $0.00 of $500.00 daily budget" in shown(message)

    # Before the escalation, the secondary is not an approver yet.
    await worker.click("U0SAM", Action.APPROVE, message)
    await slack.wait_for(lambda: slack.ephemerals)
    assert "You are not an approver" in slack.ephemerals[-1].text

    # After its delay, the step posts a reminder in the thread and adds the secondary.
    await slack.wait_for(lambda: slack.thread("C0ONCALL", message.ts))
    [reminder] = slack.thread("C0ONCALL", message.ts)
    assert (
        "<!subteam^S0SECONDARY>: you can now approve or deny this mcp__billing__refund request"
        in reminder.text
    )
    await slack.wait_for(lambda: "Escalated to <!subteam^S0SECONDARY>" in shown(message))
    await worker.click("U0SAM", Action.APPROVE, message, name="sam")
    assert (await asyncio.wait_for(call, 5)).behavior == "allow"
    assert ("escalated", "system") in [(e, a) for e, _r, a in await audit_events(redis)]

    # The approval counts against today's budget, in the policy's time zone.
    today = [k.decode() for k in await redis.keys(keys.spend("big-spend", "*"))]
    assert len(today) == 1 and float(await redis.get(today[0])) == 60.0

    second = asyncio.create_task(
        approver.can_use_tool(
            "mcp__billing__refund", {"order": "A-2", "amount_cents": 45000}, context("toolu_refund2")
        )
    )
    message2 = await posted(slack, 2)
    assert "Approved today on `big-spend`: $60.00 of $500.00 daily budget" in shown(message2)
    assert "Approving this takes `big-spend` over its daily budget." in shown(message2)

    # Under the threshold: the ordinary billing rule, with its cost read from the input.
    cheap = asyncio.create_task(
        approver.can_use_tool("mcp__billing__quote", {"estimated_cost_usd": 2.5}, context("toolu_quote"))
    )
    message3 = await posted(slack, 3)
    assert message3.channel == CHANNEL
    assert "*Estimated cost:* $2.50" in shown(message3) and "subteam" not in message3.text
    for task in (second, cheap):
        task.cancel()
    await asyncio.gather(second, cheap, return_exceptions=True)


async def test_a_cost_estimator_that_fails_denies(make_approver, start_worker, slack):
    await start_worker()

    def broken(tool_name: str, tool_input: dict) -> float:
        raise KeyError("price")

    approver = await make_approver(cost_estimator=broken)
    result = await asyncio.wait_for(
        approver.can_use_tool("mcp__billing__refund", {}, context("toolu_broken")), 5
    )
    assert result.behavior == "deny" and "KeyError" in result.message
    assert slack.roots() == []


TIMEOUTS = """
rules:
  - name: quick
    tool: Bash
    command: "^deploy "
    timeout: 0.4
  - name: paged
    tool: Bash
    command: "^migrate "
    approvers: [U0ALICE]
    timeout: 0.4
    on_timeout: escalate
    escalation:
      - {after: 1h, approvers: [U0MANAGER]}
"""


@ON_BOTH
async def test_a_rule_timeout_denies_or_escalates_first(tmp_path, start_worker, make_approver, slack):
    worker = await start_worker(approval_policy=policy_file(tmp_path, TIMEOUTS))
    approver = await make_approver(timeout=60)

    quick = await asyncio.wait_for(
        approver.can_use_tool("Bash", {"command": "deploy api"}, context("toolu_quick")), 5
    )
    assert quick.behavior == "deny" and "request expired" in quick.message

    paged = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "migrate db"}, context("toolu_paged"))
    )
    message = await posted(slack, 2)
    assert "Escalates" in shown(message)
    # The timeout fires the escalation step at once (not after its hour), and grants one more timeout.
    await slack.wait_for(lambda: slack.thread(message.channel, message.ts))
    assert "<@U0MANAGER>: you can now approve" in slack.thread(message.channel, message.ts)[0].text
    assert not paged.done()
    result = await asyncio.wait_for(paged, 5)
    assert result.behavior == "deny" and "request expired" in result.message
    await slack.wait_for(lambda: "Expired" in shown(message))
    assert worker  # the worker did all of this from deadlines in Redis


ESCALATING = """
rules:
  - name: paged
    tool: Bash
    approvers: [U0ALICE]
    escalation:
      - {after: 0.2, approvers: [U0BOB]}
      - {after: 0.4, approvers: [S0LEADS]}
"""


@ON_BOTH
async def test_with_several_workers_each_step_fires_once(tmp_path, start_worker, make_approver, slack, redis):
    slack.usergroups["S0LEADS"] = ["U0LEE"]
    path = policy_file(tmp_path, ESCALATING)
    workers = [await start_worker(approval_policy=path) for _ in range(3)]
    approver = await make_approver()
    call = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make migrate"}, context("toolu_steps"))
    )
    message = await posted(slack)

    await slack.wait_for(lambda: len(slack.thread(message.channel, message.ts)) >= 2)
    await asyncio.sleep(0.3)  # more sweeps by every worker: nothing fires twice
    reminders = [m.text for m in slack.thread(message.channel, message.ts)]
    assert len(reminders) == 2
    assert "<@U0BOB>: you can now approve" in reminders[0] and "<!subteam^S0LEADS>" in reminders[1]
    assert [e for e, _r, _a in await audit_events(redis)].count("escalated") == 2
    await slack.wait_for(lambda: "Escalated to <@U0BOB>, <!subteam^S0LEADS>" in shown(message))

    await workers[2].click("U0LEE", Action.APPROVE, message)  # a lead, through the group added last
    assert (await asyncio.wait_for(call, 5)).behavior == "allow"

"""Team rules through a real worker: routing, who may decide, N-of-M with veto, self-approval."""

from __future__ import annotations

import asyncio
import copy

from bot.approvals.allowlist import TeamAllowList
from bot.approvals.names import AuditEvent
from bot.approvals.rules import Rule
from bot.slack.ids import Action
from tests.audit_streams import audit_stream
from tests.cluster_fixtures import ON_BOTH
from tests.conftest import context, policy_file, posted
from tests.fakes.bot_settings import CHANNEL

POLICY = """
rules:
  - name: deploys
    tool: Bash
    command: "^(kubectl|helm) "
    channel: C0DEPLOYS
    approvers: [U0ALICE, U0BOB, U0CAROL]
    required_approvals: 2
  - name: infra
    tool: Write
    file_path: "/srv/infra/**"
    channel: C0INFRA
    approvers: [U0ALICE, S0SRE]
  - name: read-logs
    tool: Bash
    command: "^tail "
    action: allow
  - name: no-root-rm
    tool: Bash
    command: "^rm -rf /$"
    action: deny
    message: Never delete the root file system.
"""


async def audit_events(redis) -> list[tuple[str, str, str]]:
    """(event, request, actor) of every audit entry, oldest first."""
    return [
        (f[b"event"].decode(), f[b"request"].decode(), f[b"actor"].decode())
        for _id, f in await audit_stream(redis)
    ]


def shown(message) -> str:
    return str(message.blocks)


async def setup(tmp_path, start_worker, slack, body: str = POLICY):
    for channel in ("C0DEPLOYS", "C0INFRA"):
        slack.add_channel(channel)
    slack.usergroups["S0SRE"] = ["U0CAROL"]
    return await start_worker(approval_policy=policy_file(tmp_path, body))


@ON_BOTH
async def test_requests_go_to_the_channel_their_rule_names(tmp_path, start_worker, make_approver, slack):
    worker = await setup(tmp_path, start_worker, slack)
    approver = await make_approver()
    calls = {
        "deploy": ("Bash", {"command": "kubectl rollout restart deploy/api"}),
        "infra": ("Write", {"file_path": "/srv/infra/prod/main.tf", "content": "x"}),
        "other": ("Bash", {"command": "make test"}),
    }
    tasks = {}
    for count, (name, (tool, tool_input)) in enumerate(calls.items(), start=1):
        tasks[name] = asyncio.create_task(
            approver.can_use_tool(tool, tool_input, context(f"toolu_route_{name}"))
        )
        await posted(slack, count)
    by_text = {m.text: m for m in slack.roots()}
    channels = {
        name: next(
            m.channel
            for t, m in by_text.items()
            if tool_input.get("command", tool_input.get("file_path", "")) in t
        )
        for name, (_tool, tool_input) in calls.items()
    }
    assert channels == {"deploy": "C0DEPLOYS", "infra": "C0INFRA", "other": CHANNEL}
    deploy = next(m for m in slack.roots() if m.channel == "C0DEPLOYS")
    assert "*Rule:* deploys" in shown(deploy)
    assert "*Who can decide:* <@U0ALICE>, <@U0BOB>, <@U0CAROL>" in shown(deploy)
    assert "*Approvals:* 0 of 2" in shown(deploy)
    other = next(m for m in slack.roots() if m.channel == CHANNEL)
    assert "Anyone in this channel can decide." in shown(other)
    # The infra rule names a group: its members were looked up before the post.
    assert [c.args["usergroup"] for c in slack.calls_to("usergroups.users.list")] == ["S0SRE"]

    await worker.click("U0ZED", Action.APPROVE, other)
    assert (await asyncio.wait_for(tasks["other"], 5)).behavior == "allow"
    for task in tasks.values():
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)


@ON_BOTH
async def test_allow_and_deny_rules_decide_without_asking(
    tmp_path, start_worker, make_approver, slack, redis
):
    await setup(tmp_path, start_worker, slack)
    approver = await make_approver()
    # Someone once clicked "Always allow" on `rm -rf …`: a deny rule still wins over it.
    await TeamAllowList(redis).add([Rule.parse("Bash(rm -rf *)")], added_by="U0BOB")
    cleaned = await asyncio.wait_for(
        approver.can_use_tool("Bash", {"command": "rm -rf build"}, context("toolu_clean")), 5
    )
    assert cleaned.behavior == "allow"

    allowed = await asyncio.wait_for(
        approver.can_use_tool("Bash", {"command": "tail -n 50 app.log"}, context("toolu_tail")), 5
    )
    denied = await asyncio.wait_for(
        approver.can_use_tool("Bash", {"command": "rm -rf /"}, context("toolu_rm")), 5
    )

    assert allowed.behavior == "allow" and allowed.updated_input == {"command": "tail -n 50 app.log"}
    assert denied.behavior == "deny"
    assert denied.message == (
        "Denied by the team's approval policy (rule no-root-rm). The tool was not run. Never delete the root file system."
    )
    assert slack.roots() == []
    events = [(event, actor) for event, _request, actor in await audit_events(redis)]
    assert ("auto_allowed", "policy") in events and ("auto_denied", "policy") in events


@ON_BOTH
async def test_a_non_approver_click_changes_nothing(tmp_path, start_worker, make_approver, slack, redis):
    worker = await setup(tmp_path, start_worker, slack)
    approver = await make_approver()
    call = asyncio.create_task(
        approver.can_use_tool(
            "Write", {"file_path": "/srv/infra/dns.tf", "content": "x"}, context("toolu_infra")
        )
    )
    message = await posted(slack)
    before = copy.deepcopy(message.blocks)

    await worker.click("U0MALLORY", Action.APPROVE, message)
    await slack.wait_for(lambda: slack.ephemerals)
    [note] = slack.ephemerals
    assert note.user == "U0MALLORY"
    assert (
        note.text
        == "You are not an approver for this request. It can be decided by <@U0ALICE>, <!subteam^S0SRE>."
    )

    # Deny and Modify are refused too, before any form: the modal says why, and nothing changes.
    for count, action in enumerate((Action.DENY, Action.MODIFY), 1):
        await worker.click("U0MALLORY", action, message)
        update = await slack.wait_for_call("views.update", count=count)
        shown = slack.views[update.args["view_id"]]
        assert "You are not an approver" in str(shown["blocks"]) and shown.get("submit") is None

    assert not call.done()
    assert message.blocks == before and message.edits == 0
    # (policy_loaded: the worker's start, not a change this click made; each chain starts at a genesis)
    assert [e for e, *_ in await audit_events(redis) if e not in ("policy_loaded", AuditEvent.GENESIS)] == [
        "created",
        "posted",
    ]

    # A member of the approver group decides.
    await worker.click("U0CAROL", Action.APPROVE, message)
    assert (await asyncio.wait_for(call, 5)).behavior == "allow"


@ON_BOTH
async def test_someone_added_to_a_group_after_the_post_can_approve(
    tmp_path, start_worker, make_approver, slack
):
    worker = await setup(tmp_path, start_worker, slack)
    approver = await make_approver()
    call = asyncio.create_task(
        approver.can_use_tool(
            "Write", {"file_path": "/srv/infra/dns.tf", "content": "x"}, context("toolu_newcomer")
        )
    )
    message = await posted(slack)
    slack.usergroups["S0SRE"] = ["U0CAROL", "U0DAVE"]  # Dave joined the group after the request was posted

    await worker.click("U0DAVE", Action.APPROVE, message)
    result = await asyncio.wait_for(call, 5)
    assert result.behavior == "allow"
    assert len(slack.calls_to("usergroups.users.list")) == 2  # warmed at post, refreshed on Dave's miss


@ON_BOTH
async def test_two_of_three_must_approve_and_one_deny_vetoes(tmp_path, start_worker, make_approver, slack):
    worker = await setup(tmp_path, start_worker, slack)
    approver = await make_approver()

    approved = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "helm upgrade api ./chart"}, context("toolu_2of3"))
    )
    message = await posted(slack)
    await worker.click("U0ALICE", Action.APPROVE, message, name="alice")
    await slack.wait_for(lambda: "*Approvals:* 1 of 2: <@U0ALICE>" in shown(message))
    assert not approved.done()
    await worker.click("U0ALICE", Action.APPROVE, message, name="alice")  # counts once
    await slack.wait_for(lambda: slack.ephemerals)
    assert (
        slack.ephemerals[-1].text
        == "You already approved this request. It needs approvals from 2 different people."
    )
    assert not approved.done()
    await worker.click("U0BOB", Action.APPROVE, message, name="bob")
    assert (await asyncio.wait_for(approved, 5)).behavior == "allow"
    await slack.wait_for(lambda: "Approved by <@U0ALICE> and <@U0BOB>" in shown(message))

    vetoed = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "kubectl delete ns prod"}, context("toolu_veto"))
    )
    second = await posted(slack, 2)
    await worker.click("U0ALICE", Action.APPROVE, second, name="alice")
    await slack.wait_for(lambda: "1 of 2" in shown(second))
    await worker.deny("U0CAROL", second, "not during the freeze", name="carol")
    result = await asyncio.wait_for(vetoed, 5)
    assert result.behavior == "deny"
    assert result.message.startswith(
        "Denied in Slack by @carol (U0CAROL). The tool was not run. Reason: not during the freeze"
    )


@ON_BOTH
async def test_modify_resets_earlier_approvals_and_counts_as_the_editors(
    tmp_path, start_worker, make_approver, slack
):
    worker = await setup(tmp_path, start_worker, slack)
    approver = await make_approver()
    call = asyncio.create_task(
        approver.can_use_tool(
            "Bash", {"command": "kubectl scale deploy/api --replicas=10"}, context("toolu_mod")
        )
    )
    message = await posted(slack)
    await worker.click("U0ALICE", Action.APPROVE, message, name="alice")
    await slack.wait_for(lambda: "1 of 2: <@U0ALICE>" in shown(message))
    seen_by_carol = copy.deepcopy(message)  # Carol's screen, before Bob's edit arrives

    await worker.modify("U0BOB", message, {"command": "kubectl scale deploy/api --replicas=3"}, name="bob")
    await slack.wait_for(lambda: "1 of 2: <@U0BOB>" in shown(message))
    assert "--replicas=3" in shown(message) and "Changed before approval" in shown(message)
    assert not call.done()

    # An approval of the version before the edit is refused: Carol never saw the new command.
    await worker.click("U0CAROL", Action.APPROVE, seen_by_carol, name="carol")
    await slack.wait_for(lambda: slack.ephemerals)
    assert slack.ephemerals[-1].text.startswith("This request was changed after you looked at it.")
    assert not call.done()

    await worker.click("U0ALICE", Action.APPROVE, message, name="alice")
    result = await asyncio.wait_for(call, 5)
    assert result.behavior == "allow"
    assert result.updated_input == {"command": "kubectl scale deploy/api --replicas=3"}
    await slack.wait_for(lambda: "Changed by <@U0BOB>, approved by <@U0BOB> and <@U0ALICE>" in shown(message))


SELF_POLICY = """
rules:
  - name: own-agent-ok
    tool: Write
    allow_self_approval: true
"""


@ON_BOTH
async def test_the_requester_cannot_approve_their_own_request(tmp_path, start_worker, make_approver, slack):
    worker = await setup(tmp_path, start_worker, slack, SELF_POLICY)
    approver = await make_approver(requested_by="U0ALICE")

    call = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make release"}, context("toolu_self"))
    )
    message = await posted(slack)
    await worker.click("U0ALICE", Action.APPROVE, message)
    await slack.wait_for(lambda: slack.ephemerals)
    assert (
        slack.ephemerals[-1].text
        == "You cannot approve a request your own agent made; another approver has to."
    )
    await worker.click("U0ALICE", Action.MODIFY, message)  # an edit would be her approval too
    update = await slack.wait_for_call("views.update")
    assert "You cannot approve a request your own agent made" in str(
        slack.views[update.args["view_id"]]["blocks"]
    )
    assert not call.done()
    await worker.click("U0BOB", Action.APPROVE, message)
    assert (await asyncio.wait_for(call, 5)).updated_input == {"command": "make release"}

    # A rule may allow it.
    own = asyncio.create_task(
        approver.can_use_tool("Write", {"file_path": "/tmp/notes.md", "content": "x"}, context("toolu_own"))
    )
    second = await posted(slack, 2)
    await worker.click("U0ALICE", Action.APPROVE, second)
    assert (await asyncio.wait_for(own, 5)).behavior == "allow"

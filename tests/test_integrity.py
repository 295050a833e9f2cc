"""Attempts to get a call through without the people the rules require, or to
leave a decision half made: numbers Lua cannot take, a worker dying between
two steps, a post that reached Slack but not Redis, a team rule that would
outrank the policy, a reused tool_use_id, a symlink, a replayed or outdated
form. Real Redis, a real worker, signed Slack requests."""

from __future__ import annotations

import asyncio
import json
import math
import os
from typing import Any

import pytest
from claude_agent_sdk import PermissionUpdate
from claude_agent_sdk.types import PermissionRuleValue

from bot.approvals import keys
from bot.approvals.model import Decision, NewRequest, State, request_id_for
from bot.approvals.policy import Action as RouteAction
from bot.approvals.policy import Policy, PolicyError, Route
from bot.approvals.queue import queued
from bot.approvals.store import RequestStore
from bot.slack.ids import Action, Modal, edit_block
from tests.audit_streams import audit_stream
from tests.conftest import cancelled, context, policy_file, posted
from tests.fakes.bot_settings import SIGNING_SECRET
from tests.fakes.slack_block_actions import block_actions
from tests.fakes.slack_signing import signed_form
from tests.fakes.slack_view_payloads import view_submission


async def audit(redis) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _id, fields in await audit_stream(redis)]


def suggest(rule: str) -> list[PermissionUpdate]:
    tool, _, content = rule.partition("(")
    return [
        PermissionUpdate(
            type="addRules",
            rules=[PermissionRuleValue(tool, content.rstrip(")"))],
            behavior="allow",
            destination="localSettings",
        )
    ]


# -- numbers Lua and JSON cannot take -----------------------------------------------


@pytest.mark.parametrize("estimate", [math.inf, -math.inf, math.nan, 1e300, -1.0])
async def test_an_unusable_cost_estimate_is_a_deny_that_says_so(
    make_approver, start_worker, slack, redis, estimate
):
    await start_worker()
    approver = await make_approver(cost_estimator=lambda tool, tool_input: estimate)
    result = await asyncio.wait_for(
        approver.can_use_tool("Bash", {"command": "make gpu"}, context("toolu_inf")), 5
    )
    assert result.behavior == "deny"
    assert "cost estimator" in result.message and "The tool was not run." in result.message
    assert slack.calls_to("chat.postMessage") == []
    assert await redis.exists(keys.request(request_id_for("toolu_inf"))) == 0


COST_POLICY = """
rules:
  - name: billing
    tool: "mcp__billing__*"
    cost_field: estimated_cost_usd
    daily_budget: 100
"""


@pytest.mark.parametrize("cost", [math.inf, math.nan, "1e999", "nan", "-inf", "lots"])
async def test_a_cost_field_that_is_not_a_finite_number_is_denied_by_the_policy(
    tmp_path, make_approver, start_worker, slack, redis, cost
):
    # json.loads("1e999") is inf: what a model's tool input can carry.
    await start_worker(approval_policy=policy_file(tmp_path, COST_POLICY))
    approver = await make_approver()
    call = approver.can_use_tool("mcp__billing__buy", {"estimated_cost_usd": cost}, context("toolu_cost"))
    result = await asyncio.wait_for(call, 5)
    assert result.behavior == "deny"
    assert "estimated_cost_usd" in result.message and "The tool was not run." in result.message
    assert slack.calls_to("chat.postMessage") == []
    denied = [e for e in await audit(redis) if e["event"] == "auto_denied"]
    assert len(denied) == 1 and denied[0]["rule"] == "billing"


@pytest.mark.parametrize(
    "rule",
    [
        "{tool: Bash, timeout: .inf}",
        "{tool: Bash, daily_budget: .inf}",
        "{tool: Bash, cost: .nan}",
        "{tool: Bash, when_cost_over: 1e400}",
        "{tool: Bash, timeout: 1h, on_timeout: escalate, escalation: [{after: .inf, approvers: [U0A]}]}",
        "{tool: Bash, timeout: 99999d}",
    ],
)
def test_a_policy_with_a_number_out_of_range_is_refused(tmp_path, rule):
    path = policy_file(tmp_path, f"rules:\n  - {rule}\n")
    with pytest.raises(PolicyError, match=r"rules\[0\]"):
        Policy.load(path)


async def test_an_approval_that_cannot_count_its_cost_changes_nothing(store, redis):
    """Defence in depth: a cost that got into Redis anyway (written by hand) is
    checked before the first write, so the approval is refused whole."""
    created, _ = await store.create(NewRequest(id="0" * 24, tool_name="Bash", tool_input={"command": "x"}))
    await store.route(created.id, Route(rule="billing", action=RouteAction.ASK, cost=1.0))
    await redis.hset(keys.request(created.id), "cost", "inf")
    before = await audit(redis)

    decision = Decision(State.APPROVED, actor="U0ALICE", actor_name="alice", revision=0)
    transition = await store.decide(created.id, decision)

    assert transition.refused is not None and transition.refused.value == "invalid"
    assert (await store.get(created.id)).state is State.PENDING
    assert await audit(redis) == before
    assert await queued(redis) == 1  # only the post job from create


def test_timeouts_out_of_range_are_refused_where_they_enter():
    from bot import Settings, SlackApprover

    for bad in (math.inf, math.nan, -1, 10**12):
        with pytest.raises(ValueError):
            SlackApprover("redis://127.0.0.1:1/0", timeout=bad)
    with pytest.raises(ValueError):
        Settings(_env_file=None, approval_timeout="inf")


# -- a policy decision is atomic with its route ------------------------------------------


@pytest.mark.parametrize("action", [RouteAction.DENY, RouteAction.ALLOW])
async def test_routing_applies_the_policys_decision_in_the_same_step(store, redis, action):
    """Before, routing stored the route and a second call decided: a worker that
    died in between left a pending request that a retry posted for anyone to approve."""
    created, _ = await store.create(
        NewRequest(id="1" * 24, tool_name="Bash", tool_input={"command": "rm -rf /"})
    )
    state = await store.route(created.id, Route(rule="no-root-rm", action=action, message="Never."))
    expected = State.DENIED if action is RouteAction.DENY else State.APPROVED
    assert state is expected
    request = await store.get(created.id)
    assert request.state is expected and request.decided_by == "policy"
    # A re-claimed post job routes again: the first route stands, nothing changes.
    assert await store.route(created.id, Route(rule="default", action=RouteAction.ASK)) is expected


async def test_a_retried_post_of_a_call_the_policy_denied_posts_nothing(
    tmp_path, start_worker, make_approver, slack, redis
):
    body = "rules:\n  - {name: no-rm, tool: Bash, command: '^rm ', action: deny, message: No.}\n"
    await start_worker(approval_policy=policy_file(tmp_path, body))
    approver = await make_approver()
    result = await asyncio.wait_for(
        approver.can_use_tool("Bash", {"command": "rm -rf x"}, context("toolu_rm")), 5
    )
    assert result.behavior == "deny"
    # The job handed out again (a worker that died mid-job): still nothing posted.
    retried = request_id_for("toolu_rm")
    await redis.xadd(keys.jobs(keys.shard_of(retried)), {"kind": "post", "id": retried})
    await asyncio.sleep(0.3)
    assert slack.calls_to("chat.postMessage") == []


# -- one live card per request ---------------------------------------------------------


async def test_a_post_that_slack_took_but_redis_did_not_record_leaves_one_live_card(
    start_worker, make_approver, slack, redis
):
    worker = await start_worker(job_retry_after=0.3)
    approver = await make_approver()

    async def redis_refuses_writes(_call: Any) -> None:
        await redis.config_set("min-replicas-to-write", 1)  # NOREPLICAS on every write

    slack.before_answer("chat.postMessage", redis_refuses_writes)
    task = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make ship"}, context("toolu_orphan"))
    )
    try:
        await slack.wait_for(lambda: slack.calls_to("chat.delete"))
    finally:
        await redis.config_set("min-replicas-to-write", 0)
    await slack.wait_for(lambda: len(slack.calls_to("chat.postMessage")) == 2, timeout=10)

    live = slack.roots()
    assert len(live) == 1, "the unrecorded card was taken down, the retry's is the only one"
    await worker.click("U0ALICE", Action.APPROVE, live[0])
    result = await asyncio.wait_for(task, 5)
    assert result.behavior == "allow"


async def test_a_card_posted_by_a_worker_that_died_before_recording_it_is_adopted(
    start_worker, make_approver, slack, redis, store
):
    approver = await make_approver()
    task = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make ship"}, context("toolu_adopt"))
    )
    request_id = request_id_for("toolu_adopt")
    await asyncio.sleep(0.2)
    # What a worker did before it died: began the post, Slack took it, nothing recorded.
    await store.route(request_id, Route(rule="default", action=RouteAction.ASK))
    await store.start_posting(request_id)
    request = await store.get(request_id)
    from bot.slack.blocks.request_message import request_message

    message = request_message(request)
    client = slack.client()
    await client.chat_postMessage(
        channel="C0APPROVALS",
        text=message.text,
        blocks=message.blocks,
        metadata={"event_type": "approval_request", "event_payload": {"request_id": request_id}},
    )

    # Another app's message claiming to be the card (any app can post metadata): never adopted.
    impostor = slack.reply("C0APPROVALS", "", "U0OTHERAPP", "Approve me")
    impostor.metadata = {"event_type": "approval_request", "event_payload": {"request_id": request_id}}
    impostor.thread_ts = None

    worker = await start_worker()
    await slack.wait_for(lambda: slack.calls_to("conversations.history"))
    await asyncio.sleep(0.3)
    assert len(slack.calls_to("chat.postMessage")) == 1, "no second card"
    ours = [m for m in slack.roots() if m.by_bot]
    assert len(ours) == 1
    adopted = await store.get(request_id)
    assert adopted.ts == ours[0].ts
    await worker.click("U0ALICE", Action.APPROVE, ours[0])
    assert (await asyncio.wait_for(task, 5)).behavior == "allow"
    await slack.wait_for(lambda: slack.message(ours[0].channel, ours[0].ts).edits >= 1)


# -- the team allow-list never outranks the rules -----------------------------------------

TEAM_POLICY = """
admins: [U0ADMIN]
rules:
  - name: prod-deploys
    tool: Bash
    command: "--env=prod"
    approvers: [U0ALICE, U0BOB]
    required_approvals: 2
  - name: sre-only
    tool: Bash
    command: "^terraform "
    approvers: [U0SRE]
  - name: gpu
    tool: Bash
    command: "^gpu "
    cost: 40
    daily_budget: 50
"""


async def _granted(worker, approver, slack, user: str, rule: str, command: str, tool_use_id: str) -> None:
    """``user`` approves ``command`` with Always allow, granting ``rule``."""
    task = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": command}, context(tool_use_id, suggestions=suggest(rule)))
    )
    count = len(slack.roots())
    message = await posted(slack, count + 1)
    await worker.click(user, Action.ALWAYS_ALLOW, message)
    assert (await asyncio.wait_for(task, 5)).behavior == "allow"


async def test_a_team_rule_does_not_stand_in_for_the_approvals_a_route_requires(
    tmp_path, start_worker, make_approver, slack, redis
):
    worker = await start_worker(approval_policy=policy_file(tmp_path, TEAM_POLICY))
    approver = await make_approver()
    # Carol approves a staging deploy (the default route: anyone) and always-allows the prefix.
    await _granted(
        worker,
        approver,
        slack,
        "U0CAROL",
        "Bash(npm run deploy:*)",
        "npm run deploy --env=staging",
        "toolu_s",
    )

    # The same prefix on the route that needs Alice and Bob: asked, not auto-approved.
    prod = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "npm run deploy --env=prod"}, context("toolu_p"))
    )
    message = await posted(slack, 2)
    assert "npm run deploy --env=prod" in str(message.blocks)
    assert not prod.done()
    declined = [e for e in await audit(redis) if e["event"] == "team_rule_not_applied"]
    assert declined and "needs 2 approvals" in declined[-1]["declined"]

    # Where the granter could approve alone, the rule does stand in for them.
    again = await asyncio.wait_for(
        approver.can_use_tool("Bash", {"command": "npm run deploy --env=dev"}, context("toolu_d")), 5
    )
    assert again.behavior == "allow" and len(slack.roots()) == 2
    await cancelled(prod)


async def test_a_team_rule_granted_by_someone_who_is_not_the_routes_approver_is_asked(
    tmp_path, start_worker, make_approver, slack, redis
):
    from bot.approvals.allowlist import TeamAllowList
    from bot.approvals.rules import Rule

    await start_worker(approval_policy=policy_file(tmp_path, TEAM_POLICY))
    approver = await make_approver()
    # Carol granted it on a request she could decide (the default route); terraform is the SRE's.
    await TeamAllowList(redis).add(
        [Rule.parse("Bash(terraform plan *)")], added_by="U0CAROL", route="default"
    )
    task = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "terraform plan -out x"}, context("toolu_tf"))
    )
    message = await posted(slack)
    assert "terraform plan -out x" in str(message.blocks)
    declined = [e for e in await audit(redis) if e["event"] == "team_rule_not_applied"]
    assert "not_approver" in declined[-1]["declined"]
    await cancelled(task)


async def test_a_team_rule_never_lets_the_requester_approve_their_own_call(
    tmp_path, start_worker, make_approver, slack, redis
):
    from bot.approvals.allowlist import TeamAllowList
    from bot.approvals.rules import Rule

    await start_worker(approval_policy=policy_file(tmp_path, TEAM_POLICY))
    approver = await make_approver(requested_by="U0CAROL")
    await TeamAllowList(redis).add([Rule.parse("Bash(make *)")], added_by="U0CAROL", route="default")
    task = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make release"}, context("toolu_self"))
    )
    await posted(slack)
    assert not task.done()
    assert "self" in [e for e in await audit(redis) if e["event"] == "team_rule_not_applied"][-1]["declined"]
    await cancelled(task)


async def test_a_team_rule_does_not_spend_past_the_routes_budget(
    tmp_path, start_worker, make_approver, slack, redis
):
    from bot.approvals.allowlist import TeamAllowList
    from bot.approvals.rules import Rule

    await start_worker(approval_policy=policy_file(tmp_path, TEAM_POLICY))
    approver = await make_approver()
    await TeamAllowList(redis).add([Rule.parse("Bash(gpu *)")], added_by="U0CAROL", route="gpu")
    first = await asyncio.wait_for(
        approver.can_use_tool("Bash", {"command": "gpu train"}, context("toolu_g1")), 5
    )
    assert first.behavior == "allow"  # $40 of $50
    second = asyncio.create_task(approver.can_use_tool("Bash", {"command": "gpu train"}, context("toolu_g2")))
    await posted(slack)  # $80 > $50: a person decides
    assert (
        "over_budget"
        in [e for e in await audit(redis) if e["event"] == "team_rule_not_applied"][-1]["declined"]
    )
    await cancelled(second)


async def test_only_approvers_admins_or_the_granter_remove_a_team_rule(tmp_path, start_worker, slack, redis):
    from bot.approvals.allowlist import TeamAllowList
    from bot.approvals.rules import Rule

    worker = await start_worker(approval_policy=policy_file(tmp_path, TEAM_POLICY))
    allowlist = TeamAllowList(redis)
    rule = Rule.parse("Bash(terraform plan *)")
    await allowlist.add([rule], added_by="U0SRE", route="sre-only")

    async def remove(user: str) -> None:
        listing = await worker.command(user, "rules")
        click = block_actions(
            user, Action.REMOVE_RULE.value, rule.id, response_url=slack.response_url("C0APPROVALS", "1.0")
        )
        click["message"] = {
            "type": "message",
            "text": listing["text"],
            "blocks": listing["blocks"],
            "ts": "1.0",
        }
        assert (await worker.post_signed(click)).status == 200

    await remove("U0MALLORY")
    assert [r.id for r in await allowlist.all()] == [rule.id]
    await remove("U0ADMIN")
    assert await allowlist.all() == []
    events = [(e["event"], e["actor"]) for e in await audit(redis) if e["event"].startswith("rule_")]
    assert events == [("rule_added", "U0SRE"), ("rule_removed", "U0ADMIN")]


# -- the same tool_use_id with another input is another call --------------------------------


async def test_a_reused_tool_use_id_with_another_input_is_asked_anew(
    start_worker, make_approver, slack, redis
):
    worker = await start_worker()
    approver = await make_approver()
    task = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_same")))
    await worker.click("U0ALICE", Action.APPROVE, await posted(slack))
    assert (await asyncio.wait_for(task, 5)).updated_input == {"command": "ls"}

    other = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "rm -rf /srv"}, context("toolu_same"))
    )
    message = await posted(slack, 2)
    assert "rm -rf /srv" in str(message.blocks)
    assert not other.done(), "the approval of `ls` was not handed to `rm -rf /srv`"
    mismatch = [e for e in await audit(redis) if e["event"] == "input_mismatch"]
    assert len(mismatch) == 1 and mismatch[0]["request"] == request_id_for("toolu_same")
    await worker.deny("U0ALICE", message, "no")
    assert (await asyncio.wait_for(other, 5)).behavior == "deny"

    # Another tool under the same id: its own request too.
    third = asyncio.create_task(
        approver.can_use_tool("Write", {"file_path": "/tmp/x", "content": ""}, context("toolu_same"))
    )
    await posted(slack, 3)
    assert not third.done()
    await cancelled(third)


# -- path rules match where a path leads ------------------------------------------------------


async def test_a_symlink_cannot_carry_a_write_past_a_path_rule(
    tmp_path, start_worker, make_approver, slack, redis
):
    infra = tmp_path / "infra"
    scratch = tmp_path / "scratch"
    infra.mkdir()
    scratch.mkdir()
    os.symlink(infra, scratch / "link")
    body = f"""
rules:
  - name: no-infra
    tool: Write
    file_path: "{infra}/**"
    action: deny
    message: Infra is written by CI only.
  - name: scratch
    tool: Write
    file_path: "{scratch}/**"
    action: allow
"""
    await start_worker(approval_policy=policy_file(tmp_path, body))
    approver = await make_approver()
    allowed = await asyncio.wait_for(
        approver.can_use_tool(
            "Write", {"file_path": f"{scratch}/notes.txt", "content": ""}, context("toolu_ok")
        ),
        5,
    )
    assert allowed.behavior == "allow"
    for n, path in enumerate(
        [f"{scratch}/link/main.tf", f"{scratch}/link/../infra/main.tf", f"{scratch}/link/./x/../main.tf"]
    ):
        result = await asyncio.wait_for(
            approver.can_use_tool("Write", {"file_path": path, "content": ""}, context(f"toolu_link{n}")), 5
        )
        assert result.behavior == "deny" and "Infra is written by CI only." in result.message, path


async def test_a_team_path_rule_matches_only_where_both_paths_lead(
    tmp_path, start_worker, make_approver, slack, redis
):
    from bot.approvals.allowlist import TeamAllowList
    from bot.approvals.rules import Rule

    (tmp_path / "secrets").mkdir()
    (tmp_path / "work").mkdir()
    os.symlink(tmp_path / "secrets", tmp_path / "work" / "cache")
    await start_worker()
    approver = await make_approver()
    await TeamAllowList(redis).add(
        [Rule.parse(f"Write({tmp_path}/work/**)")], added_by="U0ALICE", route="default"
    )
    fine = await asyncio.wait_for(
        approver.can_use_tool(
            "Write", {"file_path": f"{tmp_path}/work/a.txt", "content": ""}, context("toolu_w1")
        ),
        5,
    )
    assert fine.behavior == "allow"
    task = asyncio.create_task(
        approver.can_use_tool(
            "Write", {"file_path": f"{tmp_path}/work/cache/key.pem", "content": ""}, context("toolu_w2")
        )
    )
    await posted(slack)
    assert not task.done()
    await cancelled(task)


# -- replayed or outdated forms and clicks ----------------------------------------------------

TWO_OF = """
rules:
  - name: two
    tool: Bash
    approvers: [U0ALICE, U0BOB, U0CAROL]
    required_approvals: 2
"""


async def test_a_modify_form_submitted_again_changes_nothing(
    tmp_path, start_worker, make_approver, slack, store
):
    worker = await start_worker(approval_policy=policy_file(tmp_path, TWO_OF))
    approver = await make_approver()
    task = asyncio.create_task(approver.can_use_tool("Bash", {"command": "make a"}, context("toolu_rev")))
    message = await posted(slack)
    await worker.modify("U0ALICE", message, {"command": "make b"})
    view = slack.views[slack.calls_to("views.update")[-1].args["view_id"]]
    request = await store.get(request_id_for("toolu_rev"))
    assert request.revision == 1 and [v.user for v in request.votes] == ["U0ALICE"]

    # The same form again (re-signed: the signature check cannot tell it apart from a new one).
    payload = view_submission(
        "U0ALICE",
        Modal.MODIFY.value,
        view["private_metadata"],
        {edit_block("command"): {"value": "make b"}},
        view=view,
    )
    body, headers = signed_form(payload, SIGNING_SECRET)
    async with worker.session.post(f"{worker.url}/slack/events", data=body, headers=headers) as response:
        ack = json.loads(await response.text() or "{}")
    assert ack.get("response_action") == "update" and "changed after you looked" in str(ack["view"])
    request = await store.get(request_id_for("toolu_rev"))
    assert request.revision == 1 and [v.user for v in request.votes] == ["U0ALICE"]
    await cancelled(task)


async def test_an_approve_click_that_names_no_revision_is_refused(start_worker, make_approver, slack, store):
    worker = await start_worker()
    approver = await make_approver()
    task = asyncio.create_task(approver.can_use_tool("Bash", {"command": "make x"}, context("toolu_norev")))
    message = await posted(slack)
    request_id = request_id_for("toolu_norev")
    for block_id in ("actions", f"approval.actions.{request_id}", f"approval.actions.{request_id}.x"):
        click = block_actions("U0ALICE", Action.APPROVE.value, request_id, block_id=block_id)
        assert (await worker.post_signed(click)).status == 200
    await asyncio.sleep(0.2)
    assert (await store.get(request_id)).state is State.PENDING
    assert not task.done()
    await worker.click("U0ALICE", Action.APPROVE, message)
    assert (await asyncio.wait_for(task, 5)).behavior == "allow"


async def test_a_store_level_person_approval_without_a_revision_is_stale(store: RequestStore):
    created, _ = await store.create(NewRequest(id="2" * 24, tool_name="Bash", tool_input={"command": "x"}))
    transition = await store.decide(created.id, Decision(State.APPROVED, actor="U0ALICE"))
    assert transition.refused is not None and transition.refused.value == "stale"


async def test_a_deadline_entry_that_is_not_ours_does_not_hold_up_expiry(start_worker, make_approver, redis):
    foreign = {"x:esc:not-a-number", f"{request_id_for('toolu_other')}"}
    # Not ours: a step that is not a number, and a request of another shard than the set's.
    await redis.zadd(keys.deadlines(keys.shard_of("x")), {"x:esc:not-a-number": 1})
    other_shard = (keys.shard_of(request_id_for("toolu_other")) + 1) % keys.SHARDS
    await redis.zadd(keys.deadlines(other_shard), {request_id_for("toolu_other"): 1})
    await start_worker()
    approver = await make_approver(timeout=1)
    task = asyncio.create_task(approver.can_use_tool("Bash", {"command": "make x"}, context("toolu_exp")))
    async with asyncio.timeout(5):
        while foreign & {
            m.decode() for s in keys.ALL_SHARDS for m in await redis.zrange(keys.deadlines(s), 0, -1)
        }:
            await asyncio.sleep(0.05)
    assert (await asyncio.wait_for(task, 5)).behavior == "deny"
    # The sweep expired it (audited as the system's), not only the agent's own clock.
    expired = [e for e in await audit(redis) if e["event"] == "expired"]
    assert len(expired) == 1


@pytest.mark.slow
@pytest.mark.parametrize("timeout", ["nan", "inf", "-1", "1e12"])
def test_the_gate_refuses_a_timeout_out_of_range_and_blocks(timeout, redis_server, tmp_path):
    import subprocess
    import sys

    hook_input = {
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "touch p"},
        "tool_use_id": "toolu_t",
        "session_id": "s",
        "cwd": str(tmp_path),
    }
    env = {**os.environ, "REDIS_URL": redis_server.url}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "gate", "--timeout", timeout],
        input=json.dumps(hook_input),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2, done
    assert "--timeout" in done.stderr and "The tool was not run." in done.stderr


@pytest.mark.slow
async def test_a_recorded_post_whose_answer_was_lost_keeps_its_card(
    start_worker, make_approver, slack, redis_server, store
):
    """MARK_POSTED ran but its reply never came back: the card Redis points to stays,
    and its thread is linked (the look again finds it recorded)."""
    import hashlib

    from redis.asyncio import Redis

    from bot.approvals.lua.post import MARK_POSTED
    from tests.fakes.redis_server import ReplyLosingProxy

    # The script is in Redis's cache first, as after any earlier post: otherwise the lost
    # reply is EVALSHA's NOSCRIPT, MARK_POSTED never runs, and the test depends on test order.
    direct = Redis.from_url(redis_server.url)
    await direct.script_load(MARK_POSTED)
    await direct.aclose()
    proxy = ReplyLosingProxy(redis_server.port)
    await proxy.start()
    try:
        proxy.lose_reply_to(hashlib.sha1(MARK_POSTED.encode()).hexdigest().encode())
        worker = await start_worker(redis_url=proxy.url, job_retry_after=0.3)
        approver = await make_approver()
        task = asyncio.create_task(
            approver.can_use_tool("Bash", {"command": "make ship"}, context("toolu_lost"))
        )
        message = await posted(slack)
        async with asyncio.timeout(15):  # the worker's read timeout, then its look again
            while not proxy.lost:
                await asyncio.sleep(0.05)
            await asyncio.sleep(6)
        assert slack.calls_to("chat.delete") == [] and len(slack.roots()) == 1
        assert await store.request_for_thread(message.channel, message.ts) == request_id_for("toolu_lost")
        await worker.click("U0ALICE", Action.APPROVE, message)
        assert (await asyncio.wait_for(task, 5)).behavior == "allow"
        await slack.wait_for(lambda: slack.message(message.channel, message.ts).edits >= 1)
    finally:
        await proxy.close()


async def test_a_reused_tool_use_id_after_its_symlink_moved_is_asked_anew(
    tmp_path, start_worker, make_approver, slack
):
    infra, scratch = tmp_path / "infra", tmp_path / "scratch"
    infra.mkdir()
    (scratch / "real").mkdir(parents=True)
    os.symlink(scratch / "real", scratch / "link")
    body = f"""
rules:
  - {{name: no-infra, tool: Write, file_path: "{infra}/**", action: deny, message: Infra is written by CI only.}}
  - {{name: scratch, tool: Write, file_path: "{scratch}/**", action: allow}}
"""
    await start_worker(approval_policy=policy_file(tmp_path, body))
    approver = await make_approver()
    call = {"file_path": f"{scratch}/link/main.tf", "content": "x"}
    assert (
        await asyncio.wait_for(approver.can_use_tool("Write", call, context("toolu_moved")), 5)
    ).behavior == "allow"
    os.remove(scratch / "link")
    os.symlink(infra, scratch / "link")  # the same input now lands in infra/
    again = await asyncio.wait_for(approver.can_use_tool("Write", call, context("toolu_moved")), 5)
    assert again.behavior == "deny" and "Infra is written by CI only." in again.message


async def test_waiting_on_a_reused_tool_use_id_waits_for_its_newest_call(make_approver, store):
    approver = await make_approver()
    first = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_dup")))
    request_id = request_id_for("toolu_dup")
    async with asyncio.timeout(5):
        while await store.get(request_id) is None:
            await asyncio.sleep(0.02)
    await store.decide(request_id, Decision(State.APPROVED, actor="U0ALICE", revision=0))
    await first
    # The same id with another input (what a deferred run would replay on resume):
    second = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "rm -rf /srv"}, context("toolu_dup"))
    )
    async with asyncio.timeout(5):
        while await store.latest(request_id) == request_id:
            await asyncio.sleep(0.02)
    waiting = asyncio.create_task(approver.wait_for_decision("toolu_dup"))
    await asyncio.sleep(0.3)
    assert not waiting.done(), "the approval of `ls` is not the decision on `rm -rf /srv`"
    await cancelled(second)
    ended = await asyncio.wait_for(waiting, 5)
    assert ended.state is State.CANCELLED and ended.tool_input == {"command": "rm -rf /srv"}

"""Every shape Slack sends, through signed requests to ``/slack/events``, and the modals
the buttons open: a trigger spent once, a refusal before a form, titles that say what happened.

Each answer must be one Slack counts as handled (2xx) and decide only what it should.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlencode

from bot import text
from bot.approvals import keys
from bot.approvals.allowlist import TeamAllowList
from bot.approvals.model import State
from bot.approvals.rules import Rule
from bot.approvals.store import RequestStore
from bot.slack.ids import SLASH_COMMAND, Action, Field, Modal
from tests.conftest import cancelled, context, policy_file, posted
from tests.fakes.bot_settings import CHANNEL, SIGNING_SECRET
from tests.fakes.slack_block_actions import block_actions
from tests.fakes.slack_event_payloads import event_callback, message_event, retry_headers
from tests.fakes.slack_signing import sign, signed_form, signed_json
from tests.fakes.slack_slash_commands import slash_command
from tests.fakes.slack_view_payloads import view_closed, view_submission
from tests.fakes.worker import _button_value
from tests.test_identity import GRID, _org_wide

ALICE_DECIDES = "default:\n  approvers: [U0ALICE]\n"
QUESTION = {
    "questions": [
        {
            "question": "Which region?",
            "header": "Region",
            "multiSelect": False,
            "options": [{"label": "eu", "description": "Europe"}, {"label": "us", "description": "US"}],
        }
    ]
}


async def _ask(
    make_approver, slack, tool_use_id: str, tool: str = "Bash", tool_input: dict | None = None, count: int = 1
):
    approver = await make_approver()
    task = asyncio.create_task(
        approver.can_use_tool(tool, tool_input or {"command": "make deploy"}, context(tool_use_id))
    )
    return task, await posted(slack, count)


def _click(message, user: str, action: Action, *, shown: dict | None = None, **extra) -> dict:
    """A click on the message as ``shown`` then (default: as it is now)."""
    shown = shown or message.as_dict()
    value = next(
        e["value"]
        for b in shown["blocks"]
        for e in b.get("elements", [])
        if e.get("action_id") == action.value
    )
    return block_actions(
        user, action.value, value, message=shown, channel=message.channel, user_name=user.lower(), **extra
    )


async def _modal_after(worker, slack, payload: dict) -> dict:
    """Post the click; return the view its trigger opened, as Slack shows it once the listener is done."""
    opens, updates = len(slack.calls_to("views.open")), len(slack.calls_to("views.update"))
    assert (await worker.post_signed(payload)).status == 200
    opened = await slack.wait_for_call("views.open", count=opens + 1)
    await slack.wait_for_call("views.update", count=updates + 1)
    assert len(slack.calls_to("views.open")) == opens + 1  # one trigger, one views.open
    return slack.views[opened.response["view"]["id"]]


def _has_input(view: dict) -> bool:
    return any(block.get("type") == "input" for block in view["blocks"])


async def _state(redis, request_id: str) -> str:
    return (await redis.hget(keys.request(request_id), "state")).decode()


# -- modals (item 13) ----------------------------------------------------------


async def test_someone_who_may_not_deny_is_refused_before_the_reason_form(
    start_worker, make_approver, slack, redis, tmp_path
):
    worker = await start_worker(approval_policy=policy_file(tmp_path, ALICE_DECIDES))
    task, message = await _ask(make_approver, slack, "toolu_shape_deny_refused")

    refused = await _modal_after(worker, slack, _click(message, "U0MALLORY", Action.DENY))
    assert refused["title"]["text"] == text.refusals.NOT_ALLOWED_TITLE
    assert not _has_input(refused) and refused.get("submit") is None  # nothing to type a reason into

    form = await _modal_after(worker, slack, _click(message, "U0ALICE", Action.DENY))
    assert (form["title"]["text"], _has_input(form)) == (text.modals.DENY_MODAL_TITLE, True)
    # Mallory submits a copy of Alice's form anyway: refused, in a notice titled so.
    replay = view_submission(
        "U0MALLORY",
        Modal.DENY.value,
        form["private_metadata"],
        {Field.REASON_BLOCK.value: {Field.REASON_INPUT.value: "no"}},
        view=form,
    )
    body, headers = signed_form(replay, SIGNING_SECRET)
    async with worker.session.post(f"{worker.url}/slack/events", data=body, headers=headers) as response:
        answer = json.loads(await response.text())
    assert (
        answer["response_action"] == "update"
        and answer["view"]["title"]["text"] == text.refusals.NOT_ALLOWED_TITLE
    )
    assert not task.done()
    await cancelled(task)


async def test_decline_on_a_question_opens_a_decline_form(start_worker, make_approver, slack):
    worker = await start_worker()
    task, message = await _ask(make_approver, slack, "toolu_shape_decline", "AskUserQuestion", QUESTION)
    form = await _modal_after(worker, slack, _click(message, "U0ALICE", Action.DENY))
    assert (form["title"]["text"], form["submit"]["text"]) == (
        text.modals.DECLINE_MODAL_TITLE,
        text.modals.DECLINE_MODAL_SUBMIT,
    )
    assert "Deny" not in json.dumps(form)
    await cancelled(task)


async def test_a_refusal_or_an_ended_request_is_not_titled_modify_and_approve(
    start_worker, make_approver, slack, tmp_path
):
    worker = await start_worker(approval_policy=policy_file(tmp_path, ALICE_DECIDES))
    task, message = await _ask(make_approver, slack, "toolu_shape_titles")
    before = message.as_dict()

    refused = await _modal_after(worker, slack, _click(message, "U0MALLORY", Action.MODIFY))
    assert refused["title"]["text"] == text.refusals.NOT_ALLOWED_TITLE

    await worker.click("U0ALICE", Action.APPROVE, message)
    assert (await asyncio.wait_for(task, 5)).behavior == "allow"
    for action in (Action.MODIFY, Action.DENY):  # a click on the message as it showed before
        ended = await _modal_after(worker, slack, _click(message, "U0ALICE", action, shown=before))
        assert ended["title"]["text"] == text.refusals.ENDED_TITLE and not _has_input(ended)


# -- /approvals and App Home (item 19) -------------------------------------------


async def test_the_lists_never_offer_a_request_the_reader_can_no_longer_change(
    start_worker, make_approver, slack, redis, tmp_path
):
    worker = await start_worker(
        approval_policy=policy_file(tmp_path, "default:\n  required_approvals: 2\n"), sweep_interval=3600
    )
    voted_task, voted = await _ask(
        make_approver, slack, "toolu_shape_list_voted", tool_input={"command": "make voted"}
    )
    due_task, _due = await _ask(
        make_approver, slack, "toolu_shape_list_due", tool_input={"command": "make due"}, count=2
    )

    async def listed(user: str) -> str:
        return json.dumps((await worker.command(user))["blocks"])

    async def home(user: str) -> str:
        opened = {"type": "app_home_opened", "user": user, "channel": "D" + user[1:], "tab": "home"}
        assert await worker.event(event_callback(opened)) == 200
        return json.dumps(slack.home_views[user]["blocks"])

    assert "make voted" in await listed("U0CAROL") and "make due" in await listed("U0CAROL")

    # Carol's vote counts towards 2 of 2: nothing more she can do there.
    await worker.click("U0CAROL", Action.APPROVE, voted)
    await slack.wait_for(lambda: "1 of 2" in json.dumps(slack.message(voted.channel, voted.ts).blocks))
    # The other one is past its expiry, and the sweep (hourly here) has not ended it yet.
    store = RequestStore(redis)
    due_id = next(
        r.id for r in await store.many(await store.pending()) if r and r.tool_input["command"] == "make due"
    )
    await redis.hset(keys.request(due_id), "timeout_at", repr(time.time() - 1))
    assert await _state(redis, due_id) == State.PENDING.value

    for shown in (await listed("U0CAROL"), await home("U0CAROL")):
        assert "make voted" not in shown and "make due" not in shown and "Open the request" not in shown
    dave = await listed("U0DAVE")
    assert "make voted" in dave and "make due" not in dave  # Dave can still give the second approval
    await cancelled(voted_task, due_task)


# -- every shape Slack sends (item 11) --------------------------------------------


async def test_a_click_on_an_ephemeral_listing_has_no_message_and_works(start_worker, slack, redis):
    worker = await start_worker()
    rule = Rule.parse("Bash(make test *)")
    await TeamAllowList(redis).add([rule], added_by="U0BOB")
    listing = await worker.command("U0BOB", "rules")
    shown = slack.show_ephemeral(CHANNEL, "U0BOB", listing["text"], listing["blocks"])

    click = block_actions(
        "U0BOB",
        Action.REMOVE_RULE.value,
        rule.id,
        channel=CHANNEL,
        message_ts=shown.message_ts,
        ephemeral=True,
        response_url=slack.response_url(CHANNEL, shown.message_ts),
    )
    assert "message" not in click and click["container"]["is_ephemeral"] is True
    assert (await worker.post_signed(click)).status == 200
    await slack.wait_for_call("response_url")
    assert slack.calls_to("response_url")[0].status == 200
    assert "Removed `Bash(make test *)`" in slack.ephemerals[-1].text
    assert await TeamAllowList(redis).all() == []


async def test_an_org_wide_install_gets_team_null_and_each_request_is_attributed(
    start_worker, make_approver, slack, redis, monkeypatch
):
    _org_wide(slack, monkeypatch, ["T0GRIDA", "T0GRIDB"])
    worker = await start_worker()
    task, message = await _ask(make_approver, slack, "toolu_shape_org_wide")
    request_id = _button_value(message, Action.APPROVE)

    # /approvals from one of the organisation's workspaces: the link is into the organisation's own URL.
    body = urlencode(
        slash_command("U0BEA", SLASH_COMMAND, team_id="T0GRIDB", enterprise_id=GRID, org_wide=True)
    ).encode()
    headers = {**sign(body, SIGNING_SECRET), "Content-Type": "application/x-www-form-urlencoded"}
    async with worker.session.post(f"{worker.url}/slack/events", data=body, headers=headers) as response:
        assert response.status == 200
        listing = json.dumps((await response.json())["blocks"])
    assert f"https://grid.enterprise.slack.com/archives/{message.channel}/p" in listing

    # A thread reply delivered to the org-wide install: authorizations name no workspace.
    reply = message_event(
        message.channel, "1700000090.000001", "U0BEA", "ship it", thread_ts=message.ts, team="T0GRIDB"
    )
    assert (
        await worker.event(event_callback(reply, team_id="T0GRIDB", enterprise_id=GRID, org_wide=True)) == 200
    )
    store = RequestStore(redis)
    await asyncio.wait_for(_until(lambda: store.discussion(request_id)), 5)

    # The deny form, submitted with team null: decided by Bea, from the organisation.
    form_view = await _modal_after(
        worker, slack, _click(message, "U0BEA", Action.DENY, user_team="T0GRIDB", team=None, enterprise=GRID)
    )
    submitted = view_submission(
        "U0BEA",
        Modal.DENY.value,
        form_view["private_metadata"],
        {Field.REASON_BLOCK.value: {Field.REASON_INPUT.value: "not today"}},
        view=form_view,
        user_team="T0GRIDB",
        team=None,
        enterprise=GRID,
    )
    assert "channel" not in submitted
    assert (await worker.post_signed(submitted)).status == 200
    result = await asyncio.wait_for(task, 5)
    assert result.behavior == "deny" and "not today" in result.message
    assert (await redis.hget(keys.request(request_id), "decided_by")).decode() == "U0BEA"


async def _until(read) -> None:
    while not await read():
        await asyncio.sleep(0.02)


async def test_a_closed_modal_is_acknowledged_and_decides_nothing(start_worker, make_approver, slack, redis):
    worker = await start_worker()
    task, message = await _ask(make_approver, slack, "toolu_shape_closed")
    form = await _modal_after(worker, slack, _click(message, "U0ALICE", Action.DENY))
    assert (await worker.post_signed(view_closed("U0ALICE", form))).status == 200
    assert await _state(redis, _button_value(message, Action.APPROVE)) == State.PENDING.value
    assert not task.done()
    await cancelled(task)


async def test_slacks_retries_of_an_event_are_answered_200_and_handled_once(
    start_worker, make_approver, slack, redis
):
    worker = await start_worker()
    task, message = await _ask(make_approver, slack, "toolu_shape_retry")
    request_id = _button_value(message, Action.APPROVE)
    reply = event_callback(
        message_event(message.channel, "1700000091.000001", "U0ALICE", "wait", thread_ts=message.ts)
    )
    raw, headers = signed_json(reply, SIGNING_SECRET)
    async with worker.session.post(f"{worker.url}/slack/events", data=raw, headers=headers) as response:
        assert response.status == 200
    await redis.delete(keys.thread(request_id))  # so a second handling would show
    for attempt in (1, 2, 3):
        # Each retry is signed anew (a new timestamp), so it is not a replay of the first request.
        raw, headers = signed_json(reply, SIGNING_SECRET, timestamp=int(time.time()) - attempt)
        async with worker.session.post(
            f"{worker.url}/slack/events", data=raw, headers={**headers, **retry_headers(attempt)}
        ) as response:
            assert response.status == 200
    assert await RequestStore(redis).discussion(request_id) == []
    await cancelled(task)


async def test_probes_and_handshakes_get_200(start_worker):
    worker = await start_worker()
    async with worker.session.post(
        f"{worker.url}/slack/events",
        data=b"ssl_check=1&token=legacy",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ) as response:
        assert response.status == 200
    raw, headers = signed_json(
        {"token": "legacy", "challenge": "c-42", "type": "url_verification"}, SIGNING_SECRET
    )
    async with worker.session.post(f"{worker.url}/slack/events", data=raw, headers=headers) as response:
        assert response.status == 200 and "c-42" in await response.text()
    limited = {
        "token": "legacy",
        "type": "app_rate_limited",
        "team_id": "T0TEAM",
        "minute_rate_limited": int(time.time()) // 60 * 60,
        "api_app_id": "A0APP",
    }
    raw, headers = signed_json(limited, SIGNING_SECRET)
    async with worker.session.post(f"{worker.url}/slack/events", data=raw, headers=headers) as response:
        assert response.status == 200

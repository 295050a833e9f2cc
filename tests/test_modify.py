"""Modify: edit a tool input in Slack, then approve exactly what was submitted."""

from __future__ import annotations

import asyncio

from bot.approvals.edits import WHOLE_INPUT
from bot.slack.ids import Action, edit_block
from tests.audit_streams import audit_stream
from tests.conftest import cancelled, context, posted


def _shown(message) -> str:
    return "\n".join(str(b) for b in message.blocks)


async def _ask(make_approver, slack, tool_name, tool_input, tool_use_id):
    approver = await make_approver()
    task = asyncio.create_task(approver.can_use_tool(tool_name, tool_input, context(tool_use_id)))
    return task, await posted(slack)


async def test_modified_bash_command_is_what_the_agent_gets_and_slack_shows_the_change(
    start_worker, make_approver, slack, redis
):
    worker = await start_worker()
    original = {"command": "rm -rf /var/www", "description": "Clean up", "timeout": 120000}
    task, message = await _ask(make_approver, slack, "Bash", original, "toolu_mod")

    ack = await worker.modify(
        "U_ALICE",
        message,
        {"command": "rm -rf /var/www/cache", "description": "Clean the cache"},
        name="alice",
    )
    assert ack == {}  # the modal closes

    result = await asyncio.wait_for(task, 5)
    assert result.behavior == "allow"
    assert result.updated_input == {
        "command": "rm -rf /var/www/cache",
        "description": "Clean the cache",
        "timeout": 120000,
    }

    await slack.wait_for(lambda: message.edits >= 1)
    shown = _shown(slack.message(message.channel, message.ts))
    assert "Changed by <@U_ALICE>, approved by <@U_ALICE>" in shown
    assert "rm -rf /var/www```" in shown and "rm -rf /var/www/cache" in shown  # before and after
    events = [f[b"event"] for _id, f in await audit_stream(redis)]
    assert b"modified" in events and b"approved" not in events


async def test_the_modal_refuses_invalid_edits_and_decides_nothing(start_worker, make_approver, slack, store):
    worker = await start_worker()
    task, message = await _ask(make_approver, slack, "Bash", {"command": "make deploy"}, "toolu_mod_invalid")

    ack = await worker.modify("U_ALICE", message, {"command": "   ", "description": ""})
    assert ack["response_action"] == "errors"
    assert ack["errors"] == {edit_block("command"): "Command is required."}
    await asyncio.sleep(0.1)
    assert not task.done()

    await worker.modify("U_ALICE", message, {"command": "make deploy-staging", "description": ""})
    assert (await asyncio.wait_for(task, 5)).updated_input["command"] == "make deploy-staging"


async def test_other_tools_are_edited_as_one_json_object(start_worker, make_approver, slack):
    worker = await start_worker()
    original = {"customer": "cus_1", "amount_usd": 120}
    task, message = await _ask(make_approver, slack, "mcp__billing__charge", original, "toolu_mod_json")

    for bad, why in [
        ("{not json", "Not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"customer": "cus_1"}', "Missing key: amount_usd"),
    ]:
        ack = await worker.modify("U_ALICE", message, {WHOLE_INPUT: bad})
        assert why in ack["errors"][edit_block(WHOLE_INPUT)], bad
    assert not task.done()

    await worker.modify("U_ALICE", message, {WHOLE_INPUT: '{"customer": "cus_1", "amount_usd": 12}'})
    assert (await asyncio.wait_for(task, 5)).updated_input == {"customer": "cus_1", "amount_usd": 12}


async def test_a_field_too_large_for_slack_is_kept_not_truncated(start_worker, make_approver, slack):
    worker = await start_worker()
    content = "x" * 5000
    task, message = await _ask(
        make_approver, slack, "Write", {"file_path": "/srv/a.txt", "content": content}, "toolu_mod_big"
    )

    await worker.modify("U_ALICE", message, {"file_path": "/srv/b.txt"})
    view = slack.views[slack.calls_to("views.update")[-1].args["view_id"]]
    assert "too large to edit here (5,000 characters" in str(view["blocks"])
    assert edit_block("content") not in {b.get("block_id") for b in view["blocks"]}
    result = await asyncio.wait_for(task, 5)
    assert result.updated_input == {"file_path": "/srv/b.txt", "content": content}


async def test_a_submission_after_the_request_ended_changes_nothing(
    start_worker, make_approver, slack, store
):
    worker = await start_worker()
    task, message = await _ask(make_approver, slack, "Bash", {"command": "make deploy"}, "toolu_mod_late")
    await worker.click("U_ALICE", Action.MODIFY, message)
    update = await slack.wait_for_call("views.update")
    modal = slack.views[update.args["view_id"]]
    # Someone else approves while the modal is open.
    await worker.click("U_BOB", Action.APPROVE, message)
    result = await asyncio.wait_for(task, 5)
    assert result.updated_input == {"command": "make deploy"}

    from bot.slack.ids import EDIT_INPUT, Modal
    from tests.fakes.slack_signing import signed_form
    from tests.fakes.slack_view_payloads import view_submission

    payload = view_submission(
        "U_ALICE",
        Modal.MODIFY.value,
        modal["private_metadata"],
        {edit_block("command"): {EDIT_INPUT: "make destroy"}},
        view=modal,
    )
    body, headers = signed_form(payload, "test-signing-secret")
    async with worker.session.post(f"{worker.url}/slack/events", data=body, headers=headers) as response:
        ack = await response.json()
    assert ack["response_action"] == "update"
    assert "already approved by <@U_BOB>" in str(ack["view"]["blocks"])
    request = await store.get(modal["private_metadata"].partition(".")[0])
    assert request.updated_input is None and request.decided_by == "U_BOB"
    await cancelled(task)

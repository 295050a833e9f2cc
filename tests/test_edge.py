"""``/slack/events`` before Bolt: replays change nothing, signatures are checked strictly,
a signed but malformed request is a 400 (never a 500), slow or huge bodies are cut off."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.approvals import keys
from bot.approvals.model import request_id_for
from bot.approvals.store import RequestStore
from bot.slack.ids import EDIT_INPUT, SLASH_COMMAND, Action, Field, Modal, edit_block
from tests.audit_streams import audit_length, audit_stream
from tests.conftest import cancelled, context, policy_file, posted
from tests.fakes.bot_settings import CHANNEL, SIGNING_SECRET, settings_for
from tests.fakes.redis_server import free_port
from tests.fakes.slack_block_actions import block_actions
from tests.fakes.slack_event_payloads import event_callback, message_event
from tests.fakes.slack_signing import sign, signed_form, signed_json
from tests.fakes.slack_slash_commands import slash_command
from tests.fakes.slack_view_payloads import view_submission
from tests.fakes.worker import _button_value, click_payload

EVENTS = "/slack/events"
_DECISIONS = {b"approved", b"always_allowed", b"modified", b"vote", b"modified_vote", b"answered", b"denied"}


async def _decisions(redis) -> list[bytes]:
    return [f[b"event"] for _id, f in await audit_stream(redis) if f[b"event"] in _DECISIONS]


async def _post(worker, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with worker.session.post(f"{worker.url}{EVENTS}", data=body, headers=headers) as response:
        return response.status, await response.text()


async def _modify_submission(worker, slack, user: str, message, command: str) -> tuple[bytes, dict[str, str]]:
    """Open Modify as ``user`` and sign the submission with ``command`` (not sent yet)."""
    updates = len(slack.calls_to("views.update"))
    await worker.click(user, Action.MODIFY, message)
    update = await slack.wait_for_call("views.update", count=updates + 1)
    view = slack.views[update.args["view_id"]]
    payload = view_submission(
        user,
        Modal.MODIFY.value,
        view["private_metadata"],
        {edit_block("command"): {EDIT_INPUT: command}},
        view=view,
    )
    return signed_form(payload, SIGNING_SECRET)


# -- replays -----------------------------------------------------------------


async def test_a_replayed_modify_changes_nothing_and_the_votes_stand(
    start_worker, make_approver, slack, redis, tmp_path
):
    worker = await start_worker(approval_policy=policy_file(tmp_path, "default:\n  required_approvals: 3\n"))
    other = await start_worker(approval_policy=policy_file(tmp_path, "default:\n  required_approvals: 3\n"))
    approver = await make_approver()
    task = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_replay_mod"))
    )
    message = await posted(slack)

    body, headers = await _modify_submission(worker, slack, "U0BOB", message, "make deploy-staging")
    assert (await _post(worker, body, headers))[0] == 200  # Bob's edit: his approval, 1 of 3
    await slack.wait_for(lambda: message.edits >= 1)
    await worker.click("U0CAROL", Action.APPROVE, slack.message(message.channel, message.ts))  # 2 of 3
    await slack.wait_for(lambda: message.edits >= 2)
    audit = await audit_length(redis)

    # Someone who saw Bob's request sends it again, to either worker, within Slack's 5 minutes.
    assert (await _post(worker, body, headers))[0] == 409
    assert (await _post(other, body, headers))[0] == 409
    assert await audit_length(redis) == audit

    await worker.click("U0DAVE", Action.APPROVE, slack.message(message.channel, message.ts))  # 3 of 3
    result = await asyncio.wait_for(task, 5)
    assert result.behavior == "allow" and result.updated_input == {"command": "make deploy-staging"}


async def test_a_replayed_click_is_refused_and_a_replayed_event_is_answered_once(
    start_worker, make_approver, slack, redis
):
    worker = await start_worker()
    approver = await make_approver()
    task = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_replay_click"))
    )
    message = await posted(slack)

    reply = message_event(message.channel, "1700000077.000001", "U0ALICE", "looks fine", thread_ts=message.ts)
    raw, event_headers = signed_json(event_callback(reply), SIGNING_SECRET)
    assert (await _post(worker, raw, event_headers))[0] == 200
    # Slack retries events it thinks failed: a replay is acknowledged (no retry storm), not handled again.
    assert await _post(worker, raw, event_headers) == (200, "")

    body, headers = signed_form(click_payload(message, "U0ALICE"), SIGNING_SECRET)
    assert (await _post(worker, body, headers))[0] == 200
    assert (await asyncio.wait_for(task, 5)).behavior == "allow"
    status, answer = await _post(worker, body, headers)
    assert status == 409 and "already handled" in answer
    assert await _decisions(redis) == [b"approved"]


async def test_the_signature_check_accepts_only_slacks_own_header_shapes(
    start_worker, make_approver, slack, redis
):
    worker = await start_worker()
    approver = await make_approver()
    task = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_headers"))
    )
    message = await posted(slack)
    body, headers = signed_form(click_payload(message, "U0ALICE"), SIGNING_SECRET)
    forged = {**headers, "X-Slack-Signature": "v0=" + "0" * 64}

    async def status(extra: list[tuple[str, str]], base: dict[str, str]) -> int:
        sent = [(k, v) for k, v in base.items() if k not in {name for name, _ in extra}] + extra
        async with worker.session.post(f"{worker.url}{EVENTS}", data=body, headers=sent) as response:
            return response.status

    signature, timestamp = headers["X-Slack-Signature"], headers["X-Slack-Request-Timestamp"]
    cases = {
        "two signatures, the valid one first": [
            ("X-Slack-Signature", signature),
            ("X-Slack-Signature", forged["X-Slack-Signature"]),
        ],
        "two signatures, the valid one last": [
            ("X-Slack-Signature", forged["X-Slack-Signature"]),
            ("X-Slack-Signature", signature),
        ],
        "two timestamps": [
            ("X-Slack-Request-Timestamp", timestamp),
            ("X-Slack-Request-Timestamp", timestamp),
        ],
        "a timestamp that is not a number": [("X-Slack-Request-Timestamp", "soon")],
        "a signature that is not ASCII": [("X-Slack-Signature", "v0=é" + signature[4:])],
        "the signature in upper case": [("X-Slack-Signature", signature.upper())],
    }
    for why, extra in cases.items():
        assert await status(extra, headers) == 401, why
    assert await _decisions(redis) == []
    assert not task.done()
    await cancelled(task)


async def test_when_redis_cannot_say_whether_a_request_was_seen_it_is_not_handled(start_worker, slack):
    worker = await start_worker(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    body, headers = signed_form(block_actions("U0ALICE", Action.APPROVE.value, "0" * 24), SIGNING_SECRET)
    assert (await _post(worker, body, headers))[0] == 503


# -- malformed ---------------------------------------------------------------


async def test_a_view_submission_without_a_view_type_is_a_400_with_a_log_line(
    start_worker, make_approver, slack, redis, caplog
):
    worker = await start_worker()
    approver = await make_approver()
    task = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_view_type"))
    )
    message = await posted(slack)
    await worker.click("U0ALICE", Action.DENY, message)
    view = slack.views[slack.calls_to("views.open")[-1].response["view"]["id"]]
    payload = view_submission(
        "U0ALICE",
        Modal.DENY.value,
        view["private_metadata"],
        {Field.REASON_BLOCK.value: {Field.REASON_INPUT.value: "no"}},
        view=view,
    )
    del payload["view"]["type"]
    with caplog.at_level(logging.WARNING, logger="bot"):
        status, _ = await _post(worker, *signed_form(payload, SIGNING_SECRET))
    assert status == 400
    assert any("malformed" in r.getMessage() and "view.type" in r.getMessage() for r in caplog.records)
    assert await _decisions(redis) == []
    assert not task.done()
    await cancelled(task)


async def test_deeply_nested_json_is_a_400(start_worker):
    worker = await start_worker()
    raw = b'{"type": "event_callback", "event": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    headers = {**sign(raw, SIGNING_SECRET), "Content-Type": "application/json"}
    assert (await _post(worker, raw, headers))[0] == 400


_CORRUPT: tuple[Any, ...] = (None, 0, -1, 1.5, True, "", "x", [], [1], {}, {"id": 1})
"""What each field is replaced with in turn (besides being removed)."""


def _variants(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """(path, how) for every way to break one field of ``value``: remove it or replace it."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*path, key), "remove"
            for bad in _CORRUPT:
                if bad != child or type(bad) is not type(child):
                    yield (*path, key), ("set", bad)
            yield from _variants(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield (*path, index), "remove"
            yield (*path, index), ("set", None)
            yield from _variants(child, (*path, index))


def _broken(payload: Any, path: tuple, how: Any) -> Any:
    broken = copy.deepcopy(payload)
    parent = broken
    for step in path[:-1]:
        parent = parent[step]
    if how == "remove":
        del parent[path[-1]]
    else:
        parent[path[-1]] = how[1]
    return broken


async def _state(redis, request_id: str) -> dict[str, Any]:
    """What a decision or a recorded reply would change (not the jobs stream, not caches)."""
    return {
        "request": await redis.hgetall(keys.request(request_id)),
        "votes": await redis.hgetall(keys.votes(request_id)),
        "thread": await redis.hgetall(keys.thread(request_id)),
        "audit": await audit_length(redis),
        "pending": await RequestStore(redis).pending(),
        "rules": await redis.hgetall(keys.TEAM_RULES),
    }


@pytest.mark.slow
async def test_signed_payloads_broken_in_every_field_never_get_a_500_and_change_nothing(
    start_worker, make_approver, slack, redis, tmp_path
):
    # Nobody in these payloads may decide: any that got through would still change nothing.
    worker = await start_worker(approval_policy=policy_file(tmp_path, "default:\n  approvers: [U0BOSS]\n"))
    approver = await make_approver()
    task = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_fuzz"))
    )
    message = await posted(slack)
    request_id = request_id_for("toolu_fuzz")
    value = _button_value(message, Action.APPROVE)
    await worker.click("U0ALICE", Action.DENY, message)
    modal = slack.views[slack.calls_to("views.open")[-1].response["view"]["id"]]
    for key in ("blocks", "title", "submit", "close"):
        modal.pop(key, None)  # keep the payload small: blocks are not read from submissions
    before = await _state(redis, request_id)

    deny = view_submission("U0MALLORY", Modal.DENY.value, modal["private_metadata"], {}, view=modal)
    deny["view"]["state"] = {
        "values": {
            Field.REASON_BLOCK.value: {Field.REASON_INPUT.value: {"type": "plain_text_input", "value": "no"}}
        }
    }
    closed = {**copy.deepcopy(deny), "type": "view_closed", "is_cleared": False}
    interactions = {
        "approve": block_actions("U0MALLORY", Action.APPROVE.value, value),
        "deny": block_actions("U0MALLORY", Action.DENY.value, value),
        "view_submission": deny,
        "view_closed": closed,
    }
    events = {
        "message": event_callback(
            message_event(CHANNEL, "1700000088.000001", "U0MALLORY", "hi", thread_ts="1690000000.000001")
        ),
        "url_verification": {"token": "t", "challenge": "c-1", "type": "url_verification"},
    }
    command = slash_command("U0MALLORY", SLASH_COMMAND, "rules")

    statuses: dict[int, int] = {}
    failures: list[str] = []

    async def send(body: bytes, content_type: str, what: str) -> None:
        status, _ = await _post(worker, body, {**sign(body, SIGNING_SECRET), "Content-Type": content_type})
        statuses[status] = statuses.get(status, 0) + 1
        if not (200 <= status < 300 or 400 <= status < 500):
            failures.append(f"{status}: {what}")

    for name, payload in interactions.items():
        for path, how in _variants(payload):
            broken = _broken(payload, path, how)
            body = urlencode({"payload": json.dumps(broken)}).encode()
            await send(body, "application/x-www-form-urlencoded", f"{name} {path} {how}")
    for name, payload in events.items():
        for path, how in _variants(payload):
            await send(
                json.dumps(_broken(payload, path, how)).encode(), "application/json", f"{name} {path} {how}"
            )
    for field in command:
        for how in ("remove", ("set", ""), ("set", "x"), ("set", "payload")):
            await send(
                urlencode(_broken(command, (field,), how)).encode(),
                "application/x-www-form-urlencoded",
                f"command {field} {how}",
            )
    for body in (
        b"ssl_check=1",
        b"ssl_check=1&token=x",
        b"ssl_check=0&token=x",
        b"ssl_check=1&payload=%7B%7D",
    ):
        await send(body, "application/x-www-form-urlencoded", body.decode())

    assert failures == []
    assert statuses.get(400, 0) > 100 and statuses.get(200, 0) > 50, statuses  # both kinds were reached
    assert await _state(redis, request_id) == before
    assert not task.done()
    await cancelled(task)


async def test_ssl_check_is_answered_200(start_worker):
    worker = await start_worker()
    body = b"ssl_check=1&token=legacy"
    async with worker.session.post(
        f"{worker.url}{EVENTS}", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    ) as response:
        assert response.status == 200


# -- slow and large bodies ----------------------------------------------------


async def test_a_body_that_trickles_in_is_cut_off_with_408(start_worker, make_approver, slack, redis):
    worker = await start_worker(http_body_timeout=0.5)
    host, port = worker.url.removeprefix("http://").split(":")
    body, headers = signed_form(block_actions("U0ALICE", Action.APPROVE.value, "0" * 24), SIGNING_SECRET)
    reader, writer = await asyncio.open_connection(host, int(port))
    head = f"POST {EVENTS} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    writer.write(head.encode() + body[:10])
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 5)
    writer.close()
    assert status_line.startswith(b"HTTP/1.1 408")


async def test_a_body_over_the_limit_is_refused_with_413(start_worker, redis):
    worker = await start_worker(http_max_body=4096)
    payload = block_actions("U0ALICE", Action.APPROVE.value, "0" * 24)
    payload["padding"] = "x" * 10_000
    status, _ = await _post(worker, *signed_form(payload, SIGNING_SECRET))
    assert status == 413
    assert await _decisions(redis) == []


def test_settings_bound_the_http_limits(redis_server, slack):
    from pydantic import ValidationError

    for bad in (
        {"http_header_timeout": 0},
        {"http_body_timeout": float("inf")},
        {"http_max_connections": 1},
        {"http_max_body": 10},
    ):
        with pytest.raises(ValidationError):
            settings_for(redis_server, slack, **bad)


async def test_a_signature_is_remembered_for_as_long_as_any_worker_would_accept_it(redis):
    from bot.slack.limits import SIGNATURE_WINDOW
    from bot.slack.replays import SignedRequests

    signed, now = SignedRequests(redis), 1_800_000_000.0
    # A timestamp up to 5 minutes ahead of this worker's clock verifies until 5 minutes after it.
    assert await signed.first_use("v0=" + "a" * 64, str(int(now) + 290), now=now)
    assert await redis.ttl(keys.signed_request("v0=" + "a" * 64)) >= 290 + SIGNATURE_WINDOW
    assert await signed.first_use("v0=" + "b" * 64, str(int(now) - 290), now=now)
    assert await redis.ttl(keys.signed_request("v0=" + "b" * 64)) >= keys.SIGNED_REQUEST_SKEW
    assert not await signed.first_use("v0=" + "a" * 64, str(int(now) + 290), now=now)


async def test_two_workers_given_one_request_at_once_handle_it_once(
    start_worker, make_approver, slack, redis, tmp_path
):
    policy = policy_file(tmp_path, "default:\n  required_approvals: 2\n")
    first, second = await start_worker(approval_policy=policy), await start_worker(approval_policy=policy)
    approver = await make_approver()
    task = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make deploy"}, context("toolu_race_replay"))
    )
    message = await posted(slack)
    body, headers = signed_form(click_payload(message, "U0ALICE"), SIGNING_SECRET)
    statuses = await asyncio.gather(*(_post(w, body, headers) for w in (first, second, first, second)))
    assert sorted(status for status, _ in statuses) == [200, 409, 409, 409]
    # Another path or query string is still the same signed request.
    assert (await _post_to(first, f"{EVENTS}?retry=1", body, headers))[0] == 409
    assert await _decisions(redis) == [b"vote"]
    await cancelled(task)


async def _post_to(worker, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with worker.session.post(f"{worker.url}{path}", data=body, headers=headers) as response:
        return response.status, await response.text()

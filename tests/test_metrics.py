"""``GET /metrics`` after real flows: a real worker, real Redis, the fake Slack, scraped and parsed
with ``prometheus_client.parser`` as Prometheus would read it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import aiohttp
import yaml
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from bot import metrics
from bot.approvals import keys
from bot.approvals.model import Decision, NewRequest, State, request_id_for
from bot.approvals.policy_reload import PolicyHolder
from bot.approvals.queue import JobQueue
from bot.approvals.store import RequestStore
from bot.slack.ids import Action
from tests.conftest import cancelled, context, policy_file, posted
from tests.fakes.bot_settings import CHANNEL
from tests.fakes.stalled_redis import StalledRedis

POLICY = f"""
rules:
  - name: deploys
    tool: Bash
    command: "^kubectl "
    channel: {CHANNEL}
  - name: read-logs
    tool: Bash
    command: "^tail "
    action: allow
"""

ALERTS = Path(__file__).resolve().parent.parent / "docs" / "alerts.yml"
REQUEST_ID = re.compile(r"^[0-9a-f]{24}$")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Scrape:
    """One ``GET /metrics``: its text, families and samples."""

    def __init__(self, body: str) -> None:
        self.body = body
        self.families = list(text_string_to_metric_families(body))
        self.samples: Samples = {
            (s.name, frozenset(s.labels.items())): s.value for f in self.families for s in f.samples
        }

    def value(self, name: str, **labels: str) -> float:
        """A sample's value (0 when the series does not exist yet, as for a counter never incremented)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def labelled(self, name: str, label: str) -> dict[str, float]:
        """``label`` value → sample value, for every series of ``name``."""
        return {dict(k[1])[label]: v for k, v in self.samples.items() if k[0] == name}

    def names(self) -> set[str]:
        """Every series name a query may use, whether or not it has a sample yet."""
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
        return {f.name + suffix for f in self.families for suffix in suffixes.get(f.type, ("",))}


async def scrape(worker) -> Scrape:
    async with worker.session.get(f"{worker.url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return Scrape(await response.text())


async def eventually(worker, check: Callable[[Scrape], bool], timeout: float = 5.0) -> Scrape:
    """Scrape until ``check`` holds. The figures change in the worker's background jobs,
    which announce nothing a test could await: look again, for at most ``timeout``."""
    async with asyncio.timeout(timeout):
        while not check(current := await scrape(worker)):
            await asyncio.sleep(0.02)
    return current


def delta(after: Scrape, before: Scrape, name: str, **labels: str) -> float:
    return after.value(name, **labels) - before.value(name, **labels)


async def test_requests_are_counted_by_rule_and_outcome_and_pending_rises_then_falls(
    tmp_path, start_worker, make_approver, slack
):
    worker = await start_worker(approval_policy=policy_file(tmp_path, POLICY))
    approver = await make_approver()
    before = await scrape(worker)
    assert before.value("approvals_pending_requests") == 0

    deploy = asyncio.create_task(
        approver.can_use_tool("Bash", {"command": "kubectl apply -f x"}, context("toolu_m1"))
    )
    message = await posted(slack)
    waiting = await scrape(worker)
    assert waiting.value("approvals_pending_requests") == 1
    assert waiting.labelled("approvals_pending_requests_by_route", "route") == {"deploys": 1}
    assert waiting.value("approvals_oldest_pending_age_seconds") >= 0
    assert delta(waiting, before, "approvals_requests_created_total", rule="deploys") == 1

    # Allowed by the policy at once: created and ended, never pending on a route.
    logs = await approver.can_use_tool("Bash", {"command": "tail -f app.log"}, context("toolu_m2"))
    assert logs.behavior == "allow"

    await worker.click("U_ALICE", Action.APPROVE, message, name="alice")
    assert (await asyncio.wait_for(deploy, 5)).behavior == "allow"

    other = asyncio.create_task(approver.can_use_tool("Bash", {"command": "make test"}, context("toolu_m3")))
    await worker.deny("U_BOB", await posted(slack, 2), "not now", name="bob")
    assert (await asyncio.wait_for(other, 5)).behavior == "deny"

    def all_ended(s: Scrape) -> bool:
        return delta(s, before, "approvals_requests_ended_total", outcome="denied", rule="default") == 1

    after = await eventually(worker, all_ended)
    assert delta(after, before, "approvals_requests_ended_total", outcome="approved", rule="deploys") == 1
    assert delta(after, before, "approvals_requests_ended_total", outcome="approved", rule="read-logs") == 1
    assert delta(after, before, "approvals_requests_created_total", rule="read-logs") == 1
    assert delta(after, before, "approvals_requests_created_total", rule="default") == 1
    assert after.value("approvals_pending_requests") == 0
    assert after.labelled("approvals_pending_requests_by_route", "route") == {}
    assert after.value("approvals_oldest_pending_age_seconds") == 0

    # Time to decision: one observation per ended request; a click's recording: one per click.
    assert delta(after, before, "approvals_time_to_decision_seconds_count", outcome="approved") == 2
    assert delta(after, before, "approvals_time_to_decision_seconds_count", outcome="denied") == 1
    assert delta(after, before, "approvals_click_to_decision_seconds_count", result="won") == 2

    # Slack calls by method, as the fake Slack saw them.
    for method in ("chat.postMessage", "chat.update", "views.open"):
        assert delta(after, before, "approvals_slack_calls_total", method=method) >= 1, method
    assert delta(after, before, "approvals_slack_calls_total", method="chat.postMessage") == len(
        slack.calls_to("chat.postMessage")
    )

    # No request id, as a label value or anywhere else in the text.
    for family in after.families:
        for sample in family.samples:
            for value in sample.labels.values():
                assert not REQUEST_ID.match(value), (sample.name, value)
    for tool_use_id in ("toolu_m1", "toolu_m2", "toolu_m3"):
        assert request_id_for(tool_use_id) not in after.body


async def test_a_429_is_counted_and_the_job_stream_is_shown(start_worker, make_approver, slack):
    worker = await start_worker()
    approver = await make_approver()
    before = await scrape(worker)
    assert before.value("approvals_metrics_redis_up") == 1
    for name in ("approvals_job_stream_length", "approvals_job_stream_lag", "approvals_job_stream_pending"):
        assert (name, frozenset()) in before.samples, name

    slack.rate_limit("chat.postMessage")
    decision = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_429")))
    await posted(slack)  # the second attempt, after Retry-After
    after = await scrape(worker)
    assert delta(after, before, "approvals_slack_rate_limited_total", method="chat.postMessage") == 1
    assert delta(after, before, "approvals_slack_calls_total", method="chat.postMessage") == 2
    assert delta(after, before, "approvals_slack_errors_total", method="chat.postMessage") == 0
    await cancelled(decision)


async def test_failed_jobs_count_as_retries_then_dead(start_worker, make_approver, slack):
    worker = await start_worker(job_retry_after=0.1)
    approver = await make_approver()
    before = await scrape(worker)

    slack.fail("chat.postMessage", "internal_error")  # transient: the post job is retried
    decision = asyncio.create_task(approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_retry")))
    message = await posted(slack)
    retried = await scrape(worker)
    assert delta(retried, before, "approvals_job_retries_total", kind="post") == 1
    assert delta(retried, before, "approvals_slack_errors_total", method="chat.postMessage") == 1

    # The approval's message update keeps failing: after MAX_DELIVERIES attempts the job is dead.
    slack.fail("chat.update", "internal_error", times=100)
    await worker.click("U_ALICE", Action.APPROVE, message, name="alice")
    assert (await asyncio.wait_for(decision, 5)).behavior == "allow"
    dead = await eventually(
        worker, lambda s: delta(s, before, "approvals_jobs_dead_total", kind="update") == 1
    )
    assert delta(dead, before, "approvals_job_retries_total", kind="update") == 4


async def test_unrouted_requests_and_the_oldest_one_are_read_from_redis(redis, store):
    created_at = 1_000.0
    await store.create(
        NewRequest(id="a" * 24, tool_name="Bash", tool_input={"command": "ls"}, tool_use_id="t")
    )
    await redis.zadd(keys.pending(keys.shard_of("a" * 24)), {"a" * 24: created_at})  # as if created long ago
    figures = {f.name: f for f in await metrics.redis_figures(redis, now=created_at + 7200)}
    by_route = {s.labels["route"]: s.value for s in figures["approvals_pending_requests_by_route"].samples}
    assert by_route == {metrics.UNROUTED: 1}
    assert figures["approvals_oldest_pending_age_seconds"].samples[0].value == 7200


async def test_the_figures_sum_the_shards_and_show_each_one(redis_or_cluster):
    """Two requests in two shards, read on one Redis and on a cluster: totals, and each shard's own."""
    store = RequestStore(redis_or_cluster)
    ids = [request_id_for("toolu_m1"), request_id_for("toolu_m2")]
    assert keys.shard_of(ids[0]) != keys.shard_of(ids[1])
    for request_id in ids:
        await store.create(NewRequest(id=request_id, tool_name="Bash", tool_input={"command": "ls"}))
    await JobQueue(redis_or_cluster, "w", retry_after=30).ensure_group(keys.shard_of(ids[0]))
    figures = {f.name: f for f in await metrics.redis_figures(redis_or_cluster)}
    assert figures["approvals_metrics_redis_up"].samples[0].value == 1
    assert figures["approvals_pending_requests"].samples[0].value == 2
    assert figures["approvals_job_stream_length"].samples[0].value == 2  # each request's post job
    by_shard = {s.labels["shard"]: s.value for s in figures["approvals_job_stream_length_by_shard"].samples}
    assert by_shard == {str(n): float(n in map(keys.shard_of, ids)) for n in keys.ALL_SHARDS}
    lag = {s.labels["shard"]: s.value for s in figures["approvals_job_stream_lag_by_shard"].samples}
    assert lag[str(keys.shard_of(ids[0]))] == 1  # a group made, nobody read it yet
    assert lag[str(keys.shard_of(ids[1]))] == 0  # no group yet: nothing to report
    await store.aclose()


async def test_a_stalled_redis_leaves_its_figures_out_instead_of_hanging(monkeypatch):
    monkeypatch.setattr(metrics, "SCRAPE_TIMEOUT", 0.2)
    stalled = StalledRedis().start()
    # Read timeout far above the scrape's own bound: the bound is what ends the wait.
    client = Redis.from_url(stalled.url, socket_connect_timeout=5, socket_timeout=60)
    try:
        figures = await asyncio.wait_for(metrics.redis_figures(client), 5)
    finally:
        await client.aclose()
        stalled.stop()
    assert stalled.connections >= 1
    assert [(f.name, f.samples[0].value) for f in figures] == [("approvals_metrics_redis_up", 0)]


async def test_the_agent_host_exposes_its_waits_and_decisions(make_approver, store, redis):
    """The README's recipe: ``start_http_server(port)`` in the agent host."""
    server, thread = start_http_server(0, addr="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        approver = await make_approver()
        async with aiohttp.ClientSession() as session:

            async def agent() -> Scrape:
                async with session.get(url) as response:
                    return Scrape(await response.text())

            before = await agent()
            waiting = asyncio.create_task(
                approver.can_use_tool("Bash", {"command": "ls"}, context("toolu_agent"))
            )
            async with asyncio.timeout(5):
                while (now := await agent()).value("approvals_agent_waits_in_flight") < 1:
                    await asyncio.sleep(0.02)
            assert (
                now.value("approvals_agent_waits_in_flight")
                == before.value("approvals_agent_waits_in_flight") + 1
            )

            # Lose the decision channel: the waiter subscribes again, and says so.
            await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            async with asyncio.timeout(5):
                while delta(now := await agent(), before, "approvals_pubsub_reconnects_total") < 1:
                    await asyncio.sleep(0.02)

            await store.decide(
                request_id_for("toolu_agent"), Decision(State.DENIED, actor="U_X", reason="no")
            )
            assert (await asyncio.wait_for(waiting, 5)).behavior == "deny"
            after = await agent()
        assert delta(after, before, "approvals_agent_decisions_total", outcome="denied") == 1
        assert after.value("approvals_agent_waits_in_flight") == before.value(
            "approvals_agent_waits_in_flight"
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_policy_reloads_are_counted_by_result(tmp_path):
    def count(result: str) -> float:
        return REGISTRY.get_sample_value("approvals_policy_reloads_total", {"result": result}) or 0.0

    ok, invalid = count("ok"), count("invalid")
    path = policy_file(tmp_path, POLICY)
    holder = PolicyHolder(path)
    path.write_text("rules:\n  - name: broken\n    action: maybe\n")
    assert not await holder.reload()  # invalid: the old policy stays
    path.write_text(POLICY.replace("read-logs", "logs"))
    assert await holder.reload()
    assert (count("ok") - ok, count("invalid") - invalid) == (1, 1)


async def test_every_alert_names_metrics_a_worker_exposes(start_worker):
    rules = yaml.safe_load(ALERTS.read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in alerts} >= {
        "ApprovalPendingOverAnHour",
        "SlackRateLimitedRising",
        "ApprovalJobsDead",
        "ApprovalJobsLagging",
    }
    names = (await scrape(await start_worker())).names()
    for rule in alerts:
        used = set(re.findall(r"\bapprovals_[a-z_]+", rule["expr"]))
        assert used, rule["alert"]
        assert used <= names, (rule["alert"], used - names)
        assert rule["annotations"]["summary"], rule["alert"]

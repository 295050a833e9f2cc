"""Prometheus metrics: every ``approvals_*`` figure, and the functions that record them.

Two kinds of figures:

- Counters and histograms of things that happen in this process (requests
  routed and ended, Slack calls, job retries, pub/sub reconnects, the agent
  host's waits). They live in prometheus_client's default registry, shared by
  the whole process: a worker exposes them on ``GET /metrics`` and an agent host
  with ``prometheus_client.start_http_server(port)``. Two workers in one process
  (the tests) add to the same series, as one process's figures should.
- Gauges of shared state read from Redis when ``/metrics`` is scraped (pending
  requests by route, the oldest one's age, the job stream's depth and lag),
  each read bounded by ``SCRAPE_TIMEOUT``. They are read per scrape, not kept in
  a registry, so several workers in one process never register them twice.

Label values are bounded: rule names (the policy's, a small set), Slack method
names, job kinds, outcomes. Never a request id, a user or a channel.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError

from .approvals.backlog import read_shards
from .redis_client import RedisClient

if TYPE_CHECKING:
    from .approvals.model import ApprovalRequest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""What ``GET /metrics`` answers (Prometheus's text format)."""

SCRAPE_TIMEOUT = 2.0
"""Seconds a scrape waits for Redis's figures; past it they are left out and
``approvals_metrics_redis_up`` is 0 (Prometheus's own scrape timeout is 10 s by default)."""

DEFAULT_RULE = "default"
UNROUTED = "unrouted"
"""The route label of a pending request the policy has not routed yet (no worker took its post)."""

_LABEL_MAX = 64
_METHOD = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,63}$")

# Seconds from created to ended: a policy answer takes milliseconds, a person minutes to hours.
DECISION_BUCKETS = (0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400)
# Seconds a click takes to be recorded (Slack wants the ack within 3 s).
CLICK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5)

REQUESTS_CREATED = Counter(
    "approvals_requests_created", "Requests the policy routed (once per request), by rule.", ["rule"]
)
REQUESTS_ENDED = Counter(
    "approvals_requests_ended",
    "Requests that reached a final state (once per request), by outcome (approved, denied, expired, "
    "cancelled, undeliverable, ...) and rule.",
    ["outcome", "rule"],
)
TIME_TO_DECISION = Histogram(
    "approvals_time_to_decision_seconds",
    "Seconds from a request's creation to its end, by outcome.",
    ["outcome"],
    buckets=DECISION_BUCKETS,
)
CLICK_TO_DECISION = Histogram(
    "approvals_click_to_decision_seconds",
    "Seconds a worker took to record a click or form's decision, by result (won, vote, lost, refused).",
    ["result"],
    buckets=CLICK_BUCKETS,
)
SLACK_CALLS = Counter(
    "approvals_slack_calls",
    "Slack Web API calls sent, by method (each 429 retry counts; the HTTP client's own retries of a 5xx or a "
    "lost connection count once).",
    ["method"],
)
SLACK_RATE_LIMITED = Counter(
    "approvals_slack_rate_limited", "Slack Web API calls answered 429, by method.", ["method"]
)
SLACK_ERRORS = Counter(
    "approvals_slack_errors",
    "Slack Web API calls that failed otherwise (an error answer, a 5xx, no answer), by method.",
    ["method"],
)
JOB_RETRIES = Counter(
    "approvals_job_retries", "Jobs that failed and were left on the stream for a retry, by kind.", ["kind"]
)
JOBS_DEAD = Counter(
    "approvals_jobs_dead", "Jobs given up after MAX_DELIVERIES failed attempts, by kind.", ["kind"]
)
PUBSUB_RECONNECTS = Counter(
    "approvals_pubsub_reconnects", "Times the decision channel (pub/sub) was lost and subscribed again."
)
POLICY_RELOADS = Counter(
    "approvals_policy_reloads",
    "Policy file reloads, by result (ok: now live; invalid: old policy kept).",
    ["result"],
)
AGENT_WAITS = Gauge(
    "approvals_agent_waits_in_flight", "Tool calls waiting in SlackApprover.can_use_tool now."
)
AGENT_DECISIONS = Counter(
    "approvals_agent_decisions", "Decisions the agent host received, by outcome.", ["outcome"]
)
for _result in ("ok", "invalid"):
    POLICY_RELOADS.labels(result=_result)  # both series exist from the start, so rate() sees the first one


def _bounded(value: str, default: str) -> str:
    value = (value or "").strip()
    return value[:_LABEL_MAX] if value else default


def rule_label(rule: str) -> str:
    """A rule name as a label value: the policy's names are a bounded set; none is ``default``."""
    return _bounded(rule, DEFAULT_RULE)


def method_label(method: str) -> str:
    """A Slack method name as a label value (``other`` for anything that does not look like one)."""
    return method if _METHOD.match(method or "") else "other"


# -- recorders ----------------------------------------------------------------


def request_routed(rule: str) -> None:
    """The policy routed a new request (the first ROUTE of it, in a worker)."""
    REQUESTS_CREATED.labels(rule=rule_label(rule)).inc()


def request_ended(request: ApprovalRequest) -> None:
    """A request ended (counted once: by the worker that concludes it)."""
    outcome = _bounded(request.state.value, "unknown")
    REQUESTS_ENDED.labels(outcome=outcome, rule=rule_label(request.rule)).inc()
    if request.decided_at and request.created_at:
        TIME_TO_DECISION.labels(outcome=outcome).observe(max(0.0, request.decided_at - request.created_at))


def click_decided(result: str, seconds: float) -> None:
    """A person's click or form was recorded in ``seconds`` with ``result``."""
    CLICK_TO_DECISION.labels(result=_bounded(result, "unknown")).observe(max(0.0, seconds))


def slack_call(method: str) -> None:
    SLACK_CALLS.labels(method=method_label(method)).inc()


def slack_rate_limited(method: str) -> None:
    SLACK_RATE_LIMITED.labels(method=method_label(method)).inc()


def slack_error(method: str) -> None:
    SLACK_ERRORS.labels(method=method_label(method)).inc()


def job_retried(kind: str) -> None:
    JOB_RETRIES.labels(kind=_bounded(kind, "unknown")).inc()


def job_dead(kind: str) -> None:
    JOBS_DEAD.labels(kind=_bounded(kind, "unknown")).inc()


def pubsub_reconnected() -> None:
    PUBSUB_RECONNECTS.inc()


def policy_reloaded(ok: bool) -> None:
    """A policy reload was tried: ``ok`` if the new file went live, False if it was invalid (old one kept)."""
    POLICY_RELOADS.labels(result="ok" if ok else "invalid").inc()


def agent_decision(outcome: str) -> None:
    """The agent host received a decision (``approved``, ``denied``, ``expired``, …)."""
    AGENT_DECISIONS.labels(outcome=_bounded(outcome, "unknown")).inc()


# -- read at scrape time ------------------------------------------------------


async def redis_figures(redis: RedisClient, now: float | None = None) -> list[Metric]:
    """The gauges read from Redis for one scrape: a few O(1) or O(routes) commands, no scan.

    ``approvals_metrics_redis_up`` is 0 (and the rest left out) when Redis does not
    answer within ``SCRAPE_TIMEOUT``: a scrape must not hang on a stalled Redis."""
    now = time.time() if now is None else now
    up = GaugeMetricFamily(
        "approvals_metrics_redis_up", "1 if this scrape could read Redis's figures, else 0."
    )
    try:
        async with asyncio.timeout(SCRAPE_TIMEOUT):
            shards = await read_shards(redis)
    except (RedisError, OSError, TimeoutError):
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    pending = GaugeMetricFamily("approvals_pending_requests", "Requests pending now (all routes).")
    pending.add_metric([], sum(shard.pending for shard in shards))
    by_route = GaugeMetricFamily(
        "approvals_pending_requests_by_route",
        f"Requests pending now, by the rule that routed them ({UNROUTED}: not routed yet).",
        labels=["route"],
    )
    routes: dict[str, int] = {}
    for shard in shards:
        for route, count in shard.routes.items():
            label = _route_label(route)
            routes[label] = routes.get(label, 0) + count
    for route, count in sorted(routes.items()):
        by_route.add_metric([route], count)
    age = GaugeMetricFamily(
        "approvals_oldest_pending_age_seconds",
        "Seconds since the oldest pending request was created (0: none).",
    )
    created = [shard.oldest for shard in shards if shard.oldest is not None]
    age.add_metric([], max(0.0, now - min(created)) if created else 0.0)
    families: list[Metric] = [up, pending, by_route, age]
    for name, what, figure in (
        ("approvals_job_stream_length", "Entries in the jobs streams (XLEN of each shard's).", "jobs"),
        ("approvals_job_stream_lag", "Jobs no worker has taken yet (the consumer groups' lag).", "lag"),
        (
            "approvals_job_stream_pending",
            "Jobs taken by a worker and not acknowledged yet (the consumer groups' PEL).",
            "taken",
        ),
    ):
        total = GaugeMetricFamily(name, what)
        total.add_metric([], sum(getattr(shard, figure) for shard in shards))
        # By shard too: a hot or stuck shard shows, which a total would average away.
        each = GaugeMetricFamily(f"{name}_by_shard", f"{what.rstrip('.')}, by shard.", labels=["shard"])
        for index, shard in enumerate(shards):
            each.add_metric([str(index)], getattr(shard, figure))
        families += [total, each]
    return families


def _route_label(route: str) -> str:
    return UNROUTED if route == "" else rule_label(route)


class _Fixed(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


async def exposition(redis: RedisClient) -> bytes:
    """The text ``GET /metrics`` answers: this process's figures, then Redis's."""
    scraped = CollectorRegistry(auto_describe=False)
    scraped.register(_Fixed(await redis_figures(redis)))
    return generate_latest(REGISTRY) + generate_latest(scraped)

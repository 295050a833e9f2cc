"""``python -m bot bench`` at tiny sizes: it must keep running, and report what it measured."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.bench.slack_limits import SlackLimits
from bot.bench.slack_stub import SlackStub
from bot.settings import Settings
from bot.slack.rates import POST_PER_CHANNEL

SETTINGS = {name.upper() for name in Settings.model_fields}


def _bench(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    return subprocess.run(
        [sys.executable, "-m", "bot", "bench", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_the_bench_measures_every_path_and_writes_the_table_and_json(tmp_path):
    out = tmp_path / "results.json"
    run = _bench(
        tmp_path,
        "--decisions",
        "30",
        "--rate",
        "100",
        "--waits",
        "60",
        "--throughput",
        "40",
        "--floor-samples",
        "30",
        *LIMITED,
        "--json",
        str(out),
    )

    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())
    for path in ("click_to_wake", "ask_to_post"):
        for kind in ("steady", "burst"):
            figures = results[path][kind]
            assert figures["n"] == 30
            assert 0 < figures["p50"] <= figures["p95"] <= figures["p99"] <= figures["max"]
            assert figures["x_floor"]["p50"] > 0
    waits = results["concurrent_waits"]
    assert waits["waits"] == 60
    assert 2 <= waits["redis_connections"] <= 3  # the subscription and its command connections
    assert waits["all_woken_s"] > 0 and math.isfinite(waits["kb_per_wait"])
    assert results["throughput"]["one_worker"]["decisions"] == 40
    assert results["throughput"]["two_workers"]["workers"] == 2
    assert results["floors"]["publish"]["n"] == 30 and results["floors"]["post_per_s"] > 0
    assert {t["name"] for t in results["targets"]} >= {"click → wake p50 (steady)", "decisions/s, one worker"}
    assert "click → wake (steady)" in run.stdout and "targets:" in run.stdout
    assert f"results written to {out}" in run.stdout
    _assert_limited_phase(results, run.stdout)


@pytest.mark.slow
def test_the_phase_under_slacks_rate_limits_runs_alone(tmp_path):
    out = tmp_path / "results.json"
    run = _bench(tmp_path, "--only-limited", *LIMITED, "--json", str(out))

    assert run.returncode == 0, run.stderr
    results = json.loads(out.read_text())
    assert "click_to_wake" not in results and "throughput" not in results
    assert results["machine"]["redis"]
    _assert_limited_phase(results, run.stdout)
    assert "click → wake" not in run.stdout


LIMITED = (
    "--limited-requests",
    "8",
    "--limited-channels",
    "2",
    "--limited-agents",
    "3",
    "--limited-workers",
    "1",
    "--slack-rate-scale",
    "30",
)
"""Small enough to be quick; 4 posts a channel against a burst of 2, so some wait behind the limit."""


def _assert_limited_phase(results, stdout):
    """The phase ran at the sizes asked for and reports every figure (their values are the bench's business)."""
    limited = results["slack_limits"]
    assert (limited["requests"], limited["channels"], limited["agents"], limited["workers"]) == (8, 2, 3, 1)
    assert limited["rate_scale"] == 30
    assert limited["posted"] == 8 and limited["minimum_s"] > 0 and limited["posted_s"] > 0
    assert limited["timed_out"] == []
    assert limited["calls_by_method"]["chat.postMessage"] >= 8
    assert limited["ratelimited"] == sum(limited["ratelimited_by_method"].values())
    assert limited["decisions"] == 8 and math.isfinite(limited["writes_per_decision"])
    acks = limited["click_ack_backlog"]["n"] + limited["click_ack_after"]["n"]
    assert acks == 8 and limited["click_errors"] == 0
    assert limited["lost"] == limited["never_posted"] == limited["undeliverable"] == 0
    assert {t["name"] for t in results["targets"]} >= {
        "under limits: all posted, × the minimum",
        "under limits: Slack writes per decision",
        "under limits: requests lost (never posted or undeliverable)",
        "under limits: click ack p99 during the backlog",
    }
    assert "under Slack's rate limits (×30)" in stdout and "429s received" in stdout


@pytest.mark.slow
def test_the_bench_refuses_sizes_it_cannot_run(tmp_path):
    run = _bench(tmp_path, "--waits", "0")

    assert run.returncode == 2
    assert "waits must be positive" in run.stderr
    assert not (tmp_path / "bench-results.json").exists()


@pytest.mark.slow
def test_the_bench_refuses_a_phase_under_limits_it_cannot_run(tmp_path):
    stopped = _bench(tmp_path, "--only-limited", "--slack-rate-scale", "0")
    unreached = _bench(tmp_path, "--only-limited", "--limited-channels", "3", "--limited-agents", "2")

    assert stopped.returncode == 2 and "slack_rate_scale must be positive" in stopped.stderr
    assert unreached.returncode == 2 and "each channel needs an agent" in unreached.stderr
    assert not (tmp_path / "bench-results.json").exists()


async def test_the_stand_in_refuses_calls_past_slacks_rates_as_slack_does():
    stub = SlackStub(SlackLimits(scale=1))
    client = AsyncWebClient(token="xoxb-bench", base_url=await stub.start(), retry_handlers=[])
    try:
        for _ in range(POST_PER_CHANNEL.burst):
            await client.chat_postMessage(channel="C0ONE", text="fits the channel's burst")
        with pytest.raises(SlackApiError) as refused:
            await client.chat_postMessage(channel="C0ONE", text="one more in the same second")
        other_channel = await client.chat_postMessage(channel="C0TWO", text="another channel's own bucket")
        other_method = await client.chat_update(channel="C0ONE", ts="1700000000.000001", text="Tier 3")
    finally:
        await stub.close()

    response = refused.value.response
    assert response.status_code == 429
    assert response.data == {"ok": False, "error": "ratelimited"}
    assert response.headers["Retry-After"] == "1"  # whole seconds, rounded up
    assert other_channel["ok"] and other_method["ok"]
    assert stub.limited == {"chat.postMessage": 1}
    assert stub.answered == {"chat.postMessage": POST_PER_CHANNEL.burst + 1, "chat.update": 1}


@pytest.mark.slow
def test_the_cluster_bench_reports_each_cluster_figure_as_a_ratio_to_one_primary(tmp_path):
    out = tmp_path / "results.json"
    sizes = ("--decisions", "10", "--rate", "100", "--throughput", "20")
    run = _bench(tmp_path, "--cluster", "--cluster-replicas", "0", *sizes, "--json", str(out))

    assert run.returncode == 0, run.stderr
    cluster = json.loads(out.read_text())["cluster"]
    assert cluster["setup"]["primaries"] == 3 and cluster["setup"]["replicas"] == 0
    assert cluster["setup"]["cpus"] == os.cpu_count()
    for workers in ("1", "2", "4"):
        for topology in ("single", "cluster"):
            figures = cluster[topology][workers]
            assert figures["throughput"]["workers"] == int(workers)
            assert figures["throughput"]["decisions"] == 20 and figures["throughput"]["decisions_per_s"] > 0
            for kind in ("steady", "burst"):
                assert figures["click_to_wake"][kind]["n"] == 10
        ratios = cluster["ratios"][workers]
        assert ratios["decisions_per_s"] == pytest.approx(
            cluster["cluster"][workers]["throughput"]["decisions_per_s"]
            / cluster["single"][workers]["throughput"]["decisions_per_s"],
            rel=0.01,
        )
        for kind in ("steady", "burst"):
            assert ratios[f"click_to_wake_{kind}"]["p50"] > 0 and ratios[f"click_to_wake_{kind}"]["p99"] > 0
    assert "cluster ÷ single" in run.stdout and "4 worker(s)" in run.stdout
    assert "click → wake (steady)" not in run.stdout  # only the comparison ran


def test_the_cluster_bench_and_the_phase_under_limits_run_alone_not_together(tmp_path):
    run = _bench(tmp_path, "--cluster", "--only-limited")

    assert run.returncode == 2 and "choose one" in run.stderr
    assert not (tmp_path / "bench-results.json").exists()

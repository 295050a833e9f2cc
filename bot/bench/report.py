"""Samples → percentiles, ratios to the floors, the targets, and the printed table."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import scaling


def machine(server: dict[str, Any]) -> dict[str, Any]:
    """What the figures were measured on (``server``: Redis's ``INFO server``)."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "redis": server.get("redis_version"),
    }


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of values sorted ascending."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency(samples: Sequence[float], floor: dict[str, float] | None = None) -> dict[str, Any]:
    """Milliseconds: n, p50, p95, p99, max, mean, and ``x_floor`` (each percentile ÷ the floor's)."""
    ordered = sorted(s * 1000 for s in samples)
    figures: dict[str, Any] = {"n": len(ordered)}
    for name, p in (("p50", 50), ("p95", 95), ("p99", 99)):
        figures[name] = round(percentile(ordered, p), 3)
    figures["max"] = round(ordered[-1], 3) if ordered else math.nan
    figures["mean"] = round(sum(ordered) / len(ordered), 3) if ordered else math.nan
    if floor:
        figures["x_floor"] = {
            k: round(figures[k] / floor[k], 1) for k in ("p50", "p95", "p99") if floor.get(k)
        }
    return figures


def added(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    """The floor of a path that crosses both ``a`` and ``b``: their percentiles added."""
    return {k: round(a[k] + b[k], 3) for k in ("p50", "p95", "p99")}


@dataclass(frozen=True)
class Target:
    name: str
    value: float
    limit: float
    unit: str
    at_least: bool = False

    @property
    def met(self) -> bool:
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    def as_dict(self) -> dict[str, Any]:
        bound = f"{'≥' if self.at_least else '≤'} {self.limit:g} {self.unit}"
        return {"name": self.name, "value": self.value, "target": bound, "met": self.met}


def targets(results: dict[str, Any]) -> list[Target]:
    """The issue's targets, read off the results (of the phases that ran)."""
    found: list[Target] = []
    if "click_to_wake" in results:
        steady = results["click_to_wake"]["steady"]
        waits = results["concurrent_waits"]
        found += [
            Target("click → wake p50 (steady)", steady["p50"], 5, "ms"),
            Target("click → wake p99 (steady)", steady["p99"], 25, "ms"),
            Target("ask → post p50 (steady)", results["ask_to_post"]["steady"]["p50"], 10, "ms"),
            Target("Redis connections held by the agent", waits["redis_connections"], 3, "connections"),
            Target("memory per wait", waits["kb_per_wait"], 10, "KB"),
            Target("all waits woken after the bulk decision", waits["all_woken_s"], 2, "s"),
            Target(
                "decisions/s, one worker",
                results["throughput"]["one_worker"]["decisions_per_s"],
                500,
                "/s",
                at_least=True,
            ),
        ]
    if "slack_limits" in results:
        limited = results["slack_limits"]
        # Not all posted: the time so far is only a lower bound, and the target is missed whatever it says.
        posting = limited["x_minimum"] if limited["posted"] == limited["requests"] else math.inf
        found += [
            Target("under limits: all posted, × the minimum", posting, 1.2, "×"),
            Target("under limits: Slack writes per decision", limited["writes_per_decision"], 1.5, "writes"),
            Target(
                "under limits: requests lost (never posted or undeliverable)", limited["lost"], 0, "requests"
            ),
            Target(
                "under limits: click ack p99 during the backlog",
                limited["click_ack_backlog"]["p99"],
                100,
                "ms",
            ),
        ]
    return found


def table(results: dict[str, Any]) -> str:
    """The human-readable summary printed at the end of a run."""
    lines = _unlimited_table(results) if "floors" in results else []
    if "cluster" in results:
        lines += ["", *scaling.table(results)]
    if "slack_limits" in results:
        lines += ["", *_limited_table(results["slack_limits"])]
    if results["targets"]:
        lines += ["", "targets:"]
    for target in results["targets"]:
        lines.append(
            f"  {'met   ' if target['met'] else 'MISSED'} {target['name']}: {target['value']:g} "
            f"(target {target['target']})"
        )
    return "\n".join(lines).lstrip("\n")


def _limited_table(run: dict[str, Any]) -> list[str]:
    backlog, after = run["click_ack_backlog"], run["click_ack_after"]
    limited = ", ".join(f"{m} {n}" for m, n in sorted(run["ratelimited_by_method"].items())) or "none"
    lines = [
        (
            f"under Slack's rate limits (×{run['rate_scale']:g}): {run['requests']} requests into {run['channels']} "
            f"channels from {run['agents']} agents, {run['workers']} worker(s)"
        ),
        (
            f"  {'all' if run['posted'] == run['requests'] else 'NOT ALL'} posted in {run['posted_s']:.2f} s = "
            f"{run['x_minimum']:.2f} × the minimum the limits allow ({run['minimum_s']:.2f} s); "
            f"{run['posted']} of {run['requests']} posted"
        ),
        f"  429s received: {run['ratelimited']} ({limited})",
        (
            f"  Slack writes per decision: {run['writes_per_decision']:.2f} ({run['writes']} writes past the posts, "
            f"{run['decisions']} decisions)"
        ),
        (
            f"  click ack during the backlog: p50 {backlog['p50']:.2f} ms, p99 {backlog['p99']:.2f} ms (n {backlog['n']}); "
            f"after it: p50 {after['p50']:.2f} ms, p99 {after['p99']:.2f} ms (n {after['n']})"
        ),
        (
            f"  lost: {run['lost']} ({run['never_posted']} never posted, {run['undeliverable']} undeliverable); "
            f"{run['live_after_decision']} messages still offer buttons after their decision"
        ),
        (
            f"  the workers' last Slack call {run['done_after_clicks_s']:.2f} s after the last click; "
            f"{run['phase_s']:.2f} s from the asks"
        ),
    ]
    if run["timed_out"]:
        lines.append(f"  TIMED OUT: {'; '.join(run['timed_out'])}")
    return lines


def _unlimited_table(results: dict[str, Any]) -> list[str]:
    floors = results["floors"]
    lines = [
        (
            f"floors: Redis SPUBLISH→subscriber p50 {floors['publish']['p50']:.3f} ms, "
            f"aiohttp POST p50 {floors['post']['p50']:.3f} ms, do-nothing server {floors['post_per_s']:.0f} POST/s, "
            f"{results['sizes']['waits']} SPUBLISHes read by one subscriber in {floors['bulk_publish_s']:.3f} s"
        ),
        "",
        f"{'latency (ms)':<28}{'n':>7}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}   × floor (p50/p99)",
    ]
    for path in ("click_to_wake", "ask_to_post"):
        for kind in ("steady", "burst"):
            figures = results[path][kind]
            ratio = figures.get("x_floor", {})
            lines.append(
                f"{path.replace('_', ' ').replace('to', '→') + ' (' + kind + ')':<28}{figures['n']:>7}"
                f"{figures['p50']:>9.2f}{figures['p95']:>9.2f}{figures['p99']:>9.2f}{figures['max']:>9.2f}"
                f"   {ratio.get('p50', math.nan):.1f} / {ratio.get('p99', math.nan):.1f}"
            )
    waits = results["concurrent_waits"]
    lines += [
        "",
        (
            f"{waits['waits']} concurrent waits: {waits['kb_per_wait']:.2f} KB each, "
            f"{waits['redis_connections']} Redis connections, decided in {waits['decide_s']:.3f} s, "
            f"all returned {waits['all_woken_s']:.3f} s after the first decision "
            f"({waits['x_floor']:.1f} × floor)"
        ),
    ]
    for name, run in results["throughput"].items():
        lines.append(
            f"throughput, {name.replace('_', ' ')}: {run['decisions_per_s']:.0f} decisions/s "
            f"(clicks acked at {run['acks_per_s']:.0f}/s; {run['x_floor']:.2f} × the do-nothing server)"
        )
    return lines

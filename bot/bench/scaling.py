"""``python -m bot bench --cluster``: the same figures on one primary and on a cluster, as ratios.

``run.Bench`` measures click → wake (steady and burst) and decisions per second
with each count of ``WORKER_COUNTS`` workers, once against a single primary and
once against a local cluster, with the same phases. This module turns the two
sets into ratios (cluster ÷ single primary, same worker count), and says where
the CPU went during each throughput run: on a small machine that is what bounds
the scaling, so the report shows it next to the figures it bounds.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from typing import Any

WORKER_COUNTS = (1, 2, 4)
TOPOLOGIES = ("single", "cluster")
LATENCIES = ("steady", "burst")

Role = str
"""``redis``, ``workers``, ``agent`` or ``bench`` (the driver: clicks and the Slack stand-in)."""


def role_of(child_name: str) -> Role:
    """The role of a bench child process, by the name ``processes`` gave it."""
    for prefix, role in (("redis", "redis"), ("worker", "workers"), ("agent", "agent")):
        if child_name.startswith(prefix):
            return role
    return child_name


class CpuMeter:
    """CPU seconds (user + system) spent by each role's processes between ``start`` and ``stop``.

    Read from ``/proc/<pid>/stat``; where there is no ``/proc`` it reports nothing."""

    def __init__(self, pids: Mapping[int, Role]) -> None:
        self.pids = {**pids, os.getpid(): "bench"}
        self._ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._began: dict[int, float] = {}
        self._machine: tuple[float, float] | None = None
        self._at = 0.0

    def start(self) -> None:
        self._began = self._sample()
        self._machine = _machine_ticks()
        self._at = time.monotonic()

    def stop(self) -> dict[str, Any]:
        """``cpu_s`` by role, ``wall_s``, ``busy``: the share of all the machine's CPUs they used, and
        ``machine_busy``: the share every process used, the bench's and any other's."""
        ended, wall, machine = self._sample(), time.monotonic() - self._at, _machine_ticks()
        by_role: dict[Role, float] = {}
        for pid, seconds in ended.items():
            if pid in self._began:
                role = self.pids[pid]
                by_role[role] = by_role.get(role, 0.0) + seconds - self._began[pid]
        cpus = os.cpu_count() or 1
        total = sum(by_role.values())
        return {
            "wall_s": round(wall, 3),
            "cpu_s": {role: round(s, 2) for role, s in sorted(by_role.items())},
            "busy": round(total / (wall * cpus), 3) if wall > 0 and by_role else None,
            "machine_busy": _busy_share(self._machine, machine),
        }

    def _sample(self) -> dict[int, float]:
        seconds = {}
        for pid in self.pids:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rpartition(")")[2].split()
            except OSError:
                continue
            # Fields 14 and 15 of stat(5), utime and stime; the split starts at field 3.
            seconds[pid] = (int(fields[11]) + int(fields[12])) / self._ticks
        return seconds


def _machine_ticks() -> tuple[float, float] | None:
    """(busy, all) clock ticks of every CPU since boot, from ``/proc/stat``; None without it."""
    try:
        with open("/proc/stat") as stat:
            # user nice system idle iowait irq softirq steal (guest time is already in user and nice)
            ticks = [int(t) for t in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = sum(ticks[3:5])  # idle and iowait
    return sum(ticks) - idle, sum(ticks)


def _busy_share(began: tuple[float, float] | None, ended: tuple[float, float] | None) -> float | None:
    if began is None or ended is None or ended[1] <= began[1]:
        return None
    return round((ended[0] - began[0]) / (ended[1] - began[1]), 3)


def compare(runs: Mapping[str, Mapping[int, dict[str, Any]]]) -> dict[str, Any]:
    """Each topology's figures by worker count, each one's decisions/s as a multiple of its own
    one-worker run, and the ratios cluster ÷ single primary for the same worker count."""
    out: dict[str, Any] = {}
    for topology in TOPOLOGIES:
        one = runs[topology][WORKER_COUNTS[0]]["throughput"]["decisions_per_s"]
        out[topology] = {}
        for workers, figures in runs[topology].items():
            throughput = figures["throughput"]
            throughput["x_one_worker"] = _ratio(throughput["decisions_per_s"], one)
            if "cpu" in throughput:
                # CPU per decision does not depend on how busy the machine was: the cost a topology adds.
                per = {r: s * 1000 / throughput["decisions"] for r, s in throughput["cpu"]["cpu_s"].items()}
                throughput["cpu"]["ms_per_decision"] = {r: round(ms, 2) for r, ms in per.items()}
                throughput["cpu"]["ms_per_decision_total"] = round(sum(per.values()), 2)
            out[topology][str(workers)] = figures
    out["ratios"] = {}
    for workers in WORKER_COUNTS:
        single, cluster = runs["single"][workers], runs["cluster"][workers]
        ratios: dict[str, Any] = {
            f"click_to_wake_{kind}": {
                p: _ratio(cluster["click_to_wake"][kind][p], single["click_to_wake"][kind][p])
                for p in ("p50", "p99")
            }
            for kind in LATENCIES
        }
        ratios["decisions_per_s"] = _ratio(
            cluster["throughput"]["decisions_per_s"], single["throughput"]["decisions_per_s"]
        )
        if "cpu" in cluster["throughput"] and "cpu" in single["throughput"]:
            ratios["cpu_per_decision"] = _ratio(
                cluster["throughput"]["cpu"]["ms_per_decision_total"],
                single["throughput"]["cpu"]["ms_per_decision_total"],
            )
        out["ratios"][str(workers)] = ratios
    return out


def table(results: Mapping[str, Any]) -> list[str]:
    """The printed summary of a ``--cluster`` run."""
    cluster = results["cluster"]
    setup = cluster["setup"]
    lines = [
        (
            f"single primary against a cluster of {setup['primaries']} primaries "
            f"({setup['replicas']} replica(s) each), {setup['cpus']} CPUs"
        ),
        "",
        f"{'':<24}{'click → wake steady (ms)':>26}{'click → wake burst (ms)':>26}{'decisions/s':>14}",
        f"{'':<24}{'p50':>13}{'p99':>13}{'p50':>13}{'p99':>13}{'':>14}",
    ]
    for workers in WORKER_COUNTS:
        for topology in TOPOLOGIES:
            figures = cluster[topology][str(workers)]
            wake = figures["click_to_wake"]
            lines.append(
                f"{topology + ', ' + str(workers) + ' worker(s)':<24}"
                + "".join(f"{wake[k][p]:>13.2f}" for k in LATENCIES for p in ("p50", "p99"))
                + f"{figures['throughput']['decisions_per_s']:>14.0f}"
            )
        ratios = cluster["ratios"][str(workers)]
        lines.append(
            f"{'  cluster ÷ single':<24}"
            + "".join(
                f"{_shown(ratios['click_to_wake_' + k][p]):>12}×" for k in LATENCIES for p in ("p50", "p99")
            )
            + f"{_shown(ratios['decisions_per_s']):>13}×"
        )
    lines.append("")
    for topology in TOPOLOGIES:
        for workers in WORKER_COUNTS:
            throughput = cluster[topology][str(workers)]["throughput"]
            cpu = throughput.get("cpu") or {}
            spent = ", ".join(f"{role} {ms:.1f}" for role, ms in cpu.get("ms_per_decision", {}).items())
            busy = cpu.get("busy")
            lines.append(
                f"throughput {topology}, {workers} worker(s): {throughput['x_one_worker']:.2f} × one worker; "
                f"CPU ms per decision {cpu.get('ms_per_decision_total', math.nan):.1f} ({spent or 'unknown'})"
                + (f", {busy:.0%} of all CPUs" if busy is not None else "")
                + (
                    f" (machine {cpu['machine_busy']:.0%} busy)"
                    if cpu.get("machine_busy") is not None
                    else ""
                )
            )
    return lines


def _ratio(value: float, base: float) -> float | None:
    return round(value / base, 3) if base else None


def _shown(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.2f}"

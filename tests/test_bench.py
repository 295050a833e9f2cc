"""``python -m bot bench`` at tiny sizes: it must keep running, and report what it measured."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from bot.settings import Settings

SETTINGS = {name.upper() for name in Settings.model_fields}


def _bench(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    return subprocess.run(
        [sys.executable, "-m", "bot", "bench", *args], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=600,
    )


def test_the_bench_measures_every_path_and_writes_the_table_and_json(tmp_path):
    out = tmp_path / "results.json"
    run = _bench(tmp_path, "--decisions", "30", "--rate", "100", "--waits", "60", "--throughput", "40",
                 "--floor-samples", "30", "--json", str(out))

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


def test_the_bench_refuses_sizes_it_cannot_run(tmp_path):
    run = _bench(tmp_path, "--waits", "0")

    assert run.returncode == 2
    assert "waits must be positive" in run.stderr
    assert not (tmp_path / "bench-results.json").exists()

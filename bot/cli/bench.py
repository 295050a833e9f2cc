"""``python -m bot bench``: the approval path measured on loopback, and under Slack's rate limits."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .common import EXIT_CONFIG, Subcommands


def add_parser(commands: Subcommands) -> None:
    bench = commands.add_parser(
        "bench",
        help="measure click → wake, ask → post, concurrent waits and worker throughput on loopback, "
        "and a burst under Slack's rate limits",
    )
    bench.add_argument(
        "--decisions", type=int, default=2000, help="clicks timed, steady and burst each (default 2000)"
    )
    bench.add_argument(
        "--rate", type=float, default=200, help="asks and clicks per second when steady (default 200)"
    )
    bench.add_argument(
        "--waits", type=int, default=10_000, help="concurrent waits in the agent (default 10000)"
    )
    bench.add_argument(
        "--throughput", type=int, default=2000, help="clicks per throughput run (default 2000)"
    )
    bench.add_argument("--concurrency", type=int, default=32, help="clicks in flight in bursts (default 32)")
    bench.add_argument("--floor-samples", type=int, default=2000, help="round trips per floor (default 2000)")
    limited = bench.add_argument_group("the phase under Slack's rate limits")
    limited.add_argument(
        "--limited-requests", type=int, default=60, metavar="N", help="requests asked at once (default 60)"
    )
    limited.add_argument(
        "--limited-channels", type=int, default=2, metavar="N", help="channels they go to (default 2)"
    )
    limited.add_argument(
        "--limited-agents",
        type=int,
        default=4,
        metavar="N",
        help="agents asking them, agent i posting to channel i mod channels (default 4)",
    )
    limited.add_argument(
        "--limited-workers", type=int, default=2, metavar="N", help="workers sharing the limits (default 2)"
    )
    limited.add_argument(
        "--slack-rate-scale",
        type=float,
        default=6.0,
        metavar="FACTOR",
        help="Slack's rates sped up this many times, for the stand-in and the workers' "
        "SLACK_RATE_SCALE (default 6)",
    )
    limited.add_argument("--only-limited", action="store_true", help="run only this phase")
    cluster = bench.add_argument_group(
        "one primary against a cluster (--cluster runs only this comparison)",
        "click → wake (steady at --rate, and as a burst: --decisions each) and decisions/s (--throughput "
        "clicks) with 1, 2 and 4 workers, on one primary and on a local cluster of 3 primaries, each cluster "
        "figure as a ratio to the one-primary figure with as many workers",
    )
    cluster.add_argument(
        "--cluster", action="store_true", help="compare one primary with a local Redis Cluster"
    )
    cluster.add_argument(
        "--cluster-replicas",
        type=int,
        default=0,
        metavar="N",
        help="replicas per primary of that cluster (default 0: a throughput bench; the bot never reads them)",
    )
    bench.add_argument(
        "--json",
        default="bench-results.json",
        metavar="PATH",
        help="write the results here (default bench-results.json)",
    )
    bench.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the table, write the JSON; exit 1 if the run itself failed (a decision lost, a process died)."""
    import json

    from ..bench import report
    from ..bench.run import Sizes
    from ..bench.run import run as run_bench

    try:
        sizes = Sizes(
            decisions=args.decisions,
            rate=args.rate,
            waits=args.waits,
            throughput=args.throughput,
            concurrency=args.concurrency,
            floor_samples=args.floor_samples,
            limited_requests=args.limited_requests,
            limited_channels=args.limited_channels,
            limited_agents=args.limited_agents,
            limited_workers=args.limited_workers,
            slack_rate_scale=args.slack_rate_scale,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.cluster and args.only_limited:
        print("error: --cluster and --only-limited each run one phase alone: choose one", file=sys.stderr)
        return EXIT_CONFIG
    if args.cluster_replicas < 0:
        print("error: --cluster-replicas must be 0 or more", file=sys.stderr)
        return EXIT_CONFIG
    try:
        results = asyncio.run(
            run_bench(
                sizes,
                progress=lambda line: print(f"… {line}", file=sys.stderr, flush=True),
                only_limited=args.only_limited,
                cluster_replicas=args.cluster_replicas if args.cluster else None,
            )
        )
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"bench failed: {str(exc) or type(exc).__name__}", file=sys.stderr)
        return 1
    with open(args.json, "w", encoding="utf-8") as out:
        json.dump(results, out, indent=2)
    print(report.table(results))
    print(f"\nresults written to {args.json}")
    return 0

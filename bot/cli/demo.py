"""``python -m bot demo``: the local playground, without Slack."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from ..settings import Settings
from .common import EXIT_CONFIG, Subcommands, invalid


def add_parser(commands: Subcommands) -> None:
    demo = commands.add_parser(
        "demo", help="try it without Slack: a local page plays the channel, an agent asks for approvals"
    )
    demo.add_argument("--port", type=int, default=None, help="port of the page (default $PORT, else 3000)")
    demo.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1); off loopback, the page needs its secret",
    )
    demo.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another name or address the page is opened at (repeatable; for --host 0.0.0.0)",
    )
    demo.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="folder the agent works in (default: a new temporary folder, removed at exit)",
    )
    demo.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Run the playground until Ctrl-C. Uses ``REDIS_URL`` if set, and Claude if ``ANTHROPIC_API_KEY`` is."""
    import os
    import shutil
    import signal
    import tempfile

    from .. import text
    from ..demo.run import Demo

    # The bot's own logs would drown the agent's story; problems still show.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"error: {invalid(exc)}", file=sys.stderr)
        return EXIT_CONFIG
    api_key = os.environ.get("ANTHROPIC_API_KEY") or None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="approvals-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)

    async def run() -> None:
        async with Demo.start(
            workdir=workdir,
            out=sys.stdout,
            host=args.host,
            port=args.port or settings.port,
            redis_url=settings.redis_url,
            api_key=api_key,
            allow_hosts=args.allow_host,
        ) as demo:
            if not demo.guard.token_in_page:
                print(
                    text.demo.DEMO_EXPOSED.format(host=args.host, url=demo.page_url),
                    file=sys.stderr,
                    flush=True,
                )
            print(f"Approvals playground: open {demo.page_url}  (Ctrl-C stops it)")
            print(demo.storage.description)
            agent = (
                "Claude (ANTHROPIC_API_KEY is set)"
                if api_key
                else (
                    "a scripted model driving the real Agent SDK and CLI (set ANTHROPIC_API_KEY for Claude)"
                )
            )
            print(f"agent: {agent}, working in {workdir}")
            print("What the agent receives for each request is printed below.\n", flush=True)
            # Ctrl-C cancels this wait (asyncio.run's own handling); SIGTERM ends it the same way.
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(
            f"error: cannot serve the playground on {args.host}:{args.port or settings.port}: {exc.strerror or exc}"
            " (pass --port)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0

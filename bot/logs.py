"""Log lines: readable text by default, or one JSON object per line (``LOG_FORMAT=json``)
for a log pipeline, tagged with the request, click and worker they are about.

Tagging: ``log.info("...", extra=tagged(Event.REQUEST_POSTED, request_id=...))`` on a call,
or ``with log_context(request_id=..., rule=...)`` around code whose every line is about
one request (a job, a click). The context lives in a ``contextvars.ContextVar``, so it
follows asyncio tasks created inside the block and never leaks into other tasks.

Nothing secret belongs in a line: a tool input is logged as ``input_hash`` and
``input_preview`` (``preview``), a Redis URL through ``redis_client.redacted``.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import IO, Any, Literal

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The readable format ``serve``, ``check`` and ``audit`` have always written."""


class Event(StrEnum):
    """What a tagged log line reports: the ``event`` field of a JSON line. Names are
    stable (dashboards and alerts match on them); add, never rename."""

    REQUEST_CREATED = "request.created"
    REQUEST_ROUTED = "request.routed"
    REQUEST_POSTED = "request.posted"
    REQUEST_ADOPTED = "request.adopted"
    REQUEST_UPDATED = "request.updated"
    REQUEST_DECIDED = "request.decided"
    REQUEST_ESCALATED = "request.escalated"
    REQUEST_UNDELIVERABLE = "request.undeliverable"
    REQUEST_REASKED = "request.reasked"
    CLICK = "click"
    CLICK_UNCONFIRMED = "click.unconfirmed"
    """A click's decision the replicas did not confirm at once (``REDIS_WAIT_REPLICAS``): watched."""
    CLICK_LOST = "click.lost"
    """A click's decision a Redis failover lost and that could not be recorded again: the clicker was told."""
    CLICK_MALFORMED = "click.malformed"
    SLACK_ERROR = "slack.error"
    SLACK_RATE_LIMITED = "slack.rate_limited"
    JOB_FAILED = "job.failed"
    JOB_DROPPED = "job.dropped"
    LOOP_FAILING = "loop.failing"
    LOOP_RECOVERED = "loop.recovered"
    WORKER_STARTED = "worker.started"


CONTEXT_FIELDS = ("request_id", "tool_use_id", "rule", "user", "worker")
"""The fields a line carries when they are known (from ``extra`` or ``log_context``)."""

PREVIEW_CHARS = 80
"""Longest ``input_preview``: enough to recognise a call, too short to carry a file or a script."""

BODY_LOGGERS = ("slack_sdk", "slack_bolt")
"""Libraries that log every Web API call's JSON (a request message: the whole tool input) and
Slack's request and response bodies (a modal's edited input) at DEBUG: ``configure``'s handler
drops their lines below INFO, even when the bot is being debugged. (A level on their loggers
would not hold: Bolt copies the root logger's level onto each logger it creates.)"""

_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "bot_log_context", default=MappingProxyType({})
)


def _known(fields: Mapping[str, object]) -> dict[str, str]:
    return {name: str(value) for name, value in fields.items() if value is not None and value != ""}


@contextlib.contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Tag every line logged inside the block (and in tasks it starts) with ``fields``;
    empty and None values are left out, so callers need not check what they know."""
    token = _context.set({**_context.get(), **_known(fields)})
    try:
        yield
    finally:
        _context.reset(token)


def context_with(**fields: object) -> contextvars.Context:
    """A copy of the current context with ``fields`` added, for
    ``asyncio.create_task(..., context=...)``: how a worker tags its background
    loops with its name without tagging the task that started it."""
    context = contextvars.copy_context()
    context.run(_context.set, {**_context.get(), **_known(fields)})
    return context


def tagged(event: Event, **fields: object) -> dict[str, object]:
    """``extra=`` for one log call: its event and what it is about (None values left out)."""
    return {"event": event.value, **{name: value for name, value in fields.items() if value is not None}}


def about(request: Any) -> dict[str, object]:
    """The fields naming an ``ApprovalRequest`` in a line: its id, ``tool_use_id``, rule and
    input hash (never its input); for ``tagged(event, **about(request), ...)``."""
    return {
        "request_id": request.id,
        "tool_use_id": request.tool_use_id or None,
        "rule": request.rule or None,
        "input_hash": request.input_hash or None,
    }


# -- what may be said about an input ---------------------------------------

_SECRETS = re.compile(
    r"""
    xox[a-z]-[A-Za-z0-9-]+            # Slack bot, user and legacy tokens
    | xapp-[A-Za-z0-9-]+              # Slack app-level tokens
    | sk-[A-Za-z0-9_-]{6,}            # Anthropic and OpenAI keys
    | gh[pousr]_[A-Za-z0-9]{6,}       # GitHub tokens
    | AKIA[0-9A-Z]{12,}               # AWS access key ids
    | (?<=://)[^/\s:@]*:[^/\s@]+(?=@) # user:password in a URL
    | (?i:bearer|basic)\s+[A-Za-z0-9._~+/=-]+
    | (?i:password|passwd|secret|token|api[_-]?key)(?:\\?["']?\s*[:=]\s*\\?["']?)[^\s"'\\,}]+
    """,
    re.VERBOSE,
)


def redact(text: str) -> str:
    """``text`` with what looks like a credential replaced by ``***`` (best effort:
    the preview is short anyway, and the full input is never logged)."""
    return _SECRETS.sub("***", text)


def preview(value: object, limit: int = PREVIEW_CHARS) -> str:
    """At most ``limit`` characters about ``value`` for a log line: as JSON (a string as
    itself), every non-ASCII and control character escaped, credentials starred out,
    cut with ``…`` where it is longer. Never the whole of a large input."""
    if isinstance(value, str):
        shown = json.dumps(value, ensure_ascii=True)[1:-1]
    else:
        shown = json.dumps(value, ensure_ascii=True, sort_keys=True, default=str)
    # Redact before cutting: a cut through a token would leave a prefix the pattern misses.
    shown = redact(shown)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


# -- formatting ------------------------------------------------------------

_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
"""What every LogRecord has: anything else on one came from ``extra=``."""


class ContextFilter(logging.Filter):
    """Copies ``log_context``'s fields onto each record (a call's own ``extra`` wins),
    and drops the DEBUG lines of ``BODY_LOGGERS``.

    On the handler, not a logger: it runs in the task that logs, so the context
    is that task's."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO and record.name.startswith(BODY_LOGGERS):
            return False
        for name, value in _context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, ``event`` (null when the line has none), the context fields that
    are known, other ``extra`` fields, and ``exc`` (the traceback) for an exception.

    ASCII only (``ensure_ascii``): no newline, U+2028 or other line break of any
    reader can split a line in two."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "event": getattr(record, "event", None),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None and value != "":
                line[name] = value
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRS and name not in line:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=True, default=str)


def formatter(log_format: LogFormat | str) -> logging.Formatter:
    """The formatter ``LOG_FORMAT`` names."""
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(
    settings_or_format: Any, *, level: int = logging.INFO, stream: IO[str] | None = None
) -> logging.Handler:
    """Send every log line to ``stream`` (stderr) in the format settings (or ``"text"``/``"json"``)
    name, replacing the root logger's handlers. Returns the handler installed."""
    log_format = settings_or_format if isinstance(settings_or_format, str) else settings_or_format.log_format
    if log_format != "text" and log_format != "json":
        raise ValueError(f"unknown log format {log_format!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler

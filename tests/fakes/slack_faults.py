"""Faults a test injects into the fake: Slack errors, rate limits, 5xx pages, requests that hang."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.fakes.slack_records import Fault, SlackCall
from tests.fakes.slack_state import SlackState


class FaultInjection(SlackState):
    """What a test calls to make the next calls of a method fail (``FakeSlack._answer`` serves them)."""

    def fail(self, method: str, error: str = "internal_error", *, times: int = 1, **extra: Any) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 200 ``{"ok": false, "error": error, **extra}``."""
        self._add_fault(method, Fault(200, {"ok": False, "error": error, **extra}, {}, times))

    def rate_limit(self, method: str, *, retry_after: int = 1, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 429 and ``Retry-After``."""
        body = {"ok": False, "error": "ratelimited"}
        self._add_fault(method, Fault(429, body, {"Retry-After": str(retry_after)}, times))

    def server_error(self, method: str, *, status: int = 503, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with an HTML 5xx page, as Slack's edge does."""
        page = f"<html><body><h1>{status}</h1>Service Unavailable</body></html>"
        self._add_fault(method, Fault(status, page, {}, times))

    def hang(self, method: str, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` never get an answer and change nothing,
        like a request in flight when its sender dies (recorded in ``hung``, not ``calls``)."""
        self._hang[method] += times

    def before_answer(self, method: str, hook: Callable[[SlackCall], Awaitable[None]]) -> None:
        """Run ``hook`` once, on the next ``method`` call, after Slack acted but before the
        caller gets the answer: a fault there strikes between Slack's side and ours."""
        self._before_answer[method].append(hook)

    def clear_faults(self) -> None:
        """Forget every injected failure not yet used."""
        self._faults.clear()

    def _add_fault(self, method: str, fault: Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("times must be at least 1")
        self._faults[method].append(fault)

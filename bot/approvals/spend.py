"""SpendLedger: a route's daily spend, reserved before an approval that costs and settled after.

A route's day has one counter (``keys.spend``), in its own slot: the request scripts
(ROUTE, DECIDE) cannot touch it on a Redis Cluster. So an approval with a cost goes:

1. ``reserve`` holds the cost on the counter (checked against the budget where one
   applies, atomically in the counter's slot), under a fresh token;
2. the request script approves only with a held token that matches the request's own
   cost and counter, and records the token in the request;
3. ``commit`` if the script approved with it, ``release`` after any other known outcome.

The counter is never below what was approved: a reservation is made before the approval
and given back only after a known non-approval. A crash, a timeout or an unknown reply
in between leaves it held, which leaves less budget for the day, never more.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Iterable
from enum import StrEnum

from .codec import text
from .keys import legacy_spend, spend, spend_carried, spend_held
from .lua.runner import ScriptRunner
from .lua.spend import CARRY_LEGACY, COMMIT, RELEASE, RESERVE

log = logging.getLogger(__name__)


class Verdict(StrEnum):
    """What RESERVE said (``NONE``: nothing was asked, the approval costs nothing)."""

    NONE = ""
    HELD = "held"
    OVER = "over"
    """Holding the cost would take the counter past the budget: nothing held."""
    INVALID = "invalid"
    """The cost, the budget or the counter cannot be added: nothing held."""


@dataclasses.dataclass(frozen=True)
class Reservation:
    """One approval's hold on a counter, as the request scripts get it in ARGV."""

    counter: str = ""
    token: str = ""
    cost: str = ""
    """The cost as stored in the request, so the script compares strings, not floats."""
    verdict: Verdict = Verdict.NONE
    problem: str = ""
    """With ``INVALID``: ``cost``, ``budget`` or ``spend`` (the counter)."""

    @property
    def held(self) -> bool:
        return self.verdict is Verdict.HELD


NOTHING = Reservation()
"""No reservation: the approval has no cost (or is no approval)."""


class SpendLedger:
    """Reserves, commits and releases spend on the routes' daily counters."""

    def __init__(self, scripts: ScriptRunner) -> None:
        """``scripts``: the runner of the store whose approvals this ledger counts (one batch per turn)."""
        self._scripts = scripts
        self._reserve = scripts.register(RESERVE)
        self._release = scripts.register(RELEASE)
        self._commit = scripts.register(COMMIT)
        self._carry = scripts.register(CARRY_LEGACY)

    async def reserve(
        self, counter: str, *, request_id: str, cost: str, budget: str, now: float
    ) -> Reservation:
        """Hold ``cost`` on ``counter`` for ``request_id``'s approval; with a ``budget`` (``""``: none),
        only if the counter stays within it. Look at the verdict: only a held reservation counts."""
        token = secrets.token_hex(12)
        reply = await self._scripts.run(
            self._reserve,
            keys=[counter, spend_held(counter)],
            args=[token, request_id, cost, budget, repr(now)],
        )
        verdict = Verdict(text(reply[0]))
        problem = text(reply[1]) if verdict is Verdict.INVALID else ""
        return Reservation(counter, token if verdict is Verdict.HELD else "", cost, verdict, problem)

    async def commit(self, reservation: Reservation) -> None:
        """The approval used it: the amount stays counted, the hold is settled (idempotent)."""
        if reservation.held:
            await self._scripts.run(
                self._commit, keys=[spend_held(reservation.counter)], args=[reservation.token]
            )

    async def release(self, reservation: Reservation) -> None:
        """No approval used it: the amount is given back (idempotent; nothing after ``commit``).

        Call it only after a known outcome: when it is unknown whether the script approved, leave the
        reservation held (less budget, never more)."""
        if reservation.held:
            await self._scripts.run(
                self._release,
                keys=[reservation.counter, spend_held(reservation.counter)],
                args=[reservation.token],
            )

    async def settle(self, reservation: Reservation, *, used: bool) -> None:
        """``commit`` if the approval used the reservation, else ``release``.

        Never raises for Redis: the decision it follows is already made, and a reservation left
        held only leaves less budget for the day (logged)."""
        try:
            if used:
                await self.commit(reservation)
            else:
                await self.release(reservation)
        except Exception:
            log.warning(
                "spend reservation %s on %s left held", reservation.token, reservation.counter, exc_info=True
            )

    async def carry_legacy(self, rules: Iterable[str], day: str) -> dict[str, str]:
        """Add what the versions before the tags counted on each of ``rules`` for ``day`` to its
        counter, once per counter (a restart adds nothing more); returns what was added, by rule.

        On a single primary only: the old counter is in another slot, which a cluster refuses
        (and no cluster ever ran those versions). Without it, the upgrade day's budget would
        start again from zero."""
        carried = {}
        for rule in rules:
            counter = spend(rule, day)
            reply = await self._scripts.run(
                self._carry, keys=[legacy_spend(rule, day), counter, spend_carried(counter)], args=[]
            )
            if text(reply[0]) == "carried" and text(reply[1]) != "0":
                carried[rule] = text(reply[1])
        return carried

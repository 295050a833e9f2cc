"""TeamAllowList: rules the team chose to always allow, shared by every agent.

A rule stands in for the person who granted it, and no more: it approves a
later call only where that person could have approved the call alone (the
ROUTE script checks that against the call's own route). Who may add a rule
is checked by DECIDE (an approver of the request clicked Always allow, on a
request needing one approval); who may remove one, here.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from redis.typing import EncodableT, FieldT

from ..redis_client import RedisClient
from . import keys
from .audit import AuditLog
from .codec import text
from .names import AuditEvent
from .rules import Rule
from .store import TeamGrant


@dataclass(frozen=True)
class TeamRule:
    rule: Rule
    added_by: str
    added_at: float
    route: str = ""
    """The policy route (rule name) of the request it was granted on."""
    request: str = ""
    """The request it was granted on."""
    team: str = ""
    """That request's workspace (OAuth mode): the rule stands in for its people, on its requests only."""

    @property
    def id(self) -> str:
        return self.rule.id


class TeamAllowList:
    """Lives in one Redis hash; every change is audited."""

    def __init__(self, redis: RedisClient) -> None:
        self.redis = redis
        self.audit = AuditLog(redis)

    async def add(
        self, rules: list[Rule], *, added_by: str, route: str = "", request: str = "", team: str = ""
    ) -> None:
        if not rules:
            return
        now = time.time()
        entries: dict[FieldT, EncodableT] = {
            r.id: json.dumps(
                {"rule": str(r), "added_by": added_by, "added_at": now, "route": route, "request": request}
                | ({"team": team} if team else {})
            )
            for r in rules
        }
        await self.redis.hset(keys.TEAM_RULES, mapping=entries)
        for rule in rules:
            await self.audit.append(
                AuditEvent.RULE_ADDED, actor=added_by, request=request, rule=str(rule), route=route
            )

    async def get(self, rule_id: str) -> TeamRule | None:
        raw = await self.redis.hget(keys.TEAM_RULES, rule_id)
        return _entry(raw) if raw is not None else None

    async def remove(self, rule_id: str, *, removed_by: str) -> TeamRule | None:
        """Remove one rule; None if it was not there (e.g. removed by someone else already).

        The caller checks ``Policy.rule_managers`` first."""
        raw = await self.redis.hget(keys.TEAM_RULES, rule_id)
        if raw is None or not await self.redis.hdel(keys.TEAM_RULES, rule_id):
            return None
        removed = _entry(raw)
        await self.audit.append(
            AuditEvent.RULE_REMOVED, actor=removed_by, rule=str(removed.rule), route=removed.route
        )
        return removed

    async def all(self) -> list[TeamRule]:
        raw = await self.redis.hvals(keys.TEAM_RULES)
        return sorted((_entry(v) for v in raw), key=lambda r: r.added_at)

    async def grants(
        self,
        tool_name: str,
        tool_input: dict[str, Any],
        resolved: dict[str, str] | None = None,
        team: str = "",
    ) -> list[TeamGrant]:
        """The team rules that match this call, oldest first, as grants for ``RequestStore.route``.

        With ``resolved`` (paths as the agent's host resolved them) a rule
        matches only if it matches the path as written and where it leads.
        Only rules granted in the call's workspace ``team`` count (OAuth mode;
        with one bot token every rule and request has none).
        """
        real = {**tool_input, **resolved} if resolved else tool_input
        return [
            TeamGrant(rule=str(entry.rule), by=entry.added_by)
            for entry in await self.all()
            if entry.team == team
            and entry.rule.matches(tool_name, tool_input)
            and entry.rule.matches(tool_name, real)
        ]


def _entry(raw: bytes | str) -> TeamRule:
    data = json.loads(text(raw))
    return TeamRule(
        Rule.parse(data["rule"]),
        data["added_by"],
        float(data["added_at"]),
        route=str(data.get("route") or ""),
        request=str(data.get("request") or ""),
        team=str(data.get("team") or ""),
    )

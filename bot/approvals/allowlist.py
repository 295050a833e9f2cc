"""TeamAllowList: rules the team chose to always allow, shared by every agent."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from . import keys
from .audit import AuditLog
from .codec import text
from .rules import Rule


@dataclass(frozen=True)
class TeamRule:
    rule: Rule
    added_by: str
    added_at: float

    @property
    def id(self) -> str:
        return self.rule.id


class TeamAllowList:
    """Lives in one Redis hash; every change is audited."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.audit = AuditLog(redis)

    async def add(self, rules: list[Rule], *, added_by: str, request: str = "") -> None:
        if not rules:
            return
        now = time.time()
        entries = {r.id: json.dumps({"rule": str(r), "added_by": added_by, "added_at": now}) for r in rules}
        await self.redis.hset(keys.TEAM_RULES, mapping=entries)
        for rule in rules:
            await self.audit.append("rule_added", actor=added_by, request=request, rule=str(rule))

    async def remove(self, rule_id: str, *, removed_by: str) -> TeamRule | None:
        """Remove one rule; None if it was not there (e.g. removed by someone else already)."""
        raw = await self.redis.hget(keys.TEAM_RULES, rule_id)
        if raw is None or not await self.redis.hdel(keys.TEAM_RULES, rule_id):
            return None
        removed = _entry(raw)
        await self.audit.append("rule_removed", actor=removed_by, rule=str(removed.rule))
        return removed

    async def all(self) -> list[TeamRule]:
        raw = await self.redis.hvals(keys.TEAM_RULES)
        return sorted((_entry(v) for v in raw), key=lambda r: r.added_at)

    async def matching(self, tool_name: str, tool_input: dict[str, Any]) -> TeamRule | None:
        """The first team rule that allows this call, if any."""
        for entry in await self.all():
            if entry.rule.matches(tool_name, tool_input):
                return entry
        return None


def _entry(raw: bytes | str) -> TeamRule:
    data = json.loads(text(raw))
    return TeamRule(Rule.parse(data["rule"]), data["added_by"], float(data["added_at"]))

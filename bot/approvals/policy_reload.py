"""The policy a worker applies now, reloaded from its file on SIGHUP or when the file changes.

Everything in a worker that reads the policy reads ``PolicyHolder.current``
when it needs it, so a new version applies to the next request routed, the
next click checked, the next budget day named. A new file is validated before
it goes live, and going live is one attribute assignment: no request is ever
routed by half a policy. A file that does not validate changes nothing: the
old policy keeps running and one log line says what is wrong (``PolicyError``
names the file, the rule and the field).

Requests already posted keep the rule they were routed with: routing stores
the rule's name, channel, approvers, N-of-M, timeout and escalation steps in
the request's own hash (``lua.create.ROUTE``), and every later step reads them
from there, never from the policy.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from redis.exceptions import RedisError

from .. import metrics
from ..tasks import stop
from .audit import AuditLog
from .names import AuditEvent
from .policy import Policy, PolicyError
from .states import SYSTEM_ACTOR

log = logging.getLogger(__name__)

_Signature = tuple[int, int, int] | None
"""What ``os.stat`` says of the file (mtime in ns, size, inode); None when it cannot be read."""


def _signature(path: Path) -> _Signature:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


class PolicyHolder:
    """The policy in force, and the file it comes from (None: the built-in default, never reloaded)."""

    def __init__(self, path: Path | None = None, *, audit: AuditLog | None = None) -> None:
        """Load the file; raises ``PolicyError`` when it is invalid (a worker does not start with it).

        ``audit`` records each version that goes live (the first at the first ``check``)."""
        self.path = path
        self.audit = audit
        self._seen: _Signature = None
        self._changing: _Signature = None
        """A change ``check`` saw once: it is read only when the next check sees the file the same."""
        self._unrecorded: list[str] = []
        """Versions that went live and are not in the audit log yet, oldest first."""
        self._listeners: list[Callable[[Policy], None]] = []
        self._reloads: set[asyncio.Task[bool]] = set()
        # SIGHUP and the watch loop may both look at once: one reload, one audit entry per version.
        self._lock = asyncio.Lock()
        self.digest = ""
        """SHA-256 of the file bytes in force ("" for the built-in default)."""
        self.current = Policy()
        if path is not None:
            self._seen = _signature(path)
            raw = Policy.read(path)
            self.current, self.digest = Policy.from_bytes(raw, path), _sha256(raw)
            self._unrecorded.append(self.digest)

    @classmethod
    def fixed(cls, policy: Policy) -> PolicyHolder:
        """A holder of ``policy`` that no file changes."""
        holder = cls()
        holder.current = policy
        return holder

    def on_change(self, listener: Callable[[Policy], None]) -> None:
        """Call ``listener`` with each new policy as it goes live."""
        self._listeners.append(listener)

    async def reload(self) -> bool:
        """Read and validate the file; if it differs from the policy in force, make it current.

        Returns whether a new version went live. An invalid file keeps the
        old policy and logs one line naming the rule and field."""
        async with self._lock:
            return await self._reload()

    async def _reload(self) -> bool:
        if self.path is None:
            return False
        self._seen = _signature(self.path)
        try:
            raw = Policy.read(self.path)
            digest = _sha256(raw)
            if digest == self.digest:
                return False  # touched or rewritten unchanged: nothing goes live, nothing is audited
            policy = Policy.from_bytes(raw, self.path)
        except PolicyError as exc:
            # One line, even for YAML's multi-line parse errors: log pipelines split on newlines.
            log.error(
                "policy not reloaded, the one in force (sha256 %s) stays: %s",
                self.digest[:12],
                " ".join(str(exc).split()),
            )
            metrics.policy_reloaded(False)
            return False
        self.current, self.digest = policy, digest  # the swap: one assignment each reader sees whole
        metrics.policy_reloaded(True)
        for listener in self._listeners:
            listener(policy)
        log.info("policy reloaded from %s (sha256 %s), rules: %d", self.path, digest[:12], len(policy.rules))
        self._unrecorded.append(digest)
        await self._record()
        return True

    async def _record(self) -> None:
        """Append ``policy_loaded`` for each version that went live and is not recorded yet.

        Raises ``RedisError`` when Redis refuses: the next ``check`` tries again."""
        if self.audit is None or self.path is None:
            return
        while self._unrecorded:
            digest = self._unrecorded[0]
            await self.audit.append(
                AuditEvent.POLICY_LOADED, actor=SYSTEM_ACTOR, policy_hash=digest, path=str(self.path)
            )
            self._unrecorded.pop(0)

    async def check(self) -> None:
        """Reload if the file's mtime, size or inode changed since it was last read, and stayed so
        since the previous check (one ``os.stat``): a file caught while an editor writes it in place
        may parse as a weaker policy, and requests routed then would keep it. Record a version
        Redis refused to audit before."""
        async with self._lock:
            if self.path is not None:
                now = _signature(self.path)
                if now != self._seen and now == self._changing:
                    await self._reload()
                self._changing = now
            await self._record()

    def hangup(self) -> None:
        """SIGHUP's handler: reload now, in a task (a signal handler cannot await)."""
        task = asyncio.get_running_loop().create_task(self._reload_logged(), name="policy-reload")
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def aclose(self) -> None:
        """Stop a SIGHUP reload still running (before the Redis client it audits with closes)."""
        await stop(self._reloads)

    async def _reload_logged(self) -> bool:
        try:
            return await self.reload()
        except (RedisError, OSError) as exc:
            # Live already; the watch loop records it once Redis answers.
            log.warning("policy reloaded but not yet in the audit log: %s", exc)
            return True


def _sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()

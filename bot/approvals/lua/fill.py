"""Writes the names Python owns into the Lua scripts, so no script spells one itself."""

from __future__ import annotations

from string import Template

from .. import keys
from ..names import AuditEvent, JobKind
from ..states import POLICY_ACTOR, SYSTEM_ACTOR, State

CONSTANTS: dict[str, str | int] = {
    "audit_maxlen": keys.AUDIT_MAXLEN,
    "audit_trim_batch": keys.AUDIT_TRIM_BATCH,
    "audit_trim_max": keys.AUDIT_TRIM_MAX,
    "retention": keys.RETENTION_SECONDS,
    "spend_ttl": keys.SPEND_TTL,
    "decisions_suffix": keys.DECISIONS_SUFFIX,
    "call_answered": keys.CALL_ANSWERED,
    "escalation_mark": keys.ESCALATION_MARK,
    "actor_system": SYSTEM_ACTOR,
    "actor_policy": POLICY_ACTOR,
    **{f"event_{event.name.lower()}": event.value for event in AuditEvent},
    **{f"job_{kind.name.lower()}": kind.value for kind in JobKind},
    **{f"state_{state.name.lower()}": state.value for state in State},
}
"""``${name}`` in a script → its value: ``${event_created}``, ``${job_post}``, ``${state_pending}``…"""


SHEBANG = "#!lua"
"""First line of every script. With it, Redis refuses a script that touches a key of another
slot than its KEYS' on a cluster (even on one node, where it would otherwise pass), and
refuses to start a script while over ``maxmemory`` instead of failing it at its first write
(a script is not rolled back). Never with ``allow-cross-slot-keys`` or ``allow-oom``."""
READ_ONLY = "no-writes"
"""The flag of a script that only reads: it still runs over ``maxmemory``, as before the shebang."""


def script(*parts: str, flags: str = "") -> str:
    """One script from its parts (shared functions first, the script's own body last), filled in.

    A ``${name}`` that ``CONSTANTS`` does not hold fails here, at import, not in Redis; ``$$`` is a ``$``."""
    first_line = f"{SHEBANG} flags={flags}" if flags else SHEBANG
    return first_line + "\n" + Template("".join(parts)).substitute(CONSTANTS)

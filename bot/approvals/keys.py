"""Every Redis key, stream, channel and TTL the project uses, in one place.

Requests are spread over ``SHARDS`` fixed shards (``shard_of``); the keys of one
request carry its shard's hash tag, so on a Redis Cluster they share one slot
with each other and with their shard's jobs stream, deadlines, pending index,
audit chain and decisions channel: every script about a request touches that
one slot, all of it passed in KEYS. Workers cover every shard. What no script
about a request may touch is global or tagged on its own: group caches (their
memberships reach the scripts as ARGV, ``approvals.groups``), a thread's root
and early replies (tagged by the thread), spend counters (tagged by route and
day, reserved before a script and settled after it, ``approvals.spend``).
"""

import zlib
from typing import NamedTuple

PREFIX = "appr"

SHARDS = 12
"""Fixed number of request shards. 12 divides evenly over 1, 2, 3, 4, 6 and 12 cluster
primaries. Changing it re-homes every request, and agents and workers must agree:
a constant, not a setting."""
SHARD_TAGS = (
    "s0.10", "s1.3", "s2.163", "s3.69", "s4.11", "s5.12",
    "s6.29", "s7.22", "s8.67", "s9.2", "s10.23", "s11.33",
)  # fmt: skip
"""Hash tag of each shard, chosen so that shard ``i``'s slot lies in the ``i``-th twelfth of
the 16384 slots (653, 2277, 3475, …, 15535): ``redis-cli --cluster create``'s even slot
ranges then give each primary the same number of shards. The plain ``s0``…``s11`` would
land 4/3/5 over 3 primaries."""


def shard_of(request_id: str) -> int:
    """The shard of a request, from its id alone: any process holding an id finds its keys."""
    return zlib.crc32(request_id.encode()) % SHARDS


ALL_SHARDS = range(SHARDS)


def _tagged(request_id: str, kind: str) -> str:
    return f"{PREFIX}:{{{SHARD_TAGS[shard_of(request_id)]}}}:{kind}:{request_id}"


def _shard_key(shard: int, name: str) -> str:
    return f"{PREFIX}:{{{SHARD_TAGS[shard]}}}:{name}"


def jobs(shard: int) -> str:
    """Stream of one shard's work for the bot workers (post / update / remind / gather / notify)."""
    return _shard_key(shard, "jobs")


JOBS_GROUP = "workers"
"""Consumer group every bot worker reads each shard's ``jobs`` stream through."""


def deadlines(shard: int) -> str:
    """Sorted set of one shard's deadlines: ``<id>`` (expiry) or ``<id>:esc:<n>`` (an escalation
    step), scored by the epoch second it falls due."""
    return _shard_key(shard, "deadlines")


class AuditKeys(NamedTuple):
    """The keys of one audit chain (``approvals.audit``)."""

    stream: str
    """Stream: one entry per transition, hash-chained."""
    head: str
    """The hash of the newest entry: the end of the chain, to compare with."""
    anchor: str
    """The ``prev`` the oldest kept entry must have: ``""`` while the genesis is
    kept, else the hash of the last entry a trim removed. Written with the genesis,
    so a log whose head and entries were deleted is not taken for a new one."""
    cap: str
    """Optional: a smaller cap than ``AUDIT_MAXLEN`` (tests; a deployment that keeps less)."""


def audit(shard: int) -> AuditKeys:
    """The audit chain of one shard: its requests' transitions, and the entries ``AuditLog.append``
    files there. Under the shard's tag, so the scripts of its requests write it in their own slot."""
    base = f"{PREFIX}:{{{SHARD_TAGS[shard]}}}:audit"
    return AuditKeys(base, f"{base}:head", f"{base}:anchor", f"{base}:cap")


LEGACY_AUDIT = AuditKeys(
    f"{PREFIX}:audit", f"{PREFIX}:audit:head", f"{PREFIX}:audit:anchor", f"{PREFIX}:audit:cap"
)
"""The single chain of the versions before the shards: no longer written, still verifiable
(``python -m bot audit --legacy``) until an operator who exported it deletes it."""
AUDIT_SHARD_DEFAULT = 0
"""The chain of the entries that name no request (team rules, a policy going live)."""

AUDIT_MAXLEN = 1_000_000
"""Entries the audit stream keeps; past it, the oldest are trimmed, and the trim is chained."""
AUDIT_TRIM_BATCH = 100
"""Entries a trim removes beyond the cap, so one ``trimmed`` entry covers about this many."""
AUDIT_TRIM_MAX = 1000
"""At most this many entries per trim: a lowered cap is reached over several writes, never in one long script."""


def pending(shard: int) -> str:
    """Sorted set: ids of one shard's pending requests by creation time (``/approvals``, App Home)."""
    return _shard_key(shard, "pending")


def pending_routes(shard: int) -> str:
    """Hash: rule name → the shard's requests pending on that route (``""``: not routed yet), kept by
    the scripts for the metrics."""
    return _shard_key(shard, "pending:routes")


LEGACY_JOBS = f"{PREFIX}:jobs"
LEGACY_PENDING = f"{PREFIX}:pending"
"""The single jobs stream and pending index of the versions before the shards: ``check --drained``
reads them, as a deployment upgrading must let them empty first."""

USERGROUP_PREFIX = f"{PREFIX}:usergroup:"
"""+ ``S…``: set of the group's members (plus ``USERGROUP_SENTINEL``), cached. Global, one key
per group: no script reads it (``approvals.groups`` passes what a script needs as ARGV)."""
USERGROUP_SENTINEL = "*"
"""Always in a cached group's set, so an empty group differs from an uncached one."""
USERGROUP_TTL = 600
"""Seconds a group's cached membership is trusted."""
USERGROUP_REFRESH_GAP = 30
"""A click by a non-member refreshes the group at most this often (``usergroups.users.list`` is Tier 2)."""

SEEN_EVENTS_PREFIX = f"{PREFIX}:event:"
"""+ ``event_id``: an Events API delivery already handled (Slack retries up to 3 times)."""
SEEN_EVENTS_TTL = 3600

USER_NAMES = f"{PREFIX}:names"
"""Hash: Slack user id → display name, to write "@alice" for the model."""

SPEND_PREFIX = f"{PREFIX}:{{spend:"
"""+ ``rule}:YYYY-MM-DD``: dollars approved (or held for an approval) on a route that day, in the
policy's time zone (``approvals.spend``). Tagged per rule: a day's counter and its ``:held``
reservations share a slot, and no request script touches them."""
SPEND_HELD_SUFFIX = ":held"
"""After a counter: hash of its reservations, token → ``cost request_id at``."""
SPEND_TTL = 8 * 86400
"""Seconds a day's counter and reservations are kept: past a week, no message shows them."""
LEGACY_SPEND_PREFIX = f"{PREFIX}:spend:"
"""+ ``rule:YYYY-MM-DD``: the counters of the versions before the tags, carried over once per
counter on a single primary (``SpendLedger.carry_legacy``)."""
SPEND_CARRIED_SUFFIX = ":carried"
"""After a counter: set once its legacy counter was added to it (so a restart adds nothing more)."""

DECISIONS_SUFFIX = ":decided"
"""After a shard's ``PREFIX:{tag}``: its decisions channel. Scripts build it from KEYS[1]'s tag."""


def decisions(shard: int) -> str:
    """Sharded pub/sub channel (SPUBLISH) of one shard: the id of each of its requests that was
    routed or reached a final state. In the shard's slot, so a request's script may publish to it."""
    return f"{PREFIX}:{{{SHARD_TAGS[shard]}}}{DECISIONS_SUFFIX}"


DECISION_CHANNELS = tuple(decisions(shard) for shard in range(SHARDS))
"""Every shard's decisions channel: what a process waiting on decisions subscribes to."""

RETRY_PREFIX = f"{PREFIX}:retry:"
"""+ ``session:tool:call hash``: a request an interactive Claude Code session stopped
waiting for; the next identical call in that session picks it up (once)."""

CALL_CLAIM_PREFIX = f"{PREFIX}:call:"
"""+ ``{session:prompt:fingerprint}:n``: which ``PermissionRequest`` hook answers the n-th identical
call of a prompt (``agent.call_claims``): ``wait:<token>[:<request>]`` while one waits,
``allowed:<request>`` once one allowed it (until the call is seen running), ``answered`` after."""
CALL_ANSWERED = "answered"


def call_claim(session_id: str, prompt_id: str, fingerprint: str, n: int) -> str:
    """One slot per identical copy; the copies of one call share a hash tag."""
    return f"{CALL_CLAIM_PREFIX}{{{session_id}:{prompt_id}:{fingerprint}}}:{n}"


TEAM_RULES = f"{PREFIX}:rules"
"""Hash: rule id → the team allow-list entry (rule, who added it, when)."""

RETENTION_SECONDS = 30 * 86400
"""How long an ended request stays readable (late clicks, re-asks, audit)."""


def request(request_id: str) -> str:
    """The hash holding one request."""
    return _tagged(request_id, "req")


def script_keys(request_id: str) -> list[str]:
    """The KEYS of every script about one request, in this order (see ``approvals.lua``):
    every key a script touches is passed, none is named inside a script."""
    shard = shard_of(request_id)
    chain = audit(shard)
    return [
        request(request_id), deadlines(shard), jobs(shard), chain.stream, chain.head, votes(request_id),
        pending(shard), chain.anchor, pending_routes(shard), chain.cap,
    ]  # fmt: skip


def audit_script_keys(shard: int) -> list[str]:
    """The KEYS of ``APPEND_AUDIT``: one shard's chain at its ``script_keys`` positions (4, 5, 8, 10),
    so the request scripts and it share the chaining code; the unused positions repeat the stream,
    which keeps every key in the shard's slot."""
    chain = audit(shard)
    return [
        chain.stream, chain.stream, chain.stream, chain.stream, chain.head, chain.stream, chain.stream,
        chain.anchor, chain.stream, chain.cap,
    ]  # fmt: skip


def votes(request_id: str) -> str:
    """Hash: approver id → "epoch name", the approvals counted so far (N-of-M)."""
    return _tagged(request_id, "votes")


def thread(request_id: str) -> str:
    """Hash: reply ts → the human replies in the request's Slack thread (JSON)."""
    return _tagged(request_id, "thread")


def usergroup(group_id: str) -> str:
    return USERGROUP_PREFIX + group_id


def usergroup_refreshed(group_id: str) -> str:
    """Set for ``USERGROUP_REFRESH_GAP`` seconds after a click by a non-member re-read the group."""
    return usergroup(group_id) + ":fresh"


def spend(rule: str, day: str = "") -> str:
    """A route's spend prefix (what ROUTE stores as the request's ``spend_key``), or the counter of
    one ``day`` under it (``spend_counter``)."""
    prefix = f"{SPEND_PREFIX}{rule}}}"
    return spend_counter(prefix, day) if day else prefix


def spend_counter(spend_key: str, day: str) -> str:
    """The counter of ``day`` under a request's stored ``spend_key``. DECIDE checks the counter it is
    handed against this same concatenation, done in Lua."""
    return f"{spend_key}:{day}"


def spend_held(counter: str) -> str:
    """The reservations of a counter: the same hash tag, so RESERVE, RELEASE and COMMIT touch one slot."""
    return counter + SPEND_HELD_SUFFIX


def legacy_spend(rule: str, day: str) -> str:
    """The counter the versions before the tags kept for ``rule``'s ``day``."""
    return f"{LEGACY_SPEND_PREFIX}{rule}:{day}"


def spend_carried(counter: str) -> str:
    return counter + SPEND_CARRIED_SUFFIX


def retry(session_id: str, tool_name: str, call_hash: str) -> str:
    return f"{RETRY_PREFIX}{session_id}:{tool_name}:{call_hash}"


def _thread_tagged(channel: str, ts: str, kind: str) -> str:
    # Tagged by the thread, not the request: the thread's keys share one slot, so
    # ``ThreadStore`` reads and writes them in one MULTI (a request's shard is not
    # known from a reply's channel and ts).
    return f"{PREFIX}:{{t:{channel}:{ts}}}:{kind}"


def thread_root(channel: str, ts: str) -> str:
    """The id of the request whose message is the root of the thread ``channel``/``ts``
    (``RETENTION_SECONDS``), set by the worker that recorded the post (``ThreadStore.link_thread``)."""
    return _thread_tagged(channel, ts, "root")


def early_replies(channel: str, ts: str) -> str:
    """Hash of replies (ts → JSON) heard in a thread whose root no request claims yet.
    A reply can reach a worker before the worker that posted the root has linked
    it; the link adopts them. In the slot of ``thread_root``."""
    return _thread_tagged(channel, ts, "early")


EARLY_REPLIES_TTL = 600
EARLY_REPLIES_MAX = 50
"""Replies kept for one unclaimed thread: threads under other messages are held too, briefly."""


ESCALATION_MARK = ":esc:"
"""Deadline members ``<id>:esc:<n>`` are escalation steps; a bare ``<id>`` is the request's expiry."""


def escalation_member(request_id: str, step: int) -> str:
    return f"{request_id}{ESCALATION_MARK}{step}"


SIGNED_REQUEST_PREFIX = f"{PREFIX}:signed:"
"""+ a request's ``X-Slack-Signature``: a signed HTTP request a worker already took.

Slack's signature covers the timestamp and the raw body, so the signature
names one request exactly; remembering it for as long as it verifies makes
a replay (same headers, same body) change nothing, on every worker."""
SIGNED_REQUEST_SKEW = 60
"""Seconds a signature is remembered past the end of its validity, for clock skew between workers."""


def signed_request(signature: str) -> str:
    return SIGNED_REQUEST_PREFIX + signature


RATE_PREFIX = f"{PREFIX}:{{slack}}:rate:"
"""+ a Slack method (``chat.update``), or ``chat.postMessage:<channel>``: one token
bucket of the workers' shared Slack budget (``slack.budget``), a hash of ``tokens``,
``at`` (when they were counted) and ``paused`` (a 429's ``Retry-After`` ends then).
Every bucket shares the hash tag ``{slack}``: one take touches a post's channel,
method and workspace buckets together."""
RATE_BUCKET_TTL = 3600
"""Seconds an unused bucket is kept; by then it is full again, which a missing bucket means too."""


def rate_bucket(method: str, channel: str = "") -> str:
    """The bucket of ``method`` (of one ``channel`` for the per-channel limits)."""
    return f"{RATE_PREFIX}{method}:{channel}" if channel else f"{RATE_PREFIX}{method}"


def thread_read(request_id: str) -> str:
    """How many replies the request's thread held when a worker last read it from Slack
    (``RETENTION_SECONDS``): more heard since (``thread``) means it is worth reading again."""
    return _tagged(request_id, "thread:read")


def render_lock(request_id: str) -> str:
    """Held by the one worker updating the request's Slack message (``RENDER_LOCK_TTL``).

    Two workers updating one message at once could land an older state after a
    newer one; with the lock one worker renders until the message is current."""
    return _tagged(request_id, "render")


RENDER_LOCK_TTL = 120
"""Seconds a render lock outlives a worker that died holding it."""


# -- Slack installations (OAuth mode: ``slack.installation_store``, ``slack.oauth_state``) --

INSTALL_PREFIX = f"{PREFIX}:install:"
"""+ ``{<enterprise>:<team>}``: one installation's keys, in one slot: ``{-:T…}`` for a workspace
install (Slack's workspace ids are unique), ``{E…:-}`` for an org-wide one. Under it: ``bot`` (the latest bot token, JSON),
``latest`` (the latest installation, JSON), ``user:<U…>`` (the latest of one installer),
``users`` (a set of those installers, so a delete finds them) and, for an org-wide install,
``teams`` (the set of workspaces it was granted). Tokens are secrets: Redis
holds them as Slack gave them, so protect Redis as you would the bot token."""


def installation(enterprise_id: str | None, team_id: str | None, part: str) -> str:
    """The key of ``part`` (``bot``, ``latest``, ``users``, ``user:<U…>``, ``teams``) of one installation."""
    return f"{INSTALL_PREFIX}{{{enterprise_id or '-'}:{team_id or '-'}}}:{part}"


OAUTH_STATE_PREFIX = f"{PREFIX}:oauth-state:"
"""+ a state issued to one browser starting an install; deleted by its one use."""
OAUTH_STATE_TTL = 600
"""Seconds an install has from ``/slack/install`` to Slack's redirect back (Bolt's cookie lives as long)."""


def oauth_state(state: str) -> str:
    return OAUTH_STATE_PREFIX + state

"""START_POST and MARK_POSTED: a worker posting a request to Slack; SET_IF_EXISTS for what it shows."""

from __future__ import annotations

from .chain import CHAIN
from .fill import script
from .request import DECIDERS, REQUEST

START_POST = script(
    CHAIN,
    DECIDERS,
    REQUEST,
    """
-- A worker is about to post the request: remember when (the first attempt's
-- time is kept), so a retry can look for a message that reached Slack but was
-- never recorded. Never creates a request that is gone.
-- KEYS: keys.script_keys(id).
-- ARGV: id, now.
-- Results: {'missing'}; {'ok'}.
local now = ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
redis.call('HSETNX', KEYS[1], 'post_started', now)
return {'ok'}
""",
)

MARK_POSTED = script(
    CHAIN,
    DECIDERS,
    REQUEST,
    """
-- Records where the message went and starts the escalation steps' clocks,
-- which count from the moment people can see it (a reminder needs the thread).
-- Never overwrites: a second post of the same request is reported, not kept.
-- The thread's root is linked by the caller (``ThreadStore.link_thread``):
-- its key is tagged by the thread, in another slot.
-- KEYS: keys.script_keys(id).
-- ARGV: id, channel, ts, now, shown (digest of what the post showed, or '').
-- Results: {'missing'}; {'already'} (it has a message); {'ok', state}.
local channel, ts, now, shown = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
if redis.call('HGET', KEYS[1], 'ts') then return {'already'} end
local clock = tonumber(now)
local escalation = steps() or {}  -- unreadable steps are never fired (ROUTE refuses them)
redis.call('HSET', KEYS[1], 'posted_channel', channel, 'ts', ts)
if shown and shown ~= '' then redis.call('HSET', KEYS[1], 'shown', shown) end
local state = redis.call('HGET', KEYS[1], 'state')
if state == '${state_pending}' then
  for i, step in ipairs(escalation) do
    local member = request_id .. '${escalation_mark}' .. (i - 1)
    redis.call('ZADD', KEYS[2], clock + tonumber(step['after']), member)
  end
end
audit('${event_posted}', '${actor_system}', now, 'channel', channel, 'ts', ts,
  'rule', redis.call('HGET', KEYS[1], 'rule') or '')
return {'ok', state}
""",
)

SET_IF_EXISTS = script("""
-- Sets fields of a request that still exists (never re-creates one whose
-- retention ended).
-- KEYS: a request hash.
-- ARGV: field, value, …
-- Results: 1 (set); 0 (the request is gone).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
""")

"""ESCALATE and TIMEOUT: what a due deadline member does (``RequestStore.due``)."""

from __future__ import annotations

from .chain import CHAIN
from .fill import script
from .request import DECIDERS, REQUEST

ESCALATE = script(
    CHAIN,
    DECIDERS,
    REQUEST,
    """
-- One escalation step fell due: whoever removes it from the deadlines acts.
-- KEYS: keys.script_keys(id).
-- ARGV: id, member (the step's deadline member), now, step index.
-- Results: {'taken'} (another worker removed it); {'ended'} (the request is
-- no longer pending, or has no such step); {'escalated'}.
local member, now, index = ARGV[2], ARGV[3], ARGV[4]
if redis.call('ZREM', KEYS[2], member) == 0 then return {'taken'} end
if redis.call('HGET', KEYS[1], 'state') ~= '${state_pending}' then return {'ended'} end
local step = (steps() or {})[tonumber(index) + 1]
if not step then return {'ended'} end
add_approvers(step['approvers'])
redis.call('HSET', KEYS[1], 'escalated',
  ((redis.call('HGET', KEYS[1], 'escalated') or '') .. ' ' .. index))
redis.call('XADD', KEYS[3], '*', 'kind', '${job_remind}', 'id', request_id, 'steps', index)
audit('${event_escalated}', '${actor_system}', now,
  'steps', index, 'approvers', table.concat(step['approvers'], ' '))
return {'escalated'}
""",
)

TIMEOUT = script(
    CHAIN,
    DECIDERS,
    REQUEST,
    """
-- The request's own deadline fell due. on_timeout = escalate fires every
-- step not yet fired and grants one more timeout (never past the agent's
-- deadline); otherwise the caller expires the request.
-- KEYS: keys.script_keys(id).
-- ARGV: id, now.
-- Results: {'not_due'} (rescheduled meanwhile, or no deadline); {'ended'}
-- (decided or gone: the deadline is dropped); {'expire'}; {'escalated'}.
local now = ARGV[2]
local score = redis.call('ZSCORE', KEYS[2], request_id)
local clock = tonumber(now)
if not score or tonumber(score) > clock then return {'not_due'} end
local r = redis.call('HMGET', KEYS[1], 'state', 'on_timeout', 'timeout_escalated', 'deadline', 'timeout')
if r[1] ~= '${state_pending}' then
  -- Ended (or gone, its retention over): nothing left to time out.
  redis.call('ZREM', KEYS[2], request_id)
  return {'ended'}
end
local ceiling = tonumber(r[4] or '0') or 0
local escalation = steps()
if r[2] ~= 'escalate' or r[3] == '1' or (ceiling > 0 and clock >= ceiling) or not escalation then
  return {'expire'}
end
local fired, targets = {}, {}
for i, step in ipairs(escalation) do
  if redis.call('ZREM', KEYS[2], request_id .. '${escalation_mark}' .. (i - 1)) == 1 then
    fired[#fired + 1] = tostring(i - 1)
    for _, t in ipairs(step['approvers']) do targets[#targets + 1] = t end
  end
end
add_approvers(targets)
local due = clock + (tonumber(r[5]) or 0)
if ceiling > 0 and ceiling < due then due = ceiling end
redis.call('HSET', KEYS[1], 'timeout_escalated', '1', 'timeout_at', tostring(due),
  'escalated', ((redis.call('HGET', KEYS[1], 'escalated') or '') .. ' ' .. table.concat(fired, ' ')))
redis.call('ZADD', KEYS[2], due, request_id)
redis.call('XADD', KEYS[3], '*', 'kind', '${job_remind}', 'id', request_id, 'steps', table.concat(fired, ' '),
  'timeout', '1')
audit('${event_escalated}', '${actor_system}', now,
  'steps', table.concat(fired, ' '), 'approvers', table.concat(targets, ' '))
return {'escalated'}
""",
)

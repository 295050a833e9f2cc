"""CREATE and ROUTE: a request is stored, then the team policy's route for it applied."""

from __future__ import annotations

from .chain import CHAIN
from .fill import script
from .request import DECIDERS, REQUEST

CREATE = script(
    CHAIN,
    DECIDERS,
    REQUEST,
    """
-- Stores a new request (pending, its deadline indexed, a post job queued),
-- unless its id holds one already.
-- KEYS: keys.script_keys(id).
-- ARGV: id, now, deadline (0: none), actor, tool_name, call_hash,
--   mismatch id, then field, value, … (the new request's hash).
-- Results: {'created'}; {'exists', field, value, ...} (the same call asked
-- again); {'mismatch'} (this id holds another call, by tool, input or where
-- its paths lead: audited, and the request points to the mismatch id, where
-- the caller asks anew); {'invalid', 'deadline'}.
local now, deadline, actor, tool_name, call, other = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local first_field = 8
if not finite(tonumber(deadline)) then return {'invalid', 'deadline'} end
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'call_hash') ~= call then
    -- Same tool_use_id, another call: what people saw (and decided) was
    -- not this. Record it against the request they saw.
    redis.call('HSET', KEYS[1], 'latest', other)
    audit('${event_input_mismatch}', actor, now,
      'tool', tool_name, 'asked_call_hash', call, 'asked_as', other)
    return {'mismatch'}
  end
  redis.call('HDEL', KEYS[1], 'latest')
  local existing = redis.call('HGETALL', KEYS[1])
  table.insert(existing, 1, 'exists')
  return existing
end
local fields = {}
for i = first_field, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
if tonumber(deadline) > 0 then
  redis.call('ZADD', KEYS[2], deadline, request_id)
end
redis.call('ZADD', KEYS[7], now, request_id)
count_pending('', 1)
redis.call('XADD', KEYS[3], '*', 'kind', '${job_post}', 'id', request_id)
audit('${event_created}', actor, now, 'tool', redis.call('HGET', KEYS[1], 'tool_name'))
return {'created'}
""",
)

ROUTE = script(
    CHAIN,
    DECIDERS,
    REQUEST,
    """
-- Stores what the policy decided, once (a re-claimed post job keeps the first
-- route), and in the same step applies it: ``allow`` and ``deny`` end the
-- request at once, and a team allow-list rule ends it only where the person
-- who granted it could have approved it alone (one approval needed, an
-- approver of this route, not the requester unless self-approval is allowed,
-- within the budget). So no retry can ever post a call the policy decided.
-- Otherwise the rule's timeout starts, capped by the agent's own deadline.
-- Publishes in every case: a gate hook waits for the route to learn whether
-- to defer.
-- An approval with a cost needs it held on the route's counter for ``day``
-- first (approvals.spend: RESERVE, against the budget for a team rule): the
-- caller's verdict says whether it is, and the approval records its token.
-- KEYS: keys.script_keys(id).
-- ARGV: id, now, rule, channel, approvers, mention, required, allow_self,
--   timeout, on_timeout, escalation JSON, cost, budget, spend_key, mode,
--   action, message, day, team candidates JSON ([{rule, by}, ...]), groups
--   (the candidates' cached memberships in the route's approver groups,
--   JSON: approvals.groups), spend token, spend verdict ('held', 'over',
--   'invalid'; '' when nothing was reserved).
-- Results: {'missing'}; {'already', state} (routed before);
-- {'routed', state, used} (used: '1' when it approved with the spend token,
-- else ''); {'invalid', what} (what: 'timeout', 'cost', 'budget',
-- 'escalation' or 'candidates'; nothing changes).
local now, rule, channel, approvers, mention = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local required, allow_self, timeout, on_timeout = ARGV[7], ARGV[8], ARGV[9], ARGV[10]
local escalation_json, cost, budget, spend_key, mode = ARGV[11], ARGV[12], ARGV[13], ARGV[14], ARGV[15]
local action, message, day, candidates_json = ARGV[16], ARGV[17], ARGV[18], ARGV[19]
local groups_json = ARGV[20]
local spend_token, spend_verdict = ARGV[21], ARGV[22]
local held = spend_token ~= '' and spend_verdict == 'held'
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if redis.call('HGET', KEYS[1], 'routed') == '1' then return {'already', state} end
local clock, seconds = tonumber(now), tonumber(timeout)
if not finite(clock) or not finite(seconds) or seconds < 0 then return {'invalid', 'timeout'} end
if cost ~= '' and not finite(tonumber(cost)) then return {'invalid', 'cost'} end
if budget ~= '' and not finite(tonumber(budget)) then return {'invalid', 'budget'} end
local ok, escalation = pcall(cjson.decode, escalation_json)
if not ok or type(escalation) ~= 'table' then return {'invalid', 'escalation'} end
for _, step in ipairs(escalation) do
  if type(step) ~= 'table' or not finite(tonumber(step['after'])) then return {'invalid', 'escalation'} end
end
local ok2, candidates = pcall(cjson.decode, candidates_json)
if not ok2 or type(candidates) ~= 'table' then return {'invalid', 'candidates'} end
for _, c in ipairs(candidates) do
  if type(c) ~= 'table' or type(c['by']) ~= 'string' or type(c['rule']) ~= 'string' then
    return {'invalid', 'candidates'}
  end
end
redis.call('HSET', KEYS[1], 'routed', '1', 'rule', rule, 'approvers', approvers, 'mention', mention,
  'required', required, 'allow_self', allow_self, 'timeout', timeout, 'on_timeout', on_timeout,
  'escalation', escalation_json, 'cost', cost, 'budget', budget, 'spend_key', spend_key)
if channel ~= '' then redis.call('HSET', KEYS[1], 'channel', channel) end
if state == '${state_pending}' then count_pending('', -1); count_pending(rule, 1) end
if mode ~= '' then redis.call('HSET', KEYS[1], 'mode', mode) end
if state == '${state_pending}' and action == 'ask' and #candidates > 0 then
  -- Written now so may_decide and the budget see this route.
  local declined, groups = {}, memberships(groups_json)
  for _, c in ipairs(candidates) do
    local why = 'ok'
    if (tonumber(required) or 1) > 1 then why = 'needs ' .. required .. ' approvals'
    else
      local verdict = may_decide(KEYS[1], c['by'], true, groups)
      if verdict[1] ~= 'ok' then why = verdict[1]
      elseif budget ~= '' and spend_of(day) ~= false and not held then why = 'over_budget' end
    end
    if why == 'ok' then
      action = 'team'
      message = 'team allow-list ' .. c['rule'] .. ' (granted by ' .. c['by'] .. ')'
      break
    end
    declined[#declined + 1] = c['rule'] .. ' by ' .. c['by'] .. ': ' .. why
  end
  if action == 'ask' then
    audit('${event_team_rule_not_applied}', '${actor_policy}', now,
      'rule', rule, 'declined', table.concat(declined, '; '))
  end
end
if state == '${state_pending}' and action ~= 'ask' then
  local spend = false
  local new, event = '${state_denied}', '${event_auto_denied}'
  if action ~= 'deny' then
    local need, problem = spend_of(day)
    if need and not held then need, problem = nil, 'spend' end
    if need == nil then
      new, message = '${state_denied}', 'the stored cost cannot be added to the budget (' .. problem .. ')'
    else
      new, event = '${state_approved}', '${event_auto_allowed}'
      if need then spend = {spend_token, need.counter} end
    end
  end
  finish(new, '${actor_policy}', '', message, '', '', spend, event, now, 'rule', rule)
  return {'routed', new, spend and '1' or ''}
end
if state == '${state_pending}' and seconds > 0 then
  local due = clock + seconds
  local ceiling = tonumber(redis.call('HGET', KEYS[1], 'deadline') or '0') or 0
  if ceiling > 0 and ceiling < due then due = ceiling end
  redis.call('HSET', KEYS[1], 'timeout_at', tostring(due))
  redis.call('ZADD', KEYS[2], due, request_id)
end
announce()
return {'routed', state, ''}
""",
)

"""Lua functions the request scripts share: who may decide, escalation steps, spend, ending a request."""

from __future__ import annotations

# KEYS[1] is the request hash of whatever script includes it (MAY_DECIDE passes
# the hash it asks about instead). No script reads a group cache: the caller
# passes what it read of them (``approvals.groups``), so every key a script
# touches stays in its request's slot.
DECIDERS = r"""
local function words(value)
  local out = {}
  for word in string.gmatch(value or '', '%S+') do out[#out + 1] = word end
  return out
end

-- The group memberships the caller read just before the script, from the JSON
-- {"S…": [users the cache lists among those asked], ...}. A group absent from
-- it is not cached; unreadable JSON caches nothing: refused, never allowed.
local function memberships(raw)
  local ok, decoded = pcall(cjson.decode, raw or '')
  if not ok or type(decoded) ~= 'table' then return {} end
  return decoded
end

-- Whether actor may decide the request in req, given the memberships
-- (``memberships``): {'ok'}, {'self'}, {'not_approver'} or
-- {'unknown_groups', S…} (a group's membership is not cached: the caller
-- refreshes it and asks again). The approvers only ever grow, so a group
-- added after the caller read the caches is absent, hence unknown.
local function may_decide(req, actor, approving, groups)
  local r = redis.call('HMGET', req, 'requested_by', 'allow_self', 'approvers')
  if approving and r[2] ~= '1' and r[1] and r[1] ~= '' and r[1] == actor then return {'self'} end
  local approvers = words(r[3])
  if #approvers == 0 then return {'ok'} end
  for _, target in ipairs(approvers) do
    if target == actor then return {'ok'} end
  end
  local unknown = {'unknown_groups'}
  for _, target in ipairs(approvers) do
    if string.sub(target, 1, 1) == 'S' then
      local members = groups[target]
      if type(members) ~= 'table' then
        unknown[#unknown + 1] = target
      else
        for _, member in ipairs(members) do
          if member == actor then return {'ok'} end
        end
      end
    end
  end
  if #unknown > 1 then return unknown end
  return {'not_approver'}
end
"""

# After ``chain.CHAIN`` and ``DECIDERS``, in every script about one request
# (KEYS: ``keys.script_keys(id)``, ARGV[1]: its id).
REQUEST = r"""
local request_id = ARGV[1]

-- Wakes whoever waits on the request: its id on its shard's decisions channel,
-- named after KEYS[1]'s hash tag (``keys.decisions``), so in the script's own slot.
local function announce()
  redis.call('SPUBLISH', string.match(KEYS[1], '^[^{]*{[^}]*}') .. '${decisions_suffix}', request_id)
end

-- An entry about the request in KEYS[1]: who, when, its input hash and its
-- state after the change, then any extra field/value pairs.
local function audit(event, actor, now, ...)
  local fields = {'event', event, 'request', request_id, 'actor', actor, 'at', now,
    'input_hash', redis.call('HGET', KEYS[1], 'input_hash') or '',
    'state', redis.call('HGET', KEYS[1], 'state') or '', ...}
  chain(fields)
end

local function add_approvers(targets)
  local current = words(redis.call('HGET', KEYS[1], 'approvers'))
  local seen = {}
  for _, t in ipairs(current) do seen[t] = true end
  for _, t in ipairs(targets) do
    if not seen[t] then current[#current + 1] = t; seen[t] = true end
  end
  redis.call('HSET', KEYS[1], 'approvers', table.concat(current, ' '))
end

-- A number a script may store or add: not nil, not nan, not infinite.
local function finite(x)
  return x ~= nil and x == x and x ~= math.huge and x ~= -math.huge
end

-- The escalation steps of KEYS[1]; nil when they cannot be read (so a
-- caller decides before its first write, instead of failing after it).
local function steps()
  local raw = redis.call('HGET', KEYS[1], 'escalation')
  if not raw or raw == '' then return {} end
  local ok, decoded = pcall(cjson.decode, raw)
  if not ok or type(decoded) ~= 'table' then return nil end
  for _, step in ipairs(decoded) do
    if type(step) ~= 'table' or not finite(tonumber(step['after'])) or type(step['approvers']) ~= 'table' then
      return nil
    end
  end
  return decoded
end

-- What approving KEYS[1] must hold on its route's spend counter for ``day``
-- (``approvals.spend``): {counter = ..., cost = ...}, false when it costs
-- nothing (no cost or no route), or nil and a problem. The counter is another
-- slot's key: scripts only compare its name, never touch it.
local function spend_of(day)
  local r = redis.call('HMGET', KEYS[1], 'cost', 'spend_key')
  if not r[1] or r[1] == '' or not r[2] or r[2] == '' then return false end
  local cost = tonumber(r[1])
  if not finite(cost) or cost < 0 then return nil, 'cost' end
  return {counter = r[2] .. ':' .. day, cost = r[1]}
end

-- Whether the reservation the caller holds (token, counter, cost: ARGV) is
-- the one approving KEYS[1] needs (``need``, from spend_of): a held token on
-- the request's own counter for its own cost, or none where it costs nothing.
-- Anything else means the request changed since the caller read it.
local function spend_matches(need, token, counter, cost)
  if not need then return token == '' end
  return token ~= '' and counter == need.counter and cost == need.cost
end

-- The pending requests per route ('' while not routed), for the metrics to
-- read with one HGETALL instead of a scan. A count that reaches 0 is removed,
-- so requests pending from before this count existed cannot drive it below 0.
local function count_pending(route, delta)
  if redis.call('HINCRBY', KEYS[9], route, delta) <= 0 then
    redis.call('HDEL', KEYS[9], route)
  end
end

-- Ends the pending request KEYS[1] as ``new``: the decision's fields, the
-- spend reservation of an approval ({token, counter} or false), its deadlines dropped, its retention started, the
-- workers told to update Slack, the audit entry, the wake-up.
-- Callers check everything that can fail first: after the first write here
-- nothing can (Redis does not roll a failed script back).
local function finish(new, actor, name, reason, updated, always, spend, event, now, ...)
  local route = redis.call('HMGET', KEYS[1], 'routed', 'rule')
  count_pending(route[1] == '1' and (route[2] or '') or '', -1)
  redis.call('HSET', KEYS[1], 'state', new, 'decided_by', actor,
    'decided_by_name', name, 'decided_at', now, 'reason', reason)
  if updated ~= '' then redis.call('HSET', KEYS[1], 'updated_input', updated) end
  if always ~= '' then redis.call('HSET', KEYS[1], 'always', always) end
  -- The reservation this approval used: the caller commits it (and a
  -- sweep could tell a used reservation from a lost one by it).
  if spend then redis.call('HSET', KEYS[1], 'spend_token', spend[1], 'spend_counter', spend[2]) end
  redis.call('ZREM', KEYS[2], request_id)
  for i = 1, #(steps() or {}) do
    redis.call('ZREM', KEYS[2], request_id .. '${escalation_mark}' .. (i - 1))
  end
  redis.call('ZREM', KEYS[7], request_id)
  redis.call('EXPIRE', KEYS[1], '${retention}')
  redis.call('XADD', KEYS[3], '*', 'kind', '${job_update}', 'id', request_id)
  audit(event, actor, now, 'reason', reason, ...)
  announce()
end
"""

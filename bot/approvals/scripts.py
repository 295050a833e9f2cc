"""Lua scripts: each changes a request and everything that follows from the
change (deadline index, votes, job for the workers, audit entry, wake-up) in
one atomic step, so no worker ever sees half a transition and only one of
several racing workers acts.

KEYS of the request scripts are always ``RequestStore._keys(id)``:
1 request hash, 2 deadlines zset, 3 jobs stream, 4 audit stream,
5 audit head (hash of the last entry), 6 votes hash, 7 pending index.
A few keys derived from request fields (group caches, spend counters, the
thread index) are named inside the scripts: see ``keys`` on Redis Cluster.
"""

from string import Template

from . import keys

# Shared by every script. ``audit`` appends one entry whose ``hash`` covers the
# previous entry's hash and every field (length-prefixed, so no two different
# entries serialise alike): changing or removing an entry breaks the chain.
# SHA-1 because it is the only digest Redis gives scripts (redis.sha1hex).
_PRELUDE = r"""
local function chain(fields)
  local prev = redis.call('GET', KEYS[5]) or ''
  local parts = {}
  for i = 1, #fields do
    local value = tostring(fields[i])
    fields[i] = value
    parts[i] = #value .. ':' .. value
  end
  local hash = redis.sha1hex(prev .. '|' .. table.concat(parts))
  fields[#fields + 1] = 'prev'
  fields[#fields + 1] = prev
  fields[#fields + 1] = 'hash'
  fields[#fields + 1] = hash
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', '${audit_maxlen}', '*', unpack(fields))
  redis.call('SET', KEYS[5], hash)
end

-- An entry about the request in KEYS[1] (id ARGV[1]): who, when, its input
-- hash and its state after the change, then any extra field/value pairs.
local function audit(event, actor, now, ...)
  local fields = {'event', event, 'request', ARGV[1], 'actor', actor, 'at', now,
    'input_hash', redis.call('HGET', KEYS[1], 'input_hash') or '',
    'state', redis.call('HGET', KEYS[1], 'state') or '', ...}
  chain(fields)
end

local function words(value)
  local out = {}
  for word in string.gmatch(value or '', '%S+') do out[#out + 1] = word end
  return out
end

-- Whether actor may decide the request in req: {'ok'}, {'self'},
-- {'not_approver'} or {'unknown_groups', S…} (a group's membership is not
-- cached: the caller refreshes it and asks again).
local function may_decide(req, actor, approving)
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
      local members = '${group_prefix}' .. target
      if redis.call('EXISTS', members) == 0 then
        unknown[#unknown + 1] = target
      elseif redis.call('SISMEMBER', members, actor) == 1 then
        return {'ok'}
      end
    end
  end
  if #unknown > 1 then return unknown end
  return {'not_approver'}
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

local function steps()
  local raw = redis.call('HGET', KEYS[1], 'escalation')
  if not raw or raw == '' then return {} end
  return cjson.decode(raw)
end
"""

_CONSTANTS = {
    "audit_maxlen": keys.AUDIT_MAXLEN,
    "group_prefix": keys.USERGROUP_PREFIX,
    "thread_prefix": keys.THREAD_PREFIX,
    "retention": keys.RETENTION_SECONDS,
    "decisions": keys.DECISIONS,
}


def _script(body: str) -> str:
    return Template(_PRELUDE + body).substitute(_CONSTANTS)


# ARGV: id, now, deadline, actor, field, value, ...
CREATE = _script("""
if redis.call('EXISTS', KEYS[1]) == 1 then
  local existing = redis.call('HGETALL', KEYS[1])
  table.insert(existing, 1, 'exists')
  return existing
end
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
if tonumber(ARGV[3]) > 0 then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
redis.call('ZADD', KEYS[7], ARGV[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', 'kind', 'post', 'id', ARGV[1])
audit('created', ARGV[4], ARGV[2], 'tool', redis.call('HGET', KEYS[1], 'tool_name'))
return {'created'}
""")

# ARGV: id, now, rule, channel, approvers, mention, required, allow_self,
#       timeout, on_timeout, escalation JSON, cost, budget, spend_key, mode
# Stores what the policy decided, once (a re-claimed post job keeps the first
# route), and starts the rule's timeout, capped by the agent's own deadline.
# Publishes like a decision does: a gate hook waits for the route to learn
# whether to defer.
ROUTE = _script("""
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if redis.call('HGET', KEYS[1], 'routed') == '1' then return {'already', state} end
redis.call('HSET', KEYS[1], 'routed', '1', 'rule', ARGV[3], 'approvers', ARGV[5], 'mention', ARGV[6],
  'required', ARGV[7], 'allow_self', ARGV[8], 'timeout', ARGV[9], 'on_timeout', ARGV[10],
  'escalation', ARGV[11], 'cost', ARGV[12], 'budget', ARGV[13], 'spend_key', ARGV[14])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'channel', ARGV[4]) end
if ARGV[15] ~= '' then redis.call('HSET', KEYS[1], 'mode', ARGV[15]) end
local timeout = tonumber(ARGV[9]) or 0
if state == 'pending' and timeout > 0 then
  local due = tonumber(ARGV[2]) + timeout
  local ceiling = tonumber(redis.call('HGET', KEYS[1], 'deadline') or '0') or 0
  if ceiling > 0 and ceiling < due then due = ceiling end
  redis.call('HSET', KEYS[1], 'timeout_at', tostring(due))
  redis.call('ZADD', KEYS[2], due, ARGV[1])
end
redis.call('PUBLISH', '${decisions}', ARGV[1])
return {'routed', state}
""")

# ARGV: id, channel, ts, now
# Records where the message went and starts the escalation steps' clocks,
# which count from the moment people can see it (a reminder needs the thread).
# Never overwrites: a second post of the same request is reported, not kept.
MARK_POSTED = _script("""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
if redis.call('HGET', KEYS[1], 'ts') then return {'already'} end
local now = tonumber(ARGV[4])
redis.call('HSET', KEYS[1], 'posted_channel', ARGV[2], 'ts', ARGV[3])
local state = redis.call('HGET', KEYS[1], 'state')
local retention = tonumber('${retention}')
redis.call('SET', '${thread_prefix}' .. ARGV[2] .. ':' .. ARGV[3], ARGV[1], 'EX', retention)
if state == 'pending' then
  for i, step in ipairs(steps()) do
    redis.call('ZADD', KEYS[2], now + tonumber(step['after']), ARGV[1] .. ':esc:' .. (i - 1))
  end
end
audit('posted', 'system', ARGV[4], 'channel', ARGV[2], 'ts', ARGV[3],
  'rule', redis.call('HGET', KEYS[1], 'rule') or '')
return {'ok', state}
""")

# ARGV: id, new_state, actor, actor_name, reason, updated_input, now,
#       audit_event, always, day, check, expected_revision
# With check = '1' (a person deciding) the approver rules apply first, and an
# approval is a vote until ``required`` distinct approvers agree. An edit
# (updated_input) resets earlier votes and counts as the editor's.
DECIDE = _script("""
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if state ~= 'pending' then return {'lost'} end
local new, actor, now = ARGV[2], ARGV[3], ARGV[7]
local event = ARGV[8]
if ARGV[11] == '1' then
  local approving = new == 'approved'
  local verdict = may_decide(KEYS[1], actor, approving)
  if verdict[1] ~= 'ok' then return verdict end
  if approving then
    if ARGV[6] ~= '' then
      redis.call('DEL', KEYS[6])
      redis.call('HSET', KEYS[1], 'updated_input', ARGV[6])
      redis.call('HINCRBY', KEYS[1], 'revision', 1)
    else
      local revision = redis.call('HGET', KEYS[1], 'revision') or '0'
      if ARGV[12] ~= '' and ARGV[12] ~= revision then return {'stale'} end
      if redis.call('HEXISTS', KEYS[6], actor) == 1 then return {'voted'} end
    end
    local required = tonumber(redis.call('HGET', KEYS[1], 'required') or '1') or 1
    if required > 1 then
      redis.call('HSET', KEYS[6], actor, now .. ' ' .. ARGV[4])
      redis.call('EXPIRE', KEYS[6], '${retention}')
      local count = redis.call('HLEN', KEYS[6])
      if count < required then
        redis.call('XADD', KEYS[3], '*', 'kind', 'update', 'id', ARGV[1])
        audit(ARGV[6] ~= '' and 'modified_vote' or 'vote', actor, now, 'votes', count .. '/' .. required)
        return {'vote', tostring(count), tostring(required)}
      end
      -- The last vote approves what is now proposed, edited or not.
      if event == 'approved' and redis.call('HGET', KEYS[1], 'updated_input') then event = 'modified' end
    end
  end
end
redis.call('HSET', KEYS[1], 'state', new, 'decided_by', actor,
  'decided_by_name', ARGV[4], 'decided_at', now, 'reason', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'updated_input', ARGV[6]) end
if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'always', ARGV[9]) end
if new == 'approved' then
  local r = redis.call('HMGET', KEYS[1], 'cost', 'spend_key')
  if r[1] and r[1] ~= '' and r[2] and r[2] ~= '' then
    local spend = r[2] .. ':' .. ARGV[10]
    redis.call('INCRBYFLOAT', spend, r[1])
    redis.call('EXPIRE', spend, 8 * 86400)
  end
end
redis.call('ZREM', KEYS[2], ARGV[1])
for i = 1, #steps() do redis.call('ZREM', KEYS[2], ARGV[1] .. ':esc:' .. (i - 1)) end
redis.call('ZREM', KEYS[7], ARGV[1])
redis.call('EXPIRE', KEYS[1], '${retention}')
redis.call('XADD', KEYS[3], '*', 'kind', 'update', 'id', ARGV[1])
audit(event, actor, now, 'reason', ARGV[5])
redis.call('PUBLISH', '${decisions}', ARGV[1])
return {'won'}
""")

# ARGV: id, member, now, step index
# One escalation step fell due: whoever removes it from the deadlines acts.
ESCALATE = _script("""
if redis.call('ZREM', KEYS[2], ARGV[2]) == 0 then return {'taken'} end
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return {'ended'} end
local step = steps()[tonumber(ARGV[4]) + 1]
if not step then return {'ended'} end
add_approvers(step['approvers'])
redis.call('HSET', KEYS[1], 'escalated',
  ((redis.call('HGET', KEYS[1], 'escalated') or '') .. ' ' .. ARGV[4]))
redis.call('XADD', KEYS[3], '*', 'kind', 'remind', 'id', ARGV[1], 'steps', ARGV[4])
audit('escalated', 'system', ARGV[3], 'steps', ARGV[4], 'approvers', table.concat(step['approvers'], ' '))
return {'escalated'}
""")

# ARGV: id, now
# The request's own deadline fell due. on_timeout = escalate fires every
# step not yet fired and grants one more timeout (never past the agent's
# deadline); otherwise the caller expires the request.
TIMEOUT = _script("""
local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
local now = tonumber(ARGV[2])
if not score or tonumber(score) > now then return {'not_due'} end
local r = redis.call('HMGET', KEYS[1], 'state', 'on_timeout', 'timeout_escalated', 'deadline', 'timeout')
if r[1] ~= 'pending' then
  -- Ended (or gone, its retention over): nothing left to time out.
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {'ended'}
end
local ceiling = tonumber(r[4] or '0') or 0
if r[2] ~= 'escalate' or r[3] == '1' or (ceiling > 0 and now >= ceiling) then return {'expire'} end
local fired, targets = {}, {}
for i, step in ipairs(steps()) do
  if redis.call('ZREM', KEYS[2], ARGV[1] .. ':esc:' .. (i - 1)) == 1 then
    fired[#fired + 1] = tostring(i - 1)
    for _, t in ipairs(step['approvers']) do targets[#targets + 1] = t end
  end
end
add_approvers(targets)
local due = now + (tonumber(r[5]) or 0)
if ceiling > 0 and ceiling < due then due = ceiling end
redis.call('HSET', KEYS[1], 'timeout_escalated', '1', 'timeout_at', tostring(due),
  'escalated', ((redis.call('HGET', KEYS[1], 'escalated') or '') .. ' ' .. table.concat(fired, ' ')))
redis.call('ZADD', KEYS[2], due, ARGV[1])
redis.call('XADD', KEYS[3], '*', 'kind', 'remind', 'id', ARGV[1], 'steps', table.concat(fired, ' '), 'timeout', '1')
audit('escalated', 'system', ARGV[2], 'steps', table.concat(fired, ' '), 'approvers', table.concat(targets, ' '))
return {'escalated'}
""")

# KEYS: request hashes. ARGV: actor, approving ('1' or '').
# For each request, whether actor may decide it now (the rule DECIDE
# applies): 'ok', 'ended', 'self', 'not_approver' or 'unknown_groups S… S…'.
MAY_DECIDE = _script("""
local out = {}
for i, req in ipairs(KEYS) do
  if redis.call('HGET', req, 'state') ~= 'pending' then
    out[i] = 'ended'
  else
    out[i] = table.concat(may_decide(req, ARGV[1], ARGV[2] == '1'), ' ')
  end
end
return out
""")

# KEYS: as the request scripts (only 4 and 5 are used). ARGV: request id or '',
# event, actor, now, field, value, … An entry that is not a request
# transition (team rule changes, a call the team allow-list let through, a
# thread's discussion), chained like the rest.
APPEND_AUDIT = _script("""
local fields = {'event', ARGV[2], 'request', ARGV[1], 'actor', ARGV[3], 'at', ARGV[4]}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
chain(fields)
return 'ok'
""")

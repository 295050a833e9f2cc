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
-- The audit chain (see approvals/audit.py). The start of the chain is
-- explicit: the first entry ever written is a genesis (prev ''), and the
-- oldest entries only ever leave in a trim that is itself an entry of the
-- chain and moves the anchor (the prev the oldest kept entry must have).
-- Field names 'prev' and 'hash' are the chain's own: never hashed.
local function audit_value(list, name)
  for i = 1, #list - 1, 2 do
    if list[i] == name then return list[i + 1] end
  end
  return nil
end

local function audit_hash(prev, list)
  local parts = {}
  for i = 1, #list - 1, 2 do
    local name, value = list[i], list[i + 1]
    if name ~= 'prev' and name ~= 'hash' then
      parts[#parts + 1] = #name .. ':' .. name .. #value .. ':' .. value
    end
  end
  return redis.sha1hex(prev .. '|' .. table.concat(parts))
end

local function audit_link(fields)
  for i = 1, #fields do fields[i] = tostring(fields[i]) end
  local prev = redis.call('GET', KEYS[5]) or ''
  local hash = audit_hash(prev, fields)
  fields[#fields + 1] = 'prev'
  fields[#fields + 1] = prev
  fields[#fields + 1] = 'hash'
  fields[#fields + 1] = hash
  redis.call('XADD', KEYS[4], '*', unpack(fields))
  redis.call('SET', KEYS[5], hash)
end

-- Whether entries (an XRANGE reply from the oldest) start where the anchor
-- says, each following the one before, none changed.
local function audit_intact(entries, anchor)
  local prev = anchor
  for i, entry in ipairs(entries) do
    local list = entry[2]
    if audit_value(list, 'prev') ~= prev then return false end
    if i == 1 and prev == '' and audit_value(list, 'event') ~= '${audit_genesis}' then return false end
    if audit_hash(prev, list) ~= audit_value(list, 'hash') then return false end
    prev = audit_value(list, 'hash')
  end
  return true
end

-- Past the cap the oldest entries go, a batch at a time, with a 'trimmed'
-- entry naming them, and the anchor moves to the last one's hash. Only
-- intact entries are trimmed: a trim never erases the evidence of a removed
-- or changed entry (verification keeps failing until someone looks).
local function audit_trim(now)
  -- pcall: a cap or anchor of the wrong type must not fail the transition
  -- this entry belongs to (a script is not rolled back).
  local raw = redis.pcall('GET', '${audit_cap}')
  local cap = type(raw) == 'string' and tonumber(raw) or nil
  if not cap or cap ~= cap or cap < 1 or cap > ${audit_maxlen} then cap = ${audit_maxlen} end
  cap = math.floor(cap)
  local length = redis.call('XLEN', KEYS[4])
  if length <= cap then return end
  local count = math.min(length - cap + math.min(${audit_trim_batch}, math.floor(cap / 2)),
    ${audit_trim_max}, length - 1)
  local oldest = redis.call('XRANGE', KEYS[4], '-', '+', 'COUNT', count + 1)
  local anchor = redis.pcall('GET', '${audit_anchor}')
  if type(anchor) ~= 'string' or not audit_intact(oldest, anchor) then return end
  local kept = oldest[count + 1]
  local last_hash = audit_value(kept[2], 'prev')
  redis.call('XTRIM', KEYS[4], 'MINID', kept[1])
  redis.call('SET', '${audit_anchor}', last_hash)
  audit_link({'event', '${audit_trimmed}', 'request', '', 'actor', 'system', 'at', now,
    'removed', count, 'first_id', oldest[1][1], 'last_id', oldest[count][1],
    'last_hash', last_hash, 'kept_from', kept[1], 'cap', cap})
end

-- Appends one entry (field/value list) to the audit stream KEYS[4] after
-- the head KEYS[5]: a genesis first if the log is new, then a trim if the
-- stream is over its cap.
local function chain(fields)
  local now = tostring(audit_value(fields, 'at') or '')
  if redis.call('EXISTS', KEYS[5]) == 0 then
    if redis.call('EXISTS', '${audit_anchor}') == 0 and redis.call('XLEN', KEYS[4]) == 0 then
      audit_link({'event', '${audit_genesis}', 'request', '', 'actor', 'system', 'at', now})
      redis.call('SET', '${audit_anchor}', '')
    else
      -- The head is gone but the log is not new: say so in the chain (this
      -- entry's link fails verification) instead of passing for a genesis.
      local last = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)[1]
      audit_link({'event', '${audit_head_lost}', 'request', '', 'actor', 'system', 'at', now,
        'last_id', last and last[1] or ''})
    end
  end
  audit_link(fields)
  audit_trim(now)
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

-- What approving KEYS[1] adds to its route's spend counter for ``day``:
-- key and amount, nothing (no cost or no route), or nil and a problem.
local function spend_plan(day)
  local r = redis.call('HMGET', KEYS[1], 'cost', 'spend_key')
  if not r[1] or r[1] == '' or not r[2] or r[2] == '' then return false end
  local cost = tonumber(r[1])
  if not finite(cost) or cost < 0 then return nil, 'cost' end
  local key = r[2] .. ':' .. day
  local spent = tonumber(redis.call('GET', key) or '0')
  if not finite(spent) or not finite(spent + cost) then return nil, 'spend' end
  return {key, r[1]}
end

-- Whether approving KEYS[1] keeps its route within its daily budget.
local function within_budget(day)
  local budget = tonumber(redis.call('HGET', KEYS[1], 'budget') or '')
  if not budget then return true end
  local plan = spend_plan(day)
  if plan == nil then return false end
  if not plan then return true end
  return tonumber(redis.call('GET', plan[1]) or '0') + tonumber(plan[2]) <= budget
end

-- The pending requests per route ('' while not routed), for the metrics to
-- read with one HGETALL instead of a scan. A count that reaches 0 is removed,
-- so requests pending from before this count existed cannot drive it below 0.
local function count_pending(route, delta)
  if redis.call('HINCRBY', '${pending_routes}', route, delta) <= 0 then
    redis.call('HDEL', '${pending_routes}', route)
  end
end

-- Ends the pending request KEYS[1] (id ARGV[1]) as ``new``: the decision's
-- fields, the spend of an approval, its deadlines dropped, its retention
-- started, the workers told to update Slack, the audit entry, the wake-up.
-- Callers check everything that can fail first: after the first write here
-- nothing can (Redis does not roll a failed script back).
local function finish(new, actor, name, reason, updated, always, spend, event, now, ...)
  local route = redis.call('HMGET', KEYS[1], 'routed', 'rule')
  count_pending(route[1] == '1' and (route[2] or '') or '', -1)
  redis.call('HSET', KEYS[1], 'state', new, 'decided_by', actor,
    'decided_by_name', name, 'decided_at', now, 'reason', reason)
  if updated ~= '' then redis.call('HSET', KEYS[1], 'updated_input', updated) end
  if always ~= '' then redis.call('HSET', KEYS[1], 'always', always) end
  if spend then
    redis.call('INCRBYFLOAT', spend[1], spend[2])
    redis.call('EXPIRE', spend[1], 8 * 86400)
  end
  redis.call('ZREM', KEYS[2], ARGV[1])
  for i = 1, #(steps() or {}) do redis.call('ZREM', KEYS[2], ARGV[1] .. ':esc:' .. (i - 1)) end
  redis.call('ZREM', KEYS[7], ARGV[1])
  redis.call('EXPIRE', KEYS[1], '${retention}')
  redis.call('XADD', KEYS[3], '*', 'kind', 'update', 'id', ARGV[1])
  audit(event, actor, now, 'reason', reason, ...)
  redis.call('PUBLISH', '${decisions}', ARGV[1])
end
"""

_CONSTANTS = {
    "audit_maxlen": keys.AUDIT_MAXLEN,
    "audit_anchor": keys.AUDIT_ANCHOR,
    "audit_cap": keys.AUDIT_CAP,
    "audit_trim_batch": keys.AUDIT_TRIM_BATCH,
    "audit_trim_max": keys.AUDIT_TRIM_MAX,
    "audit_genesis": keys.AUDIT_GENESIS,
    "audit_trimmed": keys.AUDIT_TRIMMED,
    "audit_head_lost": keys.AUDIT_HEAD_LOST,
    "group_prefix": keys.USERGROUP_PREFIX,
    "thread_prefix": keys.THREAD_PREFIX,
    "retention": keys.RETENTION_SECONDS,
    "decisions": keys.DECISIONS,
    "pending_routes": keys.PENDING_ROUTES,
}


def _script(body: str) -> str:
    return Template(_PRELUDE + body).substitute(_CONSTANTS)


# ARGV: id, now, deadline, actor, tool_name, call_hash, mismatch id, field, value, ...
# Results: {'created'}; {'exists', field, value, ...} (the same call asked
# again); {'mismatch'} (this id holds another call, by tool, input or where
# its paths lead: audited, and the request points to the mismatch id, where
# the caller asks anew); {'invalid', what}.
CREATE = _script("""
local deadline = tonumber(ARGV[3])
if not finite(deadline) then return {'invalid', 'deadline'} end
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'call_hash') ~= ARGV[6] then
    -- Same tool_use_id, another call: what people saw (and decided) was
    -- not this. Record it against the request they saw.
    redis.call('HSET', KEYS[1], 'latest', ARGV[7])
    audit('input_mismatch', ARGV[4], ARGV[2], 'tool', ARGV[5], 'asked_call_hash', ARGV[6], 'asked_as', ARGV[7])
    return {'mismatch'}
  end
  redis.call('HDEL', KEYS[1], 'latest')
  local existing = redis.call('HGETALL', KEYS[1])
  table.insert(existing, 1, 'exists')
  return existing
end
local fields = {}
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
if deadline > 0 then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
redis.call('ZADD', KEYS[7], ARGV[2], ARGV[1])
count_pending('', 1)
redis.call('XADD', KEYS[3], '*', 'kind', 'post', 'id', ARGV[1])
audit('created', ARGV[4], ARGV[2], 'tool', redis.call('HGET', KEYS[1], 'tool_name'))
return {'created'}
""")

# ARGV: id, now, rule, channel, approvers, mention, required, allow_self,
#       timeout, on_timeout, escalation JSON, cost, budget, spend_key, mode,
#       action, message, day, team candidates JSON ([{rule, by}, ...])
# Stores what the policy decided, once (a re-claimed post job keeps the first
# route), and in the same step applies it: ``allow`` and ``deny`` end the
# request at once, and a team allow-list rule ends it only where the person
# who granted it could have approved it alone (one approval needed, an
# approver of this route, not the requester unless self-approval is allowed,
# within the budget). So no retry can ever post a call the policy decided.
# Otherwise the rule's timeout starts, capped by the agent's own deadline.
# Publishes in every case: a gate hook waits for the route to learn whether
# to defer.
# Results: {'missing'}; {'already', state}; {'routed', state}; {'invalid', what}.
ROUTE = _script("""
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if redis.call('HGET', KEYS[1], 'routed') == '1' then return {'already', state} end
local now, action, day = tonumber(ARGV[2]), ARGV[16], ARGV[18]
local timeout = tonumber(ARGV[9])
if not finite(now) or not finite(timeout) or timeout < 0 then return {'invalid', 'timeout'} end
for i, field in pairs({[12] = 'cost', [13] = 'budget'}) do
  if ARGV[i] ~= '' and not finite(tonumber(ARGV[i])) then return {'invalid', field} end
end
local ok, escalation = pcall(cjson.decode, ARGV[11])
if not ok or type(escalation) ~= 'table' then return {'invalid', 'escalation'} end
for _, step in ipairs(escalation) do
  if type(step) ~= 'table' or not finite(tonumber(step['after'])) then return {'invalid', 'escalation'} end
end
local ok2, candidates = pcall(cjson.decode, ARGV[19])
if not ok2 or type(candidates) ~= 'table' then return {'invalid', 'candidates'} end
for _, c in ipairs(candidates) do
  if type(c) ~= 'table' or type(c['by']) ~= 'string' or type(c['rule']) ~= 'string' then
    return {'invalid', 'candidates'}
  end
end
local message = ARGV[17]
redis.call('HSET', KEYS[1], 'routed', '1', 'rule', ARGV[3], 'approvers', ARGV[5], 'mention', ARGV[6],
  'required', ARGV[7], 'allow_self', ARGV[8], 'timeout', ARGV[9], 'on_timeout', ARGV[10],
  'escalation', ARGV[11], 'cost', ARGV[12], 'budget', ARGV[13], 'spend_key', ARGV[14])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'channel', ARGV[4]) end
if state == 'pending' then count_pending('', -1); count_pending(ARGV[3], 1) end
if ARGV[15] ~= '' then redis.call('HSET', KEYS[1], 'mode', ARGV[15]) end
if state == 'pending' and action == 'ask' and #candidates > 0 then
  -- Written now so may_decide and the budget see this route.
  local declined = {}
  for _, c in ipairs(candidates) do
    local why = 'ok'
    if (tonumber(ARGV[7]) or 1) > 1 then why = 'needs ' .. ARGV[7] .. ' approvals'
    else
      local verdict = may_decide(KEYS[1], c['by'], true)
      if verdict[1] ~= 'ok' then why = verdict[1]
      elseif not within_budget(day) then why = 'over_budget' end
    end
    if why == 'ok' then
      action = 'team'
      message = 'team allow-list ' .. c['rule'] .. ' (granted by ' .. c['by'] .. ')'
      break
    end
    declined[#declined + 1] = c['rule'] .. ' by ' .. c['by'] .. ': ' .. why
  end
  if action == 'ask' then
    audit('team_rule_not_applied', 'policy', ARGV[2], 'rule', ARGV[3], 'declined', table.concat(declined, '; '))
  end
end
if state == 'pending' and action ~= 'ask' then
  local spend = false
  local new, event = 'denied', 'auto_denied'
  if action ~= 'deny' then
    local problem
    spend, problem = spend_plan(day)
    if spend == nil then
      new, message = 'denied', 'the stored cost cannot be added to the budget (' .. problem .. ')'
      spend = false
    else
      new, event = 'approved', 'auto_allowed'
    end
  end
  finish(new, 'policy', '', message, '', '', spend, event, ARGV[2], 'rule', ARGV[3])
  return {'routed', new}
end
if state == 'pending' and timeout > 0 then
  local due = now + timeout
  local ceiling = tonumber(redis.call('HGET', KEYS[1], 'deadline') or '0') or 0
  if ceiling > 0 and ceiling < due then due = ceiling end
  redis.call('HSET', KEYS[1], 'timeout_at', tostring(due))
  redis.call('ZADD', KEYS[2], due, ARGV[1])
end
redis.call('PUBLISH', '${decisions}', ARGV[1])
return {'routed', state}
""")

# ARGV: id, now
# A worker is about to post the request: remember when (the first attempt's
# time is kept), so a retry can look for a message that reached Slack but was
# never recorded. Never creates a request that is gone.
START_POST = _script("""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
redis.call('HSETNX', KEYS[1], 'post_started', ARGV[2])
return {'ok'}
""")

# ARGV: id, channel, ts, now, shown (digest of what the post showed, or '')
# Records where the message went and starts the escalation steps' clocks,
# which count from the moment people can see it (a reminder needs the thread).
# Never overwrites: a second post of the same request is reported, not kept.
MARK_POSTED = _script("""
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
if redis.call('HGET', KEYS[1], 'ts') then return {'already'} end
local now = tonumber(ARGV[4])
local escalation = steps() or {}  -- unreadable steps are never fired (ROUTE refuses them)
redis.call('HSET', KEYS[1], 'posted_channel', ARGV[2], 'ts', ARGV[3])
if ARGV[5] and ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'shown', ARGV[5]) end
local state = redis.call('HGET', KEYS[1], 'state')
local retention = tonumber('${retention}')
redis.call('SET', '${thread_prefix}' .. ARGV[2] .. ':' .. ARGV[3], ARGV[1], 'EX', retention)
if state == 'pending' then
  for i, step in ipairs(escalation) do
    redis.call('ZADD', KEYS[2], now + tonumber(step['after']), ARGV[1] .. ':esc:' .. (i - 1))
  end
end
audit('posted', 'system', ARGV[4], 'channel', ARGV[2], 'ts', ARGV[3],
  'rule', redis.call('HGET', KEYS[1], 'rule') or '')
return {'ok', state}
""")

# ARGV: id, new_state, actor, actor_name, reason, updated_input, now,
#       audit_event, always, day, check, expected_revision, stop
# With check = '1' (a person deciding) the approver rules apply first, and an
# approval or an answer is a vote until ``required`` distinct approvers agree.
# A person's approval or answer names the revision they saw, edits and
# proposed answers included: a replayed or outdated click, pick or form is
# refused. An edit (updated_input) resets earlier votes and counts as the
# editor's. An answer (new_state 'answered', updated_input = the input with
# its answers) is a proposal: the same answers as the one proposed add a
# vote, other answers replace it, reset the votes and count as their
# author's; the last of ``required`` agreeing ends the request answered.
# Results: {'missing'}, {'lost'}, {'won'}, {'vote', count, required},
# {'stale'}, {'voted'} (the same person approving, or giving the proposed
# answers, again), {'self'}, {'not_approver'}, {'unknown_groups', S…},
# {'no_always'} (Always allow where more than one approval is needed),
# {'invalid', what} (what = 'cost' or 'spend': the stored cost cannot be
# counted; 'answers': an answer without answers): nothing changes.
DECIDE = _script("""
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if state ~= 'pending' then return {'lost'} end
local new, actor, name, reason, updated, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local event, always, day, check, expected, stop = ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13]
local approving, answering = new == 'approved', new == 'answered'
local spend = false
if approving then
  local problem
  spend, problem = spend_plan(day)
  if spend == nil then return {'invalid', problem} end
end
local required = tonumber(redis.call('HGET', KEYS[1], 'required') or '1') or 1
if check == '1' then
  local verdict = may_decide(KEYS[1], actor, approving)
  if verdict[1] ~= 'ok' then return verdict end
  if (approving or answering) and
      (expected == '' or expected ~= (redis.call('HGET', KEYS[1], 'revision') or '0')) then
    return {'stale'}
  end
  if answering and updated == '' then return {'invalid', 'answers'} end
  if answering and required > 1 then
    local agrees = updated == redis.call('HGET', KEYS[1], 'updated_input')
    if agrees and redis.call('HEXISTS', KEYS[6], actor) == 1 then return {'voted'} end
    -- Every check passed: from here on nothing can fail.
    if not agrees then
      -- Other answers than the ones proposed: the earlier votes were for those.
      redis.call('DEL', KEYS[6])
      redis.call('HSET', KEYS[1], 'updated_input', updated, 'edited_by', actor)
      redis.call('HINCRBY', KEYS[1], 'revision', 1)
    end
    redis.call('HSET', KEYS[6], actor, now .. ' ' .. name)
    redis.call('EXPIRE', KEYS[6], '${retention}')
    local count = redis.call('HLEN', KEYS[6])
    if count < required then
      redis.call('XADD', KEYS[3], '*', 'kind', 'update', 'id', ARGV[1])
      audit(agrees and 'answer_vote' or 'answer_proposed', actor, now, 'votes', count .. '/' .. required,
        'proposal_hash', redis.sha1hex(updated))
      return {'vote', tostring(count), tostring(required)}
    end
    -- The last of ``required`` agreed with the proposal: it is the answer.
  end
  if approving then
    if always ~= '' and required > 1 then return {'no_always'} end
    if updated == '' and redis.call('HEXISTS', KEYS[6], actor) == 1 then return {'voted'} end
    -- Every check passed: from here on nothing can fail.
    if updated ~= '' then
      redis.call('DEL', KEYS[6])
      redis.call('HSET', KEYS[1], 'updated_input', updated, 'edited_by', actor)
      redis.call('HINCRBY', KEYS[1], 'revision', 1)
    end
    if required > 1 then
      redis.call('HSET', KEYS[6], actor, now .. ' ' .. name)
      redis.call('EXPIRE', KEYS[6], '${retention}')
      local count = redis.call('HLEN', KEYS[6])
      if count < required then
        redis.call('XADD', KEYS[3], '*', 'kind', 'update', 'id', ARGV[1])
        audit(updated ~= '' and 'modified_vote' or 'vote', actor, now, 'votes', count .. '/' .. required)
        return {'vote', tostring(count), tostring(required)}
      end
      -- The last vote approves what is now proposed, edited or not.
      if event == 'approved' and redis.call('HGET', KEYS[1], 'updated_input') then event = 'modified' end
    end
  end
end
-- Deny and stop: the agent's run ends too (only a deny stops; Decision checks it).
if stop == '1' and new == 'denied' then redis.call('HSET', KEYS[1], 'stop', '1') end
finish(new, actor, name, reason, updated, always, spend, event, now)
return {'won'}
""")

# ARGV: id, member, now, step index
# One escalation step fell due: whoever removes it from the deadlines acts.
ESCALATE = _script("""
if redis.call('ZREM', KEYS[2], ARGV[2]) == 0 then return {'taken'} end
if redis.call('HGET', KEYS[1], 'state') ~= 'pending' then return {'ended'} end
local step = (steps() or {})[tonumber(ARGV[4]) + 1]
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
local escalation = steps()
if r[2] ~= 'escalate' or r[3] == '1' or (ceiling > 0 and now >= ceiling) or not escalation then return {'expire'} end
local fired, targets = {}, {}
for i, step in ipairs(escalation) do
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

# KEYS: as the request scripts (only 4 and 5 are used; ``chain`` names the
# audit anchor and cap keys itself). ARGV: request id or '', event, actor,
# now, field, value, … An entry that is not a request transition (team rule
# changes, a call the team allow-list let through, a thread's discussion),
# chained like the rest. Result: 'ok'.
APPEND_AUDIT = _script("""
local fields = {'event', ARGV[2], 'request', ARGV[1], 'actor', ARGV[3], 'at', ARGV[4]}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
chain(fields)
return 'ok'
""")

# KEYS: a request hash. ARGV: field, value, ...
# Sets fields of a request that still exists (never re-creates one whose
# retention ended). Result: 1 if set, 0 if the request is gone.
SET_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# KEYS: the claims of the identical copies of one call (agent.call_claims), in order.
# A call ran: if a hook allowed one of them, that is the one that ran (used up here);
# otherwise the oldest one a hook still asks Slack about was answered in the terminal.
# Results: {'allowed'}, {'waiting', request id}, {'none'}.
CALL_RAN = """
for i = 1, #KEYS do
  local held = redis.call('GET', KEYS[i])
  if held and string.sub(held, 1, 8) == 'allowed:' then
    redis.call('SET', KEYS[i], '${answered}', 'KEEPTTL')
    return {'allowed'}
  end
end
for i = 1, #KEYS do
  local request = string.match(redis.call('GET', KEYS[i]) or '', '^wait:[^:]+:(.+)$')
  if request then return {'waiting', request} end
end
return {'none'}
""".replace("${answered}", keys.CALL_ANSWERED)

# KEYS: the jobs stream. ARGV: the consumer group, the stopping worker's consumer name, then ids
# of jobs it took and did not finish. Each it still holds goes back to the end of the stream as a
# new entry (what the old one held), so another worker reads it at once instead of re-claiming it
# after ``job_retry_after``. One another worker re-claimed meanwhile is its, and one finished is
# gone: both are skipped. Result: how many were given back.
RELEASE_JOBS = """
local group, consumer = ARGV[1], ARGV[2]
local released = 0
for i = 3, #ARGV do
  local held = redis.call('XPENDING', KEYS[1], group, ARGV[i], ARGV[i], 1, consumer)[1]
  local entry = held and redis.call('XRANGE', KEYS[1], ARGV[i], ARGV[i])[1]
  if entry then
    redis.call('XADD', KEYS[1], '*', unpack(entry[2]))
    redis.call('XACK', KEYS[1], group, ARGV[i])
    redis.call('XDEL', KEYS[1], ARGV[i])
    released = released + 1
  end
end
return released
"""

# KEYS: a lock. ARGV: the holder's token. Deletes the lock only if this holder
# still has it (it may have expired and been taken by another). Result: 1 or 0.
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

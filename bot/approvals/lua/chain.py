"""The audit chain in Lua (see ``approvals.audit``), and the script that appends an entry by itself."""

from __future__ import annotations

from .fill import script

# Shared by every script that writes an entry. ``chain`` appends one entry whose
# ``hash`` covers the previous entry's hash and every field (length-prefixed, so
# no two different entries serialise alike): changing or removing an entry breaks
# the chain. SHA-1 because it is the only digest Redis gives scripts (redis.sha1hex).
# Uses KEYS[4] (the audit stream) and KEYS[5] (its head).
CHAIN = r"""
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
    if i == 1 and prev == '' and audit_value(list, 'event') ~= '${event_genesis}' then return false end
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
  local raw = redis.pcall('GET', KEYS[10])
  local cap = type(raw) == 'string' and tonumber(raw) or nil
  if not cap or cap ~= cap or cap < 1 or cap > ${audit_maxlen} then cap = ${audit_maxlen} end
  cap = math.floor(cap)
  local length = redis.call('XLEN', KEYS[4])
  if length <= cap then return end
  local count = math.min(length - cap + math.min(${audit_trim_batch}, math.floor(cap / 2)),
    ${audit_trim_max}, length - 1)
  local oldest = redis.call('XRANGE', KEYS[4], '-', '+', 'COUNT', count + 1)
  local anchor = redis.pcall('GET', KEYS[8])
  if type(anchor) ~= 'string' or not audit_intact(oldest, anchor) then return end
  local kept = oldest[count + 1]
  local last_hash = audit_value(kept[2], 'prev')
  redis.call('XTRIM', KEYS[4], 'MINID', kept[1])
  redis.call('SET', KEYS[8], last_hash)
  audit_link({'event', '${event_trimmed}', 'request', '', 'actor', '${actor_system}', 'at', now,
    'removed', count, 'first_id', oldest[1][1], 'last_id', oldest[count][1],
    'last_hash', last_hash, 'kept_from', kept[1], 'cap', cap})
end

-- Appends one entry (field/value list) to the audit stream KEYS[4] after
-- the head KEYS[5]: a genesis first if the log is new, then a trim if the
-- stream is over its cap.
local function chain(fields)
  local now = tostring(audit_value(fields, 'at') or '')
  if redis.call('EXISTS', KEYS[5]) == 0 then
    if redis.call('EXISTS', KEYS[8]) == 0 and redis.call('XLEN', KEYS[4]) == 0 then
      audit_link({'event', '${event_genesis}', 'request', '', 'actor', '${actor_system}', 'at', now})
      redis.call('SET', KEYS[8], '')
    else
      -- The head is gone but the log is not new: say so in the chain (this
      -- entry's link fails verification) instead of passing for a genesis.
      local last = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)[1]
      audit_link({'event', '${event_head_lost}', 'request', '', 'actor', '${actor_system}', 'at', now,
        'last_id', last and last[1] or ''})
    end
  end
  audit_link(fields)
  audit_trim(now)
end
"""

APPEND_AUDIT = script(
    CHAIN,
    """
-- An entry that is not a request transition (team rule changes, a policy
-- going live, a thread's discussion), chained like the rest.
-- KEYS: as the request scripts (only the audit keys 4, 5, 8 and 10 are used).
-- ARGV: request id or '', event, actor, now, then field, value, …
-- Result: 'ok'.
local request_id, event, actor, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local fields = {'event', event, 'request', request_id, 'actor', actor, 'at', now}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
chain(fields)
return 'ok'
""",
)

"""Lua scripts: each changes a request and everything that follows from the
change (deadline index, job for the workers, audit entry, wake-up) in one
atomic step, so no worker ever sees half a transition.

KEYS are always: 1 request hash, 2 deadlines zset, 3 jobs stream, 4 audit stream.
"""

# ARGV: id, now, deadline, input_hash, actor, audit_maxlen, field, value, ...
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  local existing = redis.call('HGETALL', KEYS[1])
  table.insert(existing, 1, 'exists')
  return existing
end
local fields = {}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
if tonumber(ARGV[3]) > 0 then
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
end
redis.call('XADD', KEYS[3], '*', 'kind', 'post', 'id', ARGV[1])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*',
  'event', 'created', 'request', ARGV[1], 'actor', ARGV[5], 'at', ARGV[2],
  'input_hash', ARGV[4], 'state', 'pending')
return {'created'}
"""

# ARGV: id, new_state, actor, actor_name, reason, updated_input, now,
#       decisions_channel, retention_seconds, audit_maxlen, audit_event, always
DECIDE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if state ~= 'pending' then return {'lost'} end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'decided_by', ARGV[3],
  'decided_by_name', ARGV[4], 'decided_at', ARGV[7], 'reason', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'updated_input', ARGV[6]) end
if ARGV[12] ~= '' then redis.call('HSET', KEYS[1], 'always', ARGV[12]) end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[9])
redis.call('XADD', KEYS[3], '*', 'kind', 'update', 'id', ARGV[1])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[10], '*',
  'event', ARGV[11], 'request', ARGV[1], 'actor', ARGV[3], 'at', ARGV[7],
  'input_hash', redis.call('HGET', KEYS[1], 'input_hash'), 'state', ARGV[2],
  'reason', ARGV[5])
redis.call('PUBLISH', ARGV[8], ARGV[1])
return {'won'}
"""

# ARGV: id, channel, ts, now, audit_maxlen
# Records where the message went. Never overwrites: a second post of the same
# request (a re-claimed job whose first worker did post) is reported, not kept.
MARK_POSTED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
if redis.call('HGET', KEYS[1], 'ts') then return {'already'} end
redis.call('HSET', KEYS[1], 'posted_channel', ARGV[2], 'ts', ARGV[3])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*',
  'event', 'posted', 'request', ARGV[1], 'actor', 'system', 'at', ARGV[4],
  'input_hash', redis.call('HGET', KEYS[1], 'input_hash'),
  'state', redis.call('HGET', KEYS[1], 'state'), 'channel', ARGV[2], 'ts', ARGV[3])
return {'ok', redis.call('HGET', KEYS[1], 'state')}
"""

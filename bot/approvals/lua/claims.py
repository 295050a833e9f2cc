"""CALL_RAN and UNLOCK: which hook's claim a call that ran used up, and a lock given back by its holder."""

from __future__ import annotations

from .fill import script

CALL_RAN = script("""
-- A call ran: if a hook allowed one of its identical copies, that is the one
-- that ran (used up here); otherwise the oldest one a hook still asks Slack
-- about was answered in the terminal.
-- KEYS: the claims of the identical copies of one call (agent.call_claims), in order.
-- ARGV: none.
-- Results: {'allowed'}; {'waiting', request id}; {'none'}.
for i = 1, #KEYS do
  local held = redis.call('GET', KEYS[i])
  if held and string.sub(held, 1, 8) == 'allowed:' then
    redis.call('SET', KEYS[i], '${call_answered}', 'KEEPTTL')
    return {'allowed'}
  end
end
for i = 1, #KEYS do
  local request = string.match(redis.call('GET', KEYS[i]) or '', '^wait:[^:]+:(.+)$$')
  if request then return {'waiting', request} end
end
return {'none'}
""")

UNLOCK = script("""
-- Deletes the lock only if this holder still has it (it may have expired and
-- been taken by another).
-- KEYS: a lock.
-- ARGV: the holder's token.
-- Results: 1 (deleted); 0 (not held by this token).
local token = ARGV[1]
if redis.call('GET', KEYS[1]) == token then return redis.call('DEL', KEYS[1]) end
return 0
""")

"""RESERVE, RELEASE and COMMIT: a route's daily spend, held before an approval and settled after it.

The counter of a route's day lives under its own hash tag (``keys.spend``), apart from
the request's slot, so no request script may touch it. An approval with a cost first
holds the cost here (RESERVE); the request script records the reservation's token when
it approves; then the caller settles it: COMMIT after the approval (the amount stays
counted), RELEASE after any other outcome (it is given back). A crash in between
leaves the cost held: less budget, never more. See ``approvals.spend``.
"""

from __future__ import annotations

from .fill import script

# The counter and the reservation's amount, checked before any write.
_AMOUNTS = r"""
-- A number a script may store or add: not nil, not nan, not infinite.
local function finite(x)
  return x ~= nil and x == x and x ~= math.huge and x ~= -math.huge
end
"""

RESERVE = script(
    _AMOUNTS,
    """
-- Holds ``cost`` on a day's counter for one approval, unless that would take
-- it past ``budget``. The counter includes what is held: a reservation
-- counts as spent until it is released.
-- KEYS: the counter, its reservations (keys.spend_held).
-- ARGV: token, request id, cost, budget ('' for none: only counted), now.
-- Results: {'held'} (now, or already by this token: a repeated call holds
-- once); {'over'} (the counter plus cost exceeds the budget; nothing held);
-- {'invalid', what} (what: 'cost', 'budget' or 'spend', the counter itself,
-- cannot be added to; nothing held).
local token, request, cost, budget, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if redis.call('HEXISTS', KEYS[2], token) == 1 then return {'held'} end
local amount = tonumber(cost)
if not finite(amount) or amount < 0 then return {'invalid', 'cost'} end
local limit = nil
if budget ~= '' then
  limit = tonumber(budget)
  if not finite(limit) then return {'invalid', 'budget'} end
end
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if not finite(spent) or not finite(spent + amount) then return {'invalid', 'spend'} end
if limit and spent + amount > limit then return {'over'} end
redis.call('INCRBYFLOAT', KEYS[1], cost)
redis.call('HSET', KEYS[2], token, cost .. ' ' .. request .. ' ' .. now)
redis.call('EXPIRE', KEYS[1], ${spend_ttl})
redis.call('EXPIRE', KEYS[2], ${spend_ttl})
return {'held'}
""",
)

RELEASE = script(
    _AMOUNTS,
    """
-- Gives a reservation's amount back to the counter: after an outcome that
-- did not approve with it. Only a reservation still held is given back, so a
-- repeated call, or one after COMMIT, changes nothing.
-- KEYS: the counter, its reservations.
-- ARGV: token.
-- Results: {'released'}; {'none'} (not held).
local token = ARGV[1]
local entry = redis.call('HGET', KEYS[2], token)
if not entry then return {'none'} end
redis.call('HDEL', KEYS[2], token)
local amount = tonumber(string.match(entry, '^%S+'))
if finite(amount) and amount > 0 then
  local left = tonumber(redis.call('INCRBYFLOAT', KEYS[1], -amount))
  -- Decimal rounding may leave a hair below zero: never count less than nothing.
  if left < 0 then redis.call('SET', KEYS[1], '0', 'KEEPTTL') end
end
return {'released'}
""",
)

COMMIT = script("""
-- Settles a reservation an approval used: its amount stays in the counter.
-- KEYS: the reservations (keys.spend_held).
-- ARGV: token.
-- Results: {'committed'}; {'none'} (not held: committed or released before).
local token = ARGV[1]
if redis.call('HDEL', KEYS[1], token) == 1 then return {'committed'} end
return {'none'}
""")

CARRY_LEGACY = script(
    _AMOUNTS,
    """
-- Adds the counter a version before the tags kept for the same route and
-- day, once (the upgrade day's spend is not forgotten). Single primary only:
-- the legacy counter is in another slot, which a cluster refuses (and a
-- cluster never ran the old versions).
-- KEYS: the legacy counter, the counter, its carried marker (keys.spend_carried).
-- ARGV: none.
-- Results: {'carried', amount} (amount: '0' when there was none, and then
-- nothing is marked: an old worker still running may count some later);
-- {'done'} (carried before).
if redis.call('EXISTS', KEYS[3]) == 1 then return {'done'} end
local raw = redis.call('GET', KEYS[1])
if not raw then return {'carried', '0'} end
redis.call('SET', KEYS[3], '1', 'EX', ${spend_ttl})
local amount = tonumber(raw)
if not finite(amount) then
  -- Unreadable: the day's counter becomes as unreadable, so its budget refuses
  -- team rules and costly allows as the old version did, instead of restarting at 0.
  redis.call('SET', KEYS[2], raw, 'EX', ${spend_ttl})
  return {'carried', raw}
end
if amount <= 0 then return {'carried', '0'} end
redis.call('INCRBYFLOAT', KEYS[2], raw)
redis.call('EXPIRE', KEYS[2], ${spend_ttl})
return {'carried', tostring(amount)}
""",
)

"""RELEASE_JOBS: a stopping worker gives its unfinished jobs back (``JobQueue.release``)."""

from __future__ import annotations

from .fill import script

RELEASE_JOBS = script("""
-- Each job the stopping worker still holds goes back to the end of the stream
-- as a new entry (what the old one held), so another worker reads it at once
-- instead of re-claiming it after ``job_retry_after``. One another worker
-- re-claimed meanwhile is its, and one finished is gone: both are skipped.
-- KEYS: the jobs stream.
-- ARGV: the consumer group, the stopping worker's consumer name, then ids of
--   jobs it took and did not finish.
-- Result: how many were given back.
local group, consumer, first_id = ARGV[1], ARGV[2], 3
local released = 0
for i = first_id, #ARGV do
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
""")

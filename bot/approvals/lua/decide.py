"""DECIDE and MAY_DECIDE: a person's (or the system's) decision, and who may make one."""

from __future__ import annotations

from .chain import CHAIN
from .fill import READ_ONLY, script
from .request import DECIDERS, REQUEST

DECIDE = script(
    CHAIN,
    DECIDERS,
    REQUEST,
    """
-- With check = '1' (a person deciding) the approver rules apply first, and an
-- approval or an answer is a vote until ``required`` distinct approvers agree.
-- A person's approval or answer names the revision they saw, edits and
-- proposed answers included: a replayed or outdated click, pick or form is
-- refused. An edit (updated_input) resets earlier votes and counts as the
-- editor's. An answer (new_state 'answered', updated_input = the input with
-- its answers) is a proposal: the same answers as the one proposed add a
-- vote, other answers replace it, reset the votes and count as their
-- author's; the last of ``required`` agreeing ends the request answered.
-- KEYS: keys.script_keys(id).
-- An approval of a request with a cost needs its cost held on its route's
-- counter for ``day`` first (approvals.spend: RESERVE, never refused here).
-- KEYS: keys.script_keys(id).
-- ARGV: id, new_state, actor, actor_name, reason, updated_input, now,
--   audit event, always, day, check, expected_revision, stop, groups (the
--   actor's cached memberships in the request's approver groups, JSON:
--   approvals.groups; read only with check = '1'), spend token, spend
--   counter, spend cost ('' when nothing is held).
-- Results: {'missing'}, {'lost'} (no longer pending), {'won'},
-- {'vote', count, required}, {'stale'}, {'voted'} (the same person approving,
-- or giving the proposed answers, again), {'self'}, {'not_approver'},
-- {'unknown_groups', S…}, {'no_always'} (Always allow where more than one
-- approval is needed), {'invalid', what} (what = 'cost': the stored cost
-- cannot be counted; 'answers': an answer without answers), {'retry'} (an
-- approval whose spend token, counter or cost is not the request's own: it
-- was routed, or its day turned, since the caller read it).
-- Only 'won' and 'vote' change anything.
local new, actor, name, reason, updated, now = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local event, always, day, check, expected, stop = ARGV[8], ARGV[9], ARGV[10], ARGV[11], ARGV[12], ARGV[13]
local groups_json = ARGV[14]
local spend_token, spend_counter, spend_cost = ARGV[15], ARGV[16], ARGV[17]
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'missing'} end
if state ~= '${state_pending}' then return {'lost'} end
local approving, answering = new == '${state_approved}', new == '${state_answered}'
local spend = false
if approving then
  local need, problem = spend_of(day)
  if need == nil then return {'invalid', problem} end
  if not spend_matches(need, spend_token, spend_counter, spend_cost) then return {'retry'} end
  if need then spend = {spend_token, need.counter} end
end
local required = tonumber(redis.call('HGET', KEYS[1], 'required') or '1') or 1
if check == '1' then
  local verdict = may_decide(KEYS[1], actor, approving, memberships(groups_json))
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
      redis.call('XADD', KEYS[3], '*', 'kind', '${job_update}', 'id', request_id)
      audit(agrees and '${event_answer_vote}' or '${event_answer_proposed}', actor, now,
        'votes', count .. '/' .. required, 'proposal_hash', redis.sha1hex(updated))
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
        redis.call('XADD', KEYS[3], '*', 'kind', '${job_update}', 'id', request_id)
        audit(updated ~= '' and '${event_modified_vote}' or '${event_vote}', actor, now,
          'votes', count .. '/' .. required)
        return {'vote', tostring(count), tostring(required)}
      end
      -- The last vote approves what is now proposed, edited or not.
      if event == '${event_approved}' and redis.call('HGET', KEYS[1], 'updated_input') then
        event = '${event_modified}'
      end
    end
  end
end
-- Deny and stop: the agent's run ends too (only a deny stops; Decision checks it).
if stop == '1' and new == '${state_denied}' then redis.call('HSET', KEYS[1], 'stop', '1') end
finish(new, actor, name, reason, updated, always, spend, event, now)
return {'won'}
""",
)

MAY_DECIDE = script(
    DECIDERS,
    """
-- For each request, whether actor may decide it now (the rule DECIDE applies).
-- KEYS: request hashes, all of one shard (one slot).
-- ARGV: actor, approving ('1' or ''), groups (the actor's cached memberships
--   in the requests' approver groups, JSON: approvals.groups).
-- Result: one verdict per key: 'ok', 'ended', 'self', 'not_approver' or
-- 'unknown_groups S… S…'.
local actor, approving, groups = ARGV[1], ARGV[2] == '1', memberships(ARGV[3])
local out = {}
for i, req in ipairs(KEYS) do
  if redis.call('HGET', req, 'state') ~= '${state_pending}' then
    out[i] = 'ended'
  else
    out[i] = table.concat(may_decide(req, actor, approving, groups), ' ')
  end
end
return out
""",
    flags=READ_ONLY,
)

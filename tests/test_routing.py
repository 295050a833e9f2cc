"""Routing as domain code: the policy and the team allow-list decide allow, deny or ask,
and the decision is stored in one step. Real Redis, no Slack."""

from __future__ import annotations

import pytest

from bot.approvals.allowlist import TeamAllowList
from bot.approvals.model import ApprovalRequest, NewRequest, State, request_id_for
from bot.approvals.policy import Policy
from bot.approvals.policy_reload import PolicyHolder
from bot.approvals.policy_rule import Action
from bot.approvals.routing import Router, Routing
from bot.approvals.rules import Rule

POLICY = Policy.parse(
    {
        "rules": [
            {"name": "no-rm", "tool": "Bash", "command": "^rm ", "action": "deny", "message": "No."},
            {"name": "logs", "tool": "Bash", "command": "^tail ", "action": "allow"},
            {"name": "etc", "tool": "Write", "file_path": "/etc/**", "action": "deny"},
            {"name": "deploys", "tool": "Bash", "command": "^kubectl ", "approvers": ["U0ALICE", "S0SRE"]},
        ]
    }
)


@pytest.fixture
def holder() -> PolicyHolder:
    return PolicyHolder.fixed(POLICY)


@pytest.fixture
def router(store, redis, holder) -> Router:
    return Router(store, holder, TeamAllowList(redis))


async def ask(store, tool_name: str, tool_input: dict, **fields) -> ApprovalRequest:
    new = NewRequest(id=request_id_for(None), tool_name=tool_name, tool_input=tool_input, **fields)
    created, _ = await store.create(new)
    return created


async def routed(router: Router, request: ApprovalRequest) -> tuple[Routing, ApprovalRequest | None]:
    routing = await router.decide(request)
    return routing, await router.apply(request, routing)


async def test_a_policy_allow_ends_the_request_approved_without_asking(router, store):
    routing, request = await routed(router, await ask(store, "Bash", {"command": "tail -f app.log"}))
    assert routing.route.action is Action.ALLOW and routing.route.rule == "logs"
    assert routing.grants == () and routing.groups == []
    assert request.state is State.APPROVED and request.decided_by == "policy"


async def test_a_policy_deny_wins_over_a_team_rule_that_matches(router, store, redis):
    await TeamAllowList(redis).add([Rule.parse("Bash(rm -rf build)")], added_by="U0ALICE")
    routing, request = await routed(router, await ask(store, "Bash", {"command": "rm -rf build"}))
    assert routing.route.action is Action.DENY and routing.route.message == "No."
    assert routing.grants == ()  # the allow-list is not even read
    assert request.state is State.DENIED and request.decided_by == "policy"


async def test_an_ask_stays_pending_on_its_route(router, store):
    routing, request = await routed(router, await ask(store, "Bash", {"command": "kubectl apply -f x"}))
    assert routing.route.action is Action.ASK and routing.route.rule == "deploys"
    assert routing.groups == ["S0SRE"]  # cached before the route is stored and before the post
    assert request.state is State.PENDING and request.routed
    assert request.rule == "deploys" and request.approvers == ("U0ALICE", "S0SRE")


async def test_a_team_rule_approves_an_ask_its_granter_could_have_approved(router, store, redis):
    await TeamAllowList(redis).add([Rule.parse("Bash(kubectl get *)")], added_by="U0ALICE")
    routing, request = await routed(router, await ask(store, "Bash", {"command": "kubectl get pods"}))
    assert [(g.rule, g.by) for g in routing.grants] == [("Bash(kubectl get *)", "U0ALICE")]
    assert request.state is State.APPROVED


async def test_a_team_rule_granted_by_someone_the_route_does_not_name_approves_nothing(router, store, redis):
    await TeamAllowList(redis).add([Rule.parse("Bash(kubectl get *)")], added_by="U0MALLORY")
    routing, request = await routed(router, await ask(store, "Bash", {"command": "kubectl get pods"}))
    assert len(routing.grants) == 1  # it matches the call…
    assert request.state is State.PENDING  # …but stands in for someone who could not approve it


async def test_a_path_is_routed_by_where_it_really_leads(router, store):
    request = await ask(
        store, "Write", {"file_path": "/tmp/link", "content": ""}, resolved={"file_path": "/etc/passwd"}
    )
    routing, request = await routed(router, request)
    assert routing.route.rule == "etc" and request.state is State.DENIED


async def test_a_reloaded_policy_routes_the_next_request(router, store, holder):
    holder.current = Policy.parse({"rules": [{"tool": "Bash", "action": "allow"}]})
    routing = await router.decide(await ask(store, "Bash", {"command": "kubectl apply -f x"}))
    assert routing.route.action is Action.ALLOW and routing.route.rule == "rules[0]"


async def test_the_first_stored_route_stands(router, store, holder):
    request = await ask(store, "Bash", {"command": "kubectl apply -f x"})
    first = await router.decide(request)
    holder.current = Policy.parse({"rules": [{"tool": "Bash", "action": "allow"}]})
    second = await router.decide(request)
    assert (await router.apply(request, first)).state is State.PENDING
    again = await router.apply(request, second)  # a retried post job routing again
    assert again.state is State.PENDING and again.rule == "deploys"


async def test_routing_a_request_that_is_gone_returns_none(router, store, redis):
    request = await ask(store, "Bash", {"command": "kubectl apply -f x"})
    await redis.flushall()
    assert await router.apply(request, await router.decide(request)) is None

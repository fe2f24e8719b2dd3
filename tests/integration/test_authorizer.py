"""The authorizer's per-identity cache (``identity.authorize.Authorizer``) on a real store, both
backends, and the embedded bus.

What a cached policy set and its remembered decisions guarantee: a change heard on the bus
(made on this node or told by another) counts on the next request; a read that was under way
when the change was heard does not put the old policies back; a decision that depends on the
clock is never remembered. (Across real nodes: tests/e2e/test_identity_backends.py.)
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import pytest

from signalite.aws.principal import FEDERATED_USER, FEDERATION_TOKEN, LONG_TERM, USER, Caller, Principal
from signalite.bus import CTL, Control, open_bus
from signalite.clock import ManualClock
from signalite.identity.authorize import CHANGED, TOPIC, Authorizer
from signalite.store import Entity, Store

ACCOUNT = "111122223333"
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/alice"
CHANNEL = f"arn:aws:kinesisvideo:us-west-2:{ACCOUNT}:channel/cam/1"
VIEW = "kinesisvideo:ConnectAsViewer"


def policy(effect: str, action: str = VIEW, **extra: Any) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": effect, "Action": action, "Resource": "*", **extra}]})


@pytest.fixture
async def authorizer(store: Store) -> AsyncIterator[Authorizer]:
    bus = open_bus("local://")
    await bus.open()
    a = Authorizer(store, ManualClock(1_800_000_000.0), cache_seconds=600.0)  # only invalidation expires it
    a.attach(bus)
    try:
        yield a
    finally:
        a.detach()
        await bus.close()


async def put_user(store: Store, **policies: str) -> Entity:
    data = {"arn": USER_ARN, "keys": [], "attached": [],
            "policies": {n.lower(): {"name": n, "document": d} for n, d in policies.items()}}
    existing = await store.get_entity(ACCOUNT, "user", "alice")
    if existing is None:
        user = Entity(ACCOUNT, "user", "alice", "AIDAALICE000000000000", "/", 0.0, data)
        await store.insert_entity(user)
        return user
    updated = Entity(existing.account, existing.kind, existing.name, existing.id, existing.path, existing.created,
                     data, existing.revision)
    assert await store.update_entity(updated)
    return updated


def alice(federated: str | None = None, session_policy: str | None = None) -> Principal:
    if federated is None:
        caller = Caller(ACCOUNT, USER, "alice", USER_ARN, "AIDAALICE000000000000", LONG_TERM, USER_ARN,
                        "AIDAALICE000000000000")
    else:
        arn = f"arn:aws:sts::{ACCOUNT}:federated-user/{federated}"
        caller = Caller(ACCOUNT, FEDERATED_USER, federated, arn, f"{ACCOUNT}:{federated}", FEDERATION_TOKEN,
                        USER_ARN, "AIDAALICE000000000000", session_policy=session_policy, expires=1_900_000_000.0)
    return Principal("AKIDALICE", ACCOUNT, USER_ARN, "us-west-2", "kinesisvideo", caller=caller)


async def allowed(a: Authorizer, principal: Principal, resource: str = CHANNEL, ip: str = "127.0.0.1") -> bool:
    decision = await a.decide(principal, VIEW, resource, source_ip=ip, secure=True)
    assert decision is not None
    return decision.allowed


def told_by_another_node(a: Authorizer) -> None:
    """The control message another node publishes when it changes IAM, as the bus delivers it."""
    assert a._bus is not None
    a._bus.publish(TOPIC, Control(CTL, CHANGED, ""))


async def test_a_change_heard_on_the_bus_counts_on_the_next_request(store, authorizer):
    await put_user(store, allow=policy("Allow"))
    assert await allowed(authorizer, alice())
    assert await allowed(authorizer, alice())  # remembered
    await put_user(store, allow=policy("Allow"), deny=policy("Deny"))
    assert await allowed(authorizer, alice())  # nothing heard yet: the cache answers (600 s)
    told_by_another_node(authorizer)
    assert not await allowed(authorizer, alice())
    await put_user(store, allow=policy("Allow"))
    authorizer.changed()  # this node's own change: heard at once too
    assert await allowed(authorizer, alice())


async def test_remembered_decisions_keep_every_input_apart(store, authorizer):
    await put_user(store, allow=policy("Allow", Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}))
    session = policy("Allow", Resource=CHANNEL)
    assert await allowed(authorizer, alice(), ip="127.0.0.1")
    assert not await allowed(authorizer, alice(), ip="192.0.2.1")
    assert await allowed(authorizer, alice(), ip="127.0.0.2")
    # Two federated users of alice with the same session policy share the cached policies but are
    # each decided as themselves (a condition on aws:userid, ACCOUNT:NAME for a federated user).
    await put_user(store, bob=policy("Allow", Condition={"StringLike": {"aws:userid": "*:bob"}}))
    authorizer.changed()
    bob, eve = alice("bob", session), alice("eve", session)
    assert await allowed(authorizer, bob) and not await allowed(authorizer, eve)
    assert await allowed(authorizer, bob) and not await allowed(authorizer, eve)  # remembered apart
    other = f"arn:aws:kinesisvideo:us-west-2:{ACCOUNT}:channel/other/2"
    assert not await allowed(authorizer, bob, other)  # outside the session policy


async def test_a_read_under_way_when_a_change_is_heard_is_not_kept(store, authorizer):
    await put_user(store, allow=policy("Allow"))
    real = store.get_entity
    reading, go_on = asyncio.Event(), asyncio.Event()

    async def slow_get_entity(*args: Any) -> Entity | None:
        found = await real(*args)
        if not reading.is_set():  # the authorizer's read: it holds the old record until told to go on
            reading.set()
            await go_on.wait()
        return found

    store.get_entity = slow_get_entity  # type: ignore[method-assign]
    try:
        first = asyncio.create_task(allowed(authorizer, alice()))
        await reading.wait()
        await put_user(store, allow=policy("Allow"), deny=policy("Deny"))
        told_by_another_node(authorizer)
        go_on.set()
        assert await first  # answered from what it read, as any request under way would be
    finally:
        store.get_entity = real  # type: ignore[method-assign]
    assert not await allowed(authorizer, alice())  # but the stale read was not cached


async def test_a_decision_that_depends_on_the_clock_is_not_remembered(store, authorizer):
    until = authorizer.clock.now() + 60
    await put_user(store, allow=policy("Allow", Condition={"NumericLessThan": {"aws:EpochTime": str(int(until))}}))
    assert await allowed(authorizer, alice())
    authorizer.clock.advance(61)  # type: ignore[attr-defined]
    assert not await allowed(authorizer, alice())

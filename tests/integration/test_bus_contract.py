"""The Bus contract (signalite/bus/base.py), run against the in-process bus and Redis alike.

Single-node rules run on every backend; the rules about several nodes sharing a bus run on the
cluster backends (the in-process bus has, by definition, one node). Deliveries are awaited with a
generous safety-net timeout, never timed; "nothing arrived" is proven with a fence: the
publisher sends a marker on another topic after the message, and one connection's publishes
reach a subscriber in order, so once the marker is in, the message would have been too.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import time
from typing import AsyncIterator

import pytest

from signalite.bus import CTL, MSG, Bus, Control, Envelope, open_bus
from signalite.bus.base import decode, encode
from signalite.bus.redis import RedisBus, parse_url, redact
from tests.integration.redis_support import via
from tests.support.server import refused_port
from tests.support.wait import eventually_async

CLUSTER_BUS_BACKENDS = ["redis"]

SAFETY = 10.0
_ids = itertools.count()


def topic() -> str:
    n = next(_ids)
    return f"arn:aws:kinesisvideo:us-west-2:111122223333:channel/bus-test-{n}/{1700000000000 + n}"


def env(i: int = 0, *, recipient: str = "", sender: str = "viewer-1", ttl: float = 60.0,
        frame: str | None = None) -> Envelope:
    return Envelope(MSG, recipient, "ICE_CANDIDATE", sender,
                    frame if frame is not None else json.dumps({"messageType": "ICE_CANDIDATE", "i": i}),
                    time.time() + ttl)


class Recorder:
    """A handler that remembers what it got and lets a test await a count."""

    def __init__(self) -> None:
        self.got: list[tuple[str, Envelope]] = []
        self._changed = asyncio.Event()

    def __call__(self, topic: str, envelope: Envelope) -> None:
        self.got.append((topic, envelope))
        self._changed.set()

    @property
    def envelopes(self) -> list[Envelope]:
        return [e for _, e in self.got]

    async def wait(self, count: int) -> list[Envelope]:
        async with asyncio.timeout(SAFETY):
            while len(self.got) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.envelopes


async def synced(*buses: Bus) -> None:
    """Subscriptions in effect (a network bus confirms them asynchronously)."""
    for bus in buses:
        if isinstance(bus, RedisBus):
            await asyncio.wait_for(bus.synced(), SAFETY)


async def fence(publisher: Bus, *receivers: Bus) -> None:
    """Return once everything ``publisher`` published so far has reached ``receivers``."""
    t = topic()
    marks = []
    for r in receivers:
        mark = Recorder()
        r.subscribe(t, mark)
        marks.append((r, mark))
    await synced(*receivers)
    publisher.publish(t, env(-1))
    for r, mark in marks:
        await mark.wait(1)
        r.unsubscribe(t)


@pytest.fixture
async def bus(bus_url: str) -> AsyncIterator[Bus]:
    b = open_bus(bus_url)
    await b.open()
    try:
        yield b
    finally:
        await b.close()


@pytest.fixture(params=CLUSTER_BUS_BACKENDS)
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Bus, Bus]]:
    """Two nodes on one cluster bus (the in-process bus has, by definition, one node)."""
    url = request.getfixturevalue(f"{request.param}_url")
    a, b = open_bus(url), open_bus(url)
    await a.open()
    await b.open()
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


# --- one node ---------------------------------------------------------------------------------

async def test_publish_reaches_the_publishing_nodes_own_handler(bus):
    t, rec = topic(), Recorder()
    bus.subscribe(t, rec)
    await synced(bus)
    e = env(1)
    assert bus.publish(t, e) is None
    assert await rec.wait(1) == [e]
    assert rec.got[0][0] == t


async def test_publish_is_a_plain_non_blocking_call(bus):
    assert not inspect.iscoroutinefunction(bus.publish)
    assert not inspect.iscoroutinefunction(bus.subscribe)
    assert not inspect.iscoroutinefunction(bus.unsubscribe)
    bus.publish(topic(), env())  # nobody listens: nothing happens, nothing raises


async def test_order_of_one_publisher_on_one_topic_is_kept(bus):
    t, rec = topic(), Recorder()
    bus.subscribe(t, rec)
    await synced(bus)
    sent = [env(i) for i in range(1000)]
    for e in sent:
        bus.publish(t, e)
    assert await rec.wait(1000) == sent
    await fence(bus, bus)
    assert len(rec.got) == 1000  # each exactly once


async def test_topics_are_isolated(bus):
    t1, t2, r1, r2 = topic(), topic(), Recorder(), Recorder()
    bus.subscribe(t1, r1)
    bus.subscribe(t2, r2)
    await synced(bus)
    bus.publish(t1, env(1))
    bus.publish(t2, env(2))
    bus.publish(t1, env(3))
    assert [e.frame for e in await r1.wait(2)] == [env(1).frame, env(3).frame]
    assert [e.frame for e in await r2.wait(1)] == [env(2).frame]
    await fence(bus, bus)
    assert (len(r1.got), len(r2.got)) == (2, 1)
    assert {t for t, _ in r1.got} == {t1} and {t for t, _ in r2.got} == {t2}


async def test_unsubscribe_stops_delivery(bus):
    t, rec = topic(), Recorder()
    bus.subscribe(t, rec)
    await synced(bus)
    bus.publish(t, env(1))
    await rec.wait(1)
    bus.unsubscribe(t)
    await synced(bus)
    bus.publish(t, env(2))
    await fence(bus, bus)
    assert [e.frame for e in rec.envelopes] == [env(1).frame]
    bus.unsubscribe(t)  # unsubscribing twice (or from an unknown topic) is harmless
    bus.unsubscribe(topic())


async def test_subscribing_again_replaces_the_handler(bus):
    t, old, new = topic(), Recorder(), Recorder()
    bus.subscribe(t, old)
    bus.subscribe(t, new)
    await synced(bus)
    bus.publish(t, env(1))
    await new.wait(1)
    await fence(bus, bus)
    assert old.got == [] and len(new.got) == 1


async def test_resubscribing_after_unsubscribe_delivers_again(bus):
    t, rec = topic(), Recorder()
    for _ in range(5):  # flapping subscriptions end in the last state asked for
        bus.subscribe(t, rec)
        bus.unsubscribe(t)
    bus.subscribe(t, rec)
    await synced(bus)
    bus.publish(t, env(7))
    assert [e.frame for e in await rec.wait(1)] == [env(7).frame]


async def test_a_failing_handler_does_not_reach_the_publisher(bus):
    t, t_ok, ok = topic(), topic(), Recorder()

    def broken(_topic: str, _env: Envelope) -> None:
        raise RuntimeError("subscriber bug")

    bus.subscribe(t, broken)
    bus.subscribe(t_ok, ok)
    await synced(bus)
    bus.publish(t, env(1))  # must not raise
    bus.publish(t_ok, env(2))
    await ok.wait(1)
    bus.publish(t, env(3))
    bus.publish(t_ok, env(4))
    assert len(await ok.wait(2)) == 2  # the bus keeps delivering after a handler failed


async def test_a_handler_may_unsubscribe_its_own_topic(bus):
    """The hub does this: a ``delete`` control envelope makes the router drop the channel."""
    t, got = topic(), []

    def once(tp: str, e: Envelope) -> None:
        got.append(e)
        bus.unsubscribe(tp)

    bus.subscribe(t, once)
    await synced(bus)
    bus.publish(t, Control(CTL, "delete"))
    bus.publish(t, env(2))
    await synced(bus)
    await fence(bus, bus)
    assert [e.kind for e in got] == [CTL]


def _odd_envelopes() -> list[Envelope | Control]:
    return [
        env(0, frame=json.dumps({"messagePayload": "x" * 60_000})),                   # a large SDP
        env(1, frame='{"messagePayload":"ünïcödé ✓ \\u0000 \U0001F600"}', recipient="viewer-Ω"),
        Control(CTL, "ttl", "120"),                                                     # a control event
        Control(CTL, "delete"),                                 # control events never expire
        Envelope(MSG, "", "SDP_OFFER", "", "", time.time() + 0.5),
    ]


async def test_envelopes_arrive_exactly_as_sent(bus):
    t, rec = topic(), Recorder()
    bus.subscribe(t, rec)
    await synced(bus)
    sent = _odd_envelopes()
    for e in sent:
        bus.publish(t, e)
    assert await rec.wait(len(sent)) == sent


async def test_envelopes_cross_nodes_exactly_as_sent(nodes):
    a, b = nodes
    t, rb = topic(), Recorder()
    b.subscribe(t, rb)
    await synced(b)
    sent = _odd_envelopes()
    for e in sent:
        a.publish(t, e)
    got = await rb.wait(len(sent))
    assert got == sent
    assert all(type(e.expires) is float for e in got if isinstance(e, Envelope))
    assert [type(e) for e in got] == [type(e) for e in sent]


def test_wire_form_round_trips():
    e = Envelope(MSG, "v", "SDP_ANSWER", "", '{"a":"ü"}', 12.5)
    assert decode(encode(e)) == e and decode(encode(e).decode()) == e


async def test_ping(bus):
    assert await bus.ping() is True


# --- several nodes (cluster buses) --------------------------------------------------------------

async def test_a_message_reaches_every_subscribed_node_exactly_once(nodes):
    a, b = nodes
    t, ra, rb = topic(), Recorder(), Recorder()
    a.subscribe(t, ra)
    b.subscribe(t, rb)
    await synced(a, b)
    sent = [env(i) for i in range(200)]
    for e in sent:
        a.publish(t, e)
    assert await ra.wait(200) == sent
    assert await rb.wait(200) == sent
    await fence(a, a, b)
    assert (len(ra.got), len(rb.got)) == (200, 200)  # no echo of a's own messages through Redis


async def test_each_publishers_order_is_kept_at_every_node(nodes):
    a, b = nodes
    t, ra, rb = topic(), Recorder(), Recorder()
    a.subscribe(t, ra)
    b.subscribe(t, rb)
    await synced(a, b)
    for i in range(300):
        a.publish(t, env(i, sender="from-a"))
        b.publish(t, env(i, sender="from-b"))
    for rec in (ra, rb):
        got = await rec.wait(600)
        for sender in ("from-a", "from-b"):
            assert [json.loads(e.frame)["i"] for e in got if e.sender == sender] == list(range(300))


async def test_a_node_that_did_not_subscribe_gets_nothing(nodes):
    a, b = nodes
    t, ra, rb = topic(), Recorder(), Recorder()
    a.subscribe(t, ra)
    await synced(a)
    a.publish(t, env(1))
    b.publish(t, env(2))
    await ra.wait(2)
    b.subscribe(t, rb)
    await synced(b)
    b.unsubscribe(t)
    await synced(b)
    a.publish(t, env(3))
    await fence(a, a, b)
    assert rb.got == []
    assert [json.loads(e.frame)["i"] for e in ra.envelopes] == [1, 2, 3]


async def test_subscriptions_made_before_open_are_honoured(redis_url):
    a, b = open_bus(redis_url), open_bus(redis_url)
    t, rb = topic(), Recorder()
    b.subscribe(t, rb)
    await a.open()
    await b.open()
    try:
        await synced(b)
        a.publish(t, env(5))
        assert [json.loads(e.frame)["i"] for e in await rb.wait(1)] == [5]
    finally:
        await a.close()
        await b.close()


# --- Redis specifics ----------------------------------------------------------------------------

def test_redis_url_prefix_is_taken_out():
    assert parse_url("redis://h:6379/2?prefix=team-a:&socket_keepalive=true") == \
        ("redis://h:6379/2?socket_keepalive=true", "team-a:")
    assert parse_url("rediss://h/0") == ("rediss://h/0", "signalite:")
    assert redact("redis://u:pw@h:1/0") == "redis://u:***@h:1/0"
    assert isinstance(open_bus("redis://h:1/0"), RedisBus) and isinstance(open_bus("rediss://h:1/0"), RedisBus)


async def test_prefixes_isolate_deployments(redis_prefixes):
    url_b = redis_prefixes()
    a, b = open_bus(redis_prefixes()), open_bus(url_b)
    await a.open()
    await b.open()
    try:
        t, rb, rb2 = topic(), Recorder(), Recorder()
        b.subscribe(t, rb)
        await synced(b)
        a.publish(t, env(1))  # same topic, other deployment
        b2 = open_bus(url_b)  # b's deployment
        await b2.open()
        try:
            b2.subscribe(t, rb2)
            await synced(b2)
            b2.publish(t, env(2))
            await rb.wait(1)
            await fence(b2, b)
            assert [json.loads(e.frame)["i"] for e in rb.envelopes] == [2]
        finally:
            await b2.close()
    finally:
        await a.close()
        await b.close()


async def test_open_fails_fast_with_a_clear_message_when_redis_is_unreachable():
    with refused_port() as port:
        bus = open_bus(f"redis://user:hunter2@127.0.0.1:{port}/0")
        with pytest.raises(ConnectionError) as info:
            await bus.open()
    assert "cannot connect to the Redis bus redis://user:***@127.0.0.1:" in str(info.value)
    assert "hunter2" not in str(info.value)


async def test_outage_publish_never_raises_ping_reports_and_delivery_resumes(redis_url, redis_proxy):
    a, b = open_bus(via(redis_proxy, redis_url)), open_bus(redis_url)  # a reaches Redis through the proxy
    await a.open()
    await b.open()
    try:
        t, ra, rb = topic(), Recorder(), Recorder()
        a.subscribe(t, ra)
        b.subscribe(t, rb)
        await synced(a, b)
        a.publish(t, env(1))
        await rb.wait(1)

        redis_proxy.stop()
        for i in range(2, 50):
            a.publish(t, env(i))  # never raises; a's own node still gets them
        assert len(await ra.wait(49)) == 49
        with pytest.raises(ConnectionError, match="Redis unreachable"):
            await a.ping()

        redis_proxy.start()
        await eventually_async(a.ping, what="the bus answering again", interval=0.1,  # it reconnects on next use
                               ignoring=(ConnectionError,))
        await synced(a)
        # What was queued during the outage goes out, in order, once Redis is back.
        got = [json.loads(e.frame)["i"] for e in await rb.wait(49)]
        assert got == list(range(1, 50))
        b.publish(t, env(99))  # and a hears b again (its subscription came back)
        assert json.loads((await ra.wait(50))[-1].frame)["i"] == 99
    finally:
        await a.close()
        await b.close()


async def test_a_subscription_dropped_silently_on_the_way_is_noticed_and_connected_again(redis_url, redis_proxy):
    """A NAT, firewall or load balancer between a node and Redis forgets the node's connections
    without a FIN or RST: nothing ever fails on the subscription by itself. The writer's batch
    times out and it connects again; the subscription is taken for dead when the node's own echo
    does not come back (ECHO_WAIT), and connected again, with a new feed epoch."""
    from signalite.bus.redis import COMMAND_TIMEOUT, ECHO_WAIT

    a, b = open_bus(via(redis_proxy, redis_url) + "&lease=0.6"), open_bus(redis_url)  # a echoes every 0.2 s
    await a.open()
    await b.open()
    try:
        t, ra = topic(), Recorder()
        a.subscribe(t, ra)
        await synced(a)
        b.publish(t, env(1))
        await ra.wait(1)
        epoch = a.feed_epoch(t)
        redis_proxy.abandon()
        deadline = time.monotonic() + COMMAND_TIMEOUT + ECHO_WAIT + 15
        i = 1
        while len(ra.got) < 2:  # what b publishes while a's subscription is gone is not kept: keep publishing
            assert time.monotonic() < deadline, "the silently dropped subscription was never replaced"
            i += 1
            b.publish(t, env(i))
            await asyncio.sleep(0.2)
        assert a.feed_epoch(t) not in (None, epoch)  # consumers learn that they may have missed some
        assert a.available
    finally:
        await a.close()
        await b.close()


async def test_expired_envelopes_are_not_sent_after_an_outage(redis_url, redis_proxy):
    a, b = open_bus(via(redis_proxy, redis_url)), open_bus(redis_url)
    await a.open()
    await b.open()
    try:
        t, rb = topic(), Recorder()
        b.subscribe(t, rb)
        await synced(b)
        redis_proxy.stop()
        a.publish(t, env(1, ttl=-1))  # already past its expiry when Redis comes back
        a.publish(t, Control(CTL, "delete"))  # a channel event does not expire
        a.publish(t, env(2))
        redis_proxy.start()
        got = await rb.wait(2)
        assert got[0].kind == CTL and json.loads(got[1].frame)["i"] == 2
        await fence(a, b)
        assert len(rb.got) == 2
        assert isinstance(a, RedisBus) and a.dropped >= 1  # its count of envelopes dropped as expired
    finally:
        await a.close()
        await b.close()


async def test_ping_gives_up_instead_of_hanging_when_redis_stops_answering(redis_url, redis_proxy):
    a = open_bus(via(redis_proxy, redis_url))
    await a.open()
    try:
        assert await a.ping() is True
        redis_proxy.freeze()  # connections stay open, nothing comes back
        with pytest.raises(ConnectionError, match="Redis unreachable"):
            await a.ping()
        a.publish(topic(), env(1))  # still never blocks
        redis_proxy.thaw()
        await eventually_async(a.ping, what="the bus answering again", interval=0.1, ignoring=(ConnectionError,))
        assert await a.ping() is True
    finally:
        redis_proxy.thaw()
        await a.close()


async def test_a_batch_sent_again_after_a_lost_reply_is_delivered_once(redis_url, redis_proxy):
    """Redis took the publish but its reply never came back: the writer sends the batch again,
    and receivers must not deliver it twice."""
    a, b = open_bus(via(redis_proxy, redis_url)), open_bus(redis_url)
    await a.open()
    await b.open()
    try:
        t, rb = topic(), Recorder()
        b.subscribe(t, rb)
        await synced(b)
        a.publish(t, env(0))
        await rb.wait(1)          # a's publishing connection is up (its handshake needs replies)
        assert isinstance(a, RedisBus)

        async def acknowledged() -> bool:  # and a has its reply: its count of acknowledged envelopes says so
            return a.sent >= 1

        await eventually_async(acknowledged, what="Redis acknowledging a's first publish", interval=0.01)
        redis_proxy.hold_replies()
        a.publish(t, env(1))
        a.publish(t, env(2))
        # Usually Redis delivers both now and a never hears back, so a sends the batch again after
        # the break below. If a's writer had another operation of its own in flight (a lease, a
        # subscription sync), the two wait behind its held reply and go out after the break instead.
        # Either way each must arrive exactly once: the final assertion holds in both cases, so
        # this wait only gives the common case its chance and fails nothing.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await rb.wait(3)
        redis_proxy.stop()        # a's connection breaks with the reply in flight
        redis_proxy.thaw()
        redis_proxy.start()
        a.publish(t, env(3))
        await rb.wait(4)
        await fence(a, b)
        assert [json.loads(e.frame)["i"] for e in rb.envelopes] == [0, 1, 2, 3]
    finally:
        redis_proxy.thaw()
        await a.close()
        await b.close()

"""The mailbox half of the Bus contract (presence and shared retention, ``bus/base.py``), run
against the in-process bus and Redis alike; the rules about several nodes run on Redis.

A :class:`Node` stands for one server's hub: a bus and the MailHandler it calls back into, with
"sockets" that take writes until they are closed. Waiting is for a state (``until``) or for a
marker message: one node's posts to one recipient arrive in order, so once a marker posted after
some messages has arrived, those messages have too, and nothing is proven by a quiet wait.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections import Counter, defaultdict
from typing import AsyncIterator, Awaitable, Callable, Sequence

import pytest

from signalite.bus import Bus, Envelope, Limits, open_bus
from signalite.bus.base import MSG
from signalite.bus.redis import RedisBus
from tests.integration.redis_support import with_prefix
from tests.support.wait import eventually_async

NO_LIMITS = Limits(None, None)
SAFETY = 20.0
_ids = itertools.count(1)
_order = itertools.count()
_arns = itertools.count()


def channel() -> str:
    n = next(_arns)
    return f"arn:aws:kinesisvideo:us-west-2:111122223333:channel/mail-{n}/{1700000000000 + n}"


def msg(recipient: str, label: str, *, sender: str = "s", kind: str = "ICE_CANDIDATE", ttl: float = 60.0) -> Envelope:
    return Envelope(MSG, recipient, kind, sender, json.dumps({"label": label}), time.time() + ttl)


def label(e: Envelope) -> str:
    return str(json.loads(e.frame)["label"])


class Node:
    """One node: a bus, its MailHandler, and its connections (token → socket open?)."""

    def __init__(self, bus: Bus, name: str) -> None:
        self.bus, self.name = bus, name
        self.open: dict[int, tuple[str, str]] = {}
        self.got: dict[int, list[Envelope]] = defaultdict(list)
        self.taken: list[int] = []
        self.lost_tokens: list[int] = []
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.reported: list[tuple[str, str, str, str, str]] = []
        """(arn, type, outcome, sender, recipient) as the bus reported them (what the trace shows)."""
        self.wanted: list[tuple[str, bool]] = []
        self.events: list[tuple[str, dict]] = []
        self.log: list[tuple[int, Envelope]] = []
        """Every delivery on this node, stamped with a sequence shared by all nodes of a test."""
        bus.set_mail_handler(self)

    # MailHandler
    def deliver(self, token: int, envelopes: Sequence[Envelope]) -> int:
        if token not in self.open:
            return 0
        self.got[token].extend(envelopes)
        self.log.extend((next(_order), e) for e in envelopes)
        return len(envelopes)

    def taken_over(self, token: int) -> None:
        self.taken.append(token)
        self.close(token)  # as the hub does: close the socket, unregister

    def lost(self, token: int) -> None:
        self.lost_tokens.append(token)
        self.close(token)

    def outcome(self, arn: str, msg_type: str, outcome: str, sender: str, recipient: str) -> None:
        self.outcomes[msg_type, outcome] += 1
        self.reported.append((arn, msg_type, outcome, sender, recipient))

    def trace_wanted(self, arn: str, followed: bool) -> None:
        self.wanted.append((arn, followed))

    def trace_event(self, arn: str, event: dict) -> None:
        self.events.append((arn, event))

    # what a hub does
    async def connect(self, arn: str, key: str, limits: Limits = NO_LIMITS, virtual: bool = False) -> int:
        token = next(_ids)
        reg = await self.bus.register(arn, key, token, virtual=virtual, limits=limits)
        if reg.refused is not None:
            raise Refused(reg.refused)
        for older in [t for t, place in self.open.items() if place == (arn, key)]:
            self.close(older)  # as the router does with an older connection of the key on its node
        self.open[token] = (arn, key)
        self.bus.start(arn, key, token)
        return token

    def close(self, token: int) -> None:
        place = self.open.pop(token, None)
        if place is not None:
            self.bus.unregister(place[0], place[1], token)

    def labels(self, token: int) -> list[str]:
        return [label(e) for e in self.got[token]]


class Refused(Exception):
    pass


async def until(predicate: Callable[[], bool], what: str) -> None:
    async def check() -> bool:
        return predicate()

    await eventually_async(check, what=what, interval=0.005, timeout=SAFETY)


async def marker(sender: Node, receiver: Node, token: int, arn: str, key: str) -> None:
    """Post a marker from ``sender`` and wait until ``token`` got it: everything ``sender`` posted
    to ``key`` before has arrived by then (one node's posts to one recipient stay in order)."""
    tag = f"marker-{next(_ids)}"
    sender.bus.post(arn, msg(key, tag))
    await until(lambda: tag in receiver.labels(token), f"the marker {tag}")
    receiver.got[token] = [e for e in receiver.got[token] if label(e) != tag]


@pytest.fixture
async def nodes(bus_url: str) -> AsyncIterator[Callable[[int], Awaitable[list[Node]]]]:
    """``await nodes(n)``: n nodes on one bus backend (the in-process bus has one node)."""
    opened: list[Bus] = []

    async def make(n: int) -> list[Node]:
        if bus_url == "local://" and n > 1:
            pytest.skip("the in-process bus has one node")
        out = []
        for i in range(n):
            bus = open_bus(bus_url, name=f"node-{i}")
            await bus.open()
            opened.append(bus)
            out.append(Node(bus, f"node-{i}"))
        return out

    yield make
    for bus in opened:
        await bus.close()


# --- one node, every backend ---------------------------------------------------------------------

async def test_a_message_reaches_the_connection_that_holds_its_key(nodes):
    (a,) = await nodes(1)
    arn = channel()
    t = await a.connect(arn, "")
    a.bus.post(arn, msg("", "one"))
    await until(lambda: a.labels(t) == ["one"], "delivery")
    assert a.outcomes == Counter()  # delivered at once: neither buffered nor anything else


async def test_messages_for_nobody_are_retained_and_delivered_in_order_on_connect(nodes):
    (a,) = await nodes(1)
    arn = channel()
    for i in range(5):
        a.bus.post(arn, msg("v1", f"m{i}"))
    await until(lambda: a.outcomes["ICE_CANDIDATE", "buffered"] == 5, "5 buffered")
    assert [label(e) for e in await a.bus.retained(arn, "v1")] == [f"m{i}" for i in range(5)]
    t = await a.connect(arn, "v1")
    await until(lambda: len(a.labels(t)) == 5, "the retained messages")
    assert a.labels(t) == [f"m{i}" for i in range(5)]
    await marker(a, a, t, arn, "v1")
    assert len(a.labels(t)) == 5  # once each
    assert await a.bus.retained(arn, "v1") == []


async def test_a_newer_offer_from_the_same_sender_replaces_a_retained_one(nodes):
    (a,) = await nodes(1)
    arn = channel()
    a.bus.post(arn, msg("", "old", sender="v", kind="SDP_OFFER"))
    a.bus.post(arn, msg("", "ice", sender="v"))
    a.bus.post(arn, msg("", "other", sender="w", kind="SDP_OFFER"))
    a.bus.post(arn, msg("", "new", sender="v", kind="SDP_OFFER"))
    await until(lambda: a.outcomes["SDP_OFFER", "replaced"] == 1, "one replacement")
    # Reported with what the live trace shows: channel, type, sender and recipient keys.
    assert (arn, "SDP_OFFER", "replaced", "v", "") in a.reported
    assert [r for r in a.reported if r[2] == "buffered"] == [
        (arn, "SDP_OFFER", "buffered", "v", ""), (arn, "ICE_CANDIDATE", "buffered", "v", ""),
        (arn, "SDP_OFFER", "buffered", "w", ""), (arn, "SDP_OFFER", "buffered", "v", "")]
    t = await a.connect(arn, "")
    await until(lambda: len(a.labels(t)) == 3, "what is retained")
    assert a.labels(t) == ["ice", "other", "new"]


async def test_expired_messages_are_not_delivered(nodes):
    (a,) = await nodes(1)
    arn = channel()
    a.bus.post(arn, msg("v", "short", ttl=0.3, sender="w"))
    a.bus.post(arn, msg("v", "long"))
    await until(lambda: a.outcomes["ICE_CANDIDATE", "buffered"] == 2, "2 buffered")
    deadline = time.time() + 0.3

    async def past() -> bool:
        return time.time() > deadline

    await eventually_async(past, what="the short TTL passing", interval=0.05)
    t = await a.connect(arn, "v")
    await marker(a, a, t, arn, "v")
    assert a.labels(t) == ["long"]
    a.bus.tick(time.time())
    assert a.outcomes["ICE_CANDIDATE", "expired"] == 1
    assert (arn, "ICE_CANDIDATE", "expired", "w", "v") in a.reported


async def test_after_unregister_messages_are_retained_for_the_next_connection(nodes):
    (a,) = await nodes(1)
    arn = channel()
    t1 = await a.connect(arn, "v")
    a.bus.post(arn, msg("v", "first"))
    await until(lambda: a.labels(t1) == ["first"], "first")
    a.close(t1)
    a.bus.post(arn, msg("v", "second"))
    t2 = await a.connect(arn, "v")
    await until(lambda: a.labels(t2) == ["second"], "second, on the new connection")
    await marker(a, a, t2, arn, "v")
    assert a.labels(t1) == ["first"] and a.labels(t2) == ["second"]


async def test_a_socket_that_takes_nothing_leaves_the_messages_retained(nodes):
    (a,) = await nodes(1)
    arn = channel()
    t1 = await a.connect(arn, "v")
    a.open.pop(t1)  # the socket is closing: deliver() writes nothing, the hub has not unregistered yet
    a.bus.post(arn, msg("v", "kept"))
    await until(lambda: a.bus.retained_count() in (None, 1), "the attempt")
    a.bus.unregister(arn, "v", t1)
    t2 = await a.connect(arn, "v")
    await until(lambda: a.labels(t2) == ["kept"], "the message, on the next connection")


async def test_viewer_limit_counts_real_viewers_and_a_reused_client_id_once(nodes):
    (a,) = await nodes(1)
    arn = channel()
    limits = Limits(2, None)
    await a.connect(arn, "v1", limits)
    await a.connect(arn, "v1", limits)  # the same client id again: replaces, does not count twice
    await a.connect(arn, "alexa", limits, virtual=True)  # virtual: not counted
    await a.connect(arn, "", limits)  # the master is no viewer
    await a.connect(arn, "v2", limits)
    with pytest.raises(Refused, match="viewers"):
        await a.connect(arn, "v3", limits)


async def test_connect_rate_per_channel(nodes):
    (a,) = await nodes(1)
    arn, other = channel(), channel()
    limits = Limits(None, 3)
    for i in range(3):
        await a.connect(arn, f"v{i}", limits)
    with pytest.raises(Refused, match="rate"):
        await a.connect(arn, "v3", limits)
    await a.connect(other, "v3", limits)  # per channel
    await a.connect(arn, "x", limits, virtual=True)  # virtual connects are not rate-limited


async def test_drop_channel_forgets_presence_and_retention(nodes):
    (a,) = await nodes(1)
    arn = channel()
    a.bus.post(arn, msg("v", "gone"))
    await until(lambda: a.outcomes["ICE_CANDIDATE", "buffered"] == 1, "buffered")
    a.bus.drop_channel(arn)
    t = await a.connect(arn, "v")
    await marker(a, a, t, arn, "v")
    assert a.labels(t) == []


# --- several nodes (Redis) -----------------------------------------------------------------------

async def test_holds_tells_whether_a_connection_holds_a_key(nodes):
    # A storage session's claim (media.sessions): a node asks whether any seat holds the key.
    (a,) = await nodes(1)
    arn = channel()
    assert await a.bus.holds(arn, "#storage") is False
    t = await a.connect(arn, "#storage", virtual=True)
    assert await a.bus.holds(arn, "#storage") is True
    assert await a.bus.holds(arn, "") is False and await a.bus.holds(channel(), "#storage") is False
    a.close(t)
    assert await a.bus.holds(arn, "#storage") is False


async def test_a_message_reaches_the_node_that_holds_the_key_once(nodes):
    a, b, c = await nodes(3)
    arn = channel()
    t = await b.connect(arn, "")
    for i in range(50):
        a.bus.post(arn, msg("", f"m{i}"))
    await until(lambda: len(b.labels(t)) == 50, "50 messages at b")
    await marker(a, b, t, arn, "")
    assert b.labels(t) == [f"m{i}" for i in range(50)]
    assert not a.got and not c.got


async def test_retained_on_one_node_delivered_on_another(nodes):
    a, b = await nodes(2)
    arn = channel()
    a.bus.post(arn, msg("v", "kept"))
    await until(lambda: a.outcomes["ICE_CANDIDATE", "buffered"] == 1, "buffered")
    t = await b.connect(arn, "v")
    await until(lambda: b.labels(t) == ["kept"], "the retained message at b")


async def test_takeover_on_another_node_closes_the_older_and_delivers_each_message_once(nodes):
    a, b, c = await nodes(3)
    arn = channel()
    old = await a.connect(arn, "v")
    for i in range(20):
        c.bus.post(arn, msg("v", f"m{i}"))
    new = await b.connect(arn, "v")  # in the middle of the stream
    for i in range(20, 40):
        c.bus.post(arn, msg("v", f"m{i}"))
    await until(lambda: old in a.taken, "the older connection told it was taken over")
    await marker(c, b, new, arn, "v")
    got = a.labels(old) + b.labels(new)
    assert sorted(got, key=lambda s: int(s[1:])) == [f"m{i}" for i in range(40)]  # each once
    assert a.labels(old) == [f"m{i}" for i in range(len(a.labels(old)))]  # in order, a prefix
    assert b.labels(new) == [f"m{i}" for i in range(len(a.labels(old)), 40)]


async def test_a_claim_is_seen_from_every_node_and_the_newest_takes_it_over(nodes):
    # The storage claim's rule across nodes: b's newer registration of the reserved key closes
    # a's (the takeover notice), every node sees a holder throughout, and what is posted to the
    # key after the takeover reaches b.
    a, b, c = await nodes(3)
    arn = channel()
    old = await a.connect(arn, "#storage", virtual=True)
    assert await c.bus.holds(arn, "#storage") is True
    new = await b.connect(arn, "#storage", virtual=True)
    await until(lambda: old in a.taken, "the older claim told it was taken over")
    assert await c.bus.holds(arn, "#storage") is True
    c.bus.post(arn, msg("#storage", "join viewer-1"))
    await until(lambda: b.labels(new) == ["join viewer-1"], "the request at the newer claim")
    b.close(new)
    assert await c.bus.holds(arn, "#storage") is False


async def test_viewer_limit_and_connect_rate_count_across_nodes(nodes):
    a, b = await nodes(2)
    arn = channel()
    limits = Limits(2, None)
    await a.connect(arn, "v1", limits)
    await b.connect(arn, "v2", limits)
    with pytest.raises(Refused, match="viewers"):
        await a.connect(arn, "v3", limits)
    with pytest.raises(Refused, match="viewers"):
        await b.connect(arn, "v3", limits)
    await b.connect(arn, "v1", limits)  # v1 moving to b is no new viewer
    rated = channel()
    await a.connect(rated, "r1", Limits(None, 2))
    await b.connect(rated, "r2", Limits(None, 2))
    with pytest.raises(Refused, match="rate"):
        await a.connect(rated, "r3", Limits(None, 2))


@pytest.fixture
def short_lease_url(redis_url: str) -> str:
    return with_prefix(redis_url, "") + "&lease=0.6" if "?" in redis_url else redis_url + "?lease=0.6"


async def test_a_dead_nodes_presence_lapses_with_its_lease(short_lease_url):
    a_bus, b_bus = open_bus(short_lease_url), open_bus(short_lease_url)
    await a_bus.open()
    await b_bus.open()
    a, b = Node(a_bus, "a"), Node(b_bus, "b")
    try:
        arn = channel()
        limits = Limits(1, None)
        dead = await a.connect(arn, "v", limits)
        with pytest.raises(Refused):
            await b.connect(arn, "w", limits)  # the limit is full while a lives
        await a_bus.close()  # a dies: no unregister, its lease runs out
        b.bus.post(arn, msg("v", "while-dead"))

        async def buffered() -> bool:  # posts to v are retained once the dead node's lease lapsed
            b.bus.post(arn, msg("v", f"probe-{next(_ids)}", sender="probe", kind="SDP_ANSWER"))
            await b.bus.retained(arn, "v")  # its reply comes after the post's
            return b.outcomes["SDP_ANSWER", "buffered"] > 0

        await eventually_async(buffered, what="a's lease lapsing", interval=0.1, timeout=SAFETY)
        t = await b.connect(arn, "w", limits)  # the dead node's viewer no longer counts
        assert t and dead
        again = await b.connect(arn, "v")  # v reconnects on b: it gets what was sent while it moved
        await until(lambda: "while-dead" in b.labels(again), "the message sent to the dead node's viewer")
    finally:
        await b_bus.close()


async def test_a_registration_that_timed_out_is_undone_and_ping_reports(redis_url, redis_proxy):
    from tests.integration.redis_support import via

    bus = open_bus(via(redis_proxy, redis_url))
    await bus.open()
    node = Node(bus, "a")
    try:
        arn = channel()
        await node.connect(arn, "v")
        redis_proxy.stop()
        assert isinstance(bus, RedisBus)
        bus.post(arn, msg("v", "during"))  # never raises, queued

        async def refused_fast() -> bool:
            try:
                await node.connect(arn, "w")
            except ConnectionError:
                return True
            return False

        await eventually_async(refused_fast, what="registration refused while Redis is away", interval=0.1)
        redis_proxy.start()
        await eventually_async(bus.ping, what="the bus back", interval=0.1, ignoring=(ConnectionError,))
        t = await node.connect(arn, "x")
        assert t
    finally:
        await bus.close()


async def test_a_follow_on_one_node_makes_the_others_send_their_trace_events(nodes):
    """The live trace across nodes (``Bus.follow``): once ``follow`` returns, every other node
    knows (no wait for a renewal), sends its events there, and stops when it is withdrawn."""
    a, b, c = await nodes(3)
    arn, other = channel(), channel()
    await a.bus.follow(arn)
    assert (arn, True) in b.wanted and (arn, True) in c.wanted  # before follow returned
    assert a.wanted == []  # a node does not send its own events to itself
    b.bus.trace(arn, {"event": "connect", "channel": arn, "node": "node-1"})
    c.bus.trace(other, {"event": "connect", "channel": other, "node": "node-2"})  # nobody follows it
    b.bus.trace(arn, {"event": "disconnect", "channel": arn, "node": "node-1"})
    await until(lambda: len(a.events) == 2, "b's two events")
    assert [e["event"] for _, e in a.events] == ["connect", "disconnect"]
    assert b.events == [] and c.events == []
    a.bus.unfollow(arn)
    await until(lambda: (arn, False) in b.wanted and (arn, False) in c.wanted, "the withdrawal")


async def test_a_followed_channel_reports_retained_messages_that_expire_unclaimed(nodes):
    """Without a follower, a list nobody comes for lapses with its Redis key, unreported; a
    followed channel's expired messages are dropped and reported (the trace shows them)."""
    a, b = await nodes(2)
    arn = channel()
    await a.bus.follow(arn)
    held = await b.connect(arn, "here")
    b.bus.post(arn, msg("nobody", "short", sender="v9", ttl=0.3))
    b.bus.post(arn, msg("here", "live", ttl=0.3))
    await until(lambda: b.outcomes["ICE_CANDIDATE", "buffered"] == 1, "buffered")
    await until(lambda: b.labels(held) == ["live"], "the live one delivered")
    await until(lambda: (arn, "ICE_CANDIDATE", "expired", "v9", "nobody") in a.reported,
                "the expiry, reported on the follower's node")
    assert await a.bus.retained(arn, "nobody") == []
    assert not [r for r in a.reported + b.reported if r[4] == "here"]  # a held key's list is its node's


async def test_holdings_list_every_nodes_connections(nodes):
    a, b = await nodes(2)
    arn = channel()
    await a.connect(arn, "")
    await b.connect(arn, "v1")
    await b.connect(arn, "v2", virtual=True)
    seen = await a.bus.holdings(arn)
    assert seen is not None
    assert sorted((h.key, h.node, h.virtual) for h in seen) == [("", "node-0", False), ("v1", "node-1", False),
                                                               ("v2", "node-1", True)]
    everything = await b.bus.holdings()
    assert everything is not None
    assert {(h.arn, h.key) for h in everything} >= {(arn, ""), (arn, "v1"), (arn, "v2")}


# --- interleavings: a seeded random schedule ------------------------------------------------------

@pytest.mark.parametrize("seed", range(1, 13))
async def test_random_connects_moves_and_posts_deliver_each_message_once_in_order(nodes, bus_url, seed):
    """Hundreds of steps: recipients connect, disconnect, reconnect on another node or take their
    own key over while still connected; senders pinned to nodes post to them throughout, with
    the event loop yielding at random points so that Redis replies, pushes and takes interleave
    with the steps. At the end every recipient connects once more and a marker from each sender
    closes the stream: each message arrived exactly once, each sender's messages in order."""
    rnd = random.Random(seed)
    count = 1 if bus_url == "local://" else 3
    ns = await nodes(count)
    arn = channel()
    keys = ["", "v1", "v2", "v3"]
    senders = [(f"s{i}", ns[i % count]) for i in range(4)]
    where: dict[str, tuple[Node, int] | None] = {k: None for k in keys}
    sent: dict[tuple[str, str], list[str]] = defaultdict(list)
    for _step in range(300):
        r = rnd.random()
        key = rnd.choice(keys)
        if r < 0.55:
            sname, snode = rnd.choice(senders)
            n = len(sent[sname, key])
            lab = f"{sname}>{key}#{n}"
            sent[sname, key].append(lab)
            snode.bus.post(arn, msg(key, lab, sender=sname))
        elif r < 0.75:
            if where[key] is not None:
                node, token = where[key]  # type: ignore[misc]
                node.close(token)
                where[key] = None
        else:
            node = rnd.choice(ns)  # connect (taking over whatever holds the key, wherever)
            where[key] = (node, await node.connect(arn, key))
        for _ in range(rnd.randrange(3)):
            await asyncio.sleep(0)
    for key in keys:  # everyone connects at the end
        if where[key] is None or where[key][1] not in where[key][0].open:  # type: ignore[index]
            node = rnd.choice(ns)
            where[key] = (node, await node.connect(arn, key))
    for key in keys:
        node, token = where[key]  # type: ignore[misc]
        for _sname, snode in senders:
            await marker(snode, node, token, arn, key)
    got: dict[tuple[str, str], list[str]] = defaultdict(list)
    for _, e in sorted((entry for node in ns for entry in node.log), key=lambda entry: entry[0]):
        lab = label(e)
        if not lab.startswith("marker-"):
            got[lab.split(">")[0], e.recipient].append(lab)
    for pair, labels in sent.items():
        assert got.get(pair, []) == labels, f"{pair}: sent {labels}, delivered {got.get(pair)}"
    assert set(got) <= set(sent)

"""The sans-I/O router, driven without sockets: events in, actions out, time as a parameter."""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Any

import pytest

from signalite.bus.base import Envelope, Limits
from signalite.bus.local import LocalBus
from signalite.config import Quotas
from signalite.signaling import frames
from signalite.signaling.router import (
    Action,
    Close,
    ConnState,
    Post,
    Publish,
    Refused,
    Router,
    Send,
    Subscribe,
    Unregister,
    Unsubscribe,
    refusal,
)

# Channel events, as the hub raises them (each returns the Publish that every node applies).
CTL_TTL, CTL_DELETE, CTL_GO_AWAY, CTL_RECONNECT_ICE = "ttl", "delete", "go_away", "reconnect_ice_server"

ARN = "arn:aws:kinesisvideo:us-west-2:111122223333:channel/c/1700000000000"


class Sock:
    """A stand-in handle: records what the router asked to send or close."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None

    def send(self, text: str) -> None:
        self.sent.append(text)

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(t) for t in self.sent]


def _sync(coro: Any) -> Any:
    """Run a coroutine that never suspends (the embedded bus's register) to its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the coroutine suspended")


class _WorldClock:
    def __init__(self, world: "World") -> None:
        self.world = world

    def now(self) -> float:
        return self.world.now

    async def sleep(self, seconds: float) -> None:  # pragma: no cover - never awaited here
        raise NotImplementedError


class World:
    """A router plus a local bus, wired as the hub wires them (the bus is the real LocalBus, its
    mailboxes included: registration with the limits, presence, retention)."""

    def __init__(self, go_away_frames: bool = True, **quota_overrides: Any) -> None:
        self.router = Router(dataclasses.replace(Quotas(), **quota_overrides), go_away_frames=go_away_frames)
        self.now = 1000.0
        self.bus = LocalBus(_WorldClock(self))
        self.bus.set_mail_handler(self)
        q = self.router.quotas
        self.limits = Limits(q.max_viewers_per_channel, q.connects_per_second_per_channel)
        self.conns: dict[int, Any] = {}
        self.tokens = itertools.count(1)

    # the bus's mail handler
    def deliver(self, token: int, envelopes: Any) -> int:
        conn = self.conns.get(token)
        if conn is None:
            return 0
        self.run(self.router.deliver_mail(conn, envelopes, self.now))
        return len(envelopes)

    def taken_over(self, token: int) -> None:  # pragma: no cover - one node: the router replaces
        self.run(self.router.taken_over(self.conns[token], self.now))

    def lost(self, token: int) -> None:  # pragma: no cover - an embedded registration is never lost
        self.run(self.router.lost(self.conns[token], self.now))

    def outcome(self, arn: str, msg_type: str, outcome: str, sender: str, recipient: str) -> None:
        self.router.outcome(arn, msg_type, outcome, sender, recipient, self.now)

    def trace_wanted(self, arn: str, followed: bool) -> None:  # pragma: no cover - one node
        return None

    def trace_event(self, arn: str, event: dict) -> None:  # pragma: no cover - one node
        return None

    def run(self, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, Send):
                a.conn.handle.send(a.text)
            elif isinstance(a, Close):
                a.conn.handle.close(a.code, a.reason)
            elif isinstance(a, Post):
                self.bus.post(a.topic, a.envelope)
            elif isinstance(a, Unregister):
                self.conns.pop(a.conn.token, None)
                self.bus.unregister(a.conn.channel.arn, a.conn.key, a.conn.token)
            elif isinstance(a, Publish):
                self.bus.publish(a.topic, a.message)
            elif isinstance(a, Subscribe):
                self.bus.subscribe(a.topic, lambda t, e: self.run(self.router.deliver(t, e, self.now)))
            elif isinstance(a, Unsubscribe):
                self.bus.unsubscribe(a.topic)

    def connect(self, client_id: str | None = None, ttl: float = 60, **kw: Any):
        sock = Sock(client_id or "master")
        token = next(self.tokens)
        key = "" if client_id is None else client_id
        reg = _sync(self.bus.register(ARN, key, token, virtual=kw.get("virtual", False), limits=self.limits))
        if reg.refused is not None:
            raise refusal(reg.refused, self.router.quotas)
        conn, actions = self.router.connect(ARN, client_id, ttl, self.now, sock, token=token, **kw)
        self.conns[token] = conn
        self.run(actions)
        self.bus.start(ARN, key, token)
        return conn

    def retained(self, key: str) -> list[Envelope]:
        return self.bus.retention.peek((ARN, key), self.now)

    def send(self, conn, action: str, payload: str = "cGF5", recipient: str | None = None,
             cid: str | None = None, raw: str | None = None) -> None:
        msg: dict[str, Any] = {"action": action, "messagePayload": payload}
        if recipient is not None:
            msg["recipientClientId"] = recipient
        if cid is not None:
            msg["correlationId"] = cid
        self.run(self.router.message(conn, raw if raw is not None else json.dumps(msg), self.now))

    def tick(self, dt: float) -> None:
        self.now += dt
        self.run(self.router.tick(self.now))
        self.bus.tick(self.now)

    def ctl(self, verb: str, arg: str = "") -> None:
        r = self.router
        if verb == CTL_DELETE:
            self.bus.drop_channel(ARN)
        self.run({CTL_TTL: lambda: r.update_ttl(ARN, float(arg)), CTL_DELETE: lambda: r.delete_channel(ARN),
                  CTL_GO_AWAY: lambda: r.go_away(ARN), CTL_RECONNECT_ICE: lambda: r.go_away(ARN, True)}[verb]())


def test_viewer_to_master_carries_sender_and_master_to_viewer_does_not():
    w = World()
    m, v1, v2 = w.connect(), w.connect("v1"), w.connect("v2")
    w.send(v1, "SDP_OFFER", "b2ZmZXI=")
    assert m.handle.frames() == [{"messagePayload": "b2ZmZXI=", "messageType": "SDP_OFFER", "senderClientId": "v1"}]
    w.send(m, "SDP_ANSWER", "YW5z", recipient="v1")
    assert v1.handle.frames() == [{"messagePayload": "YW5z", "messageType": "SDP_ANSWER"}]
    assert v2.handle.sent == []


def test_viewer_recipient_is_ignored_so_viewers_never_reach_each_other():
    w = World()
    m, v1, v2 = w.connect(), w.connect("v1"), w.connect("v2")
    w.send(v1, "ICE_CANDIDATE", recipient="v2")
    assert v2.handle.sent == []
    assert m.handle.frames()[0]["senderClientId"] == "v1"


def test_both_key_casings_and_unknown_fields():
    w = World()
    m, v1 = w.connect(), w.connect("v1")
    w.send(v1, "", raw='{\n\t"action": "SDP_OFFER",\n\t"RecipientClientId": "ProducerMaster",\n'
                      '\t"MessagePayload": "QUJD",\n\t"IceServerList": [{"Uris": ["turn:x"]}]\n}')
    assert m.handle.frames() == [{"messagePayload": "QUJD", "messageType": "SDP_OFFER", "senderClientId": "v1"}]
    w.send(m, "", raw='{"action":"SDP_ANSWER","RecipientClientId":"v1","MessagePayload":"REVG","CorrelationId":"c-1"}')
    assert v1.handle.frames() == [{"messagePayload": "REVG", "messageType": "SDP_ANSWER"}]
    assert len(m.handle.sent) == 1  # no STATUS_RESPONSE on success


def test_status_response_only_on_failure_and_only_with_correlation_id():
    w = World()
    m = w.connect()
    w.send(m, "SDP_ANSWER")  # no recipient, no correlationId: silently dropped
    assert m.handle.sent == []
    w.send(m, "SDP_ANSWER", cid="corr-1")
    [status] = m.handle.frames()
    assert status["messageType"] == "STATUS_RESPONSE"
    assert status["statusResponse"]["correlationId"] == "corr-1"
    assert status["statusResponse"]["errorType"] == "InvalidArgumentException"
    assert status["statusResponse"]["statusCode"] == "400"
    w.send(m, "NOT_AN_ACTION", recipient="v", cid="corr-2")
    assert m.handle.frames()[-1]["statusResponse"]["correlationId"] == "corr-2"
    w.send(m, "SDP_OFFER", recipient="bad id!", cid="corr-3")
    assert m.handle.frames()[-1]["statusResponse"]["correlationId"] == "corr-3"


def test_retention_in_order_replacement_and_expiry():
    w = World()
    v1 = w.connect("v1", ttl=10)
    w.send(v1, "SDP_OFFER", "b2xk")
    w.send(v1, "ICE_CANDIDATE", "aWNlMQ==")
    w.send(v1, "SDP_OFFER", "bmV3")  # replaces the older undelivered offer
    w.send(v1, "ICE_CANDIDATE", "aWNlMg==")
    w.now += 5
    m = w.connect(ttl=10)
    assert [(f["messageType"], f["messagePayload"]) for f in m.handle.frames()] == [
        ("ICE_CANDIDATE", "aWNlMQ=="), ("SDP_OFFER", "bmV3"), ("ICE_CANDIDATE", "aWNlMg==")]
    w.run(w.router.disconnect(m, w.now))
    w.send(v1, "SDP_OFFER", "bGF0ZQ==")
    w.tick(10.5)  # past the TTL: dropped
    m2 = w.connect(ttl=10)
    assert m2.handle.sent == []


def test_offers_from_different_senders_are_both_kept():
    w = World()
    a, b = w.connect("a"), w.connect("b")
    w.send(a, "SDP_OFFER", "YQ==")
    w.send(b, "SDP_OFFER", "Yg==")
    m = w.connect()
    assert [f["senderClientId"] for f in m.handle.frames()] == ["a", "b"]


def test_master_to_offline_viewer_is_retained():
    w = World()
    m = w.connect()
    w.send(m, "SDP_OFFER", "eA==", recipient="later")
    v = w.connect("later")
    assert v.handle.frames() == [{"messagePayload": "eA==", "messageType": "SDP_OFFER"}]


def test_ttl_change_applies_to_messages_sent_after_it():
    w = World()
    v = w.connect("v", ttl=60)
    w.send(v, "ICE_CANDIDATE", "b2xk")
    w.ctl(CTL_TTL, "5")
    w.send(v, "ICE_CANDIDATE", "bmV3")
    w.tick(10)
    assert [e.frame for e in w.retained("")] == [frames.message("ICE_CANDIDATE", "b2xk", "v")]


def test_newest_master_wins_older_gets_go_away_and_close():
    w = World()
    m1 = w.connect()
    m2 = w.connect()
    assert m1.handle.frames() == [{"messageType": "GO_AWAY"}]
    assert m1.handle.closed is not None
    v = w.connect("v")
    w.send(v, "SDP_OFFER")
    assert len(m2.handle.sent) == 1 and len(m1.handle.sent) == 1
    w.run(w.router.disconnect(m1, w.now))  # the old socket going away changes nothing
    w.send(v, "SDP_OFFER")
    assert len(m2.handle.sent) == 2


def test_viewer_reconnect_replaces_and_does_not_count_twice():
    w = World(max_viewers_per_channel=2, connects_per_second_per_channel=None)
    w.connect("a")
    a2 = w.connect("a")
    w.connect("b")
    with pytest.raises(Refused) as exc:
        w.connect("c")
    assert exc.value.code == "ClientLimitExceededException"
    m = w.connect()
    w.send(m, "SDP_ANSWER", recipient="a")
    assert len(a2.handle.sent) == 1


def test_virtual_viewers_do_not_count_against_the_viewer_quota():
    w = World(max_viewers_per_channel=1, connects_per_second_per_channel=None)
    w.connect("alexa", virtual=True)
    w.connect("real")
    with pytest.raises(Refused):
        w.connect("another")


def test_connect_rate_per_channel():
    w = World(connects_per_second_per_channel=3)
    for i in range(3):
        w.connect(f"v{i}")
    with pytest.raises(Refused):
        w.connect("v3")
    w.now += 1
    w.connect("v3")


def test_message_rates_per_connection():
    w = World(sdp_messages_per_second=5, ice_messages_per_second=20)
    m, v = w.connect(), w.connect("v")
    for i in range(5):
        w.send(v, "SDP_OFFER", cid=f"s{i}")
    w.send(v, "SDP_OFFER", cid="s5")
    assert v.handle.frames()[-1]["statusResponse"]["errorType"] == "ClientLimitExceededException"
    for i in range(20):
        w.send(v, "ICE_CANDIDATE", cid=f"i{i}")
    w.send(v, "ICE_CANDIDATE", cid="i20")
    assert [f["statusResponse"]["correlationId"] for f in v.handle.frames()] == ["s5", "i20"]
    assert len(m.handle.sent) == 25
    w.now += 1
    w.send(v, "SDP_OFFER")
    assert len(m.handle.sent) == 26


def test_payload_limit_accepts_real_large_payloads_and_refuses_more():
    w = World()
    m, v = w.connect(), w.connect("v")
    import base64
    w.send(v, "SDP_OFFER", base64.b64encode(b"x" * 10_000).decode(), cid="ok")
    assert len(m.handle.sent) == 1
    w.send(v, "SDP_OFFER", "A" * 14_000, cid="big")
    assert v.handle.frames()[-1]["statusResponse"]["correlationId"] == "big"
    assert len(m.handle.sent) == 1


def test_malformed_frames_close_the_socket():
    w = World()
    v = w.connect("v")
    w.send(v, "", raw="{not json")
    assert v.handle.closed[0] == 1007
    v2 = w.connect("v2")
    w.send(v2, "", raw="[1,2]")
    assert v2.handle.closed[0] == 1007


def test_idle_timeout_and_max_duration_send_go_away_then_close():
    w = World(idle_timeout_seconds=10, max_connection_seconds=30, go_away_grace_seconds=2)
    m, v = w.connect(), w.connect("v")
    def keep_v_busy() -> None:
        w.send(v, "NOT_AN_ACTION")  # activity of v alone (nothing reaches m)

    w.tick(7)
    keep_v_busy()
    w.tick(0.9)
    assert m.handle.sent == []
    w.tick(0.2)  # m idle 8.1 s: within the 2 s grace of the 10 s timeout
    assert m.handle.sent == [frames.GO_AWAY_FRAME] and m.handle.closed is None
    w.tick(2)
    assert m.handle.closed == (1001, "idle timeout")
    while w.now < 1000 + 27.5:
        keep_v_busy()
        w.tick(0.5)
    assert v.handle.sent == [] and v.handle.closed is None
    keep_v_busy()
    w.tick(1)  # 28.5 s: GO_AWAY before the 30 s maximum
    assert v.handle.sent == [frames.GO_AWAY_FRAME] and v.handle.closed is None
    keep_v_busy()
    w.tick(1.6)
    assert v.handle.closed == (1001, "maximum connection duration reached")


def test_channel_delete_go_away_close_and_refuse_later_connects():
    w = World()
    m, v = w.connect(), w.connect("v")
    w.ctl(CTL_DELETE)
    for c in (m, v):
        assert c.handle.frames() == [{"messageType": "GO_AWAY"}]
        assert c.handle.closed[0] == 1001
    assert ARN not in w.router.channels
    with pytest.raises(Refused) as exc:
        w.connect("x")
    assert exc.value.status == 404


def test_admin_go_away_closes_after_grace_and_reconnect_ice_server_does_not_close():
    w = World(go_away_grace_seconds=3)
    m, v = w.connect(), w.connect("v")
    w.ctl(CTL_RECONNECT_ICE)
    assert v.handle.frames() == [{"messageType": "RECONNECT_ICE_SERVER"}]
    w.ctl(CTL_GO_AWAY)
    assert m.handle.frames()[-1] == {"messageType": "GO_AWAY"}
    w.tick(1)
    assert m.handle.closed is None
    w.tick(2.5)
    assert m.handle.closed is not None and v.handle.closed is not None


def test_channel_state_is_forgotten_when_unused():
    w = World()
    v = w.connect("v", ttl=5)
    w.send(v, "SDP_OFFER")
    w.run(w.router.disconnect(v, w.now))
    assert ARN not in w.router.channels  # the router holds connections only; the bus keeps the offer
    assert len(w.retained("")) == 1
    w.tick(6)
    assert w.retained("") == [] and w.bus.retention.lists == {}


def test_envelopes_round_trip_the_bus_wire_form():
    from signalite.bus.base import decode, encode

    env = Envelope("msg", "", "SDP_OFFER", "v1", frames.message("SDP_OFFER", "eA==", "v1"), 123.5)
    assert decode(encode(env)) == env


def test_client_id_rules():
    assert frames.valid_client_id("viewer-1_a.b")
    assert not frames.valid_client_id("aws_x") and not frames.valid_client_id("AWS_DEFAULT")
    assert not frames.valid_client_id("") and not frames.valid_client_id("x" * 257)
    assert not frames.valid_client_id("bad id")


# --- the sweep looks only at what is due ----------------------------------------------------------

def payloads(w: World, key: str = "") -> list[str]:
    return [json.loads(e.frame)["messagePayload"] for e in w.retained(key)]


def test_retained_messages_expire_in_expiry_order_not_send_order():
    w = World()
    m = w.connect(ttl=60)
    w.send(m, "ICE_CANDIDATE", "bG9uZw==", recipient="v")  # expires at +60
    w.ctl(CTL_TTL, "5")
    w.send(m, "ICE_CANDIDATE", "c2hvcnQ=", recipient="v")  # sent later, expires first (+5)
    w.ctl(CTL_TTL, "30")
    w.send(m, "ICE_CANDIDATE", "bWlk", recipient="v")  # +30
    w.tick(5.5)
    assert payloads(w, "v") == ["bG9uZw==", "bWlk"]  # the order of sending is kept
    w.tick(25)
    assert payloads(w, "v") == ["bG9uZw=="]
    w.tick(30)
    assert payloads(w, "v") == []
    v = w.connect("v")
    assert v.handle.sent == []


def test_ttl_change_to_longer_applies_to_later_messages_only():
    w = World()
    v = w.connect("v", ttl=5)
    w.send(v, "ICE_CANDIDATE", "b2xk")
    w.ctl(CTL_TTL, "60")
    w.send(v, "ICE_CANDIDATE", "bmV3")
    w.tick(10)
    assert payloads(w) == ["bmV3"]
    w.tick(49)
    assert payloads(w) == ["bmV3"]
    w.tick(1.5)
    assert payloads(w) == []


def test_a_replacing_offer_expires_on_its_own_time_not_the_replaced_ones():
    w = World()
    v = w.connect("v", ttl=10)
    w.send(v, "SDP_OFFER", "b2xk")
    w.tick(5)
    w.send(v, "SDP_OFFER", "bmV3")  # replaces the older offer, expires 5 s later than it would have
    w.run(w.router.disconnect(v, w.now))
    w.tick(5.5)  # the replaced offer's expiry comes up: the replacing one stays
    assert payloads(w) == ["bmV3"]
    w.tick(5)
    assert payloads(w) == [] and w.bus.retention.lists == {}


def test_delivered_messages_leave_nothing_for_the_sweep_to_do_but_skip():
    w = World()
    v = w.connect("v", ttl=5)
    w.send(v, "SDP_OFFER")
    m = w.connect(ttl=5)
    assert len(m.handle.sent) == 1
    w.send(v, "ICE_CANDIDATE")  # delivered: m is connected
    w.run(w.router.disconnect(m, w.now))
    w.send(v, "ICE_CANDIDATE", "bGF0ZXI=")  # retained again for the same recipient
    w.tick(6)
    assert payloads(w) == [] and ARN in w.router.channels  # v is still connected
    assert w.bus.retention.lists == {}


def test_without_idle_or_duration_limits_nothing_is_scheduled_and_nothing_closes():
    w = World(idle_timeout_seconds=None, max_connection_seconds=None)
    m, v = w.connect(), w.connect("v")
    assert w.router.scheduled() == (0, 0) and m.timer is None
    w.tick(30 * 86400)
    assert m.handle.sent == [] and v.handle.sent == [] and m.handle.closed is None
    w.ctl(CTL_GO_AWAY)  # an operator GO_AWAY still closes after the grace
    w.tick(w.router.quotas.go_away_grace_seconds + 1)
    assert m.handle.closed == (1001, "GO_AWAY requested by the operator")
    assert v.handle.closed == (1001, "GO_AWAY requested by the operator")
    assert ARN not in w.router.channels


@pytest.mark.parametrize("idle, longest, reason, at", [
    (10, None, "idle timeout", 10),
    (None, 30, "maximum connection duration reached", 30),
    (10, 5, "maximum connection duration reached", 5),
])
def test_each_limit_alone_go_away_at_deadline_minus_grace_close_at_deadline(idle, longest, reason, at):
    w = World(idle_timeout_seconds=idle, max_connection_seconds=longest, go_away_grace_seconds=2)
    m = w.connect()
    w.tick(at - 2 - 0.1)
    assert m.handle.sent == []
    w.tick(0.2)
    assert m.handle.sent == [frames.GO_AWAY_FRAME] and m.handle.closed is None
    w.tick(1.8)
    assert m.handle.closed is None
    w.tick(0.2)
    assert m.handle.closed == (1001, reason)
    assert m.handle.sent == [frames.GO_AWAY_FRAME]  # one GO_AWAY, one close
    assert w.router.scheduled() == (0, 0)


def test_activity_keeps_postponing_the_idle_go_away():
    w = World(idle_timeout_seconds=10, max_connection_seconds=None, go_away_grace_seconds=2)
    m, v = w.connect(), w.connect("v")
    for _ in range(20):
        w.send(v, "ICE_CANDIDATE")  # reaches m: both are active
        w.tick(5)
    assert v.handle.sent == [] and m.handle.sent.count(frames.GO_AWAY_FRAME) == 0
    assert w.router.scheduled().watched == 2  # one entry per connection, rescheduled, never piled up
    w.tick(3.1)  # 8.1 s since the last message
    assert m.handle.sent[-1] == frames.GO_AWAY_FRAME and v.handle.sent == [frames.GO_AWAY_FRAME]


def test_operator_go_away_replaces_the_idle_schedule_no_second_go_away():
    w = World(idle_timeout_seconds=10, max_connection_seconds=None, go_away_grace_seconds=3)
    m = w.connect()
    w.ctl(CTL_GO_AWAY)
    assert w.router.scheduled() == (0, 1)  # the idle watch was cancelled: only the close is due
    w.tick(2.9)
    assert m.handle.sent == [frames.GO_AWAY_FRAME] and m.handle.closed is None
    w.tick(0.2)
    assert m.handle.closed == (1001, "GO_AWAY requested by the operator")
    w.tick(20)
    assert m.handle.sent == [frames.GO_AWAY_FRAME]


def test_a_socket_replaced_during_its_grace_is_not_closed_by_the_sweep():
    w = World(idle_timeout_seconds=10, max_connection_seconds=None, go_away_grace_seconds=2)
    m1 = w.connect()
    w.tick(8.5)
    assert m1.handle.sent == [frames.GO_AWAY_FRAME]
    m2 = w.connect()  # the client reconnects as GO_AWAY asked: the router closes m1 (replaced)
    assert m1.handle.closed == (1000, "replaced by a newer connection")
    m1.handle.closed = None
    w.tick(2)
    assert m1.handle.closed is None and m2.handle.closed is None and m2.handle.sent == []
    w.tick(6.6)  # m2 idle 8.6 s
    assert m2.handle.sent == [frames.GO_AWAY_FRAME]


def test_closed_sockets_are_not_kept_by_the_schedule_under_churn():
    w = World(idle_timeout_seconds=600, max_connection_seconds=3600, connects_per_second_per_channel=None,
              max_viewers_per_channel=None)
    import gc
    import weakref

    w.connect()
    gone = []
    gc.disable()  # freed by reference counting alone, as on the server (gc.freeze)
    try:
        for i in range(1000):
            v = w.connect(f"v{i}")
            gone.append(weakref.ref(v.handle))
            w.run(w.router.disconnect(v, w.now))
        del v
        assert all(ref() is None for ref in gone)  # a closed socket's schedule entry holds nothing
    finally:
        gc.enable()
    assert w.router.scheduled() == (1, 0)


def test_a_flood_to_an_offline_recipient_keeps_one_expiry_entry_not_one_per_message():
    w = World(ice_messages_per_second=None)
    m = w.connect(ttl=60)
    for _ in range(2000):
        w.send(m, "ICE_CANDIDATE", recipient="gone")
        w.now += 0.01
    assert len(w.retained("gone")) == 512 and w.bus.retention.scheduled == 1
    w.tick(60 - 5 + 0.005)  # the oldest of the 512 kept (sent over the last 5.12 s) expire
    kept = w.retained("gone")
    assert 0 < len(kept) < 512 and all(e.expires > w.now for e in kept)
    assert w.bus.retention.scheduled == 1
    w.tick(20)
    assert w.retained("gone") == [] and w.bus.retention.scheduled == 0


# --- server-initiated ends without frames (the default: the KVS C SDK deadlocks on GO_AWAY) -------

def test_by_default_the_idle_timeout_closes_at_the_deadline_without_a_frame():
    w = World(go_away_frames=False, idle_timeout_seconds=10, max_connection_seconds=None, go_away_grace_seconds=2)
    m = w.connect()
    w.tick(9.9)  # a grace period before the deadline: nothing is sent
    assert m.handle.sent == [] and m.handle.closed is None
    w.tick(0.2)
    assert m.handle.sent == [] and m.handle.closed == (1001, "idle timeout")
    assert ARN not in w.router.channels and m.state is ConnState.CLOSED


def test_by_default_the_maximum_duration_closes_without_a_frame_even_when_active():
    w = World(go_away_frames=False, idle_timeout_seconds=None, max_connection_seconds=30)
    m, v = w.connect(), w.connect("v")
    for _ in range(29):
        w.send(v, "ICE_CANDIDATE")
        w.tick(1)
    assert m.handle.closed is None
    w.tick(1.1)
    assert m.handle.closed == (1001, "maximum connection duration reached")
    assert v.handle.closed == (1001, "maximum connection duration reached")
    assert all(f.get("messageType") != "GO_AWAY" for f in m.handle.frames() + v.handle.frames())


def test_by_default_delete_and_replacement_close_without_a_frame():
    w = World(go_away_frames=False)
    m1 = w.connect()
    m2 = w.connect()
    assert m1.handle.sent == [] and m1.handle.closed == (1000, "replaced by a newer connection")
    v = w.connect("v")
    w.ctl(CTL_DELETE)
    for c in (m2, v):
        assert c.handle.sent == [] and c.handle.closed == (1001, "the signaling channel was deleted")
    with pytest.raises(Refused):
        w.connect()


def test_operator_go_away_and_reconnect_ice_server_always_send_their_frame():
    w = World(go_away_frames=False, go_away_grace_seconds=2)
    m = w.connect()
    w.ctl(CTL_RECONNECT_ICE)
    w.ctl(CTL_GO_AWAY)
    assert m.handle.frames() == [{"messageType": "RECONNECT_ICE_SERVER"}, {"messageType": "GO_AWAY"}]
    assert m.state is ConnState.GOING_AWAY and m.handle.closed is None
    w.tick(2.1)
    assert m.handle.closed == (1001, "GO_AWAY requested by the operator")


def test_a_control_event_from_a_newer_node_is_ignored():
    from signalite.bus.base import Control

    w = World()
    m = w.connect()
    w.bus.publish(ARN, Control("ctl", "something_new", "x"))
    assert m.handle.sent == [] and m.state is ConnState.OPEN


def test_virtual_viewers_are_not_ended_by_the_idle_timeout_or_maximum_duration():
    w = World(go_away_frames=False, idle_timeout_seconds=10, max_connection_seconds=30)
    peer = w.connect("signalite-storage-1", virtual=True)
    w.tick(31)
    assert peer.handle.closed is None and peer.state is ConnState.OPEN
    m = w.connect()
    w.send(m, "SDP_OFFER", recipient="signalite-storage-1")
    assert len(peer.handle.sent) == 1


# --- the live trace --------------------------------------------------------------------------------

def test_a_traced_channel_notes_every_outcome_and_an_untraced_one_nothing():
    w = World(go_away_frames=False)
    m = w.connect()
    v = w.connect("v")
    w.send(v, "SDP_OFFER", "b2Zm")
    assert w.router.take_notes() == []  # not traced: nothing noted
    w.router.traced.add(ARN)
    w.send(v, "SDP_OFFER", "b2Zm")
    w.send(m, "SDP_ANSWER", "YQ==", recipient="gone")
    w.send(m, "SDP_ANSWER", "Yg==", recipient="gone")
    w.send(m, "BAD", "eA==", recipient="v", cid="c1")
    notes = w.router.take_notes()
    got = [(n.event, n.message_type, n.sender, n.recipient, n.payload) for n in notes]
    assert got == [  # what the bus did with the answers for "gone" is reported back and noted too
        ("sent", "SDP_OFFER", "v", None, "b2Zm"), ("delivered", "SDP_OFFER", "v", None, "b2Zm"),
        ("sent", "SDP_ANSWER", None, "gone", "YQ=="), ("buffered", "SDP_ANSWER", None, "gone", None),
        ("sent", "SDP_ANSWER", None, "gone", "Yg=="), ("replaced", "SDP_ANSWER", None, "gone", None),
        ("buffered", "SDP_ANSWER", None, "gone", None),
        ("rejected", "other", None, None, None),
    ]
    assert "InvalidArgumentException" in notes[-1].detail
    assert (v.sent, m.received, m.sent) == (2, 2, 2)


# --- the connect rate: accepted handshakes per channel and role, across connect-and-close churn ----

def test_connect_and_close_churn_does_not_refill_the_connect_rate():
    w = World(connects_per_second_per_channel=3)
    accepted = 0
    for _ in range(20):  # 20 connect-and-close cycles within one second
        try:
            m = w.connect()
        except Refused as exc:
            assert exc.code == "ClientLimitExceededException"
            continue
        accepted += 1
        w.run(w.router.disconnect(m, w.now))
        assert ARN not in w.router.channels  # the channel is forgotten, its connect rate is not
        w.now += 0.01
    assert accepted == 3
    w.now += 1 / 3  # a third of a second refills one token
    w.connect()


def test_master_and_viewer_connects_have_separate_rates():
    w = World(connects_per_second_per_channel=3, max_viewers_per_channel=None)
    for _ in range(3):
        w.connect()
    with pytest.raises(Refused):
        w.connect()
    for i in range(3):  # ConnectAsViewer has its own 3 per second
        w.connect(f"v{i}")
    with pytest.raises(Refused) as exc:
        w.connect("v3")
    assert "viewer" in exc.value.message


def test_refused_connects_spend_no_token():
    w = World(connects_per_second_per_channel=3, max_viewers_per_channel=1)
    w.connect("a")
    for _ in range(10):  # refused by the viewer quota: not accepted, not counted
        with pytest.raises(Refused):
            w.connect("b")
    w.connect("a")  # a reconnect of the same viewer is accepted (2nd token)
    w.connect("a")  # 3rd
    with pytest.raises(Refused) as exc:
        w.connect("a")
    assert "per second" in exc.value.message


def test_virtual_viewers_spend_no_connect_token():
    w = World(connects_per_second_per_channel=3)
    for i in range(10):
        w.connect(f"alexa{i}", virtual=True)
    for i in range(3):
        w.connect(f"v{i}")

"""The guard's bookkeeping without sockets: which address a connection counts against, and how a
connection moves from counted to refused to settled (the server-level behaviour is in
tests/e2e/test_hostile.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from signalite.aws.wire import Wire
from signalite.config import Quotas, Settings
from signalite.edge.guard import Guard, _State, _Tracked, peer_key


@pytest.mark.parametrize("host, key", [
    ("192.0.2.7", "192.0.2.7"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("fe80::1%eth0", "fe80::/64"),
    ("not-an-address", "not-an-address"),
    (None, ""),
    ("", ""),
])
def test_peer_key(host, key):
    assert peer_key(host) == key


class Transport:
    def __init__(self, host: str) -> None:
        self.host = host
        self.aborted = False

    def get_extra_info(self, name: str) -> Any:
        return (self.host, 12345) if name == "peername" else None

    def abort(self) -> None:
        self.aborted = True


class Inner:
    """Stands for aiohttp's RequestHandler: records what the wrapper forwards."""

    def __init__(self) -> None:
        self.made = self.lost = False

    def data_received(self, data: bytes) -> None:
        pass

    def connection_made(self, transport: Any) -> None:
        self.made = True

    def connection_lost(self, exc: BaseException | None) -> None:
        self.lost = True

    def eof_received(self) -> None:
        pass


WIRE = Wire()


def guard(limit: int | None = 2, rate: float | None = 5.0) -> Guard:
    quotas = dataclasses.replace(Quotas(), max_unauthenticated_per_ip=limit, handshakes_per_ip_per_second=rate)
    return Guard(Settings(quotas=quotas), WIRE)


def open_conn(g: Guard, host: str) -> tuple[_Tracked, Inner, Transport]:
    inner = Inner()
    conn = _Tracked(g, inner)  # type: ignore[arg-type]
    transport = Transport(host)
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, inner, transport


def test_pending_then_refused_then_closed_at_once():
    g = guard(limit=2)
    states = [open_conn(g, "192.0.2.1") for _ in range(5)]
    assert [c.state for c, _, _ in states] == [_State.PENDING, _State.PENDING, _State.REFUSED, _State.REFUSED,
                                               _State.DONE]
    assert [t.aborted for _, _, t in states] == [False, False, False, False, True]
    assert [i.made for _, i, _ in states] == [True, True, True, True, False]  # aiohttp never sees the fifth
    assert g.pending("192.0.2.1") == 2
    other, _, _ = open_conn(g, "192.0.2.2")  # another address has its own count
    assert other.state is _State.PENDING


def test_settling_frees_the_slot_and_forgets_idle_addresses():
    g = guard(limit=1)
    first, _, _ = open_conn(g, "192.0.2.1")
    second, _, _ = open_conn(g, "192.0.2.1")
    assert second.state is _State.REFUSED
    g._settle(first)  # authenticated: no longer counted
    assert g.pending("192.0.2.1") == 0
    third, _, _ = open_conn(g, "192.0.2.1")
    assert third.state is _State.PENDING
    for conn in (first, second, third):
        conn.connection_lost(None)
    assert not g._peers and not g._conns  # nothing kept for an address with no connection


def test_close_is_forwarded_only_to_connections_aiohttp_saw():
    g = guard(limit=1)
    kept = [open_conn(g, "192.0.2.1") for _ in range(3)]
    for conn, _, _ in kept:
        conn.connection_lost(None)
    assert [inner.lost for _, inner, _ in kept] == [True, True, False]


def test_relaxed_means_no_wrapping():
    g = Guard(Settings(quotas=Quotas.profile("relaxed")), WIRE)
    assert not g.tracking

    class Server:
        def __call__(self) -> str:
            return "plain protocol"

    server = Server()
    assert g.protocol_factory(server) is server  # type: ignore[arg-type]


def test_reads_go_straight_to_aiohttp():
    g = guard()
    inner = Inner()
    conn = _Tracked(g, inner)  # type: ignore[arg-type]
    assert conn.data_received == inner.data_received  # the bound method itself: no extra call per read

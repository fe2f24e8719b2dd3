"""TURN REST credentials and ICE URI grouping, without a server (coturn checks them in e2e)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from signalite.clock import ManualClock
from signalite.dataplane.ice import IceProvider
from signalite.dataplane.turn import group_uris, turn_rest_credentials, uri_address, uri_host


def test_credentials_follow_the_turn_rest_scheme():
    user, password = turn_rest_credentials("s3cret", "viewer-1", 1_800_000_000)
    assert user == "1800000000:viewer-1"
    expected = base64.b64encode(hmac.new(b"s3cret", user.encode(), hashlib.sha1).digest()).decode()
    assert password == expected and len(base64.b64decode(password)) == 20


@pytest.mark.parametrize("uri, host, address", [
    ("turn:127.0.0.1:3478?transport=udp", "127.0.0.1", ("127.0.0.1", 3478, "udp")),
    ("turns:turn.example.com:443?transport=tcp", "turn.example.com", ("turn.example.com", 443, "tcp")),
    ("turn:[::1]:5000?transport=tcp", "[::1]", ("::1", 5000, "tcp")),
    ("stun:stun.example.com", "stun.example.com", ("stun.example.com", 3478, "udp")),
])
def test_uri_parts(uri, host, address):
    assert uri_host(uri) == host
    assert uri_address(uri) == address


def test_grouping_and_refusals():
    groups = group_uris(["turn:a:1?transport=udp", "turn:b:1", "turn:a:1?transport=tcp", "turns:a:443?transport=tcp",
                         "turns:a:443?transport=udp", "turn:A:2"], "k")
    assert [g.uris for g in groups] == [
        ("turn:a:1?transport=udp", "turn:a:1?transport=tcp", "turns:a:443?transport=tcp", "turns:a:443?transport=udp"),
        ("turn:A:2",), ("turn:b:1",)]
    for bad in ("http://a:1", "a:1", "turn:", "turn:" + "x" * 260):
        with pytest.raises(ValueError):
            group_uris([bad], "k")


def test_provider_limits_and_identity_length():
    groups = group_uris([f"turn:h{i}:3478" for i in range(7)], "k")
    provider = IceProvider(groups, 300, clock=ManualClock(1_800_000_000.7))
    servers = provider.ice_servers("c" * 256)
    assert len(servers) == 5
    for entry in servers:
        assert entry["Ttl"] == 300
        assert len(entry["Username"]) == 256 and entry["Username"].startswith("1800000300:")
    stun_only = IceProvider(group_uris(["stun:127.0.0.1:9"], None), 300, clock=ManualClock(0.0))
    assert stun_only.ice_servers("x") == [{"Uris": ["stun:127.0.0.1:9"], "Ttl": 300}]

"""The embedded STUN responder that GetIceServerConfig returns when no TURN server is configured:
aioice binding requests (raw, and aioice's own STUN client transaction) get our mapped address."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import pytest
from aioice import stun
from aioice.ice import StunProtocol

from tests.e2e.test_ice import https_endpoint
from tests.support.coturn import stun_address
from tests.support.server import PICK_PORT


@pytest.fixture
def stun_addr(server, kv, name) -> tuple[str, int]:
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    sig = server.boto("kinesis-video-signaling", endpoint=https_endpoint(kv, arn))
    (entry,) = sig.get_ice_server_config(ChannelARN=arn)["IceServerList"]
    return stun_address(entry["Uris"][0])


def udp_exchange(addr: tuple[str, int], payload: bytes, timeout: float = 2.0) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(timeout)
        s.sendto(payload, addr)
        try:
            return s.recvfrom(2048)[0]
        except TimeoutError:
            return None


def answers_before_marker(addr: tuple[str, int], *datagrams: bytes, timeout: float = 5.0) -> list[bytes]:
    """Send ``datagrams`` and then a Binding request (the marker) from one socket, and return the
    replies that came before the marker's response.

    A UDP non-answer has no reply to wait for, so it is proven by order instead of by a quiet
    window: on loopback the kernel keeps one socket pair's datagrams in order, and the responder
    answers each datagram as it reads it, so an answer to any of ``datagrams`` would arrive first.
    ``timeout`` is a safety net for the marker's response, not a timing.
    """
    marker = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    before: list[bytes] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(timeout)
        for data in (*datagrams, bytes(marker)):
            s.sendto(data, addr)
        while True:
            reply = s.recvfrom(2048)[0]
            try:
                if stun.parse_message(reply).transaction_id == marker.transaction_id:
                    return before
            except ValueError:
                pass
            before.append(reply)


def test_raw_binding_request_gets_xor_mapped_address(stun_addr):
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    request.add_fingerprint()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        s.sendto(bytes(request), stun_addr)
        data, source = s.recvfrom(2048)
        mine = s.getsockname()
    response = stun.parse_message(data)  # also checks FINGERPRINT
    assert source == stun_addr
    assert response.message_method == stun.Method.BINDING
    assert response.message_class == stun.Class.RESPONSE
    assert response.transaction_id == request.transaction_id
    assert response.attributes["XOR-MAPPED-ADDRESS"] == mine
    assert response.attributes["MAPPED-ADDRESS"] == mine
    assert "FINGERPRINT" in response.attributes


async def test_aioice_stun_transaction(stun_addr):
    """aioice's own client side (StunProtocol.request, as its ICE agent uses for srflx candidates)."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: StunProtocol(None), local_addr=("127.0.0.1", 0))
    try:
        request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        response, addr = await protocol.request(request, stun_addr)
        assert addr == stun_addr
        assert response.attributes["XOR-MAPPED-ADDRESS"] == transport.get_extra_info("sockname")
    finally:
        transport.close()


def test_other_methods_get_400_and_garbage_is_ignored(stun_addr):
    allocate = stun.Message(stun.Method.ALLOCATE, stun.Class.REQUEST)
    error = stun.parse_message(udp_exchange(stun_addr, bytes(allocate)))
    assert error.message_class == stun.Class.ERROR and error.error_code == 400
    indication = stun.Message(stun.Method.BINDING, stun.Class.INDICATION)
    # garbage and an indication get no answer, and the responder still answers afterwards
    assert answers_before_marker(stun_addr, b"GET / HTTP/1.1\r\n\r\n", bytes(indication)) == []


def test_stun_port_flag_and_default(make_server, name):
    srv = make_server("--stun-port", PICK_PORT)
    port = int(srv.option("--stun-port"))
    kv = srv.boto()
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    sig = srv.boto("kinesis-video-signaling", endpoint=https_endpoint(kv, arn))
    assert sig.get_ice_server_config(ChannelARN=arn)["IceServerList"][0]["Uris"] == [f"stun:127.0.0.1:{port}"]


def test_default_stun_port_is_the_tls_port_number(server, stun_addr):
    """Like AWS's stun.kinesisvideo…:443: UDP on the number of the HTTPS/WSS port."""
    assert stun_addr == ("127.0.0.1", server.port)


def test_busy_stun_port_fails_clearly(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALITE_")}
        proc = subprocess.run([sys.executable, "-m", "signalite", "serve", "--data-dir", str(tmp_path),
                               "--port", "0", "--stun-port", str(port)],
                              capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode != 0
    assert "STUN responder cannot listen" in proc.stderr and "Traceback" not in proc.stderr

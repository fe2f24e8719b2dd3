"""Hostile clients against the real server, on loopback, each bounded: silent, slow (headers and
bodies), half-open sockets, upgrade floods with bad and with valid signatures, connect-and-close
churn, too many unauthenticated connections from one address, and SIGTERM's drain.

Each test shows two things: the server keeps serving a normal client meanwhile (a signed REST
call and a WSS relay from 127.0.0.1), and it reclaims what the hostile client held (every socket
is closed by the server, and its open file descriptors come back down). Hostile clients connect
from other loopback addresses (127.0.0.x), so the per-address limits that stop them do not stop
the normal client. The server runs with second-long timeouts so that nothing waits long; the
waits are for events (a socket closed, a status), with a safety net, never a timed assertion.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import ssl
import time
from typing import Callable, Iterator

import pytest
import websockets

from tests.support.server import Server, running_server
from tests.support.signaling import b64, connect, presign, ssl_ctx
from tests.support.signed import sign
from tests.support.wait import eventually, eventually_async

HEADER_TIMEOUT = 1
LIMIT = 16
HANDSHAKES = 10
SAFETY = 30.0


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Second-long timeouts (the per-address limits at their defaults)."""
    with running_server(tmp_path_factory.mktemp("guarded"), "--header-timeout", str(HEADER_TIMEOUT),
                        "--body-timeout", "1", "--body-min-rate", "200", "--tls-handshake-timeout", "1") as s:
        yield s


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Small per-address limits, and a header timeout long enough that held sockets stay held."""
    with running_server(tmp_path_factory.mktemp("limited"), "--header-timeout", "60",
                        "--max-unauthenticated-per-ip", str(LIMIT), "--handshakes-per-ip", str(HANDSHAKES)) as s:
        yield s


# --- helpers ------------------------------------------------------------------------------------

def open_fds(server: Server) -> int:
    assert server.proc is not None
    return len(os.listdir(f"/proc/{server.proc.pid}/fd"))


def raw(server: Server, source: str, *, tls: bool = False, plain_port: bool = False) -> socket.socket:
    """A TCP connection from ``source`` (a loopback address) to the TLS port (TLS or not) or the
    plain HTTP port."""
    port = server.http_port if plain_port else server.port
    sock = socket.create_connection(("127.0.0.1", port), timeout=SAFETY, source_address=(source, 0))
    if tls:
        sock = ssl.create_default_context(cafile=server.ca).wrap_socket(sock, server_hostname="127.0.0.1")
    return sock


def closed_by_server(sock: socket.socket, feed: Callable[[socket.socket], None] | None = None,
                     every: float = 0.2) -> bytes:
    """Read until the server closes ``sock`` (calling ``feed`` between reads, to keep dripping
    bytes); return what it sent before closing. Fails if it is still open after the safety net."""
    deadline = time.monotonic() + SAFETY
    got = b""
    sock.settimeout(every)
    try:
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except (TimeoutError, ssl.SSLWantReadError):
                if feed is not None:
                    try:
                        feed(sock)
                    except OSError:  # the server closed it while we were writing
                        return got
                continue
            except OSError:  # reset, or TLS torn down
                return got
            if not data:
                return got
            got += data
        raise AssertionError(f"the server left the socket open (got {got[:200]!r})")
    finally:
        sock.close()


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0


async def normal_client_is_served(server: Server, name: str) -> None:
    """A signed REST call and a WSS relay from 127.0.0.1 work."""
    kv = server.boto()
    arn = await asyncio.to_thread(lambda: kv.create_signaling_channel(ChannelName=name)["ChannelARN"])
    master = await connect(server, arn)
    viewer = await connect(server, arn, "normal")
    await viewer.send("SDP_OFFER", b64({"type": "offer", "sdp": "v=0"}))
    assert (await master.recv())["senderClientId"] == "normal"
    await master.close()
    await viewer.close()


def fds_come_back(server: Server, before: int) -> None:
    eventually(lambda: open_fds(server) <= before + 2,
               what=lambda: f"the server's open fds back to {before} (now {open_fds(server)})")


# --- silent, slow and half-open sockets ---------------------------------------------------------

async def test_silent_sockets_are_closed_and_others_are_served(guarded, name):
    before = open_fds(guarded)
    plain = [raw(guarded, "127.0.0.11", plain_port=True) for _ in range(30)]  # more than the limit: some refused
    tls_port = [raw(guarded, "127.0.0.11") for _ in range(30)]  # not even a TLS ClientHello
    await normal_client_is_served(guarded, name)
    replies = await asyncio.gather(*(asyncio.to_thread(closed_by_server, s) for s in plain + tls_port))
    assert replies == [b""] * 60  # closed without an answer: they never asked anything
    fds_come_back(guarded, before)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_slow_headers_are_cut_at_the_header_timeout(guarded, name, tls):
    before = open_fds(guarded)
    socks = [raw(guarded, "127.0.0.12", tls=tls, plain_port=not tls) for _ in range(12)]
    for s in socks:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    await normal_client_is_served(guarded, name)
    replies = await asyncio.gather(*(asyncio.to_thread(closed_by_server, s, lambda k: k.sendall(b"a"))
                                     for s in socks))
    assert replies == [b""] * len(socks)  # a byte every 0.2 s: never a complete head, never an answer
    fds_come_back(guarded, before)


def _slow_post(server: Server, source: str, tls: bool, body: bytes, signed: bool) -> tuple[socket.socket, bytes]:
    url = f"{server.url if tls else server.http_url}/listSignalingChannels"
    headers = sign("POST", url, body) if signed else {"Content-Type": "application/json"}
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() != "content-length")
    sock = raw(server, source, tls=tls, plain_port=not tls)
    port = server.port if tls else server.http_port
    sock.sendall(f"POST /listSignalingChannels HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(body)}\r\n"
                 f"{head}\r\n".encode())
    return sock, body


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_slow_bodies_are_answered_408_and_closed(guarded, name, tls):
    before = open_fds(guarded)
    socks = [_slow_post(guarded, "127.0.0.13", tls, b" " * 4096, signed=False)[0] for _ in range(10)]
    await normal_client_is_served(guarded, name)
    replies = await asyncio.gather(*(asyncio.to_thread(closed_by_server, s, lambda k: k.sendall(b" "))
                                     for s in socks))
    for reply in replies:  # a byte every 0.2 s, below the 200 B/s minimum
        assert status_of(reply) == 408, reply[:300]
        assert b"x-amzn-ErrorType: RequestTimeoutException" in reply
        assert b"Connection: close" in reply
    fds_come_back(guarded, before)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_a_slow_body_above_the_minimum_rate_is_served(guarded, tls):
    body = json.dumps({"MaxResults": 10}).encode().ljust(4096)  # JSON allows trailing whitespace
    sock, body = _slow_post(guarded, "127.0.0.13", tls, body, signed=True)
    chunks = [body[i:i + 1024] for i in range(0, len(body), 1024)]

    def drip(k: socket.socket) -> None:  # 1 KiB every 0.5 s: 2 KiB/s, longer than --body-timeout 1
        if chunks:
            k.sendall(chunks.pop(0))

    sock.sendall(chunks.pop(0))
    reply = await asyncio.to_thread(closed_by_server_after_answer, sock, drip)
    assert status_of(reply) == 200, reply[:300]


def closed_by_server_after_answer(sock: socket.socket, feed: Callable[[socket.socket], None]) -> bytes:
    """Like :func:`closed_by_server`, but return as soon as a whole answer arrived (keep-alive)."""
    deadline = time.monotonic() + SAFETY
    got = b""
    sock.settimeout(0.5)
    try:
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except (TimeoutError, ssl.SSLWantReadError):
                feed(sock)
                continue
            if not data:
                return got
            got += data
            head, sep, rest = got.partition(b"\r\n\r\n")
            if sep:
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                if len(rest) >= length:
                    return got
        raise AssertionError(f"no complete answer (got {got[:200]!r})")
    finally:
        sock.close()


async def test_half_open_sockets_are_closed(guarded, name):
    before = open_fds(guarded)
    # A client that sends half a request head and shuts its sending side (FIN): nothing more can come.
    half = [raw(guarded, "127.0.0.14", plain_port=True) for _ in range(5)]
    for s in half:
        s.sendall(b"GET /health HTTP/1.1\r\nHo")
        s.shutdown(socket.SHUT_WR)
    # A client that completed its TLS handshake and then went quiet (or away).
    quiet = [raw(guarded, "127.0.0.14", tls=True) for _ in range(5)]
    # A client that stopped halfway through its TLS handshake.
    stalled = [raw(guarded, "127.0.0.14") for _ in range(5)]
    for s in stalled:
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    await normal_client_is_served(guarded, name)
    replies = await asyncio.gather(*(asyncio.to_thread(closed_by_server, s) for s in half + quiet + stalled))
    assert replies == [b""] * 15
    fds_come_back(guarded, before)


# --- per-address limits --------------------------------------------------------------------------

def _signed_list(server: Server, source: str) -> tuple[int, str | None, http.client.HTTPConnection]:
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=SAFETY, source_address=(source, 0))
    body = json.dumps({"MaxResults": 1}).encode()
    conn.request("POST", "/listSignalingChannels", body=body,
                 headers=sign("POST", f"{server.http_url}/listSignalingChannels", body))
    reply = conn.getresponse()
    reply.read()
    error = reply.getheader("x-amzn-ErrorType")
    return reply.status, error.split(":", 1)[0] if error else None, conn


async def test_unauthenticated_connections_per_address_are_limited(limited, name):
    before = open_fds(limited)
    pending = [raw(limited, "127.0.0.16", plain_port=True) for _ in range(LIMIT)]
    # Past the limit, even a valid request from that address is answered with the throttling error
    # (the server cannot tell it from the others until it has read it), and its connection closed.
    status, error, conn = await asyncio.to_thread(_signed_list, limited, "127.0.0.16")
    assert (status, error) == (400, "ClientLimitExceededException")
    conn.close()
    await normal_client_is_served(limited, name)  # other addresses are not affected
    for s in pending:
        s.close()

    async def served_again() -> bool:
        return (await asyncio.to_thread(_signed_list, limited, "127.0.0.16"))[0] == 200

    await eventually_async(served_again, what="the address served again once its connections closed")
    fds_come_back(limited, before)


async def test_far_past_the_limit_connections_are_closed_unanswered(limited):
    held = [raw(limited, "127.0.0.18", plain_port=True) for _ in range(2 * LIMIT)]
    extra = raw(limited, "127.0.0.18", plain_port=True)
    extra.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert await asyncio.to_thread(closed_by_server, extra) == b""
    for s in held:
        s.close()


async def test_authenticated_connections_stop_counting(limited):
    conns = []
    for _ in range(LIMIT + 8):  # each gets a 2xx before the next opens: none stays unauthenticated
        status, _, conn = await asyncio.to_thread(_signed_list, limited, "127.0.0.17")
        assert status == 200
        conns.append(conn)
    for conn in conns:
        conn.close()


async def _flood(server: Server, source: str, urls: list[str], concurrency: int = 8) -> tuple[list[int], float]:
    """Upgrade attempts from ``source``; (HTTP statuses, with 101 for an upgrade, elapsed seconds)."""
    statuses: list[int] = []
    bodies: list[bytes] = []
    it = iter(urls)

    async def worker() -> None:
        for url in it:
            try:
                ws = await websockets.connect(url, ssl=ssl_ctx(server), open_timeout=SAFETY,
                                              local_addr=(source, 0))
            except websockets.InvalidStatus as exc:
                statuses.append(exc.response.status_code)
                bodies.append(exc.response.body)
                continue
            statuses.append(101)
            await ws.close()

    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - start
    for status, body in zip([s for s in statuses if s != 101], bodies):
        if status == 400:
            assert b"ClientLimitExceededException" in body, body
    return statuses, elapsed


async def test_upgrade_flood_with_bad_signatures(limited, name):
    arn = limited.boto().create_signaling_channel(ChannelName=name)["ChannelARN"]
    before = open_fds(limited)
    urls = [presign(limited, arn, f"v{i}", secret_key="wrong") for i in range(60)]
    statuses, elapsed = await _flood(limited, "127.0.0.19", urls)
    assert set(statuses) <= {403, 400}
    # Every attempt, signed or not, spends one of the address's tokens (burst 10, then 10/s).
    assert statuses.count(403) <= HANDSHAKES + HANDSHAKES * elapsed + 1
    await normal_client_is_served(limited, name + "-n")
    fds_come_back(limited, before)


async def test_upgrade_flood_with_valid_signatures(limited, name):
    kv = limited.boto()
    arns = [kv.create_signaling_channel(ChannelName=f"{name}-{i}")["ChannelARN"] for i in range(6)]
    before = open_fds(limited)
    urls = [presign(limited, arns[i % 6], f"v{i}") for i in range(60)]
    statuses, elapsed = await _flood(limited, "127.0.0.20", urls)
    assert set(statuses) <= {101, 400}
    assert statuses.count(101) <= HANDSHAKES + HANDSHAKES * elapsed + 1  # the address's rate
    await normal_client_is_served(limited, name + "-n")
    fds_come_back(limited, before)


# --- the connect rate per channel: accepted handshakes, not open sockets ------------------------

async def test_connect_and_close_churn_is_limited_per_channel_and_role(server, name):
    arn = server.boto().create_signaling_channel(ChannelName=name)["ChannelARN"]
    accepted = refused = 0
    start = time.monotonic()
    for _ in range(30):  # connect, and close at once: the channel has no socket left between two
        try:
            ws = await websockets.connect(presign(server, arn), ssl=ssl_ctx(server), open_timeout=SAFETY)
        except websockets.InvalidStatus as exc:
            assert exc.response.status_code == 400 and b"ClientLimitExceededException" in exc.response.body
            refused += 1
            continue
        accepted += 1
        await ws.close()
    elapsed = time.monotonic() - start
    # ConnectAsMaster: 3 per second per channel, with a burst of 3, whatever the churn.
    assert accepted <= 3 + 3 * elapsed + 1, (accepted, refused, elapsed)
    viewer = await connect(server, arn, "v")  # ConnectAsViewer has its own rate
    await viewer.close()


# --- drain on SIGTERM (single node) ---------------------------------------------------------------

def _deaf_websocket(server: Server, arn: str) -> socket.socket:
    """A WSS client that completes its upgrade and then never reads again (nor answers a close)."""
    url = presign(server, arn, "deaf")
    path = url.split("127.0.0.1:", 1)[1].split("/", 1)[1]
    sock = raw(server, "127.0.0.1", tls=True)
    sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_sigterm_drains_ready_503_connects_503_then_exit_0(make_server, name):
    s = make_server("--drain-timeout", "10")
    arn = s.boto().create_signaling_channel(ChannelName=name)["ChannelARN"]
    master = await connect(s, arn)
    deaf = await asyncio.to_thread(_deaf_websocket, s, arn)  # keeps the drain waiting for its close
    assert s.proc is not None
    s.proc.send_signal(signal.SIGTERM)
    await asyncio.to_thread(eventually, lambda: s.ready()[0] == 503, what="/ready answering 503")
    assert s.ready()[1]["node"] == "draining"
    with pytest.raises(websockets.InvalidStatus) as exc:
        await websockets.connect(presign(s, arn, "late"), ssl=ssl_ctx(s), open_timeout=SAFETY)
    assert exc.value.response.status_code == 503 and b"ServiceUnavailableException" in exc.value.response.body
    assert (await master.ended()) == (1001, "server shutting down", [])  # no GO_AWAY frame by default
    assert await asyncio.to_thread(s.proc.wait, SAFETY) == 0
    deaf.close()

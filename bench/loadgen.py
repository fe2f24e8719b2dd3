"""Load generator for the WSS relay benchmarks (one process, uvloop, run apart from the server).

``python -m bench.loadgen < spec.json`` runs one scenario described by a JSON spec on stdin and
prints one JSON result line on stdout. ``bench.relay`` builds the specs; see it for the scenarios.

The client is a raw ``asyncio.Protocol`` WebSocket client (RFC 6455, written here so the client
costs as little as possible and is not the bottleneck):

* the upgrade is a real HTTP/1.1 ``GET /?<SigV4 presigned query>`` with ``Host: 127.0.0.1:<port>``
  (the host botocore signed), checked for ``101`` and the right ``Sec-WebSocket-Accept``;
* client frames are masked, as RFC 6455 requires, with the all-zero masking key (legal; the server
  still runs its unmasking code, the client saves an XOR); frames to one socket that are ready at
  the same moment go out in one ``transport.write``;
* server frames are parsed in place (no copy per frame); payloads are only looked at where a
  scenario needs a timestamp or checks the envelope.

Every connect URL is presigned with botocore's ``SigV4QueryAuth`` (service ``kinesisvideo``)
*before* any timing starts, so the client's signing cost is excluded from every figure.

Times: one-way latency = receive time − send time, both ``time.monotonic_ns()`` in this process;
the send time is taken right before ``transport.write`` and carried in the message payload (the
first 28 base64 characters decode to a 21-digit nanosecond stamp; the rest is a constant,
candidate-sized tail, so the payload is valid base64 of about 200 bytes like a real ICE candidate).
CPU: this process's ``getrusage`` and the server's ``/proc/<pid>/stat`` over the measured window.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import json
import os
import resource
import ssl
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# A browser-like ICE candidate (RTCIceCandidate.toJSON), base64 of a multiple of 3 bytes so it can
# be appended to the 28-character timestamp block and still be one valid base64 string.
_CANDIDATE = (b'{"candidate":"candidate:2115268017 1 udp 2122260223 127.0.0.1 49595 typ host generation 0 '
              b'ufrag 0D6D network-id 1 network-cost 50","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"0D6D"}')
_CANDIDATE = _CANDIDATE[: len(_CANDIDATE) // 3 * 3]
PAD_B64 = base64.b64encode(_CANDIDATE)
PAYLOAD_KEY = b'"messagePayload":"'


# --- helpers -----------------------------------------------------------------------------------

def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_pid(pid: int | None) -> float | None:
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    except OSError:
        return None


def runq_wait(pid: int | str | None) -> float | None:
    """Seconds the process has spent runnable but waiting for a CPU (/proc/<pid>/schedstat)."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


def machine_busy() -> float:
    """CPU seconds spent busy by the whole machine so far (all cores; from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def net_counters() -> tuple[int, int]:
    """(packets dropped by the kernel's per-CPU input backlog, TCP segments retransmitted), machine-wide.
    On loopback a backlog drop costs the sender a retransmission timeout (>= 200 ms): it shows up
    as a latency spike that is neither the server's nor the client's doing."""
    drops = 0
    try:
        with open("/proc/net/softnet_stat") as f:
            for line in f:
                drops += int(line.split()[1], 16)
        with open("/proc/net/snmp") as f:
            rows = [line.split() for line in f if line.startswith("Tcp:")]
        retrans = int(rows[1][rows[0].index("RetransSegs")])
    except (OSError, ValueError, IndexError):
        return 0, 0
    return drops, retrans


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class Meter:
    """Wall time, this process's CPU and the server's CPU over one measured window."""

    def __init__(self, server_pid: int | None) -> None:
        self.pid = server_pid
        self.t0 = time.monotonic()
        self.c0 = cpu_self()
        self.s0 = cpu_pid(server_pid)
        self.m0 = machine_busy()
        self.w0 = (runq_wait(os.getpid()), runq_wait(server_pid))
        self.n0 = net_counters()

    def stop(self) -> dict[str, float | None]:
        wall = time.monotonic() - self.t0
        client = cpu_self() - self.c0
        s1 = cpu_pid(self.pid)
        server = (s1 - self.s0) if (s1 is not None and self.s0 is not None) else None
        busy = machine_busy() - self.m0
        w1 = (runq_wait(os.getpid()), runq_wait(self.pid))
        n1 = net_counters()
        waits = [100.0 * (b - a) / wall if (a is not None and b is not None and wall > 0) else None
                 for a, b in zip(self.w0, w1)]
        return {
            "wall_s": wall,
            "client_cpu_pct": 100.0 * client / wall if wall > 0 else None,
            "server_cpu_pct": 100.0 * server / wall if (server is not None and wall > 0) else None,
            "server_cpu_s": server,
            # everything else that ran on the machine meanwhile (other processes, kernel threads):
            "other_cpu_pct": 100.0 * (busy - client - (server or 0.0)) / wall if wall > 0 else None,
            # time runnable but waiting for a CPU (contention with the other process or anything else)
            "client_runq_pct": waits[0],
            "server_runq_pct": waits[1],
            # machine-wide, so other processes' traffic counts too
            "backlog_drops": n1[0] - self.n0[0],
            "tcp_retransmits": n1[1] - self.n0[1],
        }


def percentiles(samples_ns: list[int]) -> dict[str, float | int | None]:
    n = len(samples_ns)
    if not n:
        return {"n": 0, "p50_us": None, "p99_us": None, "p999_us": None, "max_us": None}
    s = sorted(samples_ns)

    def q(p: float) -> float:
        return s[min(n - 1, int(p * n))] / 1000.0

    return {"n": n, "p50_us": q(0.50), "p99_us": q(0.99), "p999_us": q(0.999), "max_us": s[-1] / 1000.0}


def client_frame(payload: bytes) -> bytes:
    """A masked text frame with the all-zero masking key (the payload is unchanged by XOR 0)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, 0x80 | n)) + b"\0\0\0\0" + payload
    if n < 65536:
        return b"\x81\xfe" + n.to_bytes(2, "big") + b"\0\0\0\0" + payload
    return b"\x81\xff" + n.to_bytes(8, "big") + b"\0\0\0\0" + payload


def frame_header(n: int) -> bytes:
    return client_frame(b"x" * n)[:-n]


CLOSE_FRAME = b"\x88\x82\0\0\0\0\x03\xe8"  # close, code 1000, zero mask


def presigner(creds: dict[str, str]) -> Callable[[str, str, str | None], str]:
    """Returns ``sign(base_url, arn, client_id) -> path?query`` using botocore's SigV4QueryAuth
    (with ``creds["token"]``, temporary credentials: the session token goes into the query as
    ``X-Amz-Security-Token``, as the KVS SDKs send it)."""
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    credentials = Credentials(creds["access_key"], creds["secret_key"], creds.get("token"))
    signers: dict[str, SigV4QueryAuth] = {}

    def sign(base: str, arn: str, client_id: str | None) -> str:
        region = arn.split(":")[3]
        signer = signers.get(region)
        if signer is None:
            signer = signers[region] = SigV4QueryAuth(credentials, "kinesisvideo", region, expires=299)
        params = {"X-Amz-ChannelARN": arn}
        if client_id is not None:
            params["X-Amz-ClientId"] = client_id
        http_base = base.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
        req = AWSRequest(method="GET", url=f"{http_base}/?{urlencode(params)}")
        signer.add_auth(req)
        parts = urlsplit(req.url)
        return f"{parts.path or '/'}?{parts.query}"

    return sign


# --- the raw client ----------------------------------------------------------------------------

class HandshakeError(Exception):
    pass


class WS(asyncio.Protocol):
    """One client WebSocket. Subclass hooks: :meth:`on_text` per text frame, :meth:`on_batch` after
    each read. ``transport.write`` is used directly for sending."""

    def __init__(self, request: bytes, accept: bytes) -> None:
        self.request = request
        self.accept = accept
        self.handshake: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.closed = False
        self.head = b""
        self.buf = b""
        self.close_code: int | None = None

    # lifecycle
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.handshake.done():
            self.handshake.set_exception(HandshakeError(f"connection lost during handshake: {exc!r} {self.head[:200]!r}"))

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if self.open:
                self.transport.write(CLOSE_FRAME)
            self.transport.close()

    # hooks
    def on_text(self, buf: bytes, start: int, end: int) -> None:
        pass

    def on_batch(self) -> None:
        pass

    # bytes in
    def data_received(self, data: bytes) -> None:
        if not self.open:
            self.head += data
            i = self.head.find(b"\r\n\r\n")
            if i < 0:
                return
            head, data = self.head[:i], self.head[i + 4:]
            if not head.startswith(b"HTTP/1.1 101"):
                if not self.handshake.done():
                    self.handshake.set_exception(HandshakeError(self.head[:300].decode("latin-1")))
                self.transport.close()  # type: ignore[union-attr]
                return
            if b"\r\nsec-websocket-accept: " + self.accept.lower() not in head.lower():
                self.handshake.set_exception(HandshakeError("bad Sec-WebSocket-Accept"))
                self.transport.close()  # type: ignore[union-attr]
                return
            self.open = True
            self.head = b""
            self.handshake.set_result(None)
            if not data:
                return
        buf = self.buf + data if self.buf else data
        pos = 0
        n = len(buf)
        while n - pos >= 2:
            b1 = buf[pos + 1]
            ln = b1 & 0x7F
            if ln < 126:
                hl = 2
            elif ln == 126:
                if n - pos < 4:
                    break
                ln = int.from_bytes(buf[pos + 2:pos + 4], "big")
                hl = 4
            else:
                if n - pos < 10:
                    break
                ln = int.from_bytes(buf[pos + 2:pos + 10], "big")
                hl = 10
            if b1 & 0x80:  # a masked server frame is a protocol error; skip the key anyway
                hl += 4
            end = pos + hl + ln
            if end > n:
                break
            op = buf[pos] & 0x0F
            if op == 1:
                self.on_text(buf, pos + hl, end)
            elif op == 9:  # ping -> pong with the same payload
                body = buf[pos + hl:end]
                self.transport.write(bytes((0x8A, 0x80 | len(body))) + b"\0\0\0\0" + body)  # type: ignore[union-attr]
            elif op == 8:
                self.close_code = int.from_bytes(buf[pos + hl:pos + hl + 2], "big") if ln >= 2 else 1005
            pos = end
        self.buf = buf[pos:] if pos < n else b""
        self.on_batch()


async def connect(cls: type[WS], host: str, port: int, path_query: str, ssl_ctx: ssl.SSLContext | None,
                  timeout: float = 10.0, **kw: Any) -> WS:
    key = base64.b64encode(os.urandom(16))
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    request = (f"GET {path_query} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key.decode()}\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    _t, proto = await asyncio.wait_for(loop.create_connection(
        lambda: cls(request, accept, **kw), host, port, ssl=ssl_ctx,
        server_hostname=host if ssl_ctx else None), timeout)
    try:
        await asyncio.wait_for(proto.handshake, timeout)
    except BaseException:
        proto.close()
        raise
    return proto


class Target:
    """Where and how to connect: base URL, TLS context, presigner, server pid."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.base = spec["url"].rstrip("/")
        parts = urlsplit(self.base)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "wss" else 80)
        self.ssl: ssl.SSLContext | None = None
        if parts.scheme == "wss":
            self.ssl = ssl.create_default_context(cafile=spec["ca"])
        self.sign = presigner(spec["creds"])
        self.pid: int | None = spec.get("server_pid")

    def url(self, arn: str, client_id: str | None) -> str:
        return self.sign(self.base, arn, client_id)

    async def open_many(self, items: list[tuple[type[WS], str, dict[str, Any]]], concurrency: int = 64) -> list[WS]:
        """Open every ``(class, presigned path, kwargs)`` with at most ``concurrency`` handshakes in flight."""
        out: list[WS | None] = [None] * len(items)
        it = iter(range(len(items)))

        async def worker() -> None:
            for i in it:
                cls, pq, kw = items[i]
                out[i] = await connect(cls, self.host, self.port, pq, self.ssl, **kw)

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(items)))))
        return out  # type: ignore[return-value]


def stamp_block(ts: int) -> bytes:
    return base64.b64encode(b"%021d" % ts)


def read_stamp(buf: bytes, start: int, end: int) -> int:
    i = buf.find(PAYLOAD_KEY, start, end)
    if i < 0:
        raise ValueError("no messagePayload in frame")
    i += len(PAYLOAD_KEY)
    return int(base64.b64decode(buf[i:i + 28]))


def message_body(recipient: str | None, action: str = "ICE_CANDIDATE") -> tuple[bytes, bytes]:
    """(prefix, suffix) of a client message around the 28-character stamp block."""
    prefix = b'{"action":"' + action.encode() + b'","messagePayload":"'
    suffix = PAD_B64 + b'"'
    if recipient is not None:
        suffix += b',"recipientClientId":"' + recipient.encode() + b'"'
    return prefix, suffix + b"}"


async def close_all(conns: list[WS]) -> None:
    for c in conns:
        if c is not None:
            c.close()
    await asyncio.sleep(0.2)


# --- scenario: throughput ----------------------------------------------------------------------

class Echo(WS):
    """Master side: echoes every message it receives back to its one viewer.
    Viewer side: sends a new message for every one it receives (a fixed window in flight)."""

    counter = [0]

    def __init__(self, request: bytes, accept: bytes, reply: bytes = b"", expect_sender: str | None = None) -> None:
        super().__init__(request, accept)
        self.reply = reply
        self.pending = 0
        self.expect_sender = expect_sender
        self.checked = False
        self.envelope_error: str | None = None

    def on_text(self, buf: bytes, start: int, end: int) -> None:
        self.pending += 1
        if not self.checked:
            self.checked = True
            try:
                d = json.loads(buf[start:end])
                if d.get("messageType") != "ICE_CANDIDATE" or d.get("messagePayload") != PAD_B64.decode():
                    self.envelope_error = f"unexpected frame {d!r:.200}"
                elif (d.get("senderClientId") or None) != self.expect_sender:
                    self.envelope_error = f"senderClientId {d.get('senderClientId')!r} != {self.expect_sender!r}"
            except ValueError as exc:
                self.envelope_error = f"not JSON: {exc}"

    def on_batch(self) -> None:
        k = self.pending
        if k:
            self.pending = 0
            Echo.counter[0] += k
            self.transport.write(self.reply * k)  # type: ignore[union-attr]


async def throughput(t: Target, spec: dict[str, Any]) -> dict[str, Any]:
    arns: list[str] = spec["channels"][: spec["pairs"]]
    window, duration, warmup = spec["window"], spec["duration"], spec.get("warmup", 1.0)
    tag = spec.get("tag", "t")
    items: list[tuple[type[WS], str, dict[str, Any]]] = []
    for i, arn in enumerate(arns):
        vid = f"{tag}v{i}"
        to_viewer = client_frame(b'{"action":"ICE_CANDIDATE","messagePayload":"' + PAD_B64
                                 + b'","recipientClientId":"' + vid.encode() + b'"}')
        to_master = client_frame(b'{"action":"ICE_CANDIDATE","messagePayload":"' + PAD_B64 + b'"}')
        items.append((Echo, t.url(arn, None), {"reply": to_viewer, "expect_sender": vid}))
        items.append((Echo, t.url(arn, vid), {"reply": to_master, "expect_sender": None}))
    conns = await t.open_many(items)
    Echo.counter[0] = 0
    for viewer in conns[1::2]:
        viewer.transport.write(viewer.reply * window)  # type: ignore[union-attr, attr-defined]
    await asyncio.sleep(warmup)
    c0 = Echo.counter[0]
    meter = Meter(t.pid)
    await asyncio.sleep(duration)
    c1 = Echo.counter[0]
    m = meter.stop()
    errors = [c.envelope_error for c in conns if c.envelope_error]  # type: ignore[attr-defined]
    unchecked = sum(1 for c in conns if not c.checked)  # type: ignore[attr-defined]
    await close_all(conns)
    return {"msgs_per_s": (c1 - c0) / m["wall_s"], "delivered": c1 - c0,
            "msgs_per_server_cpu_s": (c1 - c0) / m["server_cpu_s"] if m["server_cpu_s"] else None, **m,
            "connections": len(conns), "envelope_errors": errors[:3], "silent_connections": unchecked}


# --- scenario: latency (open loop, fixed offered rate) -----------------------------------------

class Stamped(WS):
    """Records receive − send for every stamped message sent inside the measured window."""

    sink: list[int] = []
    window = [0, 0]
    received = [0]

    foreign = [0]

    def on_text(self, buf: bytes, start: int, end: int) -> None:
        try:
            ts = read_stamp(buf, start, end)
        except ValueError:  # not one of ours (e.g. a message retained from an earlier run)
            Stamped.foreign[0] += 1
            return
        Stamped.received[0] += 1
        w = Stamped.window
        if w[0] <= ts < w[1]:
            Stamped.sink.append(time.monotonic_ns() - ts)


class Sender:
    """Round-robin sender over ``(conn, header, prefix, suffix)`` at a fixed offered rate."""

    def __init__(self, routes: list[tuple[WS, bytes, bytes, bytes]]) -> None:
        self.routes = routes
        self.i = 0
        self.sent = 0
        self.max_lag = 0
        self.max_gap = 0.0

    def send_one(self) -> None:
        conn, header, prefix, suffix = self.routes[self.i]
        self.i = (self.i + 1) % len(self.routes)
        if conn.closed or conn.close_code is not None:
            raise RuntimeError(f"the server closed a connection (close code {conn.close_code})")
        conn.transport.write(header + prefix + base64.b64encode(b"%021d" % time.monotonic_ns()) + suffix)  # type: ignore[union-attr]
        self.sent += 1

    async def run(self, rate: float, seconds: float) -> None:
        loop_start = time.monotonic()
        base = self.sent
        end = loop_start + seconds
        last = loop_start
        while True:
            now = time.monotonic()
            self.max_gap = max(self.max_gap, now - last)
            last = now
            if now >= end:
                break
            due = base + int((now - loop_start) * rate)
            lag = due - self.sent
            self.max_lag = max(self.max_lag, lag)
            while self.sent < due:
                self.send_one()
            await asyncio.sleep(0.001)  # uvloop timers are 1 ms granular; a shorter sleep spins


def routes_for(conns: list[WS], peers: list[tuple[str | None]]) -> list[tuple[WS, bytes, bytes, bytes]]:
    routes = []
    for conn, (recipient,) in zip(conns, peers):
        prefix, suffix = message_body(recipient)
        routes.append((conn, frame_header(len(prefix) + 28 + len(suffix)), prefix, suffix))
    return routes


async def measure_rate(t: Target, senders: list[Sender], rate: float, duration: float, warmup: float) -> dict[str, Any]:
    Stamped.sink = []
    Stamped.window = [0, 0]
    for s in senders:
        s.max_lag = 0
        s.max_gap = 0.0
    per = rate / len(senders)
    await asyncio.gather(*(s.run(per, warmup) for s in senders))
    sent0 = sum(s.sent for s in senders)
    Stamped.window = [time.monotonic_ns(), 1 << 62]
    epoch0 = time.time()
    meter = Meter(t.pid)
    await asyncio.gather(*(s.run(per, duration) for s in senders))
    m = meter.stop()
    Stamped.window[1] = time.monotonic_ns()
    sent_in_window = sum(s.sent for s in senders) - sent0
    total_sent = sum(s.sent for s in senders)
    deadline = time.monotonic() + 3.0
    while Stamped.received[0] < total_sent and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    samples = Stamped.sink
    Stamped.sink = []
    server_us = 1e6 * m["server_cpu_s"] / sent_in_window if (m["server_cpu_s"] and sent_in_window) else None
    return {"rate": rate, "achieved_rate": sent_in_window / m["wall_s"], **percentiles(samples),
            "server_cpu_us_per_msg": server_us, "window_epoch": [epoch0, time.time()],
            "lost": sent_in_window - len(samples), "max_sender_lag_msgs": max(s.max_lag for s in senders),
            "max_sender_gap_ms": 1000 * max(s.max_gap for s in senders), **m}


async def latency(t: Target, spec: dict[str, Any]) -> dict[str, Any]:
    n_conn = spec["connections"]
    arns: list[str] = spec["channels"][: n_conn // 2]
    tag = spec.get("tag", "l")
    items: list[tuple[type[WS], str, dict[str, Any]]] = []
    peers: list[tuple[str | None]] = []
    for i, arn in enumerate(arns):
        vid = f"{tag}v{i}"
        items.append((Stamped, t.url(arn, None), {}))
        peers.append((vid,))
        items.append((Stamped, t.url(arn, vid), {}))
        peers.append((None,))
    conns = await t.open_many(items)
    Stamped.received[0] = 0
    sender = Sender(routes_for(conns, peers))
    results = []
    for rate in spec["rates"]:
        results.append(await measure_rate(t, [sender], rate, spec["duration"], spec.get("warmup", 0.5)))
    await close_all(conns)
    return {"connections": len(conns), "rates": results, "foreign_frames": Stamped.foreign[0]}


async def fanout(t: Target, spec: dict[str, Any]) -> dict[str, Any]:
    """One channel, one master, ``viewers`` viewers: master→viewers and viewers→master, each at ``rate``."""
    arn, n = spec["channel"], spec["viewers"]
    tag = spec.get("tag", "f")
    vids = [f"{tag}v{i}" for i in range(n)]
    items: list[tuple[type[WS], str, dict[str, Any]]] = [(Stamped, t.url(arn, None), {})]
    items += [(Stamped, t.url(arn, v), {}) for v in vids]
    conns = await t.open_many(items)
    master, viewers = conns[0], conns[1:]
    Stamped.received[0] = 0
    down = Sender(routes_for([master] * n, [(v,) for v in vids]))
    up = Sender(routes_for(viewers, [(None,)] * n))
    rate = spec["rate"]
    res = await measure_rate(t, [down, up], 2 * rate, spec["duration"], spec.get("warmup", 1.0))
    await close_all(conns)
    return {"connections": len(conns), "rate_each_direction": rate, **res, "foreign_frames": Stamped.foreign[0]}


# --- scenario: idle connections (server memory) ------------------------------------------------

async def idle(t: Target, spec: dict[str, Any]) -> dict[str, Any]:
    assert t.pid, "idle needs server_pid"
    n = spec["connections"]
    arns: list[str] = spec["channels"][: (n + 1) // 2]
    tag = spec.get("tag", "i")

    def items(count: int, prefix: str) -> list[tuple[type[WS], str, dict[str, Any]]]:
        out: list[tuple[type[WS], str, dict[str, Any]]] = []
        for i in range(count):
            arn = arns[(i // 2) % len(arns)]
            out.append((WS, t.url(arn, None if i % 2 == 0 else f"{prefix}v{i // 2}"), {}))
        return out

    warm = items(spec.get("warm", 50), tag + "w")
    main = items(n, tag)
    conns = await t.open_many(warm)
    await close_all(conns)
    await asyncio.sleep(spec.get("settle", 1.0))
    before = rss_kib(t.pid)
    conns = await t.open_many(main)
    await asyncio.sleep(spec.get("settle", 1.0))
    after = rss_kib(t.pid)
    alive = sum(1 for c in conns if not c.closed)
    await close_all(conns)
    return {"connections": n, "alive": alive, "rss_before_kib": before, "rss_after_kib": after,
            "kib_per_conn": (after - before) / n}


# --- scenario: SigV4-verified connects per second ----------------------------------------------

async def connects(t: Target, spec: dict[str, Any]) -> dict[str, Any]:
    n, conc = spec["connections"], spec["concurrency"]
    arns: list[str] = spec["channels"]
    tag = spec.get("tag", "c")
    urls = [t.url(arns[i % len(arns)], f"{tag}v{i}") for i in range(n)]  # signed up front: not timed
    times: list[int] = []
    conns: list[WS] = []
    it = iter(urls)

    async def worker() -> None:
        for pq in it:
            t0 = time.monotonic_ns()
            conns.append(await connect(WS, t.host, t.port, pq, t.ssl))
            times.append(time.monotonic_ns() - t0)

    meter = Meter(t.pid)
    await asyncio.gather(*(worker() for _ in range(conc)))
    m = meter.stop()
    await close_all(conns)
    server_cpu = m["server_cpu_s"]
    return {"connections": n, "concurrency": conc, "connects_per_s": n / m["wall_s"],
            "connects_per_server_cpu_s": (n / server_cpu) if server_cpu else None,
            "handshake": percentiles(times), **m}


# --- scenario: connect-and-close churn -------------------------------------------------------------

async def churn(t: Target, spec: dict[str, Any]) -> dict[str, Any]:
    """``concurrency`` workers each open a presigned connection, close it, and open the next, for
    ``warmup`` + ``seconds``; what completed in the last ``seconds`` is counted. Each worker cycles
    through its own few ClientIds (signed up front, not timed), so a ClientId comes back only long
    after its previous socket closed (no takeovers). Any refused handshake fails the run."""
    conc, seconds, warmup = spec["concurrency"], spec["seconds"], spec.get("warmup", 0.2)
    arns: list[str] = spec["channels"]
    tag = spec.get("tag", "k")
    urls = [[t.url(arns[(w + i) % len(arns)], f"{tag}w{w}i{i}") for i in range(8)] for w in range(conc)]
    state = {"counting": False, "stop": False, "done": 0}

    async def worker(mine: list[str]) -> None:
        i = 0
        while not state["stop"]:
            ws = await connect(WS, t.host, t.port, mine[i % len(mine)], t.ssl)
            ws.close()
            i += 1
            if state["counting"]:
                state["done"] += 1

    tasks = [asyncio.create_task(worker(mine)) for mine in urls]
    await asyncio.sleep(warmup)
    meter = Meter(t.pid)
    state["counting"] = True
    await asyncio.sleep(seconds)
    state["counting"] = False
    m = meter.stop()
    state["stop"] = True
    await asyncio.gather(*tasks)
    n, server_cpu = state["done"], m["server_cpu_s"]
    return {"connects": n, "concurrency": conc, "connects_per_s": n / m["wall_s"],
            "server_us_per_connect": (server_cpu / n * 1e6) if server_cpu and n else None, **m}


SCENARIOS = {"throughput": throughput, "latency": latency, "fanout": fanout, "idle": idle, "connects": connects,
             "churn": churn}


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    t = Target(spec)
    return await SCENARIOS[spec["scenario"]](t, spec)


def main() -> int:
    raise_fd_limit()
    gc.disable()  # a bounded run: no collector pauses in the client's timings
    spec = json.loads(sys.stdin.read())
    import uvloop

    try:
        result = uvloop.run(run(spec))
    except Exception as exc:  # report, do not hide: the orchestrator prints it
        result = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

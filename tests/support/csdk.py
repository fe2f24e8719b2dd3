"""A raw client that behaves on the wire as the KVS WebRTC C SDK v1.14.0 does (signaling only).

The C SDK cannot be built from the package registries, so CI cannot run it (clients.md §6). This
client reproduces what it sends and how it reacts, byte for byte where it matters to a server:

* **REST** (DescribeSignalingChannel, CreateSignalingChannel, GetSignalingChannelEndpoint,
  ``/v1/get-ice-server-config``): one new TLS connection per call, ALPN ``http/1.1`` only, headers
  in the SDK's order (``Pragma``, ``Cache-Control``, ``Host`` without a port, ``connection:
  close``, ``Authorization`` signing ``host;user-agent;x-amz-date`` for service ``kinesisvideo``
  on every call, ``content-length``, ``content-type``, ``user-agent``, ``X-Amz-Date``), bodies as
  the SDK's tab-indented JSON templates.
* **Call order**: DescribeSignalingChannel (404 → CreateSignalingChannel with TTL 60 →
  DescribeSignalingChannel) → GetSignalingChannelEndpoint (``WSS``, ``HTTPS``) →
  GetIceServerConfig (ClientId ``ProducerMaster`` for a master, Service ``TURN``) → WSS connect.
* **WSS upgrade**: the presigned query sorted with ``X-Amz-Signature`` appended last, RFC 3986
  encoded, ``X-Amz-Expires=604800``; headers ``Pragma``, ``Cache-Control``, ``Host``, ``Upgrade``,
  ``Connection``, ``Sec-WebSocket-Key``, ``Sec-WebSocket-Protocol: wss``,
  ``Sec-WebSocket-Version: 13`` and nothing else (no User-Agent, no Origin, no extensions).
* **Frames**: masked text frames from the SDK's templates (tab-indented; ``RecipientClientId``,
  ``MessagePayload``, ``CorrelationId`` capitalised — see :data:`ACTION_KEY` for the one key that
  is not; ``CorrelationId`` as ``<time in 100 ns>_<n>``; an SDP_OFFER carries ``IceServerList``);
  an empty ping every :attr:`CSdkConfig.ping_interval` seconds (10 in the SDK).
* **Ports**: the SDK refuses any URL with a port (the control-plane URL and every endpoint it is
  given), failing the first call that uses one. ``strict_port=True`` (the default) does the same
  (:class:`PortInUrl`). ``strict_port=False`` lets tests reach a server on a non-443 port: the
  client then connects to that port but still sends and signs ``Host`` without it, so every byte
  it sends is what the SDK would send on 443.
* **Server-initiated ends**, as observed with the real SDK: on a GO_AWAY or RECONNECT_ICE_SERVER
  frame its listener thread deadlocks — this client sets :attr:`CSdkClient.hung` and from then on
  does nothing (no pong, no ping, no close reply, no reconnect); an observer still drains the
  socket, as the kernel would buffer it, only to record when the server closed it
  (:attr:`CSdkClient.closed_while_hung`). On a close (or a lost connection) it reconnects by
  re-running Describe → endpoint → ICE config → connect, retrying with backoff while that fails,
  and counts its connects.

Plain asyncio and ssl: no HTTP or WebSocket library decides a header, its order or a frame.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import os
import ssl
import struct
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Callable, Literal
from urllib.parse import quote, urlsplit

from .server import ACCESS_KEY, REGION, SECRET_KEY

SDK_VERSION = "1.14.0"
USER_AGENT = f"AWS-WEBRTC-KVS-AGENT/{SDK_VERSION}/1.5.4 GCC/12.2.0 Linux/5.15 x86_64"
"""The SDK's default user agent: its version, the producer-c version, compiler and platform."""
MASTER_CLIENT_ID = "ProducerMaster"
"""The client id the SDK's master samples use for GetIceServerConfig (not sent on the WSS URL)."""
VIEWER_CLIENT_ID = "ConsumerViewer"
"""The client id of the SDK's viewer samples."""
SERVICE = "kinesisvideo"
"""The signing name the SDK uses for every call, GetIceServerConfig included."""
PRESIGN_EXPIRES = 604800
"""X-Amz-Expires of the SDK's WSS presign: min(7 days, until the credentials expire)."""
MESSAGE_TTL = 60
"""MessageTtlSeconds the SDK's samples create a missing channel with."""
ACTION_KEY = "action"
"""The key of the message type in the SDK's send template. Every stored version of the SDK's
``LwsApiCalls.h`` (``SIGNALING_SEND_MESSAGE_TEMPLATE``) writes it lowercase while the other keys
are capitalised; the notes in spec/clients.md §6 say ``Action``. The server must accept both."""
GO_AWAY = "GO_AWAY"
RECONNECT_ICE_SERVER = "RECONNECT_ICE_SERVER"
HANGS_ON = frozenset((GO_AWAY, RECONNECT_ICE_SERVER))
"""Frames on which the real SDK's listener thread deadlocks (observed with v1.14.0)."""
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class PortInUrl(ValueError):
    """The C SDK refuses ``host:port`` in any URL: it only speaks to 443 and aborts the call that
    uses such a URL (``STATUS_INTERNAL_ERROR``, seen as ``0x0000000c``)."""


class UnsupportedUrl(ValueError):
    """A URL the SDK cannot use at all (not ``https://`` / ``wss://``)."""


class CallFailed(Exception):
    """A REST call answered with an error status (the SDK's state machine retries from Describe)."""

    def __init__(self, operation: str, status: int, body: bytes) -> None:
        super().__init__(f"{operation}: HTTP {status}: {body[:300]!r}")
        self.operation = operation
        self.status = status
        self.body = body

    @property
    def error_type(self) -> str:
        try:
            doc = json.loads(self.body)
        except ValueError:
            return ""
        value = doc.get("__type") or doc.get("code") or ""
        return str(value).rsplit("#", 1)[-1]


class HandshakeFailed(Exception):
    """The WebSocket upgrade was refused (a status other than 101, or a bad accept key)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"WSS handshake: HTTP {status}: {detail[:300]}")
        self.status = status


# --- SigV4, as the SDK computes it (pure functions) ----------------------------------------------

def rfc3986(value: str) -> str:
    """The SDK's URI encoding: everything but ``A-Z a-z 0-9 - _ . ~`` percent-encoded."""
    return quote(value, safe="-_.~")


def _signing_key(secret: str, day: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _signature(secret: str, amz_date: str, region: str, service: str, canonical: str) -> str:
    day = amz_date[:8]
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(("AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()))
    return hmac.new(_signing_key(secret, day, region, service), to_sign.encode(), hashlib.sha256).hexdigest()


def amz_date(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def rest_authorization(*, host: str, path: str, body: bytes, user_agent: str, date: str, region: str,
                       access_key: str, secret_key: str, service: str = SERVICE) -> str:
    """The ``Authorization`` header of a C SDK REST call: signed headers ``host;user-agent;x-amz-date``
    (no content-type, no x-amz-content-sha256), payload hash of the body."""
    signed = "host;user-agent;x-amz-date"
    canonical = "\n".join((
        "POST", path, "",
        f"host:{host}", f"user-agent:{user_agent}", f"x-amz-date:{date}", "",
        signed, hashlib.sha256(body).hexdigest(),
    ))
    sig = _signature(secret_key, date, region, service, canonical)
    return (f"AWS4-HMAC-SHA256 Credential={access_key}/{date[:8]}/{region}/{service}/aws4_request, "
            f"SignedHeaders={signed}, Signature={sig}")


def presigned_query(*, host: str, path: str, params: dict[str, str], date: str, region: str, access_key: str,
                    secret_key: str, token: str | None = None, expires: int = PRESIGN_EXPIRES,
                    service: str = SERVICE) -> str:
    """The query string of the SDK's WSS URL: every parameter sorted and RFC 3986 encoded, the
    session token (if any) inside the signed query, ``X-Amz-Signature`` appended last."""
    all_params = dict(params)
    all_params.update({
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{access_key}/{date[:8]}/{region}/{service}/aws4_request",
        "X-Amz-Date": date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    })
    if token:
        all_params["X-Amz-Security-Token"] = token
    query = "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in sorted(all_params.items()))
    canonical = "\n".join(("GET", path or "/", query, f"host:{host}", "", "host", _EMPTY_SHA256))
    return f"{query}&X-Amz-Signature={_signature(secret_key, date, region, service, canonical)}"


# --- the SDK's JSON templates (tab-indented, values inserted unescaped as printf does) ----------

def describe_body(channel_name: str) -> bytes:
    return f'{{\n\t"ChannelName": "{channel_name}"\n}}'.encode()


def create_body(channel_name: str, ttl: int = MESSAGE_TTL) -> bytes:
    return (f'{{\n\t"ChannelName": "{channel_name}",\n\t"ChannelType": "SINGLE_MASTER",'
            f'\n\t"SingleMasterConfiguration": {{\n\t\t"MessageTtlSeconds": {ttl}\n\t}}\n}}').encode()


def endpoint_body(channel_arn: str, role: str) -> bytes:
    return (f'{{\n\t"ChannelARN": "{channel_arn}",\n\t"SingleMasterChannelEndpointConfiguration": {{'
            f'\n\t\t"Protocols": ["WSS", "HTTPS"],\n\t\t"Role": "{role}"\n\t}}\n}}').encode()


def ice_config_body(channel_arn: str, client_id: str) -> bytes:
    return f'{{\n\t"ChannelARN": "{channel_arn}",\n\t"ClientId": "{client_id}",\n\t"Service": "TURN"\n}}'.encode()


def _ice_server_list(servers: list[dict[str, Any]]) -> str:
    items = []
    for s in servers:
        uris = ", ".join(f'"{u}"' for u in s.get("Uris", []))
        items.append(f'\n\t\t{{\n\t\t\t"Password": "{s.get("Password", "")}",\n\t\t\t"Ttl": {int(s.get("Ttl", 0))},'
                     f'\n\t\t\t"Uris": [{uris}],\n\t\t\t"Username": "{s.get("Username", "")}"\n\t\t}},')
    joined = "".join(items).rstrip(",")  # the SDK trims the last comma
    return f',\n\t"IceServerList": [{joined}\n\t]'


def message_frame(action: str, recipient: str, payload: str, correlation_id: str | None = None,
                  ice_servers: list[dict[str, Any]] | None = None) -> str:
    """A message as the SDK's send templates write it (``RecipientClientId`` always present)."""
    tail = _ice_server_list(ice_servers) if action == "SDP_OFFER" and ice_servers else ""
    if correlation_id is None:
        return (f'{{\n\t"{ACTION_KEY}": "{action}",\n\t"RecipientClientId": "{recipient}",'
                f'\n\t"MessagePayload": "{payload}"{tail}\n}}')
    return (f'{{\n\t"{ACTION_KEY}": "{action}",\n\t"RecipientClientId": "{recipient}",'
            f'\n\t"MessagePayload": "{payload}",\n\t"CorrelationId": "{correlation_id}"{tail}\n}}')


def b64(obj: Any) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


# --- WebSocket framing (client side: masked) -----------------------------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def client_frame(opcode: int, payload: bytes = b"") -> bytes:
    """One final, masked frame (RFC 6455 §5.2)."""
    n = len(payload)
    head = bytes((0x80 | opcode,))
    if n < 126:
        head += bytes((0x80 | n,))
    elif n < 65536:
        head += bytes((0x80 | 126,)) + struct.pack("!H", n)
    else:
        head += bytes((0x80 | 127,)) + struct.pack("!Q", n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One whole message from the server (fragments joined): ``(opcode, payload)``."""
    opcode: int | None = None
    data = b""
    while True:
        b0, b1 = await reader.readexactly(2)
        fin, op = b0 & 0x80, b0 & 0x0F
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await reader.readexactly(8))[0]
        mask = await reader.readexactly(4) if b1 & 0x80 else b""
        chunk = await reader.readexactly(n)
        if mask:
            chunk = bytes(b ^ mask[i % 4] for i, b in enumerate(chunk))
        if op >= 0x8:  # control frames are never fragmented and may come between fragments
            return op, chunk
        if op != OP_CONT:
            opcode = op
        data += chunk
        if fin:
            return (opcode if opcode is not None else OP_TEXT), data


def parse_close(payload: bytes) -> tuple[int | None, str]:
    if len(payload) < 2:
        return None, ""
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode("utf-8", "replace")


# --- the client ----------------------------------------------------------------------------------

@dataclass
class CSdkConfig:
    control_plane_url: str
    """``ChannelInfo.pControlPlaneUrl`` (the SDK: ``https://kinesisvideo.<region>.amazonaws.com``)."""
    channel_name: str
    role: Literal["MASTER", "VIEWER"] = "MASTER"
    client_id: str | None = None
    """The viewer's client id (default :data:`VIEWER_CLIENT_ID`); a master uses :data:`MASTER_CLIENT_ID`
    for GetIceServerConfig and sends none on the WSS URL."""
    ca: str | None = None
    """``ChannelInfo.pCertPath`` / ``AWS_KVS_CACERT_PATH``."""
    region: str = REGION
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    session_token: str | None = None
    strict_port: bool = True
    """Refuse URLs with a port, as the SDK does. Off only to test against a server on another port."""
    ping_interval: float = 10.0
    retry_delay: float = 0.1
    """First backoff after a failed attempt (doubled up to ``max_retry_delay``)."""
    max_retry_delay: float = 1.0
    call_timeout: float = 7.0
    """The SDK's 2 s connect + 5 s completion timeout for a REST call."""
    connect_timeout: float = 5.0
    """The SDK's WSS handshake timeout."""
    master_recipient: str = MASTER_CLIENT_ID
    """What a viewer puts in ``RecipientClientId`` (its configured master id; the server ignores it)."""

    @property
    def ice_client_id(self) -> str:
        return MASTER_CLIENT_ID if self.role == "MASTER" else (self.client_id or VIEWER_CLIENT_ID)

    @property
    def wss_client_id(self) -> str | None:
        return None if self.role == "MASTER" else (self.client_id or VIEWER_CLIENT_ID)


@dataclass
class Call:
    """One REST call or WSS connect, in the order the client made them."""

    operation: str
    url: str
    status: int | None
    """HTTP status; None when no answer came (refused connection, timeout, port refused)."""
    request_head: bytes = b""
    """The request line and headers exactly as sent."""


@dataclass
class End:
    """A connection the server (or the network) ended while the client was connected."""

    code: int | None
    reason: str
    frames: list[str] = field(default_factory=list)
    """Every text frame received on that connection, in order."""


def _split(url: str, strict: bool) -> tuple[str, int, str]:
    """Host, port and path of an ``https://`` / ``wss://`` URL, as the SDK's parser takes it."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "wss") or not parts.hostname:
        raise UnsupportedUrl(f"the KVS C SDK only speaks TLS to https:// and wss:// URLs, not {url!r}")
    if parts.port is not None and strict:
        raise PortInUrl(f"the KVS C SDK refuses a port in a URL (it only connects to 443): {url}")
    return parts.hostname, parts.port or 443, parts.path


class CSdkClient:
    """One signaling client (master or viewer). ``await start()``, then wait on its counters with
    :meth:`wait_for`; ``await stop()`` at the end. Observable state (read it, never set it):

    ``connects``      successful WebSocket opens (``reconnects`` = connects - 1)
    ``ends``          each server-initiated end of a connection (close code, reason, frames)
    ``calls``         every REST call and WSS connect with its status, in order
    ``received``      every delivered message (parsed frame) in order
    ``frames``        every text frame received, on all connections, raw
    ``hung``          a GO_AWAY / RECONNECT_ICE_SERVER arrived: the real SDK is deadlocked now
    ``closed_while_hung``  the server closed the socket of a hung client (nobody answered)
    ``failure``       a non-retryable error that stopped it (e.g. :class:`PortInUrl`)
    ``errors``        retryable errors it backed off from
    """

    def __init__(self, config: CSdkConfig, changed: asyncio.Condition | None = None) -> None:
        """``changed`` is notified on every state change; clients that share one can be waited on together."""
        self.config = config
        self.channel_arn: str | None = None
        self.endpoints: dict[str, str] = {}
        self.ice_servers: list[dict[str, Any]] = []
        self.connects = 0
        self.ends: list[End] = []
        self.calls: list[Call] = []
        self.received: list[dict[str, Any]] = []
        self.frames: list[str] = []
        self.hung = False
        self.hung_on: str | None = None
        self.closed_while_hung = False
        self.failure: BaseException | None = None
        self.errors: list[str] = []
        self._correlation = itertools.count(1)
        self._changed = changed if changed is not None else asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._stopping = False

    # --- observation ----------------------------------------------------------------------------
    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self.hung

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
        """Wait until ``predicate()`` holds (re-checked on every state change), at most ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    await self._changed.wait_for(lambda: predicate() or self.failure is not None)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what or predicate}: {self.describe()}") from None
        if not predicate():
            raise AssertionError(f"client failed while waiting for {what or predicate}: {self.describe()}")

    async def wait_connects(self, n: int, timeout: float = 15.0) -> None:
        await self.wait_for(lambda: self.connects >= n and self.connected, timeout, f"{n} connects")

    async def wait_message(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> dict[str, Any]:
        await self.wait_for(lambda: any(predicate(m) for m in self.received), timeout, "a message")
        return next(m for m in self.received if predicate(m))

    def operations(self) -> list[str]:
        return [c.operation for c in self.calls]

    def describe(self) -> str:
        return (f"<{self.config.role} {self.config.channel_name} connects={self.connects} hung={self.hung_on} "
                f"failure={self.failure!r} ends={[(e.code, e.reason) for e in self.ends]} "
                f"ops={self.operations()[-8:]} errors={self.errors[-3:]}>")

    # --- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> "CSdkClient":
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._writer is not None:
            self._writer.transport.abort()
            self._writer = None

    async def __aenter__(self) -> "CSdkClient":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- sending --------------------------------------------------------------------------------
    def correlation_id(self) -> str:
        """``<time in 100 ns>_<n>``, as the SDK's samples build it."""
        return f"{time.time_ns() // 100}_{next(self._correlation)}"

    async def send(self, action: str, payload: str, recipient: str | None = None,
                   correlation_id: str | None = None) -> None:
        """Send a message on the current connection (a master names the viewer; a viewer's
        recipient defaults to its configured master id, which the server ignores)."""
        if self._writer is None or self.hung:
            raise ConnectionError(f"not connected: {self.describe()}")
        if recipient is None:
            recipient = "" if self.config.role == "MASTER" else self.config.master_recipient
        text = message_frame(action, recipient, payload, correlation_id, self.ice_servers)
        self._writer.write(client_frame(OP_TEXT, text.encode()))
        await self._writer.drain()

    # --- the state machine ----------------------------------------------------------------------
    async def _run(self) -> None:
        delay = self.config.retry_delay
        while not self._stopping:
            try:
                await self._describe_or_create()
                await self._get_endpoints()
                await self._get_ice_config()
                reader, writer = await self._connect()
            except (PortInUrl, UnsupportedUrl) as exc:  # configuration the SDK cannot work with
                self.failure = exc
                await self._notify()
                return
            except (OSError, EOFError, TimeoutError, CallFailed, HandshakeFailed, KeyError, ValueError) as exc:
                self.errors.append(repr(exc))
                await self._notify()
                await asyncio.sleep(delay)  # the SDK's retry backoff, not test ordering
                delay = min(delay * 2, self.config.max_retry_delay)
                continue
            delay = self.config.retry_delay
            self._writer = writer
            self.connects += 1
            await self._notify()
            end = await self._listen(reader, writer)
            if end is None:  # hung: the real SDK's listener is deadlocked; nothing happens again
                await self._notify()
                return  # (the socket stays open until stop())
            self._writer = None
            self.ends.append(end)
            await self._notify()

    async def _describe_or_create(self) -> None:
        c = self.config
        try:
            info = await self._rest(c.control_plane_url, "/describeSignalingChannel", describe_body(c.channel_name),
                                    "DescribeSignalingChannel")
        except CallFailed as exc:
            if exc.status != 404:
                raise
            try:
                await self._rest(c.control_plane_url, "/createSignalingChannel", create_body(c.channel_name),
                                 "CreateSignalingChannel")
            except CallFailed as created:
                if created.error_type != "ResourceInUseException":  # another client created it first
                    raise
            info = await self._rest(c.control_plane_url, "/describeSignalingChannel", describe_body(c.channel_name),
                                    "DescribeSignalingChannel")
        self.channel_arn = info["ChannelInfo"]["ChannelARN"]

    async def _get_endpoints(self) -> None:
        assert self.channel_arn is not None
        out = await self._rest(self.config.control_plane_url, "/getSignalingChannelEndpoint",
                               endpoint_body(self.channel_arn, self.config.role), "GetSignalingChannelEndpoint")
        found = {e["Protocol"]: e["ResourceEndpoint"] for e in out["ResourceEndpointList"]}
        if "WSS" not in found or "HTTPS" not in found:
            raise CallFailed("GetSignalingChannelEndpoint", 200, b"missing the WSS or HTTPS endpoint")
        self.endpoints = found

    async def _get_ice_config(self) -> None:
        assert self.channel_arn is not None
        out = await self._rest(self.endpoints["HTTPS"], "/v1/get-ice-server-config",
                               ice_config_body(self.channel_arn, self.config.ice_client_id), "GetIceServerConfig")
        servers = out["IceServerList"]
        if not servers:
            raise CallFailed("GetIceServerConfig", 200, b"empty IceServerList (the SDK fails on it)")
        self.ice_servers = servers

    def _tls(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.config.ca)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    async def _rest(self, base: str, api: str, body: bytes, operation: str) -> dict[str, Any]:
        """One REST call on its own TLS connection, exactly as the SDK's lws client sends it."""
        c = self.config
        call = Call(operation, base + api, None)
        self.calls.append(call)
        host, port, path = _split(base, c.strict_port)
        path = (path.rstrip("/") + api) if path else api
        date = amz_date(datetime.now(UTC))
        auth = rest_authorization(host=host, path=path, body=body, user_agent=USER_AGENT, date=date,
                                  region=c.region, access_key=c.access_key, secret_key=c.secret_key)
        headers = [
            ("Pragma", "no-cache"),
            ("Cache-Control", "no-cache"),
            ("Host", host),
            ("connection", "close"),
            ("Authorization", auth),
            ("content-length", str(len(body))),
            ("content-type", "application/json"),
            ("user-agent", USER_AGENT),
            ("X-Amz-Date", date),
        ]
        if c.session_token:
            headers.append(("x-amz-security-token", c.session_token))
        head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        call.request_head = head.encode()
        async with asyncio.timeout(c.call_timeout):
            reader, writer = await asyncio.open_connection(host, port, ssl=self._tls(), server_hostname=host)
            try:
                writer.write(call.request_head + body)
                await writer.drain()
                raw = await reader.read()  # connection: close — the answer ends at EOF
            finally:
                writer.transport.abort()
        status, _headers, payload = _parse_response(raw)
        call.status = status
        if status != 200:
            raise CallFailed(operation, status, payload)
        return json.loads(payload) if payload.strip() else {}

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        c = self.config
        assert self.channel_arn is not None
        wss = self.endpoints["WSS"]
        call = Call("ConnectWss", wss, None)
        self.calls.append(call)
        host, port, path = _split(wss, c.strict_port)
        params = {"X-Amz-ChannelARN": self.channel_arn}
        if c.wss_client_id is not None:
            params["X-Amz-ClientId"] = c.wss_client_id
        query = presigned_query(host=host, path=path or "/", params=params, date=amz_date(datetime.now(UTC)),
                                region=c.region, access_key=c.access_key, secret_key=c.secret_key,
                                token=c.session_token)
        key = base64.b64encode(os.urandom(16)).decode()
        head = (f"GET {path or '/'}?{query} HTTP/1.1\r\n"
                "Pragma: no-cache\r\n"
                "Cache-Control: no-cache\r\n"
                f"Host: {host}\r\n"
                "Upgrade: websocket\r\n"
                "Connection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Protocol: wss\r\n"
                "Sec-WebSocket-Version: 13\r\n"
                "\r\n")
        call.request_head = head.encode()
        async with asyncio.timeout(c.connect_timeout):
            reader, writer = await asyncio.open_connection(host, port, ssl=self._tls(), server_hostname=host)
            try:
                writer.write(call.request_head)
                await writer.drain()
                raw = await reader.readuntil(b"\r\n\r\n")
                status, headers, _ = _parse_response(raw)
                call.status = status
                if status != 101:
                    rest = b""
                    length = int(headers.get("content-length", "0") or 0)
                    if length:
                        rest = await reader.readexactly(length)
                    raise HandshakeFailed(status, rest.decode("utf-8", "replace"))
                accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
                if headers.get("sec-websocket-accept") != accept:
                    raise HandshakeFailed(status, "wrong Sec-WebSocket-Accept")
                protocol = headers.get("sec-websocket-protocol")
                if protocol is not None and protocol != "wss":  # lws refuses a protocol it did not ask for
                    raise HandshakeFailed(status, f"unexpected subprotocol {protocol!r}")
            except BaseException:
                writer.transport.abort()
                raise
        return reader, writer

    async def _listen(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> End | None:
        """Serve one connection until it ends (an :class:`End`), or until a frame hangs the SDK (None)."""
        end = End(None, "")
        pinger = asyncio.get_running_loop().create_task(self._ping(writer))
        try:
            while True:
                try:
                    opcode, payload = await read_frame(reader)
                except (asyncio.IncompleteReadError, OSError):
                    end.reason = "connection lost without a close frame"
                    return end
                if opcode == OP_PING:
                    writer.write(client_frame(OP_PONG, payload))  # lws answers pings itself
                elif opcode == OP_CLOSE:
                    end.code, end.reason = parse_close(payload)
                    try:
                        writer.write(client_frame(OP_CLOSE, payload[:2]))
                        await writer.drain()
                    except OSError:
                        pass
                    return end
                elif opcode == OP_TEXT:
                    text = payload.decode("utf-8", "replace")
                    self.frames.append(text)
                    end.frames.append(text)
                    if not text:
                        continue  # the SDK skips empty frames
                    msg = json.loads(text)
                    kind = msg.get("messageType")
                    if kind in HANGS_ON:
                        self.hung = True
                        self.hung_on = kind
                        pinger.cancel()
                        await self._notify()
                        await self._observe_hung(reader)
                        return None
                    self.received.append(msg)
                    await self._notify()
                # binary and pong frames: ignored (the SDK treats binary as an error and goes on)
        finally:
            pinger.cancel()
            if not self.hung:
                writer.transport.abort()

    async def _observe_hung(self, reader: asyncio.StreamReader) -> None:
        """After the deadlock: read nothing on the SDK's behalf, reply to nothing. Only record when
        the server has closed the socket (what the kernel would hold for a process that never reads)."""
        try:
            while True:
                opcode, _ = await read_frame(reader)
                if opcode == OP_CLOSE:
                    break
        except (asyncio.IncompleteReadError, OSError):
            pass
        self.closed_while_hung = True
        await self._notify()

    async def _ping(self, writer: asyncio.StreamWriter) -> None:
        """An empty ping every ``ping_interval`` seconds (lws's retry policy, 10 s in the SDK)."""
        try:
            while True:
                await asyncio.sleep(self.config.ping_interval)
                writer.write(client_frame(OP_PING))
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            return


def _parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not lines or not lines[0].startswith("HTTP/"):
        raise EOFError(f"not an HTTP response: {raw[:80]!r}")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return status, headers, body


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out

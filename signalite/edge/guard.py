"""The connection guard: what a client must do, and how fast, before the server spends more on it.

aiohttp reads requests without a deadline of its own for a body, and TCPSite offers neither a TLS
handshake timeout nor a way to count connections per client. This module adds, at the edge:

* **header timeout** — a connection must deliver a complete request head within
  ``--header-timeout`` seconds of opening, and of the end of its previous response. That is
  exactly aiohttp's keep-alive timer (armed at ``connection_made`` and after every response, it
  closes the connection if no complete head has arrived), so :func:`runner` sets it to the
  header timeout: silent sockets, slow headers and idle keep-alive are closed by the same timer,
  with no work per request.
* **body timeout** — a request body must arrive within ``--body-timeout`` seconds of its head,
  plus one second per ``--body-min-rate`` bytes received. Most bodies arrive with their head, so
  the middleware arms a timer (one ``call_at``, no task) only for a body still in flight; when
  it is up, the body read fails and the client gets 408 ``RequestTimeoutException``.
* **TLS handshake timeout** — passed to ``loop.create_server`` by :class:`GuardedSite`.
* **per-address limits** (off in ``--quotas relaxed``) — connections from one address (an IPv6
  /64) that have not yet had a request authenticated, and WebSocket upgrade attempts per second
  from one address. A connection past the first limit has its first request answered 400
  ``ClientLimitExceededException`` and is closed (past twice the limit it is closed at once);
  an upgrade past the rate is answered the same, as KVS answers its own connect limits. A
  connection counts as authenticated once a request on it is answered 101, or 2xx from anything
  but the open paths (``/health``, ``/ready``) and CORS preflights: only a valid signature gets
  there. These need a hook per connection, so :class:`GuardedSite` wraps aiohttp's protocol in
  :class:`_Tracked`, whose ``data_received`` *is* aiohttp's (bound at construction, before the
  transport caches it): no extra Python call per read.

Everything lives in one :class:`Guard` per application (``app[GUARD]``); nothing is global.
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import logging
import socket
from functools import partial
from ssl import SSLContext
from typing import Any, Awaitable, Callable, Iterable, cast

from aiohttp import hdrs, web
from aiohttp.web_protocol import RequestHandler

from ..aws.wire import ServiceWire, Wire
from ..config import Settings
from ..signaling.quotas import BucketTable, table
from . import answers

log = logging.getLogger("signalite.guard")

CLIENT_LIMIT = "ClientLimitExceededException"
REQUEST_TIMEOUT = "RequestTimeoutException"
OPEN_PATHS = frozenset(("/health", "/ready", "/metrics", "/", "/console", "/console/"))
"""Paths that answer 2xx without a signature (health, metrics without a token, the landing page and
the console): a 2xx from them does not authenticate a connection."""
OPEN_PREFIXES = ("/console/",)
"""Path prefixes of the same kind (the console's assets)."""


class BodyTimeout(Exception):
    """Set on a request body that arrived too slowly: the handler's read raises it."""


class _State(enum.Enum):
    PENDING = "pending"
    """Counted against its address's unauthenticated connections."""
    REFUSED = "refused"
    """Over the limit: its first request is answered ClientLimitExceededException."""
    DONE = "done"
    """Authenticated (or closed): no longer counted."""


class _Peer:
    """One client address: its connections that are pending, and refused."""

    __slots__ = ("pending", "refused")

    def __init__(self) -> None:
        self.pending = 0
        self.refused = 0


def peer_key(host: str | None) -> str:
    """The address a per-address limit counts: an IPv4 address as it is, an IPv6 address as its
    /64 (one subscriber's prefix: counting single addresses would let a host use 2^64 of them),
    an IPv4-mapped IPv6 address as the IPv4 address."""
    if not host:
        return ""
    if ":" not in host:
        return host
    try:
        addr = ipaddress.IPv6Address(host.split("%", 1)[0])
    except ValueError:
        return host
    if addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(addr) >> 64 << 64, 64)))


class _Tracked(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the guard told when it opens and closes."""

    def __init__(self, guard: "Guard", inner: RequestHandler) -> None:
        self.guard = guard
        self.inner = inner
        self.key = ""
        self.state = _State.DONE
        self.forwarding = True
        # The transport caches protocol.data_received when it is created, after this: reads go
        # straight to aiohttp. (An instance attribute, so it shadows no method of this class.)
        self.data_received = inner.data_received  # type: ignore[method-assign]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.guard._opened(self, transport):
            self.forwarding = False
            cast(asyncio.Transport, transport).abort()  # uvloop's transports are not asyncio.Transport
            return
        self.inner.connection_made(transport)

    def eof_received(self) -> bool | None:
        if self.forwarding:
            self.inner.eof_received()
        return None  # the transport closes itself (aiohttp's own answer)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.guard._closed(self)
        if self.forwarding:
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class _BodyWatch:
    """The deadline of one request body in flight (see the module docstring)."""

    __slots__ = ("content", "start", "timeout", "rate", "loop", "handle")

    def __init__(self, content: Any, timeout: float, rate: float, loop: asyncio.AbstractEventLoop) -> None:
        self.content = content
        self.start = loop.time()
        self.timeout = timeout
        self.rate = rate
        self.loop = loop
        self.handle: asyncio.TimerHandle | None = loop.call_at(self.start + timeout, self._check)

    def _check(self) -> None:
        self.handle = None
        content = self.content
        if content.is_eof():
            return
        allowed = self.start + self.timeout + content.total_bytes / self.rate
        if self.loop.time() < allowed:
            self.handle = self.loop.call_at(allowed, self._check)
            return
        content.set_exception(BodyTimeout())

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Guard:
    """The limits of :class:`~signalite.config.Settings` applied to one application's connections."""

    def __init__(self, settings: Settings, wire: Wire, open_paths: Iterable[str] = OPEN_PATHS) -> None:
        q = settings.quotas
        self.settings = settings
        self.wire = wire
        self.open_paths = frozenset(open_paths)
        self.max_pending = q.max_unauthenticated_per_ip
        self.handshakes: BucketTable[str] | None = table(q.handshakes_per_ip_per_second)
        self.tracking = self.max_pending is not None or self.handshakes is not None
        """Whether connections are wrapped and counted at all (not in ``--quotas relaxed``)."""
        self.body_timeout = settings.body_timeout
        self.body_rate = settings.body_min_rate
        self._peers: dict[str, _Peer] = {}
        self._conns: dict[RequestHandler, _Tracked] = {}
        self.middleware = web.middleware(partial(Guard._middleware, self))
        """aiohttp marks a middleware by an attribute, which a bound method cannot take."""

    # --- connections ---------------------------------------------------------------------------
    def protocol_factory(self, server: web.Server) -> Callable[[], asyncio.BaseProtocol]:
        """What :class:`GuardedSite` gives ``create_server``: aiohttp's protocol, wrapped only when
        connections are counted."""
        if not self.tracking:
            return server
        return lambda: _Tracked(self, server())

    def _opened(self, conn: _Tracked, transport: asyncio.BaseTransport) -> bool:
        """Count a new connection; False to close it at once (twice over the limit)."""
        peer = transport.get_extra_info("peername")
        conn.key = key = peer_key(peer[0] if isinstance(peer, tuple) and peer else None)
        self._conns[conn.inner] = conn
        limit = self.max_pending
        if limit is None:
            return True
        state = self._peers.get(key)
        if state is None:
            state = self._peers[key] = _Peer()
        if state.pending < limit:
            state.pending += 1
            conn.state = _State.PENDING
        elif state.refused < limit:
            state.refused += 1
            conn.state = _State.REFUSED
        else:
            return False
        return True

    def _settle(self, conn: _Tracked) -> None:
        """``conn`` no longer counts against its address (authenticated, or closed)."""
        state = self._peers.get(conn.key)
        if state is not None:
            if conn.state is _State.PENDING:
                state.pending -= 1
            elif conn.state is _State.REFUSED:
                state.refused -= 1
            if not state.pending and not state.refused:
                del self._peers[conn.key]
        conn.state = _State.DONE

    def _closed(self, conn: _Tracked) -> None:
        self._conns.pop(conn.inner, None)
        self._settle(conn)

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """A connection is authenticated once a request on it gets a 101, or a 2xx from anything
        but the open paths and preflights (aiohttp's ``on_response_prepare`` signal)."""
        conn = self._conns.get(request.protocol)
        if conn is None or conn.state is not _State.PENDING:
            return
        status = response.status
        if status == 101 or (status < 300 and request.method != hdrs.METH_OPTIONS
                             and request.path not in self.open_paths and not request.path.startswith(OPEN_PREFIXES)):
            self._settle(conn)

    def pending(self, host: str) -> int:
        """Unauthenticated connections counted for ``host`` (introspection)."""
        state = self._peers.get(peer_key(host))
        return state.pending if state is not None else 0

    # --- requests ------------------------------------------------------------------------------
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.tracking:
            conn = self._conns.get(request.protocol)
            if conn is not None:
                if conn.state is _State.REFUSED:
                    return self._error(request, CLIENT_LIMIT, 400, "Too many unauthenticated connections "
                                       f"from your address; the limit is {self.max_pending}.")
                handshakes = self.handshakes
                if (handshakes is not None and request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
                        and not handshakes.take(conn.key, asyncio.get_running_loop().time())):
                    return self._error(request, CLIENT_LIMIT, 400, "Too many connection attempts from your "
                                       "address; the limit is "
                                       f"{self.settings.quotas.handshakes_per_ip_per_second:g} per second.",
                                       close=False)
        rate = self.body_rate
        content = request.content
        if rate is None or content.is_eof():
            return await handler(request)
        watch = _BodyWatch(content, self.body_timeout, rate, asyncio.get_running_loop())
        try:
            return await handler(request)
        except BodyTimeout:
            response = self._error(request, REQUEST_TIMEOUT, 408, "The request body did not arrive in time: "
                                   f"allowed {self.body_timeout:g} s plus 1 s per {rate:g} bytes.")
            # Answer and close now: aiohttp would otherwise go on reading ("lingering") the body
            # that failed, and log the failure as an unhandled exception.
            await response.prepare(request)
            await response.write_eof()
            request.protocol.force_close()
            return response
        finally:
            watch.cancel()

    def _service(self, request: web.Request) -> ServiceWire:
        route = self.wire.route(request.path)
        return route[0] if route is not None else self.wire.control_plane

    def _error(self, request: web.Request, code: str, status: int, message: str, close: bool = True) -> web.Response:
        response = answers.error(request, self._service(request), code, message, answers.new_request_id(),
                                 status=status)
        if close:
            response.force_close()
        return response


GUARD = web.AppKey("guard", Guard)


def install(app: web.Application, guard: Guard) -> None:
    """Put ``guard``'s middleware and response hook on ``app`` (before it is frozen)."""
    app[GUARD] = guard
    app.middlewares.append(guard.middleware)
    if guard.max_pending is not None:
        app.on_response_prepare.append(guard.on_response_prepare)


def runner(app: web.Application) -> web.AppRunner:
    """An AppRunner whose connections get the header timeout (aiohttp's keep-alive timer)."""
    settings = app[GUARD].settings
    return web.AppRunner(app, handle_signals=False, access_log=None, keepalive_timeout=settings.header_timeout)


class GuardedSite(web.BaseSite):
    """A TCP listener with the configured backlog and TLS handshake timeout, whose connections
    the guard counts (see :meth:`Guard.protocol_factory`)."""

    __slots__ = ("_guard", "_sock", "_handshake_timeout")

    def __init__(self, runner: web.BaseRunner, guard: Guard, sock: socket.socket, *,
                 ssl_context: SSLContext | None = None, backlog: int = 4096,
                 tls_handshake_timeout: float = 10.0) -> None:
        """``sock``: a socket already bound (``signalite serve`` binds before it builds the app,
        so that the endpoints it advertises carry the real port, even for ``--port 0``)."""
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._guard = guard
        self._sock = sock
        self._handshake_timeout = tls_handshake_timeout

    @property
    def name(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"{'https' if self._ssl_context else 'http'}://{host}:{port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        extra: dict[str, Any] = {}
        if self._ssl_context is not None:
            extra["ssl_handshake_timeout"] = self._handshake_timeout
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.protocol_factory(server), sock=self._sock, ssl=self._ssl_context,
            backlog=self._backlog, **extra)

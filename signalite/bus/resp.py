"""A lean Redis connection for the bus's two hot paths: the writer's script calls and the
subscription that brings other nodes' pushes.

Why not redis-py for these: each of its calls goes through a connection pool, a retry wrapper,
event dispatch and a per-argument encoder, and each Pub/Sub message through ``get_message``'s
own awaits and timeouts. Measured in a cluster relaying 2,000 messages a second, those layers
were a third of a node's CPU, and one ``EVALSHA`` or one push per relayed message is exactly
what the bus does. Here a connection is an :class:`asyncio.Protocol` whose ``data_received``
feeds hiredis's parser (the one redis-py uses) and hands every complete reply on at once: a
reply to the oldest waiting command, or, on a subscription, to a callback, so a burst of pushes
costs one callback, not one task wake-up each. Commands are written in order on one connection,
so replies come back in order, which is also what lets batches be sent again safely.

What the bus URL says about the connection (host and port, a Unix socket, user and password,
database, TLS and its certificate options) is read with redis-py's own URL parser; everything
else redis-py would use is left to the redis-py client the bus keeps for its other calls.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from typing import Any, Callable

import hiredis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection
from redis.asyncio.connection import parse_url as redis_parse_url


class RespError(ConnectionError):
    """The connection is unusable (closed, broken, or refused what it must accept)."""


def pack(args: list[Any] | tuple[Any, ...]) -> bytes:
    """One command in RESP (an array of bulk strings): ``str`` as UTF-8, ``int`` and ``float``
    as their decimal text (``repr`` for floats, as redis-py encodes them), ``bytes`` as they are."""
    parts = [b"*%d\r\n" % len(args)]
    append = parts.append
    for arg in args:
        if type(arg) is bytes:
            data = arg
        elif type(arg) is str:
            data = arg.encode()
        elif type(arg) is int:
            data = b"%d" % arg
        elif type(arg) is float:
            data = repr(arg).encode()
        elif isinstance(arg, (bytes, bytearray, memoryview)):
            data = bytes(arg)
        else:
            raise TypeError(f"cannot send {type(arg).__name__} to Redis")
        append(b"$%d\r\n" % len(data))
        append(data)
        append(b"\r\n")
    return b"".join(parts)


class RespConnection(asyncio.Protocol):
    """One connection. ``on_push``: called with every reply when the connection is a subscription
    (every reply is then a push or a (un)subscribe confirmation); otherwise replies answer
    :meth:`call` in order."""

    def __init__(self, on_push: Callable[[Any], None] | None = None) -> None:
        self._parser = hiredis.Reader()
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._on_push = on_push
        self._transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        """Resolved (with the error, or None) when the connection is gone."""

    # --- asyncio.Protocol ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        parser = self._parser
        try:
            parser.feed(data)
            while (reply := parser.gets()) is not False:
                if self._on_push is not None and not self._waiting:
                    self._on_push(reply)
                elif self._waiting:
                    waiter = self._waiting.popleft()
                    if not waiter.done():
                        waiter.set_result(reply)
                else:
                    raise RespError("Redis sent a reply nothing asked for")
        except (hiredis.ProtocolError, RespError) as exc:
            self._fail(RespError(f"Redis protocol error: {exc}"))

    def connection_lost(self, exc: BaseException | None) -> None:
        self._transport = None
        self._fail(exc or RespError("Redis closed the connection"))

    def _fail(self, exc: BaseException) -> None:
        if self._transport is not None:
            self._transport.abort()
            self._transport = None
        waiting, self._waiting = self._waiting, collections.deque()
        for waiter in waiting:
            if not waiter.done():
                waiter.set_exception(RespError(str(exc) or type(exc).__name__))
        if not self.closed.done():
            self.closed.set_result(exc)

    # --- use -------------------------------------------------------------------------------
    @property
    def open(self) -> bool:
        return self._transport is not None

    def write(self, packed: bytes) -> None:
        """Send a command whose replies (if any) go to ``on_push`` (a subscription's)."""
        if self._transport is None:
            raise RespError("the Redis connection is closed")
        self._transport.write(packed)

    def call(self, packed: bytes) -> asyncio.Future[Any]:
        """Send one packed command; the future gets its reply (a ``hiredis.ReplyError`` instance
        for an error reply) or a :class:`RespError` when the connection breaks first."""
        if self._transport is None:
            raise RespError("the Redis connection is closed")
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self._transport.write(packed)
        return waiter

    def close(self) -> None:
        self._fail(RespError("closed"))


def _tls_context(kwargs: dict[str, Any]) -> ssl.SSLContext:
    """The TLS context of a ``rediss://`` URL, with redis-py's defaults and URL options."""
    reqs = kwargs.get("ssl_cert_reqs", "required")
    modes = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
    verify = modes.get(reqs, ssl.CERT_REQUIRED) if isinstance(reqs, str) else ssl.VerifyMode(reqs)
    context = ssl.create_default_context(cafile=kwargs.get("ssl_ca_certs"))
    check = kwargs.get("ssl_check_hostname")
    context.check_hostname = bool(check if check is not None else verify != ssl.CERT_NONE) and verify != ssl.CERT_NONE
    context.verify_mode = verify
    if kwargs.get("ssl_certfile"):
        context.load_cert_chain(kwargs["ssl_certfile"], kwargs.get("ssl_keyfile"), kwargs.get("ssl_password"))
    return context


async def connect(url: str, on_push: Callable[[Any], None] | None = None) -> RespConnection:
    """A connection to the Redis of ``url`` (a redis-py URL), authenticated and on its database.
    Raises :class:`RespError` or :class:`OSError`; the caller bounds the time."""
    kwargs: dict[str, Any] = dict(redis_parse_url(url))
    loop = asyncio.get_running_loop()
    cls = kwargs.get("connection_class")
    if cls is UnixDomainSocketConnection:
        _, conn = await loop.create_unix_connection(RespConnection, kwargs["path"])
    else:
        tls = _tls_context(kwargs) if cls is SSLConnection else None
        host = kwargs.get("host", "localhost")
        _, conn = await loop.create_connection(RespConnection, host, kwargs.get("port", 6379), ssl=tls,
                                               server_hostname=host if tls is not None else None)
    setup: list[tuple[Any, ...]] = []
    if kwargs.get("password") is not None:
        setup.append(("AUTH", kwargs["username"], kwargs["password"]) if kwargs.get("username")
                     else ("AUTH", kwargs["password"]))
    if kwargs.get("db"):
        setup.append(("SELECT", kwargs["db"]))
    for command in setup:
        reply = await conn.call(pack(command))
        if isinstance(reply, hiredis.ReplyError):
            conn.close()
            raise RespError(f"Redis refused {command[0]}: {reply}")
    conn._on_push = on_push
    return conn

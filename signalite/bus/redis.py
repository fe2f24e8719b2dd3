"""Cluster bus: Redis Pub/Sub behind the :class:`~signalite.bus.base.Bus` interface.

URL
    ``redis://[user:password@]host:port[/db]?prefix=signalite:`` (or ``rediss://`` for TLS).
    Everything redis-py understands in a URL passes through; ``prefix`` (default ``signalite:``)
    is Signalite's own and namespaces the Pub/Sub channels (``{prefix}t:{topic}``). Redis Pub/Sub
    ignores the database number, so two deployments sharing one Redis must use different
    prefixes.

How it meets the contract in ``bus/base.py``
    * **Own node first.** ``publish`` calls this node's handler for the topic inline, exactly as
      :class:`~signalite.bus.local.LocalBus` does, and queues the envelope for Redis; each
      payload carries the publishing node's id, and a node's reader skips its own messages. A
      single node therefore behaves exactly like the embedded server (and keeps working while
      Redis is away), and no message a node publishes can miss that node because its Redis
      subscription is still being set up.
    * **Order, once.** One writer task sends the queue in order, pipelining whatever has
      accumulated, on one connection; Redis delivers a connection's publishes in order to each
      subscriber. A batch whose reply is lost (the connection broke) is sent again, so sending is
      at least once; every payload carries the node's sequence number and receivers drop numbers
      they have passed, so each node's handler still sees each envelope once, in order.
    * **Non-blocking.** ``publish``, ``subscribe`` and ``unsubscribe`` only touch memory. The
      writer retries a batch while Redis is unreachable and drops envelopes whose ``expires`` has
      passed (the router would drop them anyway; ``ctl`` envelopes never expire); ``MAX_QUEUED`` bounds the memory a long outage
      can take (the oldest are dropped first, with a warning).
    * **Subscriptions**: ``subscribe`` records the handler and writes the SUBSCRIBE on the
      subscription connection at once (only written to from the event loop, in order; while it is
      down, a new connection subscribes to everything wanted). :meth:`RedisBus.synced` waits
      until Redis has confirmed every subscription asked for so far (tests use it).
    * **Connections.** The writer and the subscription are lean connections of their own
      (:mod:`~signalite.bus.resp`: hiredis's parser behind an asyncio protocol, every reply
      handled as it arrives); redis-py serves the rest (ping, loading the script, the admin
      listing).

Mailboxes (presence and shared retention, ``bus/base.py``)
    Everything this node asks of Redis — publishes, posts, registrations, takes, acks, its
    lease — goes through one ordered queue; the writer sends what has accumulated as one
    ``EVALSHA`` of the script in :mod:`~signalite.bus.redis_script` (atomic, in order, applied
    once even when a batch is sent again after a lost reply). A message for a recipient held by
    a live node is appended to the recipient's list and pushed to that node's inbox channel;
    the node writes it at once when it follows what it already wrote (else it takes the list),
    and acknowledges what it wrote with its next batch (at the latest ``ACK_DELAY`` later); the
    list is the truth, the push only makes it fast. Each node renews a lease (``lease`` URL
    parameter, seconds, default 3); a node whose lease lapsed is dead to every script, and the
    others reap its presence.
    docs/cluster.md argues why no interleaving loses or duplicates a message.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import logging
import uuid
from typing import Any, Callable

import hiredis
import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from ..clock import Clock, SystemClock
from ..urls import redact, take_params
from .base import (
    BUFFERED,
    EXPIRED,
    REPLACED,
    Bus,
    BusUnavailable,
    Envelope,
    Handler,
    Holding,
    Limits,
    MailHandler,
    Message,
    NoMail,
    Registration,
    decode,
    dispatch,
    encode,
)
from .redis_script import LUA
from .resp import RespConnection, RespError, pack
from .resp import connect as resp_connect

log = logging.getLogger("signalite.bus")

CONNECT_TIMEOUT = 5.0
"""Seconds to connect (start-up fails after this)."""
COMMAND_TIMEOUT = 5.0
"""Seconds a batch or a ping may take before it is abandoned."""
PING_TIMEOUT = 3.0
REGISTER_TIMEOUT = 3.0
"""Seconds a WSS handshake waits for its registration before answering 503 (retriable)."""
MAX_QUEUED = 100_000
"""Operations kept for Redis while it is unreachable (the oldest go first)."""
MAX_BATCH = 512
TAKE_MAX = 256
"""Entries one take brings back (another take follows when it was full)."""
ACK_DELAY = 0.005
"""Seconds an acknowledgement may wait for a batch to ride with before it gets one of its own.
A busy node sends batches all the time, so acknowledgements cost no round trip of their own;
what it widens is only the window of case 5 in docs/cluster.md (a node that dies redelivers
what it wrote but had not acknowledged: now up to this long, plus a round trip)."""
DEFAULT_LEASE = 3.0
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
DEFAULT_PREFIX = "signalite:"
TRACE_TTL = 10.0
"""Seconds another node's follow of a channel lasts unless renewed (it is renewed with the lease)."""
ECHO_WAIT = 5.0
"""Seconds the subscription may take to bring back this node's own echo (published with every
lease renewal) once Redis applied it, before it is taken for dead and connected again: a
connection that a NAT, firewall or load balancer dropped without a FIN or RST never fails by
itself, and a node would go on without its inbox (pushes, takeovers) until TCP gave up."""
FOLLOW_WAIT = 2.0
"""Seconds :meth:`RedisBus.follow` waits for the other nodes to say they know."""
_NODE_ID_LEN = 16
_SEQ_LEN = 12  # hex digits of the per-node sequence number after the node id
_HEADER_LEN = _NODE_ID_LEN + _SEQ_LEN
MAX_KNOWN_NODES = 4096
_ERRORS = (redis_errors.RedisError, OSError, asyncio.TimeoutError)
_INF = float("inf")

# Registration states (this node's view of one of its registrations).
REGISTERED, STARTING, WAITING, ACTIVE = 0, 1, 2, 3


def parse_url(url: str) -> tuple[str, str]:
    """Split a bus URL into (redis-py URL, channel prefix)."""
    redis_url, params = take_params(url, ("prefix", "lease"))
    prefixes = [v for k, v in params if k == "prefix"]
    return redis_url, prefixes[0] if prefixes else DEFAULT_PREFIX  # the first prefix given wins


def parse_lease(url: str) -> float:
    """The ``lease`` parameter of a bus URL (seconds a dead node's presence lasts), default 3."""
    leases = [v for k, v in take_params(url, ("lease",))[1] if k == "lease" and v]
    if not leases:
        return DEFAULT_LEASE
    try:
        value = float(leases[0])
    except ValueError:
        raise ValueError(f"lease in the bus URL must be a number of seconds, not {leases[0]!r}") from None
    if not 0.2 <= value <= 60:
        raise ValueError("lease in the bus URL must be between 0.2 and 60 seconds")
    return value


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Op:
    """One queued operation: its fields for the script, when it stops mattering, and what to do
    with its result (``None`` = its batch's reply was lost after Redis applied it)."""

    __slots__ = ("fields", "expires", "done")

    def __init__(self, fields: tuple[Any, ...], expires: float = _INF,
                 done: Callable[[Any], None] | None = None) -> None:
        self.fields = fields
        self.expires = expires
        self.done = done


class _Reg:
    """This node's record of one registration (a connection that receives a key's messages)."""

    __slots__ = ("arn", "key", "token", "state", "written", "taking", "refetch", "acked", "retry")

    def __init__(self, arn: str, key: str, token: int) -> None:
        self.arn, self.key, self.token = arn, key, token
        self.state = REGISTERED
        self.written = 0
        """Seq of the last entry written to the socket (entries up to it are delivered)."""
        self.acked = 0
        self.taking = False
        self.refetch = False
        self.retry: asyncio.Task[None] | None = None



class RedisBus(Bus):
    def __init__(self, url: str, clock: Clock | None = None, name: str = "") -> None:
        self._url = url
        self._clock = clock or SystemClock()
        self._redis_url, prefix = parse_url(url)
        self.lease = parse_lease(url)
        self.prefix = prefix
        self._prefix = prefix.encode()
        self._topic_prefix = self._prefix + b"t:"
        self.node_id = uuid.uuid4().hex[:_NODE_ID_LEN]
        """This process's instance id in Redis (a restarted node is a new instance)."""
        self.name = name or self.node_id
        """The node's ``--node-id`` (shown by the admin listing)."""
        self._node = self.node_id.encode()
        self._control = self._prefix + b"n:" + self._node
        self._announce = self._prefix + b"tf"
        """Where nodes say which channels they follow live (``f``/``u``/``q``, see :meth:`follow`)."""
        self._trace_prefix = self._prefix + b"tc:"
        """``{prefix}tc:{arn}``: the events of a followed channel, from the nodes that have some."""
        self._following: dict[str, list[asyncio.Future[None]]] = {}
        """Channels this node follows → waiters for the other nodes' acknowledgements."""
        self._follow_acks: dict[str, int] = {}
        self._remote: dict[str, dict[bytes, float]] = {}
        """Channels other nodes follow → follower instance → when its follow lapses (local clock)."""
        self._handlers: dict[str, Handler] = {}
        self._wanted: set[bytes] = set()          # channels this node wants (from subscribe())
        self._confirmed: set[bytes] = set()       # channels Redis confirmed on our Pub/Sub connection
        self._queue: collections.deque[_Op] = collections.deque()
        self._queued = asyncio.Event()
        self._to_add: set[bytes] = set()          # SUBSCRIBE / UNSUBSCRIBE still to send
        self._to_remove: set[bytes] = set()
        self._sync_waiters: list[asyncio.Future[None]] = []
        self._client: aioredis.Redis | None = None
        """redis-py, for what is not on the hot path (ping, the script's load, the admin listing)."""
        self._conn: RespConnection | None = None
        """The writer's connection: one ``EVALSHA`` per batch, in order."""
        self._sub: RespConnection | None = None
        """The subscription: this node's inbox, the trace announcements, the topics wanted."""
        self._subscribed: asyncio.Future[None] | None = None
        """Resolved when Redis confirms this node's inbox on a new subscription connection."""
        self._echo_sent = 0
        self._echo_seen = 0
        self._echo_applied: tuple[int, float] | None = None
        """The newest echo Redis applied, and when (the loop's clock), not yet seen come back."""
        self._tasks: list[asyncio.Task[None]] = []
        self._reader_error: str | None = None
        self._writer_error: str | None = None
        self._closing = False
        self._seq = 0                             # sequence number of this node's last publish
        self._last_seq: dict[bytes, int] = {}     # highest sequence number seen per other node
        self._batch = 0
        self._epoch = 0
        self._sha = ""
        self._mail: MailHandler = NoMail()
        self._regs: dict[int, _Reg] = {}
        self._dirty: set[int] = set()             # registrations with writes to acknowledge
        self._ack_timer: asyncio.TimerHandle | None = None
        self.sent = 0
        """Operations Redis acknowledged (publishes, posts, takes… including control wake-ups)."""
        self.batches = 0
        """Script calls Redis acknowledged."""
        self.dropped = 0
        """Operations dropped because Redis was unreachable for longer than their TTL or MAX_QUEUED."""

    # --- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        self._closing = False
        client = aioredis.Redis.from_url(self._redis_url, socket_connect_timeout=CONNECT_TIMEOUT,
                                         socket_timeout=COMMAND_TIMEOUT, decode_responses=False)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT + COMMAND_TIMEOUT):
                await client.ping()
                self._sha = await client.script_load(LUA)
                self._conn = await resp_connect(self._redis_url)
                await self._subscribe_all()
        except _ERRORS as exc:
            for conn in (self._conn, self._sub):
                if conn is not None:
                    conn.close()
            self._conn = self._sub = None
            await client.aclose()
            raise ConnectionError(f"cannot connect to the Redis bus {redact(self._url)}: {_describe(exc)}") from exc
        self._client = client
        # The lease goes first: no registration of this node may exist before it is alive.
        self._enqueue(_Op(("L", self.name, str(int(self.lease * 1000))), done=self._renewed))
        self._enqueue(_Op(("P", self._announce, b"q\t" + self._node)))  # who follows what already?
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._reader(), name="signalite-bus-reader"),
                       loop.create_task(self._writer(), name="signalite-bus-writer"),
                       loop.create_task(self._renewer(), name="signalite-bus-lease")]

    async def close(self) -> None:
        self._closing = True
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        tasks, self._tasks = self._tasks, []
        for reg in self._regs.values():
            if reg.retry is not None:
                tasks.append(reg.retry)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=COMMAND_TIMEOUT)
        for conn in (self._conn, self._sub):
            if conn is not None:
                conn.close()
        self._conn = self._sub = None
        client, self._client = self._client, None
        if client is not None:
            try:
                async with asyncio.timeout(COMMAND_TIMEOUT):
                    await client.aclose()
            except _ERRORS:
                pass
        self._handlers.clear()
        self._wanted.clear()
        self._confirmed.clear()
        self._regs.clear()
        self._remote.clear()
        for waiters in self._following.values():
            for w in waiters:
                if not w.done():
                    w.cancel()
        self._following.clear()
        queued, self._queue = list(self._queue), collections.deque()
        for op in queued:
            if op.done is not None:
                op.done(None)
        for f in self._sync_waiters:
            if not f.done():
                f.cancel()
        self._sync_waiters.clear()

    async def ping(self) -> bool:
        if self._client is None:
            raise ConnectionError("the Redis bus is not open")
        try:
            async with asyncio.timeout(PING_TIMEOUT):
                await self._client.ping()
        except _ERRORS as exc:
            raise ConnectionError(f"Redis unreachable: {_describe(exc)}") from exc
        if self._reader_error is not None:
            raise ConnectionError(f"Redis subscription connection down: {self._reader_error}")
        return True

    def feed_epoch(self, topic: str) -> int | None:
        if self._client is None or self._reader_error is not None:
            return None
        if self._topic_prefix + topic.encode() not in self._confirmed:
            return None
        return self._epoch

    @property
    def available(self) -> bool:
        """Whether Redis answered the last attempts of both connections (fail fast when not)."""
        return self._client is not None and self._reader_error is None and self._writer_error is None

    # --- topics ----------------------------------------------------------------------------
    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic] = handler
        channel = self._topic_prefix + topic.encode()
        if channel not in self._wanted:
            self._wanted.add(channel)
            self._to_add.add(channel)
            self._to_remove.discard(channel)
            self._send_subscriptions()

    def unsubscribe(self, topic: str) -> None:
        if self._handlers.pop(topic, None) is None:
            return
        channel = self._topic_prefix + topic.encode()
        self._wanted.discard(channel)
        self._to_remove.add(channel)
        self._to_add.discard(channel)
        self._send_subscriptions()

    def publish(self, topic: str, envelope: Message) -> None:
        dispatch(self._handlers, topic, envelope)
        # Only relayed messages expire; channel events must always go out.
        expires = envelope.expires if type(envelope) is Envelope else _INF
        self._seq += 1
        header = self._node + b"%012x" % self._seq
        self._enqueue(_Op(("P", self._topic_prefix + topic.encode(), header + encode(envelope)), expires))

    async def synced(self) -> None:
        """Return once Redis has confirmed every subscribe/unsubscribe asked for so far."""
        if self._is_synced():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._sync_waiters.append(waiter)
        await waiter

    # --- mailboxes -------------------------------------------------------------------------
    def set_mail_handler(self, handler: MailHandler) -> None:
        self._mail = handler

    @staticmethod
    async def _answer(answer: asyncio.Future[Any]) -> Any:
        """The script's reply to a queued operation a caller waits for (None: the connection broke
        before it came), or BusUnavailable after REGISTER_TIMEOUT; the operation's ``done`` sees a
        cancelled ``answer`` when the caller gave up."""
        try:
            async with asyncio.timeout(REGISTER_TIMEOUT):
                return await asyncio.shield(answer)
        except TimeoutError:
            answer.cancel()
            raise BusUnavailable(f"Redis did not answer within {REGISTER_TIMEOUT:g} s") from None

    async def register(self, arn: str, key: str, token: int, *, virtual: bool, limits: Limits) -> Registration:
        if not self.available:
            raise BusUnavailable(self._unavailable())
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[Any] = loop.create_future()

        def done(result: Any) -> None:
            if answer.done():  # the handshake gave up: undo a registration that did take effect
                if isinstance(result, list) and result and result[0] == b"ok":
                    self._enqueue(_Op(("A", arn, key, token, "0", "1")))
                return
            answer.set_result(result)

        self._enqueue(_Op(("R", arn, key, token, "1" if virtual else "0",
                           -1 if limits.max_viewers is None else limits.max_viewers,
                           repr(float(limits.connect_rate or 0))), done=done))
        result = await self._answer(answer)
        if result is None:  # applied, but its reply was lost: undo, and let the client retry
            self._enqueue(_Op(("A", arn, key, token, "0", "1")))
            raise BusUnavailable("the Redis connection broke during the registration")
        status = result[0]
        if status == b"ok":
            self._regs[token] = _Reg(arn, key, token)
            return Registration(None, bool(result[1]))
        return Registration(status.decode())

    def start(self, arn: str, key: str, token: int) -> None:
        reg = self._regs.get(token)
        if reg is None or reg.state != REGISTERED:
            return
        reg.state = STARTING
        self._take(reg)

    def unregister(self, arn: str, key: str, token: int) -> None:
        reg = self._regs.pop(token, None)
        written = 0
        if reg is not None:
            written = reg.written
            self._dirty.discard(token)
            if reg.retry is not None:
                reg.retry.cancel()
        self._enqueue(_Op(("A", arn, key, token, str(written), "1")))

    def post(self, arn: str, envelope: Envelope) -> None:
        msg_type, sender, recipient = envelope.msg_type, envelope.sender, envelope.recipient

        def done(result: Any) -> None:
            if not result:
                return
            mail = self._mail
            if result[1]:  # the script dropped the older retained one of the same type and sender
                mail.outcome(arn, msg_type, REPLACED, sender, recipient)
            for dropped in result[2:]:  # 'type\tsender' of messages of this key found expired
                dropped_type, _, dropped_sender = dropped.decode().partition("\t")
                mail.outcome(arn, dropped_type, EXPIRED, dropped_sender, recipient)
            if result[0] == 0:
                mail.outcome(arn, msg_type, BUFFERED, sender, recipient)

        self._enqueue(_Op(("S", arn, envelope.recipient, msg_type, envelope.sender, repr(envelope.expires),
                           encode(envelope)), envelope.expires, done))

    async def _query(self, fields: tuple[Any, ...]) -> Any:
        """Run one read-only script operation in the next batch and return its reply."""
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(result: Any) -> None:
            if not answer.done():
                answer.set_result(result)

        self._enqueue(_Op(fields, done=done))
        result = await self._answer(answer)
        if result is None:
            raise BusUnavailable("the Redis connection broke")
        return result

    async def holds(self, arn: str, key: str) -> bool:
        if not self.available:
            raise BusUnavailable(self._unavailable())
        return bool(await self._query(("H", arn, key)))

    def drop_channel(self, arn: str) -> None:
        self._enqueue(_Op(("D", arn)))

    async def retained(self, arn: str, key: str) -> list[Envelope]:
        result = await self._query(("Q", arn, key))
        return [decode(item.split(b"\t", 4)[4]) for item in result]  # type: ignore[misc]

    # --- the live trace across nodes ------------------------------------------------------
    # A node that follows a channel subscribes to ``{prefix}tc:{arn}`` and announces it on
    # ``{prefix}tf`` (``f \t inst \t arn``; renewed as ``F`` with the lease); each node that
    # hears ``f`` acknowledges on the follower's inbox and, until the follow lapses (TRACE_TTL) or
    # is withdrawn (``u``), publishes its events of that channel there. A node that starts asks
    # (``q``) and the followers renew at once. A channel nobody follows costs no Redis traffic.
    async def follow(self, arn: str) -> None:
        if arn in self._following:
            return
        self._following[arn] = []
        self._follow_acks[arn] = 0
        channel = self._trace_prefix + arn.encode()
        self._wanted.add(channel)
        self._to_add.add(channel)
        self._to_remove.discard(channel)
        self._send_subscriptions()
        if self._client is None:
            return
        try:
            async with asyncio.timeout(FOLLOW_WAIT):
                await self.synced()
                # Through the writer, in order with an earlier withdrawal (``u``) of the same channel.
                published: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

                def done(result: Any) -> None:
                    if not published.done():
                        published.set_result(result)

                self._enqueue(_Op(("P", self._announce, self._announcement(b"f", arn)), done=done))
                listeners = await published
                others = int(listeners or 1) - 1  # this node hears its own announcement too (and skips it)
                while self._follow_acks.get(arn, 0) < others and arn in self._following:
                    waiter = asyncio.get_running_loop().create_future()
                    self._following[arn].append(waiter)
                    await waiter
        except (TimeoutError, *_ERRORS):
            log.info("not every node acknowledged the trace of %s in time; they follow at the next renewal", arn)
        finally:
            waiters = self._following.get(arn)
            if waiters is not None:
                waiters.clear()

    def unfollow(self, arn: str) -> None:
        if self._following.pop(arn, None) is None:
            return
        self._follow_acks.pop(arn, None)
        channel = self._trace_prefix + arn.encode()
        self._wanted.discard(channel)
        self._to_remove.add(channel)
        self._to_add.discard(channel)
        self._send_subscriptions()
        self._enqueue(_Op(("P", self._announce, self._announcement(b"u", arn))))

    def trace(self, arn: str, event: dict[str, Any]) -> None:
        data = self._node + json.dumps(event, separators=(",", ":"), default=str).encode()
        self._enqueue(_Op(("P", self._trace_prefix + arn.encode(), data), self._clock.now() + TRACE_TTL))

    def _announcement(self, verb: bytes, arn: str) -> bytes:
        return verb + b"\t" + self._node + b"\t" + arn.encode()

    def _renew_follows(self) -> None:
        for arn in self._following:
            self._enqueue(_Op(("P", self._announce, self._announcement(b"F", arn))))
            # Retained messages nobody came for would lapse with their Redis key, unseen: for a
            # followed channel, drop them when they expire and say so (the trace's "expired").
            self._enqueue(_Op(("E", arn), done=functools.partial(self._swept, arn)))
        now = self._clock.now()
        for arn, followers in list(self._remote.items()):
            for inst in [i for i, until in followers.items() if until <= now]:
                del followers[inst]  # its node stopped renewing (gone, or cut off from Redis)
            if not followers:
                del self._remote[arn]
                self._mail.trace_wanted(arn, False)

    def _swept(self, arn: str, result: Any) -> None:
        for item in result or ():
            key, msg_type, sender = item.decode().split("\t", 2)
            self._mail.outcome(arn, msg_type, EXPIRED, sender, key)

    def _announced(self, data: bytes) -> None:
        verb, _, rest = data.partition(b"\t")
        inst, _, arn_b = rest.partition(b"\t")
        if inst == self._node:
            return
        if verb == b"q":
            for arn in self._following:
                self._enqueue(_Op(("P", self._announce, self._announcement(b"F", arn))))
            return
        arn = arn_b.decode()
        followers = self._remote.get(arn)
        if verb in (b"f", b"F"):  # a new follow (acknowledged), or its renewal
            if followers is None:
                followers = self._remote[arn] = {}
                self._mail.trace_wanted(arn, True)
            followers[inst] = self._clock.now() + TRACE_TTL
            if verb == b"f":
                self._enqueue(_Op(("P", self._prefix + b"n:" + inst, b"t\t" + arn_b)))
        elif verb == b"u" and followers is not None:
            followers.pop(inst, None)
            if not followers:
                del self._remote[arn]
                self._mail.trace_wanted(arn, False)

    def _traced(self, channel: bytes, data: bytes) -> None:
        if data[:_NODE_ID_LEN] == self._node:
            return  # this node's own event, already given to its followers
        arn = channel[len(self._trace_prefix):].decode()
        if arn in self._following:
            self._mail.trace_event(arn, json.loads(data[_NODE_ID_LEN:]))

    # --- presence, cluster-wide (signalite admin channels | clients) -------------------------
    async def holdings(self, arn: str | None = None) -> list[Holding] | None:
        client = self._client
        if client is None:
            raise BusUnavailable("the Redis bus is not open")
        P = self.prefix
        try:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                sec, usec = await client.time()
                now_ms = sec * 1000 + usec // 1000
                alive: list[bytes] = [bytes(i) for i in await client.zrangebyscore(P + "nodes", f"({now_ms}", "+inf")
                                      if isinstance(i, bytes)]
                names = await client.hgetall(P + "names")
                if arn is not None:
                    arns = [arn]
                else:
                    pipe = client.pipeline(transaction=False)
                    for inst in alive:
                        pipe.smembers(self._prefix + b"np:" + inst)
                    arns = sorted({m.decode().rsplit("|", 1)[0] for ms in await pipe.execute() for m in ms})
                pipe = client.pipeline(transaction=False)
                for a in arns:
                    pipe.hgetall(P + "p:" + a)
                tables = await pipe.execute()
        except _ERRORS as exc:
            raise BusUnavailable(f"Redis unreachable: {_describe(exc)}") from exc
        live = set(alive)
        out: list[Holding] = []
        for a, table in zip(arns, tables):
            for field, value in sorted(table.items()):
                if not field.startswith(b"h:"):
                    continue
                inst, _, rest = value.partition(b"\t")
                if inst not in live:
                    continue  # a dead node's entry, not reaped yet
                name = names.get(inst, inst).decode()
                out.append(Holding(a, field[2:].decode(), name, rest.endswith(b"\t1")))
        return out

    # --- taking, acknowledging, notices ----------------------------------------------------
    def _take(self, reg: _Reg) -> None:
        if reg.taking:
            reg.refetch = True
            return
        reg.taking = True
        reg.refetch = False
        self._enqueue(_Op(("T", reg.arn, reg.key, reg.token, str(reg.written), TAKE_MAX),
                          done=lambda result: self._taken(reg, result)))

    def _taken(self, reg: _Reg, result: Any) -> None:
        reg.taking = False
        if self._regs.get(reg.token) is not reg:
            return  # unregistered meanwhile: what it did not write stays in the list
        if result is None:  # the reply was lost: ask again
            self._take(reg)
            return
        status = result[0]
        if status == b"gone":  # taken over (its notice is on the way) or reaped
            self._mail.lost(reg.token)  # the hub closes it and unregisters with what it wrote
            if self._regs.get(reg.token) is reg:
                self.unregister(reg.arn, reg.key, reg.token)
            return
        if status == b"wait":  # the older holder has not handed over yet
            reg.state = WAITING
            delay = max(0.0, int(result[1]) / 1000) + 0.01
            if reg.retry is None or reg.retry.done():
                reg.retry = asyncio.get_running_loop().create_task(self._retry(reg, delay))
            return
        for dropped in result[1]:
            dropped_type, _, dropped_sender = dropped.decode().partition("\t")
            self._mail.outcome(reg.arn, dropped_type, EXPIRED, dropped_sender, reg.key)
        reg.state = ACTIVE
        entries = result[2:]
        if entries:
            fresh: list[Envelope] = []
            seqs: list[int] = []
            for item in entries:
                fields = item.split(b"\t", 4)
                seq = int(fields[0])
                if seq > reg.written:
                    seqs.append(seq)
                    fresh.append(decode(fields[4]))  # type: ignore[arg-type]
            if fresh:
                written = self._mail.deliver(reg.token, fresh)
                if written:
                    reg.written = seqs[written - 1]
                    self._ack_later(reg)
                if written < len(fresh):
                    return  # the socket is closing: the rest stays for the key's next connection
            if len(entries) >= TAKE_MAX:
                reg.refetch = True
        if reg.refetch:
            self._take(reg)

    async def _retry(self, reg: _Reg, delay: float) -> None:
        await self._clock.sleep(delay)
        reg.retry = None
        if self._regs.get(reg.token) is reg and reg.state == WAITING:
            self._take(reg)

    def _ack_later(self, reg: _Reg) -> None:
        """Acknowledge ``reg``'s writes with the next batch, or in ACK_DELAY if none goes first."""
        if reg.token not in self._dirty:
            self._dirty.add(reg.token)
            if self._ack_timer is None:
                self._ack_timer = asyncio.get_running_loop().call_later(ACK_DELAY, self._ack_due)

    def _ack_due(self) -> None:
        self._ack_timer = None
        if self._dirty:
            self._queued.set()

    def _notice(self, data: bytes) -> None:
        kind = data[:1]
        if kind == b"m":
            _, token_s, prev_s, _arn, _key, seq_s, _type, _sender, _exp, env = data.split(b"\t", 9)
            reg = self._regs.get(int(token_s))
            if reg is None:
                return
            seq = int(seq_s)
            if seq <= reg.written:
                return  # already written (a take brought it first)
            if reg.state != ACTIVE:
                reg.refetch = True  # its first take (or the handover) is under way
                return
            if int(prev_s) > reg.written:
                self._take(reg)  # something before it was not written yet: take in order
                return
            if self._mail.deliver(reg.token, (decode(env),)):  # type: ignore[arg-type]
                reg.written = seq
                self._ack_later(reg)
        elif kind == b"x":
            token = int(data.split(b"\t", 2)[1])
            if token in self._regs:
                self._mail.taken_over(token)
        elif kind == b"r":
            reg = self._regs.get(int(data.split(b"\t", 2)[1]))
            if reg is not None and reg.state == WAITING:
                self._take(reg)
        elif kind == b"e":  # this node's own echo (see _echo)
            self._echo_seen = max(self._echo_seen, int(data[2:]))
        elif kind == b"t":  # a node knows that this one follows the channel
            arn = data[2:].decode()
            if arn in self._following:
                self._follow_acks[arn] = self._follow_acks.get(arn, 0) + 1
                for w in self._following[arn]:
                    if not w.done():
                        w.set_result(None)

    def _catch_up(self) -> None:
        """After the inbox may have missed notices (the subscription connection broke): take
        again for every registration, which also finds those that are gone."""
        for reg in list(self._regs.values()):
            if reg.state in (ACTIVE, WAITING):
                self._take(reg)

    # --- the lease -------------------------------------------------------------------------
    async def _renewer(self) -> None:
        interval = self.lease / 3
        while not self._closing:
            await self._clock.sleep(interval)
            self._enqueue(_Op(("L", self.name, str(int(self.lease * 1000))), done=self._renewed))
            self._enqueue(_Op(("X",)))
            self._renew_follows()
            self._echo()

    def _echo(self) -> None:
        """Check that the subscription still brings back what Redis publishes to this node, and
        publish the next echo: a subscription that has not returned an echo ``ECHO_WAIT`` after
        Redis applied it is closed, and the reader connects again (and takes for everything)."""
        sub = self._sub
        if sub is None or not sub.open:
            return
        applied = self._echo_applied
        now = asyncio.get_running_loop().time()
        if applied is not None and applied[0] > self._echo_seen and now - applied[1] > ECHO_WAIT:
            log.warning("the Redis subscription brought no echo back for %.0f s; connecting it again",
                        now - applied[1])
            self._echo_applied = None
            sub.close()
            return
        if applied is not None and applied[0] > self._echo_seen:
            return  # the last one is still on its way
        self._echo_sent += 1
        n = self._echo_sent

        def done(result: Any) -> None:
            if result is not None and self._sub is sub:
                self._echo_applied = (n, asyncio.get_running_loop().time())

        self._enqueue(_Op(("P", self._control, b"e\t%d" % n), done=done))

    def _renewed(self, result: Any) -> None:
        if result == 0 and self._regs:  # this node was taken for dead (cut off): check what it holds
            log.warning("this node's lease had lapsed; checking its registrations")
            self._catch_up()

    # --- internals -------------------------------------------------------------------------
    def _unavailable(self) -> str:
        return self._writer_error or self._reader_error or "the Redis bus is not open"

    def _is_synced(self) -> bool:
        return self._confirmed == self._wanted

    def _enqueue(self, op: _Op) -> None:
        if self._closing:
            if op.done is not None:
                op.done(None)
            return
        if len(self._queue) >= MAX_QUEUED:
            old = self._queue.popleft()
            self.dropped += 1
            if old.done is not None:
                old.done(None)
            if self.dropped % 10_000 == 1:
                log.warning("Redis bus backlog full: dropped %d operations so far", self.dropped)
        self._queue.append(op)
        self._queued.set()

    def _send_subscriptions(self) -> None:
        """Send the subscription changes asked for, now (the subscription connection is only
        written to; Redis's confirmations come back through :meth:`_pushed`). While it is down they
        wait: a new connection subscribes to everything wanted."""
        sub = self._sub
        if sub is None or not sub.open:
            return
        add, self._to_add = self._to_add, set()
        remove, self._to_remove = self._to_remove, set()
        if add:
            sub.write(pack(("SUBSCRIBE", *add)))
        if remove:
            sub.write(pack(("UNSUBSCRIBE", *remove)))
        self._check_synced()

    def _collect(self) -> list[_Op]:
        now = self._clock.now()
        batch: list[_Op] = []
        if self._dirty:
            # First in the batch: what they acknowledge is written already, and an operation that
            # reads a list (a peek, another node's take after this one's) then sees it trimmed.
            if self._ack_timer is not None:
                self._ack_timer.cancel()
                self._ack_timer = None
            for token in self._dirty:
                reg = self._regs.get(token)
                if reg is not None and reg.written > reg.acked:
                    reg.acked = reg.written
                    batch.append(_Op(("A", reg.arn, reg.key, token, str(reg.written), "0")))
            self._dirty.clear()
        queue = self._queue
        limit = MAX_BATCH + len(batch)
        while queue and len(batch) < limit:
            op = queue.popleft()
            if op.expires <= now:
                self.dropped += 1
                if op.fields[0] == "S":
                    _, arn, recipient, msg_type, sender = op.fields[:5]
                    self._mail.outcome(arn, msg_type, EXPIRED, sender, recipient)
                continue
            batch.append(op)
        if not queue:
            self._queued.clear()
        return batch

    async def _writer(self) -> None:
        # `not self._closing`, not just cancellation: redis-py can swallow a CancelledError that
        # arrives while it returns its connection to the pool.
        while not self._closing:
            await self._queued.wait()
            batch = self._collect()
            if not batch:
                continue
            self._batch += 1
            args: list[Any] = [self._prefix, self._node, self._batch, repr(self._clock.now())]
            for op in batch:
                args.extend(op.fields)
            result = await self._send(args)
            if result is None:
                return  # closing
            self.batches += 1
            self.sent += len(batch)
            lost = result == [b"dup"]
            for i, op in enumerate(batch):
                if op.done is not None:
                    try:
                        op.done(None if lost else result[i])
                    except Exception:  # a callback's bug must not stop the writer
                        log.exception("Redis bus callback failed")

    async def _send(self, args: list[Any]) -> Any:
        """EVALSHA the batch until Redis answers (the batch number makes a repeat harmless)."""
        attempt = 0
        packed: bytes | None = None
        while not self._closing:
            conn = self._conn
            try:
                if conn is None or not conn.open:
                    async with asyncio.timeout(CONNECT_TIMEOUT):
                        conn = self._conn = await resp_connect(self._redis_url)
                if packed is None:
                    packed = pack(["EVALSHA", self._sha, 0, *args])
                async with asyncio.timeout(COMMAND_TIMEOUT):  # not wait_for: on 3.11 it can swallow a cancel
                    result = await conn.call(packed)
                if isinstance(result, hiredis.ReplyError):
                    if not str(result).startswith("NOSCRIPT"):
                        raise redis_errors.ResponseError(str(result))
                    # Redis restarted or flushed its scripts: load it again, then send again.
                    async with asyncio.timeout(COMMAND_TIMEOUT):
                        sha = await conn.call(pack(("SCRIPT", "LOAD", LUA)))
                    if isinstance(sha, bytes):
                        self._sha, packed = sha.decode(), None
                    continue
                if self._writer_error is not None:
                    log.info("Redis bus writing again")
                self._writer_error = None
                return result
            except asyncio.CancelledError:
                raise
            except _ERRORS as exc:
                if conn is not None and not isinstance(exc, redis_errors.ResponseError):
                    conn.close()  # a reply may still be on its way: it must not answer the next call
                    if self._conn is conn:
                        self._conn = None
                self._writer_error = f"Redis unreachable: {_describe(exc)}"
                if attempt == 0:
                    log.warning("Redis bus write failed (%s); retrying", _describe(exc))
                await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
                attempt += 1
        return None

    async def _subscribe_all(self) -> None:
        """A new subscription connection: this node's inbox, the announcements and every channel
        wanted, in one SUBSCRIBE; returns once Redis confirmed the inbox (or raises)."""
        self._confirmed.clear()
        self._to_add.clear()
        self._to_remove.clear()
        self._echo_applied, self._echo_seen = None, self._echo_sent  # echoes on the old one do not count
        subscribed = self._subscribed = asyncio.get_running_loop().create_future()
        async with asyncio.timeout(CONNECT_TIMEOUT):
            sub = await resp_connect(self._redis_url, self._pushed)
        self._sub = sub
        sub.write(pack(("SUBSCRIBE", self._control, self._announce, *self._wanted)))
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await asyncio.wait({subscribed, sub.closed}, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            sub.close()
            raise
        if not subscribed.done():
            raise RespError("the Redis subscription connection closed before it was confirmed")

    async def _reader(self) -> None:
        """Keep the subscription up. Its replies are handled as they arrive (:meth:`_pushed`);
        this task only waits for the connection to break, then connects again with back-off and,
        once Redis confirmed the new subscription, takes for every registration: pushes may have
        been missed meanwhile."""
        attempt = 0
        while not self._closing:
            sub = self._sub
            if sub is not None:
                exc = await sub.closed
                if self._closing:
                    return
                self._sub = None
                self._reader_error = _describe(exc) if exc is not None else "the subscription connection closed"
                self._confirmed.clear()
                log.warning("Redis bus subscription connection failed (%s); reconnecting", self._reader_error)
                attempt = 0
            await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
            attempt += 1
            try:
                await self._subscribe_all()
            except asyncio.CancelledError:
                raise
            except (TimeoutError, *_ERRORS) as exc:
                self._reader_error = _describe(exc)
                if self._sub is not None:
                    self._sub.close()
                    self._sub = None
                continue
            self._reader_error = None
            self._epoch += 1  # what others published meanwhile may be lost
            self._catch_up()  # notices may have been missed while it was down

    def _pushed(self, reply: Any) -> None:
        """One reply on the subscription connection: a message, or a (un)subscribe confirmation."""
        try:
            kind, channel = reply[0], reply[1]
            if kind == b"message":
                self._message(channel, reply[2])
            elif kind == b"subscribe":
                if channel == self._control:
                    if self._subscribed is not None and not self._subscribed.done():
                        self._subscribed.set_result(None)
                elif channel != self._announce:
                    self._confirmed.add(channel)
                self._check_synced()
            elif kind == b"unsubscribe":
                self._confirmed.discard(channel)
                self._check_synced()
        except Exception:  # never let a malformed message break the connection's handling
            log.exception("Redis bus reader failed")

    def _message(self, channel: bytes, data: bytes) -> None:
        if channel == self._control:
            if data:
                self._notice(data)
            return
        if channel == self._announce:
            self._announced(data)
            return
        if channel.startswith(self._trace_prefix):
            self._traced(channel, data)
            return
        sender = data[:_NODE_ID_LEN]
        if sender == self._node:
            return  # our own message, already delivered inline by publish()
        # A node's sequence numbers only grow, in order, so a number not above the last is a
        # repeat (a second line of defence: batches are applied once already).
        seq = int(data[_NODE_ID_LEN:_HEADER_LEN], 16)
        if seq <= self._last_seq.get(sender, 0):
            return
        if sender not in self._last_seq and len(self._last_seq) >= MAX_KNOWN_NODES:
            del self._last_seq[next(iter(self._last_seq))]  # forget the oldest (long gone) node
        self._last_seq[sender] = seq
        topic = channel[len(self._topic_prefix):].decode()
        if topic in self._handlers:
            dispatch(self._handlers, topic, decode(data[_HEADER_LEN:]))

    def _check_synced(self) -> None:
        if self._sync_waiters and self._is_synced():
            waiters, self._sync_waiters = self._sync_waiters, []
            for f in waiters:
                if not f.done():
                    f.set_result(None)

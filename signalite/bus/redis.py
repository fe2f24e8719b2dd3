"""Cluster bus: Redis Pub/Sub behind the :class:`~signalite.bus.base.Bus` interface (redis-py asyncio).

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
    * **Subscriptions** are reconciled by the one task that owns the Pub/Sub connection (redis-py
      connections are not shared between tasks): ``subscribe`` records the handler and wakes that
      task through a per-node control channel, so there is no polling. :meth:`RedisBus.synced`
      waits until Redis has confirmed every subscription asked for so far (tests use it).

What it does not do (see the report in the module's commit): messages are not retained in Redis.
A message for a recipient who is not connected anywhere is retained by the routers of the nodes
subscribed to the channel at that moment, as on a single node; a recipient who connects later to
*another* node does not get it. Doing that without duplicates needs retention owned by Redis
(e.g. a per-recipient list popped atomically on delivery), which is a router-level change.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import uuid
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from ..clock import Clock, SystemClock
from ..urls import redact, take_params
from .base import Bus, Envelope, Handler, Message, decode, dispatch, encode

log = logging.getLogger("signalite.bus")

CONNECT_TIMEOUT = 5.0
"""Seconds to connect (start-up fails after this)."""
COMMAND_TIMEOUT = 5.0
"""Seconds a publish batch or a ping may take before it is abandoned."""
PING_TIMEOUT = 3.0
MAX_QUEUED = 100_000
"""Envelopes kept for Redis while it is unreachable (the oldest go first)."""
MAX_BATCH = 512
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
DEFAULT_PREFIX = "signalite:"
_NODE_ID_LEN = 16
_SEQ_LEN = 12  # hex digits of the per-node sequence number after the node id
_HEADER_LEN = _NODE_ID_LEN + _SEQ_LEN
MAX_KNOWN_NODES = 4096
_ERRORS = (redis_errors.RedisError, OSError, asyncio.TimeoutError)


def parse_url(url: str) -> tuple[str, str]:
    """Split a bus URL into (redis-py URL, channel prefix)."""
    redis_url, params = take_params(url, ("prefix",))
    return redis_url, params[0][1] if params else DEFAULT_PREFIX  # the first prefix given wins


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class RedisBus(Bus):
    def __init__(self, url: str, clock: Clock | None = None) -> None:
        self._url = url
        self._clock = clock or SystemClock()
        self._redis_url, prefix = parse_url(url)
        self._prefix = prefix.encode()
        self._topic_prefix = self._prefix + b"t:"
        self.node_id = uuid.uuid4().hex[:_NODE_ID_LEN]
        self._node = self.node_id.encode()
        self._control = self._prefix + b"n:" + self._node
        self._handlers: dict[str, Handler] = {}
        self._wanted: set[bytes] = set()          # channels this node wants (from subscribe())
        self._confirmed: set[bytes] = set()       # channels Redis confirmed on our Pub/Sub connection
        self._queue: collections.deque[tuple[bytes, bytes, float]] = collections.deque()
        self._queued = asyncio.Event()
        self._wake_pending = False
        self._to_add: set[bytes] = set()          # SUBSCRIBE / UNSUBSCRIBE still to send
        self._to_remove: set[bytes] = set()
        self._sync_waiters: list[asyncio.Future[None]] = []
        self._client: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reader_error: str | None = None
        self._closing = False
        self._seq = 0                             # sequence number of this node's last publish
        self._last_seq: dict[bytes, int] = {}     # highest sequence number seen per other node
        self.sent = 0
        """Envelopes Redis acknowledged (including control wake-ups)."""
        self.dropped = 0
        """Envelopes dropped because Redis was unreachable for longer than their TTL or MAX_QUEUED."""

    # --- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        self._closing = False
        client = aioredis.Redis.from_url(self._redis_url, socket_connect_timeout=CONNECT_TIMEOUT,
                                         socket_timeout=COMMAND_TIMEOUT, decode_responses=False)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT + COMMAND_TIMEOUT):
                await client.ping()
            pubsub = client.pubsub()
            await pubsub.subscribe(self._control)
            self._confirmed.clear()
            await self._read_one(pubsub, timeout=CONNECT_TIMEOUT)  # the control channel's confirmation
        except _ERRORS as exc:
            await client.aclose()
            raise ConnectionError(f"cannot connect to the Redis bus {redact(self._url)}: {_describe(exc)}") from exc
        self._client, self._pubsub = client, pubsub
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._reader(), name="signalite-bus-reader"),
                       loop.create_task(self._writer(), name="signalite-bus-writer")]
        if self._wanted:
            self._wake()

    async def close(self) -> None:
        self._closing = True
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=COMMAND_TIMEOUT)
        pubsub, self._pubsub = self._pubsub, None
        client, self._client = self._client, None
        for closing in (pubsub, client):
            if closing is not None:
                try:
                    async with asyncio.timeout(COMMAND_TIMEOUT):
                        await closing.aclose()
                except _ERRORS:
                    pass
        self._handlers.clear()
        self._wanted.clear()
        self._confirmed.clear()
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

    # --- the interface ---------------------------------------------------------------------
    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic] = handler
        channel = self._topic_prefix + topic.encode()
        if channel not in self._wanted:
            self._wanted.add(channel)
            self._to_add.add(channel)
            self._to_remove.discard(channel)
            self._wake()

    def unsubscribe(self, topic: str) -> None:
        if self._handlers.pop(topic, None) is None:
            return
        channel = self._topic_prefix + topic.encode()
        self._wanted.discard(channel)
        self._to_remove.add(channel)
        self._to_add.discard(channel)
        self._wake()

    def publish(self, topic: str, envelope: Message) -> None:
        dispatch(self._handlers, topic, envelope)
        # Only relayed messages expire; channel events must always go out.
        expires = envelope.expires if type(envelope) is Envelope else float("inf")
        self._seq += 1
        header = self._node + b"%012x" % self._seq
        self._enqueue(self._topic_prefix + topic.encode(), header + encode(envelope), expires)

    async def synced(self) -> None:
        """Return once Redis has confirmed every subscribe/unsubscribe asked for so far."""
        if self._is_synced():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._sync_waiters.append(waiter)
        await waiter

    # --- internals -------------------------------------------------------------------------
    def _is_synced(self) -> bool:
        return self._confirmed == self._wanted

    def _enqueue(self, channel: bytes, data: bytes, expires: float) -> None:
        if self._closing:
            return
        if len(self._queue) >= MAX_QUEUED:
            self._queue.popleft()
            self.dropped += 1
            if self.dropped % 10_000 == 1:
                log.warning("Redis bus backlog full: dropped %d envelopes so far", self.dropped)
        self._queue.append((channel, data, expires))
        self._queued.set()

    def _wake(self) -> None:
        """Have the reader reconcile subscriptions: a message on this node's control channel."""
        if not self._wake_pending and self._client is not None:
            self._wake_pending = True
            self._enqueue(self._control, b"", float("inf"))

    async def _writer(self) -> None:
        assert self._client is not None
        client = self._client
        attempt = 0
        # `not self._closing`, not just cancellation: redis-py's pipeline execute() can swallow a
        # CancelledError that arrives while it returns its connection to the pool.
        while not self._closing:
            await self._queued.wait()
            now = self._clock.now()
            batch: list[tuple[bytes, bytes, float]] = []
            while self._queue and len(batch) < MAX_BATCH:
                item = self._queue[0]
                if item[2] <= now:
                    self._queue.popleft()
                    self.dropped += 1
                    continue
                batch.append(item)
                self._queue.popleft()
            if not self._queue:
                self._queued.clear()
            if not batch:
                continue
            try:
                pipe = client.pipeline(transaction=False)
                for channel, data, _exp in batch:
                    pipe.publish(channel, data)
                async with asyncio.timeout(COMMAND_TIMEOUT):  # not wait_for: on 3.11 it can swallow a cancel
                    await pipe.execute()
                self.sent += len(batch)
                attempt = 0
            except asyncio.CancelledError:
                raise
            except _ERRORS as exc:
                delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
                if attempt == 0:
                    log.warning("Redis bus publish failed (%s); retrying", _describe(exc))
                attempt += 1
                self._queue.extendleft(reversed(batch))  # keep the order for the retry
                self._queued.set()
                await asyncio.sleep(delay)

    async def _reader(self) -> None:
        pubsub = self._pubsub
        attempt = 0
        while not self._closing:
            try:
                if self._to_add or self._to_remove:
                    await self._reconcile(pubsub)
                await self._read_one(pubsub, timeout=None)
                self._reader_error = None
                attempt = 0
            except asyncio.CancelledError:
                raise
            except _ERRORS as exc:
                self._reader_error = _describe(exc)
                self._confirmed.clear()  # redis-py resubscribes on reconnect; confirmations will come
                if attempt == 0:
                    log.warning("Redis bus subscription connection failed (%s); reconnecting", self._reader_error)
                await asyncio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
                attempt += 1
            except Exception:  # never let the reader die on a malformed message
                log.exception("Redis bus reader failed")

    async def _reconcile(self, pubsub: Any) -> None:
        self._wake_pending = False
        add, self._to_add = self._to_add, set()
        remove, self._to_remove = self._to_remove, set()
        if add:
            await pubsub.subscribe(*add)
        if remove:
            await pubsub.unsubscribe(*remove)
        self._check_synced()

    async def _read_one(self, pubsub: Any, timeout: float | None) -> None:
        message = await pubsub.get_message(timeout=timeout)
        if message is None:
            return
        kind = message["type"]
        channel = message["channel"]
        if kind in (b"message", "message"):
            if channel == self._control:
                return  # a wake-up; _reconcile runs next
            data = message["data"]
            sender = data[:_NODE_ID_LEN]
            if sender == self._node:
                return  # our own message, already delivered inline by publish()
            # A publish batch whose reply was lost is sent again (at least once); a node's
            # sequence numbers only grow, in order, so a number not above the last is a repeat.
            seq = int(data[_NODE_ID_LEN:_HEADER_LEN], 16)
            if seq <= self._last_seq.get(sender, 0):
                return
            if sender not in self._last_seq and len(self._last_seq) >= MAX_KNOWN_NODES:
                del self._last_seq[next(iter(self._last_seq))]  # forget the oldest (long gone) node
            self._last_seq[sender] = seq
            topic = channel[len(self._topic_prefix):].decode()
            if topic in self._handlers:
                dispatch(self._handlers, topic, decode(data[_HEADER_LEN:]))
        elif kind in (b"subscribe", "subscribe"):
            if channel != self._control:
                self._confirmed.add(channel)
            self._check_synced()
        elif kind in (b"unsubscribe", "unsubscribe"):
            self._confirmed.discard(channel)
            if channel in self._wanted and channel not in pubsub.channels:
                # Subscribed again while the UNSUBSCRIBE was in flight: ask again.
                self._to_add.add(channel)
            self._check_synced()

    def _check_synced(self) -> None:
        if self._sync_waiters and self._is_synced() and not self._wake_pending:
            waiters, self._sync_waiters = self._sync_waiters, []
            for f in waiters:
                if not f.done():
                    f.set_result(None)

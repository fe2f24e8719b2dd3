"""The signaling router: who receives what, retention with TTL, replacement, limits, STATUS_RESPONSE.

Sans-I/O, in the manner of the ``websockets`` protocol core: a :class:`Router` is a plain object
fed with events — :meth:`~Router.connect`, :meth:`~Router.disconnect`, :meth:`~Router.message`,
:meth:`~Router.deliver` (an envelope from the bus), :meth:`~Router.tick` (the clock) — each taking
the current time as a parameter and returning a list of *actions* for the caller to carry out:

``(SEND, conn, text)``          write one text frame to ``conn``'s socket
``(CLOSE, conn, code, reason)`` close ``conn``'s socket
``(PUBLISH, topic, envelope)``  hand an envelope to the bus (topic = channel ARN)
``(SUBSCRIBE, topic)`` / ``(UNSUBSCRIBE, topic)``  the node starts / stops caring about a channel

A client message is not delivered directly: :meth:`message` validates it and returns a PUBLISH;
the bus brings the envelope back (to every interested node) through :meth:`deliver`, which sends
it to the recipient's socket if it is connected here, or retains it until the envelope's expiry.
Channel events (TTL change, deletion, admin GO_AWAY) travel the same way as ``ctl`` envelopes
built by :func:`control_envelope`, so every node applies them.

Nothing here awaits, schedules or reads a clock: ``now`` is epoch seconds (the envelope expiry
must mean the same on every node of a cluster).
"""

from __future__ import annotations

import itertools
from heapq import heapify, heappop, heappush
from typing import Any

from ..bus.base import CTL, MSG, Envelope
from ..config import Quotas
from . import frames
from .frames import (ACTIONS, CLIENT_LIMIT, GO_AWAY_FRAME, INVALID_ARGUMENT, RECONNECT_ICE_SERVER_FRAME,
                     SDP_ACTIONS, Malformed, decoded_size, valid_id)
from .quotas import TokenBucket, bucket

SEND, CLOSE, PUBLISH, SUBSCRIBE, UNSUBSCRIBE = "send", "close", "publish", "subscribe", "unsubscribe"

MASTER = ""
"""The recipient key of a channel's master (viewer keys are their ClientIds, never empty)."""

# Control verbs carried in ``Envelope.recipient`` of ``ctl`` envelopes.
CTL_TTL = "ttl"
CTL_DELETE = "delete"
CTL_GO_AWAY = "go_away"
CTL_RECONNECT_ICE = "reconnect_ice_server"

# WebSocket close codes used by the server.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY = 1008

MAX_RETAINED_PER_RECIPIENT = 512
"""Retained messages kept per recipient; beyond it the oldest is dropped (bounded memory under floods)."""

_NOTHING: list[Any] = []
_new_envelope = tuple.__new__  # returned (never mutated) when an event leads to no action

_EARLY = 1e-3
"""Idle / duration checks are scheduled this much before they can be due (float rounding of the
marks must never make one a sweep late); one that comes up early is simply scheduled again."""


class Refused(Exception):
    """A connect the router turns down; ``code`` is the AWS error code, answered as HTTP ``status``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class Conn:
    """The router's record of one socket (or virtual peer). ``handle`` belongs to the caller."""

    __slots__ = ("channel", "client_id", "key", "handle", "opened", "last_active", "sdp", "ice",
                 "close_at", "close_reason", "alive", "virtual", "timer")

    def __init__(self, channel: "Channel", client_id: str | None, handle: Any, now: float, quotas: Quotas,
                 virtual: bool) -> None:
        self.channel = channel
        self.client_id = client_id
        self.key = MASTER if client_id is None else client_id
        self.handle = handle
        self.opened = now
        self.last_active = now
        self.sdp: TokenBucket | None = bucket(quotas.sdp_messages_per_second, now)
        self.ice: TokenBucket | None = bucket(quotas.ice_messages_per_second, now)
        self.close_at: float | None = None
        """Set once GO_AWAY was sent: the socket is closed at this time."""
        self.close_reason = ""
        self.alive = True
        """False once replaced, closed by the router or disconnected: it no longer routes."""
        self.virtual = virtual
        self.timer: list[Any] | None = None
        """Its entry in the router's idle/duration schedule (before GO_AWAY) or close schedule (after)."""

    @property
    def is_master(self) -> bool:
        return self.client_id is None

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        role = "master" if self.client_id is None else f"viewer {self.client_id}"
        return f"<Conn {role} of {self.channel.arn} alive={self.alive}>"


class Channel:
    __slots__ = ("arn", "ttl", "master", "viewers", "real_viewers", "pending", "checks", "connects")

    def __init__(self, arn: str, ttl: float, connects: TokenBucket | None) -> None:
        self.arn = arn
        self.ttl = ttl
        self.master: Conn | None = None
        self.viewers: dict[str, Conn] = {}
        self.real_viewers = 0
        """Viewers that count against the quota (virtual peers of SendAlexaOfferToMaster do not)."""
        self.pending: dict[str, list[Envelope]] = {}
        """Recipient key → undelivered envelopes, oldest first."""
        self.checks: dict[str, float] | None = None
        """Recipient key (the same keys as ``pending``) → when the sweep next looks at its envelopes:
        the earliest expiry among them (or earlier), with an entry in the router's expiry heap."""
        self.connects = connects

    def conns(self) -> list[Conn]:
        out = list(self.viewers.values())
        if self.master is not None:
            out.insert(0, self.master)
        return out

    def empty(self) -> bool:
        return self.master is None and not self.viewers and not self.pending


def control_envelope(verb: str, argument: str = "") -> Envelope:
    return Envelope(CTL, verb, argument, "", "", 0.0)


class _Schedule:
    """Connections by due time: a heap of ``[time, seq, conn]`` entries (``seq`` breaks ties, so a
    Conn is never compared). :meth:`cancel` clears an entry's conn in O(1), so a closed socket is
    not kept alive by its entry; cleared entries are skipped when they come up, and all dropped at
    once when they outnumber the others (a churn of short connections cannot grow the heap)."""

    __slots__ = ("heap", "cancelled", "_seq")

    def __init__(self, seq: "itertools.count[int]") -> None:
        self.heap: list[list[Any]] = []
        self.cancelled = 0
        self._seq = seq

    def push(self, at: float, conn: Conn) -> list[Any]:
        entry = [at, next(self._seq), conn]
        heappush(self.heap, entry)
        return entry

    def cancel(self, entry: list[Any]) -> None:
        entry[2] = None
        self.cancelled += 1
        if self.cancelled > 64 and self.cancelled * 2 > len(self.heap):
            self.heap = [e for e in self.heap if e[2] is not None]
            heapify(self.heap)
            self.cancelled = 0

    def due(self, now: float) -> list[Conn]:
        """Take out the connections due at ``now`` (their ``timer`` reset), earliest first."""
        heap = self.heap
        out: list[Conn] = []
        while heap and heap[0][0] <= now:
            conn = heappop(heap)[2]
            if conn is None:
                self.cancelled -= 1
            else:
                conn.timer = None
                out.append(conn)
        return out


class Router:
    def __init__(self, quotas: Quotas) -> None:
        self.quotas = quotas
        self.channels: dict[str, Channel] = {}
        self._short_payload = quotas.max_payload_bytes * 4 // 3
        """Base64 payloads up to this length cannot exceed the decoded limit: no need to measure them."""
        self.deleted: set[str] = set()
        """ARNs of channels deleted while this node ran (ARNs are never reused: they carry millis)."""
        # What the sweep (``tick``) looks at, so that it costs what is due, not what is connected:
        seq = itertools.count()
        self._watch = _Schedule(seq)
        """Connections by the earliest time they may need a GO_AWAY for the idle timeout or the maximum
        duration; empty when neither limit is configured."""
        self._closing = _Schedule(seq)
        """Connections sent a GO_AWAY, by the time they are closed."""
        self._expiries: list[tuple[float, int, Channel, str]] = []
        """A heap of ``(time, seq, channel, recipient key)``: when the sweep next looks at a
        recipient's retained envelopes (see ``Channel.checks``; an entry whose time is no longer the
        recipient's check time is stale and skipped)."""
        self._seq = seq

    # --- connections -------------------------------------------------------------------------
    def connect(self, arn: str, client_id: str | None, ttl: float, now: float, handle: Any, *,
                virtual: bool = False) -> tuple[Conn, list[Any]]:
        """A socket passed authentication for ``arn`` (``client_id`` None = master).

        Raises :class:`Refused` when a limit forbids it. Otherwise returns the new connection and
        the actions: GO_AWAY and close for the socket it replaces, then the retained messages for
        it, in order.
        """
        if arn in self.deleted:
            raise Refused("ResourceNotFoundException", "The requested channel is not found or not active.", 404)
        q = self.quotas
        ch = self.channels.get(arn)
        if not virtual:
            if client_id is not None and q.max_viewers_per_channel is not None:
                count = ch.real_viewers if ch is not None else 0
                existing = ch.viewers.get(client_id) if ch is not None else None
                if (existing is None or existing.virtual) and count >= q.max_viewers_per_channel:
                    raise Refused(CLIENT_LIMIT, f"The channel already has the maximum of "
                                                f"{q.max_viewers_per_channel} connected viewers.")
            if ch is None:
                connects = bucket(q.connects_per_second_per_channel, now)
                if connects is not None:
                    connects.take(now)
            elif ch.connects is not None and not ch.connects.take(now):
                raise Refused(CLIENT_LIMIT, f"Too many connections to this channel; the limit is "
                                            f"{q.connects_per_second_per_channel:g} per second.")
            else:
                connects = ch.connects
        actions: list[Any] = []
        if ch is None:
            ch = Channel(arn, ttl, connects if not virtual else bucket(q.connects_per_second_per_channel, now))
            self.channels[arn] = ch
            actions.append((SUBSCRIBE, arn))
        else:
            ch.ttl = ttl
        conn = Conn(ch, client_id, handle, now, q, virtual)
        if q.idle_timeout_seconds or q.max_connection_seconds:
            conn.timer = self._watch.push(self._watch_at(conn), conn)
        if client_id is None:
            old = ch.master
            ch.master = conn
        else:
            old = ch.viewers.get(client_id)
            ch.viewers[client_id] = conn
            if not virtual:
                ch.real_viewers += 1
        if old is not None:
            self._detach(old, replaced=True)
            actions.append((SEND, old, GO_AWAY_FRAME))
            actions.append((CLOSE, old, CLOSE_NORMAL, "replaced by a newer connection"))
        retained = ch.pending.pop(conn.key, None)
        if retained:
            del ch.checks[conn.key]  # type: ignore[union-attr]
            for env in retained:
                if env.expires > now:
                    actions.append((SEND, conn, env.frame))
        return conn, actions

    def disconnect(self, conn: Conn, now: float) -> list[Any]:
        """The socket is gone (closed by either side)."""
        if not conn.alive:
            return _NOTHING
        self._detach(conn)
        ch = conn.channel
        if ch.empty() and self.channels.get(ch.arn) is ch:
            del self.channels[ch.arn]
            return [(UNSUBSCRIBE, ch.arn)]
        return _NOTHING

    def _detach(self, conn: Conn, replaced: bool = False) -> None:
        """Stop routing to ``conn`` (it was replaced, closed or disconnected)."""
        conn.alive = False
        if conn.timer is not None:
            (self._watch if conn.close_at is None else self._closing).cancel(conn.timer)
            conn.timer = None
        ch = conn.channel
        if conn.client_id is None:
            if ch.master is conn:
                ch.master = None
        else:
            current = ch.viewers.get(conn.client_id)
            if current is conn:
                del ch.viewers[conn.client_id]
            if (current is conn or replaced) and not conn.virtual:
                ch.real_viewers -= 1

    # --- messages ------------------------------------------------------------------------------
    def message(self, conn: Conn, text: str, now: float) -> list[Any]:
        """A text frame from ``conn``: a PUBLISH, a STATUS_RESPONSE, a close, or nothing."""
        if not conn.alive:
            return _NOTHING
        conn.last_active = now
        try:
            m = frames.parse(text)
        except Malformed as exc:
            return [(CLOSE, conn, CLOSE_INVALID_DATA, str(exc))]
        cid = m.correlation_id
        action = m.action
        if action not in ACTIONS:
            return _fail(conn, cid, INVALID_ARGUMENT,
                         "action must be one of SDP_OFFER, SDP_ANSWER, ICE_CANDIDATE.")
        if cid is not None and not valid_id(cid):
            return _fail(conn, cid, INVALID_ARGUMENT,
                         "correlationId must be 1 to 256 characters of [a-zA-Z0-9_.-].")
        limiter = conn.sdp if action in SDP_ACTIONS else conn.ice
        if limiter is not None and not limiter.take(now):
            rate = self.quotas.sdp_messages_per_second if action in SDP_ACTIONS else self.quotas.ice_messages_per_second
            return _fail(conn, cid, CLIENT_LIMIT,
                         f"{action} messages are limited to {rate:g} per second per connection.")
        payload = m.payload
        if type(payload) is not str or not payload:
            return _fail(conn, cid, INVALID_ARGUMENT, "messagePayload is required.")
        if len(payload) > self._short_payload and decoded_size(payload) > self.quotas.max_payload_bytes:
            return _fail(conn, cid, INVALID_ARGUMENT,
                         f"messagePayload is larger than {self.quotas.max_payload_bytes} bytes.")
        ch = conn.channel
        if conn.client_id is None:
            recipient = m.recipient
            if not valid_id(recipient):
                return _fail(conn, cid, INVALID_ARGUMENT,
                             "recipientClientId is required from the master: 1 to 256 characters of [a-zA-Z0-9_.-].")
            frame = frames.message(action, payload, None)
        else:
            recipient = MASTER  # a viewer only ever reaches the master; its recipientClientId is ignored
            frame = frames.message(action, payload, conn.client_id)
        # tuple.__new__ builds the same Envelope at half the cost of the NamedTuple constructor.
        return [(PUBLISH, ch.arn, _new_envelope(Envelope, (MSG, recipient, action, conn.key, frame, now + ch.ttl)))]

    def deliver(self, topic: str, env: Envelope, now: float) -> list[Any]:
        """An envelope from the bus: send it to the local recipient, or retain it until it expires."""
        ch = self.channels.get(topic)
        if ch is None:
            return _NOTHING
        if env.kind != MSG:
            return self._control(ch, env, now)
        key = env.recipient
        target = ch.master if key == MASTER else ch.viewers.get(key)
        if target is not None:
            target.last_active = now
            return [(SEND, target, env.frame)]
        if env.expires > now:
            self._retain(ch, key, env)
        return _NOTHING

    def _retain(self, ch: Channel, key: str, env: Envelope) -> None:
        checks = ch.checks
        if checks is None:
            checks = ch.checks = {}
        at = checks.get(key)
        if at is None or env.expires < at:  # one heap entry per recipient: a constant TTL pushes one
            checks[key] = env.expires
            heappush(self._expiries, (env.expires, next(self._seq), ch, key))
        queue = ch.pending.get(key)
        if queue is None:
            ch.pending[key] = [env]
            return
        if env.msg_type in SDP_ACTIONS:
            # A newer undelivered offer (answer) from the same sender replaces the older one.
            for i, old in enumerate(queue):
                if old.msg_type == env.msg_type and old.sender == env.sender:
                    del queue[i]
                    break
        queue.append(env)
        if len(queue) > MAX_RETAINED_PER_RECIPIENT:
            del queue[0]

    # --- channel events ------------------------------------------------------------------------
    def _control(self, ch: Channel, env: Envelope, now: float) -> list[Any]:
        verb = env.recipient
        if verb == CTL_TTL:
            ch.ttl = float(env.msg_type)
            return _NOTHING
        actions: list[Any] = []
        if verb == CTL_DELETE:
            self.deleted.add(ch.arn)
            for c in ch.conns():
                self._detach(c)
                actions.append((SEND, c, GO_AWAY_FRAME))
                actions.append((CLOSE, c, CLOSE_GOING_AWAY, "the signaling channel was deleted"))
            del self.channels[ch.arn]
            actions.append((UNSUBSCRIBE, ch.arn))
        elif verb == CTL_GO_AWAY:
            grace = self.quotas.go_away_grace_seconds
            for c in ch.conns():
                if c.close_at is None:
                    if c.timer is not None:  # the idle/duration watch is moot once a GO_AWAY is out
                        self._watch.cancel(c.timer)
                    c.close_at = now + grace
                    c.close_reason = "GO_AWAY requested by the operator"
                    c.timer = self._closing.push(c.close_at, c)
                    actions.append((SEND, c, GO_AWAY_FRAME))
        elif verb == CTL_RECONNECT_ICE:
            for c in ch.conns():
                actions.append((SEND, c, RECONNECT_ICE_SERVER_FRAME))
        return actions

    # --- the clock -----------------------------------------------------------------------------
    def _watch_at(self, c: Conn) -> float:
        """The earliest time ``c`` may be due for a GO_AWAY (idle timeout or maximum duration)."""
        q = self.quotas
        grace = q.go_away_grace_seconds
        at = float("inf")
        if q.idle_timeout_seconds:
            at = c.last_active + q.idle_timeout_seconds - grace
        if q.max_connection_seconds:
            at = min(at, c.opened + q.max_connection_seconds - grace)
        return at - _EARLY

    def tick(self, now: float) -> list[Any]:
        """Periodic sweep: GO_AWAY before idle timeout / maximum duration, closes after the grace,
        expiry of retained messages, and forgetting channels nobody uses.

        It looks only at what is due: the close schedule, the idle/duration schedule (empty when
        neither limit is configured; a connection active since it was scheduled is scheduled
        again for its new time) and the heap of retained envelopes' expiries.
        """
        q = self.quotas
        idle = q.idle_timeout_seconds or None
        longest = q.max_connection_seconds or None
        grace = q.go_away_grace_seconds
        inf = float("inf")
        actions: list[Any] = []
        emptied: list[Channel] = []
        # Closes after the grace (a GO_AWAY sent by this sweep is closed by a later one, as before).
        if self._closing.heap and self._closing.heap[0][0] <= now:
            for c in self._closing.due(now):
                if c.alive and c.close_at is not None:
                    self._detach(c)
                    actions.append((CLOSE, c, CLOSE_GOING_AWAY, c.close_reason))
                    emptied.append(c.channel)
        # GO_AWAY before the idle timeout / maximum duration.
        watch = self._watch
        if watch.heap and watch.heap[0][0] <= now:
            # A socket is due if it was idle since ``idle_mark`` or opened before ``old_mark``.
            idle_mark = now - idle + grace if idle is not None else -inf
            old_mark = now - longest + grace if longest is not None else -inf
            later: list[Conn] = []
            for c in watch.due(now):
                if not c.alive or c.close_at is not None:
                    continue
                if not (c.last_active <= idle_mark or c.opened <= old_mark):
                    later.append(c)  # active since it was scheduled
                    continue
                deadline = inf
                reason = ""
                if idle is not None:
                    deadline = c.last_active + idle
                    reason = "idle timeout"
                if longest is not None and c.opened + longest < deadline:
                    deadline = c.opened + longest
                    reason = "maximum connection duration reached"
                c.close_at = deadline
                c.close_reason = reason
                c.timer = self._closing.push(deadline, c)
                actions.append((SEND, c, GO_AWAY_FRAME))
            for c in later:  # after the loop: one pass per sweep, even if float rounding says "due" again
                c.timer = watch.push(self._watch_at(c), c)
        # Retained messages past their expiry (each envelope's own: a TTL change applies to later ones).
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            at, _, ch, key = heappop(expiries)
            checks = ch.checks
            if checks is None or checks.get(key) != at or self.channels.get(ch.arn) is not ch:
                continue  # delivered, rescheduled, or the channel is gone
            queue = ch.pending[key]
            kept = [e for e in queue if e.expires > now]
            if not kept:
                del ch.pending[key]
                del checks[key]
                emptied.append(ch)
                continue
            if len(kept) != len(queue):
                ch.pending[key] = kept
            at = checks[key] = min(e.expires for e in kept)  # > now: not seen again in this sweep
            heappush(expiries, (at, next(self._seq), ch, key))
        for ch in emptied:
            if ch.empty() and self.channels.get(ch.arn) is ch:
                del self.channels[ch.arn]
                actions.append((UNSUBSCRIBE, ch.arn))
        return actions

    # --- introspection -------------------------------------------------------------------------
    def connections(self, arn: str) -> list[Conn]:
        ch = self.channels.get(arn)
        return ch.conns() if ch is not None else []

    def retained(self, arn: str, key: str) -> list[Envelope]:
        ch = self.channels.get(arn)
        return list(ch.pending.get(key, ())) if ch is not None else []


def _fail(conn: Conn, correlation_id: Any, error_type: str, description: str) -> list[Any]:
    """STATUS_RESPONSE only on failure, and only when the failing message carried a correlationId."""
    if type(correlation_id) is str and correlation_id:
        return [(SEND, conn, frames.status_response(correlation_id, error_type, description))]
    return _NOTHING

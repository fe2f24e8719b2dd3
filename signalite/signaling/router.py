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
                 "close_at", "close_reason", "alive", "virtual")

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

    @property
    def is_master(self) -> bool:
        return self.client_id is None

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        role = "master" if self.client_id is None else f"viewer {self.client_id}"
        return f"<Conn {role} of {self.channel.arn} alive={self.alive}>"


class Channel:
    __slots__ = ("arn", "ttl", "master", "viewers", "real_viewers", "pending", "connects")

    def __init__(self, arn: str, ttl: float, connects: TokenBucket | None) -> None:
        self.arn = arn
        self.ttl = ttl
        self.master: Conn | None = None
        self.viewers: dict[str, Conn] = {}
        self.real_viewers = 0
        """Viewers that count against the quota (virtual peers of SendAlexaOfferToMaster do not)."""
        self.pending: dict[str, list[Envelope]] = {}
        """Recipient key → undelivered envelopes, oldest first."""
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


class Router:
    def __init__(self, quotas: Quotas) -> None:
        self.quotas = quotas
        self.channels: dict[str, Channel] = {}
        self._short_payload = quotas.max_payload_bytes * 4 // 3
        """Base64 payloads up to this length cannot exceed the decoded limit: no need to measure them."""
        self.deleted: set[str] = set()
        """ARNs of channels deleted while this node ran (ARNs are never reused: they carry millis)."""

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
                    c.close_at = now + grace
                    c.close_reason = "GO_AWAY requested by the operator"
                    actions.append((SEND, c, GO_AWAY_FRAME))
        elif verb == CTL_RECONNECT_ICE:
            for c in ch.conns():
                actions.append((SEND, c, RECONNECT_ICE_SERVER_FRAME))
        return actions

    # --- the clock -----------------------------------------------------------------------------
    def tick(self, now: float) -> list[Any]:
        """Periodic sweep: GO_AWAY before idle timeout / maximum duration, closes after the grace,
        expiry of retained messages, and forgetting channels nobody uses."""
        q = self.quotas
        idle = q.idle_timeout_seconds or None
        longest = q.max_connection_seconds or None
        grace = q.go_away_grace_seconds
        inf = float("inf")
        # A socket needs a look only if it was idle since ``idle_mark`` or opened before ``old_mark``.
        idle_mark = now - idle + grace if idle is not None else -inf
        old_mark = now - longest + grace if longest is not None else -inf
        actions: list[Any] = []
        for ch in list(self.channels.values()):
            due = [c for c in ch.viewers.values()
                   if c.close_at is not None or c.last_active <= idle_mark or c.opened <= old_mark]
            m = ch.master
            if m is not None and (m.close_at is not None or m.last_active <= idle_mark or m.opened <= old_mark):
                due.append(m)
            for c in due:
                if c.close_at is not None:
                    if now >= c.close_at:
                        self._detach(c)
                        actions.append((CLOSE, c, CLOSE_GOING_AWAY, c.close_reason))
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
                actions.append((SEND, c, GO_AWAY_FRAME))
            if ch.pending:
                for key in list(ch.pending):
                    kept = [e for e in ch.pending[key] if e.expires > now]
                    if kept:
                        ch.pending[key] = kept
                    else:
                        del ch.pending[key]
            if ch.empty():
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

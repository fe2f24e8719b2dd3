"""The signaling router: who receives what, retention with TTL, replacement, limits, STATUS_RESPONSE.

Sans-I/O, in the manner of the ``websockets`` protocol core: a :class:`Router` is a plain object
fed with events — :meth:`~Router.connect`, :meth:`~Router.disconnect`, :meth:`~Router.message`,
:meth:`~Router.deliver` (a message from the bus), :meth:`~Router.tick` (the clock) and the
channel events (:meth:`~Router.update_ttl`, :meth:`~Router.delete_channel`,
:meth:`~Router.go_away`) — each taking the current time as a parameter and returning a list of
:data:`Action` values for the caller to carry out:

:class:`Send`         write one text frame to a connection's socket
:class:`Close`        close a connection's socket
:class:`Post`         hand a client message to the bus's mailboxes (presence, else retention)
:class:`Unregister`   the connection no longer takes messages: tell the bus's mailboxes
:class:`Publish`      hand a control event to the bus (topic = channel ARN), for every node
:class:`Subscribe` / :class:`Unsubscribe`  the node starts / stops caring about a channel

A client message is not delivered directly: :meth:`message` validates it and returns a Post; the
bus finds the node holding the recipient (presence) and hands the envelope to that node, whose
hub gives it to :meth:`deliver_mail`; when nobody holds the recipient the bus retains it until
the envelope's expiry and delivers it when a connection registers for that key (see
``bus/base.py`` and docs/cluster.md: presence and retention live in the bus, the same rules in
memory and in Redis, so that a cluster behaves as one node). The limits that need to know who
else is connected (viewers per channel, connects per second) are the bus's too, checked when the
hub registers a connection, before :meth:`connect`. Channel events travel as
:class:`~signalite.bus.base.Control` messages on the channel's topic, so every node applies them.

Storage sessions (JoinStorageSessionAsViewer): a storage peer's seat (a virtual viewer) may take
viewers into its session with :meth:`~Router.join_storage`. From then on, until the viewer's
connection ends or the storage peer leaves (:meth:`~Router.leave_storage`, or its seat closes),
what that viewer sends "to the master" goes to the storage peer's key instead (its ``upstream``),
and the storage peer addresses the viewer as the master does (:meth:`~Router.message_as_master`:
no ``senderClientId``). The join travels as a channel event, so it applies to the viewer's
connection on whichever node holds it; the relay path pays nothing for it (a viewer's recipient
is its ``upstream`` attribute, which is the master's key unless it joined).

Server-initiated ends (idle timeout, maximum duration, deletion, replacement) close the socket
without a frame unless the router was built with ``go_away_frames``: the KVS C SDK (v1.14.0 and
earlier) deadlocks on GO_AWAY and RECONNECT_ICE_SERVER, while every SDK reconnects after a
close. An operator's :meth:`go_away` always sends the frame it names.

Nothing here awaits, schedules or reads a clock: ``now`` is epoch seconds (the envelope expiry
must mean the same on every node of a cluster).
"""

from __future__ import annotations

import enum
import itertools
from bisect import bisect_left
from heapq import heapify, heappop, heappush
from typing import Any, NamedTuple, Sequence, Union

from ..bus.base import CTL, MSG, Control, Envelope, Message
from ..config import Quotas
from . import frames
from .frames import (
    ACTIONS,
    CLIENT_LIMIT,
    GO_AWAY_FRAME,
    INVALID_ARGUMENT,
    RECONNECT_ICE_SERVER_FRAME,
    SDP_ACTIONS,
    Malformed,
    decoded_size,
    valid_id,
)
from .quotas import TokenBucket, bucket
from .stats import REJECTED, RouterStats, message_type


class Send(NamedTuple):
    conn: "Conn"
    text: str


class Close(NamedTuple):
    conn: "Conn"
    code: int
    reason: str


class Publish(NamedTuple):
    topic: str
    message: Message


class Post(NamedTuple):
    """Deliver ``envelope`` to whoever holds its recipient key, else retain it (the bus's mailboxes)."""

    topic: str
    envelope: Envelope


class Unregister(NamedTuple):
    """``conn`` no longer takes messages (closed, replaced, gone): its key is free in the mailboxes."""

    conn: "Conn"


class Subscribe(NamedTuple):
    topic: str


class Unsubscribe(NamedTuple):
    topic: str


Action = Union[Send, Close, Post, Unregister, Publish, Subscribe, Unsubscribe]


class TraceNote(NamedTuple):
    """What happened to one message of a traced channel (``Router.traced``), for ``signalite trace``."""

    time: float
    event: str
    """sent, delivered, rejected, or what the bus reported: buffered, replaced, expired."""
    channel: str
    message_type: str
    sender: str | None
    """The sender's client id; None for the master."""
    recipient: str | None
    """The recipient's client id; None for the master."""
    payload: str | None
    """The base64 messagePayload as the client sent it."""
    detail: str = ""
    """For a rejected message, why."""


class ControlVerb(enum.StrEnum):
    """The channel events carried as :class:`~signalite.bus.base.Control` messages."""

    TTL = "ttl"
    """The channel's MessageTtlSeconds changed (argument: the new TTL)."""
    DELETE = "delete"
    GO_AWAY = "go_away"
    """An operator asked the channel's clients to reconnect (GO_AWAY, close after the grace)."""
    RECONNECT_ICE_SERVER = "reconnect_ice_server"
    DISCONNECT = "disconnect"
    """An operator closes one client (argument: its recipient key, ``""`` for the master)."""
    STORAGE_JOIN = "storage_join"
    """A viewer joined a storage session (argument: ``"<viewer client id> <storage peer's key>"``):
    its messages to the master go to the storage peer."""
    STORAGE_LEAVE = "storage_leave"
    """The storage peer let the viewer go (same argument): its messages go to the master again."""


def control(verb: ControlVerb, argument: str = "") -> Control:
    return Control(CTL, verb.value, argument)


class ConnState(enum.Enum):
    OPEN = "open"
    """Routing: messages reach it and it may send."""
    GOING_AWAY = "going_away"
    """A GO_AWAY went out; it still routes until it is closed at ``close_at``."""
    CLOSED = "closed"
    """Replaced, closed by the router or disconnected: it no longer routes."""


OPEN, GOING_AWAY, CLOSED = ConnState.OPEN, ConnState.GOING_AWAY, ConnState.CLOSED

MASTER = ""
"""The recipient key of a channel's master (viewer keys are their ClientIds, never empty)."""

# WebSocket close codes used by the server.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003
CLOSE_INVALID_DATA = 1007
CLOSE_POLICY = 1008

_NOTHING: list[Action] = []
"""Returned (never mutated) when an event leads to no action."""
_new = tuple.__new__
"""Builds a NamedTuple at half the cost of its constructor: for the two per-message actions."""

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


def refusal(reason: str, quotas: Quotas, master: bool = False) -> Refused:
    """The handshake's answer when the bus's registration refused a connect (``viewers``: the
    channel's viewer limit; ``rate``: its connect rate for the role, ConnectAsMaster and
    ConnectAsViewer each having AWS's own), as AWS words it."""
    if reason == "viewers":
        return Refused(CLIENT_LIMIT, f"The channel already has the maximum of "
                                     f"{quotas.max_viewers_per_channel} connected viewers.")
    role = "master" if master else "viewer"
    return Refused(CLIENT_LIMIT, f"Too many {role} connections to this channel; the limit is "
                                 f"{quotas.connects_per_second_per_channel:g} per second.")


class Conn:
    """The router's record of one socket (or virtual peer). ``handle`` belongs to the caller."""

    __slots__ = ("channel", "client_id", "key", "handle", "opened", "last_active", "sdp", "ice",
                 "close_at", "close_reason", "state", "virtual", "timer", "token", "sent", "received", "upstream")

    def __init__(self, channel: "Channel", client_id: str | None, handle: Any, now: float, quotas: Quotas,
                 virtual: bool, token: int = 0) -> None:
        self.channel = channel
        self.token = token
        """The hub's id of this connection in the bus's mailboxes (unique on this node)."""
        self.sent = 0
        """Messages it sent that the router accepted."""
        self.received = 0
        """Messages delivered to it."""
        self.client_id = client_id
        self.key = MASTER if client_id is None else client_id
        self.handle = handle
        self.opened = now
        self.last_active = now
        self.sdp: TokenBucket | None = bucket(quotas.sdp_messages_per_second, now)
        self.ice: TokenBucket | None = bucket(quotas.ice_messages_per_second, now)
        self.close_at: float | None = None
        """When a connection GOING_AWAY is closed."""
        self.close_reason = ""
        self.state = OPEN
        self.virtual = virtual
        """A socket-less viewer (SendAlexaOfferToMaster, a storage session): not counted against the
        viewer quota, and not subject to the idle timeout or maximum duration (the server's own
        peers end when their work does: an answer, a recording)."""
        self.timer: list[Any] | None = None
        """Its entry in the router's idle/duration schedule (while OPEN) or close schedule (GOING_AWAY)."""
        self.upstream = MASTER
        """Where a viewer's messages go: the master, or the storage peer whose session it joined."""

    @property
    def is_master(self) -> bool:
        return self.client_id is None

    @property
    def alive(self) -> bool:
        """Whether it still routes (OPEN or GOING_AWAY)."""
        return self.state is not CLOSED

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        role = "master" if self.client_id is None else f"viewer {self.client_id}"
        return f"<Conn {role} of {self.channel.arn} {self.state.value}>"


class Channel:
    """This node's connections of one channel (retention and cluster-wide counts are the bus's)."""

    __slots__ = ("arn", "ttl", "master", "viewers")

    def __init__(self, arn: str, ttl: float) -> None:
        self.arn = arn
        self.ttl = ttl
        self.master: Conn | None = None
        self.viewers: dict[str, Conn] = {}

    def conns(self) -> list[Conn]:
        out = list(self.viewers.values())
        if self.master is not None:
            out.insert(0, self.master)
        return out

    def empty(self) -> bool:
        return self.master is None and not self.viewers


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

    def is_due(self, now: float) -> bool:
        return bool(self.heap) and self.heap[0][0] <= now

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

    def __len__(self) -> int:
        return len(self.heap) - self.cancelled


class Router:
    def __init__(self, quotas: Quotas, *, go_away_frames: bool = False, count_deliveries: bool = True) -> None:
        self.quotas = quotas
        self.go_away_frames = go_away_frames
        """Send GO_AWAY before server-initiated closes (and close after the grace), not just close."""
        self.channels: dict[str, Channel] = {}
        self.stats = RouterStats()
        """What it decided, counted (read by the metrics collector)."""
        self.count_deliveries = count_deliveries
        """Count each delivery and its latency (the one count on the relay path; off with --no-metrics)."""
        self.traced: set[str] = set()
        """ARNs of channels someone follows live (``signalite trace``): only their messages are noted."""
        self.notes: list[TraceNote] = []
        """Notes of traced channels since the caller last took them (:meth:`take_notes`)."""
        self._short_payload = quotas.max_payload_bytes * 4 // 3
        """Base64 payloads up to this length cannot exceed the decoded limit: no need to measure them."""
        self._deleted: set[str] = set()
        """ARNs of channels deleted while this node ran (ARNs are never reused: they carry millis)."""
        # What the sweep (``tick``) looks at, so that it costs what is due, not what is connected:
        seq = itertools.count()
        self._watch = _Schedule(seq)
        """Open connections by the earliest time they may be due for the idle timeout or the
        maximum duration; empty when neither limit is configured."""
        self._closing = _Schedule(seq)
        """Connections GOING_AWAY, by the time they are closed."""
        self._seq = seq
        self._storage: dict[Conn, set[str]] = {}
        """Storage peers' seats on this node → the viewers they took into their session."""

    # --- connections -------------------------------------------------------------------------
    def connect(self, arn: str, client_id: str | None, ttl: float, now: float, handle: Any, *,
                virtual: bool = False, token: int = 0) -> tuple[Conn, list[Action]]:
        """A socket passed authentication for ``arn`` (``client_id`` None = master) and the bus
        registered it as ``token`` (its limits said yes).

        Raises :class:`Refused` for a channel deleted while this node ran. Otherwise returns the
        new connection and the actions: the close of the socket it replaces on this node, if any
        (one on another node is told by the bus: :meth:`taken_over`). Retained messages come from
        the bus once the hub starts the registration.
        """
        if arn in self._deleted:
            raise Refused("ResourceNotFoundException", "The requested channel is not found or not active.", 404)
        ch = self.channels.get(arn)
        actions: list[Action] = []
        if ch is None:
            ch = Channel(arn, ttl)
            self.channels[arn] = ch
            actions.append(Subscribe(arn))
        else:
            ch.ttl = ttl
        conn = Conn(ch, client_id, handle, now, self.quotas, virtual, token)
        if self._watching and not virtual:  # a server-side peer ends when its own work does
            conn.timer = self._watch.push(self._watch_at(conn), conn)
        if client_id is None:
            old = ch.master
            ch.master = conn
        else:
            old = ch.viewers.get(client_id)
            ch.viewers[client_id] = conn
        if not virtual:
            self.stats.connections[_role(conn)] += 1
        if old is not None:
            self._detach(old, actions)
            self._end(old, CLOSE_NORMAL, "replaced by a newer connection", actions)
        return conn, actions

    def disconnect(self, conn: Conn, now: float) -> list[Action]:
        """The socket is gone (closed by either side)."""
        if conn.state is CLOSED:
            return _NOTHING
        actions: list[Action] = []
        self._detach(conn, actions)
        ch = conn.channel
        if ch.empty() and self.channels.get(ch.arn) is ch:
            del self.channels[ch.arn]
            actions.append(Unsubscribe(ch.arn))
        return actions

    def taken_over(self, conn: Conn, now: float, reason: str = "replaced by a newer connection") -> list[Action]:
        """A newer connection with ``conn``'s key registered on another node (the bus said so):
        close this one as a local replacement is closed."""
        return self._end_detached(conn, CLOSE_NORMAL, reason)

    def lost(self, conn: Conn, now: float) -> list[Action]:
        """The bus no longer has ``conn``'s registration (this node was taken for dead while it was
        cut off): close it, so that the client reconnects and registers again."""
        return self._end_detached(conn, CLOSE_GOING_AWAY, "the connection must be re-established")

    def _end_detached(self, conn: Conn, code: int, reason: str) -> list[Action]:
        if conn.state is CLOSED:
            return _NOTHING
        actions: list[Action] = []
        self._detach(conn, actions)
        self._end(conn, code, reason, actions)
        ch = conn.channel
        if ch.empty() and self.channels.get(ch.arn) is ch:
            del self.channels[ch.arn]
            actions.append(Unsubscribe(ch.arn))
        return actions

    def _detach(self, conn: Conn, actions: list[Action]) -> None:
        """Stop routing to ``conn`` (it was replaced, closed or disconnected), and free its key in
        the bus's mailboxes (:class:`Unregister`)."""
        if conn.timer is not None:
            (self._watch if conn.state is OPEN else self._closing).cancel(conn.timer)
            conn.timer = None
        if conn.state is CLOSED:
            return
        if not conn.virtual:
            self.stats.connections[_role(conn)] -= 1
        elif conn in self._storage:  # a storage peer's seat: its viewers go back to the master
            for viewer in sorted(self._storage.pop(conn)):
                actions.append(Publish(conn.channel.arn, _storage_event(ControlVerb.STORAGE_LEAVE, viewer, conn)))
        conn.state = CLOSED
        actions.append(Unregister(conn))
        ch = conn.channel
        if conn.client_id is None:
            if ch.master is conn:
                ch.master = None
        elif ch.viewers.get(conn.client_id) is conn:
            del ch.viewers[conn.client_id]

    def _end(self, conn: Conn, code: int, reason: str, actions: list[Action]) -> None:
        """A server-initiated close of a detached connection: GO_AWAY first only if configured."""
        if self.go_away_frames:
            actions.append(Send(conn, GO_AWAY_FRAME))
        actions.append(Close(conn, code, reason))

    # --- the live trace ------------------------------------------------------------------------
    def take_notes(self) -> list[TraceNote]:
        notes, self.notes = self.notes, []
        return notes

    def _note(self, arn: str, event: str, msg_type: str, sender: str, recipient: str, now: float,
              payload: str | None = None, frame: str | None = None, detail: str = "") -> None:
        """Note a message of a traced channel (callers check ``self.traced`` first: the untraced
        relay path pays one truth test and nothing else)."""
        if payload is None and frame is not None:
            payload = frames.to_dict(frame).get("messagePayload")
        self.notes.append(TraceNote(now, event, arn, msg_type, sender or None, recipient or None, payload, detail))

    def _fail(self, conn: Conn, action: Any, correlation_id: Any, now: float, error_type: str,
              description: str) -> list[Action]:
        """A refused message: counted, noted when traced, answered by :func:`_fail`."""
        if self.traced and conn.channel.arn in self.traced:
            self._note(conn.channel.arn, REJECTED, message_type(action), conn.key, "", now,
                       detail=f"{error_type}: {description}")
        return _fail(self.stats, conn, action, correlation_id, error_type, description)

    # --- messages ------------------------------------------------------------------------------
    def message(self, conn: Conn, text: str, now: float) -> list[Action]:
        """A text frame from ``conn``: a Publish, a STATUS_RESPONSE, a close, or nothing."""
        if conn.state is CLOSED:
            return _NOTHING
        conn.last_active = now
        try:
            m = frames.parse(text)
        except Malformed as exc:
            self.stats.messages[message_type(None), REJECTED] += 1
            if self.traced and conn.channel.arn in self.traced:
                self._note(conn.channel.arn, REJECTED, message_type(None), conn.key, "", now, detail=str(exc))
            return [Close(conn, CLOSE_INVALID_DATA, str(exc))]
        cid = m.correlation_id
        action = m.action
        if action not in ACTIONS:
            return self._fail(conn, action, cid, now, INVALID_ARGUMENT,
                         "action must be one of SDP_OFFER, SDP_ANSWER, ICE_CANDIDATE.")
        if cid is not None and not valid_id(cid):
            return self._fail(conn, action, cid, now, INVALID_ARGUMENT,
                         "correlationId must be 1 to 256 characters of [a-zA-Z0-9_.-].")
        limiter = conn.sdp if action in SDP_ACTIONS else conn.ice
        if limiter is not None and not limiter.take(now):
            rate = self.quotas.sdp_messages_per_second if action in SDP_ACTIONS else self.quotas.ice_messages_per_second
            return self._fail(conn, action, cid, now, CLIENT_LIMIT,
                         f"{action} messages are limited to {rate:g} per second per connection.")
        payload = m.payload
        if type(payload) is not str or not payload:
            return self._fail(conn, action, cid, now, INVALID_ARGUMENT, "messagePayload is required.")
        if len(payload) > self._short_payload and decoded_size(payload) > self.quotas.max_payload_bytes:
            return self._fail(conn, action, cid, now, INVALID_ARGUMENT,
                         f"messagePayload is larger than {self.quotas.max_payload_bytes} bytes.")
        ch = conn.channel
        if conn.client_id is None:
            recipient = m.recipient
            if not valid_id(recipient):
                return self._fail(conn, action, cid, now, INVALID_ARGUMENT,
                             "recipientClientId is required from the master: 1 to 256 characters of [a-zA-Z0-9_.-].")
            frame = frames.message(action, payload, None)
        else:
            recipient = conn.upstream  # the master (or its storage session); recipientClientId is ignored
            frame = frames.message(action, payload, conn.client_id)
        envelope = _new(Envelope, (MSG, recipient, action, conn.key, frame, now + ch.ttl))
        conn.sent += 1
        if self.traced and ch.arn in self.traced:
            self._note(ch.arn, "sent", action, conn.key, recipient, now, payload=payload)
        return [_new(Post, (ch.arn, envelope))]

    # --- storage sessions (JoinStorageSessionAsViewer) ----------------------------------------------
    def join_storage(self, storage: Conn, viewer: str) -> list[Action]:
        """The storage peer seated as ``storage`` (a virtual viewer of this node) takes viewer
        ``viewer`` into its session: on every node, that viewer's connection sends to ``storage``
        instead of the master until it ends or :meth:`leave_storage`. A viewer not connected
        anywhere when the event arrives is not redirected (the SDKs connect, then join)."""
        if not storage.virtual or storage.client_id is None or not storage.alive or not valid_id(viewer) \
                or viewer == storage.key:
            return _NOTHING
        self._storage.setdefault(storage, set()).add(viewer)
        return [Publish(storage.channel.arn, _storage_event(ControlVerb.STORAGE_JOIN, viewer, storage))]

    def leave_storage(self, storage: Conn, viewer: str) -> list[Action]:
        """The storage peer lets ``viewer`` go: its connection sends to the master again."""
        joined = self._storage.get(storage)
        if joined is None or viewer not in joined:
            return _NOTHING
        joined.discard(viewer)
        if not joined:
            del self._storage[storage]
        return [Publish(storage.channel.arn, _storage_event(ControlVerb.STORAGE_LEAVE, viewer, storage))]

    def message_as_master(self, storage: Conn, recipient: str, action: str, payload: str,
                          now: float) -> list[Action]:
        """A message from the storage peer seated as ``storage`` to a viewer it took into its
        session, framed as the master's (no ``senderClientId``): the viewer cannot tell the
        storage session from the master, as on AWS. Nothing for a viewer it did not take."""
        joined = self._storage.get(storage)
        if storage.state is CLOSED or joined is None or recipient not in joined or action not in ACTIONS \
                or type(payload) is not str or not payload:
            return _NOTHING
        ch = storage.channel
        envelope = Envelope(MSG, recipient, action, storage.key, frames.message(action, payload, None), now + ch.ttl)
        storage.sent += 1
        if self.traced and ch.arn in self.traced:
            self._note(ch.arn, "sent", action, storage.key, recipient, now, payload=payload)
        return [Post(ch.arn, envelope)]

    def storage_viewers(self, storage: Conn) -> frozenset[str]:
        """The viewers the storage peer seated as ``storage`` took into its session."""
        return frozenset(self._storage.get(storage, ()))

    def deliver(self, topic: str, message: Message, now: float) -> list[Action]:
        """A control event from the bus, applied to this node's connections of the channel
        (client messages come through the mailboxes: :meth:`deliver_mail`)."""
        ch = self.channels.get(topic)
        if ch is None or isinstance(message, Envelope):
            return _NOTHING
        return self._apply(ch, message, now)

    def deliver_mail(self, conn: Conn, envelopes: Sequence[Envelope], now: float) -> list[Action]:
        """The bus hands ``conn`` messages posted to its key (live, or retained for it): send them,
        in order, counted as delivered with their latency since they were sent."""
        if conn.state is CLOSED:
            return _NOTHING
        conn.last_active = now
        conn.received += len(envelopes)
        stats = self.stats
        ttl = conn.channel.ttl
        if self.traced and conn.channel.arn in self.traced:
            for e in envelopes:
                self._note(conn.channel.arn, "delivered", e.msg_type, e.sender, e.recipient, now, frame=e.frame)
        if len(envelopes) == 1:
            message = envelopes[0]
            if self.count_deliveries:  # inlined Histogram.observe: the one count per relayed message
                stats.delivered[message.msg_type] += 1
                latency = now - (message.expires - ttl)
                hist = stats.delivery
                hist.counts[bisect_left(hist.bounds, latency)] += 1
                hist.total += latency
            return [_new(Send, (conn, message.frame))]
        out: list[Action] = []
        for message in envelopes:
            if self.count_deliveries:
                stats.delivered[message.msg_type] += 1
                stats.delivery.observe(now - (message.expires - ttl))
            out.append(_new(Send, (conn, message.frame)))
        return out

    def outcome(self, arn: str, msg_type: str, outcome: str, sender: str, recipient: str, now: float) -> None:
        """The bus reports what became of a posted message that was not delivered at once
        (``buffered``, ``replaced``, ``expired``): counted like every other outcome, and noted
        when the channel is traced."""
        self.stats.messages[message_type(msg_type), outcome] += 1
        if self.traced and arn in self.traced:
            self._note(arn, outcome, msg_type, sender, recipient, now)

    # --- channel events ------------------------------------------------------------------------
    def update_ttl(self, arn: str, ttl: float) -> list[Action]:
        """UpdateSignalingChannel: the new TTL applies to messages sent from now on, on every node."""
        return [Publish(arn, control(ControlVerb.TTL, f"{ttl:g}"))]

    def delete_channel(self, arn: str) -> list[Action]:
        """DeleteSignalingChannel: every node closes the channel's sockets and drops its retained
        messages; this node refuses connects to it from now on, even before the event is back."""
        if len(self._deleted) > 100_000:  # only guards handshakes racing a delete
            self._deleted.clear()
        self._deleted.add(arn)
        return [Publish(arn, control(ControlVerb.DELETE))]

    def go_away(self, arn: str, reconnect_ice_server: bool = False) -> list[Action]:
        """An operator's GO_AWAY (closed after the grace) or RECONNECT_ICE_SERVER, on every node."""
        verb = ControlVerb.RECONNECT_ICE_SERVER if reconnect_ice_server else ControlVerb.GO_AWAY
        return [Publish(arn, control(verb))]

    def disconnect_client(self, arn: str, client_id: str | None) -> list[Action]:
        """An operator closes the master (``client_id`` None) or one viewer, on whatever node."""
        return [Publish(arn, control(ControlVerb.DISCONNECT, MASTER if client_id is None else client_id))]

    def _apply(self, ch: Channel, event: Control, now: float) -> list[Action]:
        try:
            verb = ControlVerb(event.verb)
        except ValueError:  # from a newer node: not ours to apply
            return _NOTHING
        actions: list[Action] = []
        if verb is ControlVerb.TTL:
            ch.ttl = float(event.argument)
        elif verb is ControlVerb.DELETE:
            self._deleted.add(ch.arn)
            for c in ch.conns():
                self._detach(c, actions)
                self._end(c, CLOSE_GOING_AWAY, "the signaling channel was deleted", actions)
            del self.channels[ch.arn]
            actions.append(Unsubscribe(ch.arn))
        elif verb is ControlVerb.GO_AWAY:
            for c in ch.conns():
                if c.state is OPEN:
                    self._going_away(c, now + self.quotas.go_away_grace_seconds,
                                     "GO_AWAY requested by the operator", actions)
        elif verb is ControlVerb.RECONNECT_ICE_SERVER:
            for c in ch.conns():
                actions.append(Send(c, RECONNECT_ICE_SERVER_FRAME))
        elif verb is ControlVerb.DISCONNECT:
            target = ch.master if event.argument == MASTER else ch.viewers.get(event.argument)
            if target is not None:
                self._detach(target, actions)
                self._end(target, CLOSE_GOING_AWAY, "disconnected by the operator", actions)
                if ch.empty():
                    del self.channels[ch.arn]
                    actions.append(Unsubscribe(ch.arn))
        elif verb is ControlVerb.STORAGE_JOIN or verb is ControlVerb.STORAGE_LEAVE:
            viewer, _, storage_key = event.argument.partition(" ")
            target = ch.viewers.get(viewer)
            if target is not None and not target.virtual and storage_key:
                if verb is ControlVerb.STORAGE_JOIN:
                    target.upstream = storage_key
                elif target.upstream == storage_key:
                    target.upstream = MASTER
        return actions

    def _going_away(self, c: Conn, close_at: float, reason: str, actions: list[Action]) -> None:
        """Send ``c`` a GO_AWAY and schedule its close."""
        if c.timer is not None:  # the idle/duration watch is moot once a GO_AWAY is out
            self._watch.cancel(c.timer)
        c.state = GOING_AWAY
        c.close_at = close_at
        c.close_reason = reason
        c.timer = self._closing.push(close_at, c)
        actions.append(Send(c, GO_AWAY_FRAME))

    # --- the clock -----------------------------------------------------------------------------
    @property
    def _watching(self) -> bool:
        q = self.quotas
        return bool(q.idle_timeout_seconds or q.max_connection_seconds)

    @property
    def _lead(self) -> float:
        """How long before the idle/duration deadline the server acts: the GO_AWAY grace when it
        sends frames, else nothing (it closes at the deadline)."""
        return self.quotas.go_away_grace_seconds if self.go_away_frames else 0.0

    def _watch_at(self, c: Conn) -> float:
        """The earliest time ``c`` may be due for the idle timeout or maximum duration."""
        q = self.quotas
        at = float("inf")
        if q.idle_timeout_seconds:
            at = c.last_active + q.idle_timeout_seconds
        if q.max_connection_seconds:
            at = min(at, c.opened + q.max_connection_seconds)
        return at - self._lead - _EARLY

    def tick(self, now: float) -> list[Action]:
        """Periodic sweep: closes after a GO_AWAY's grace, the idle timeout and maximum duration,
        expiry of retained messages, and forgetting channels nobody uses. It looks only at what is
        due (three schedules), not at every connection."""
        actions: list[Action] = []
        emptied: list[Channel] = []
        if self._closing.is_due(now):
            self._close_gone_away(now, actions, emptied)
        if self._watch.is_due(now):
            self._end_idle_and_old(now, actions, emptied)
        for ch in emptied:
            if ch.empty() and self.channels.get(ch.arn) is ch:
                del self.channels[ch.arn]
                actions.append(Unsubscribe(ch.arn))
        return actions

    def _close_gone_away(self, now: float, actions: list[Action], emptied: list[Channel]) -> None:
        """Close the connections whose GO_AWAY grace is over (a GO_AWAY sent by this sweep is
        closed by a later one)."""
        for c in self._closing.due(now):
            if c.state is GOING_AWAY:
                self._detach(c, actions)
                actions.append(Close(c, CLOSE_GOING_AWAY, c.close_reason))
                emptied.append(c.channel)

    def _end_idle_and_old(self, now: float, actions: list[Action], emptied: list[Channel]) -> None:
        """Idle timeout and maximum duration: close at the deadline, or, with GO_AWAY frames, send
        one a grace period before it and close at the deadline."""
        q = self.quotas
        inf = float("inf")
        idle = q.idle_timeout_seconds or None
        longest = q.max_connection_seconds or None
        lead = self._lead
        # A socket is due if it was idle since ``idle_mark`` or opened before ``old_mark``.
        idle_mark = now - idle + lead if idle is not None else -inf
        old_mark = now - longest + lead if longest is not None else -inf
        later: list[Conn] = []
        for c in self._watch.due(now):
            if c.state is not OPEN:
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
            if self.go_away_frames:
                self._going_away(c, deadline, reason, actions)
            else:
                self._detach(c, actions)
                actions.append(Close(c, CLOSE_GOING_AWAY, reason))
                emptied.append(c.channel)
        for c in later:  # after the loop: one pass per sweep, even if float rounding says "due" again
            c.timer = self._watch.push(self._watch_at(c), c)

    # --- introspection -------------------------------------------------------------------------
    def connections(self, arn: str) -> list[Conn]:
        ch = self.channels.get(arn)
        return ch.conns() if ch is not None else []

    def scheduled(self) -> "Scheduled":
        """What the sweep will look at: entries in its two schedules (their memory is bounded
        by what is connected, never by what came and went; retention's expiry is the bus's)."""
        return Scheduled(len(self._watch), len(self._closing))


class Scheduled(NamedTuple):
    watched: int
    """Open connections watched for the idle timeout / maximum duration."""
    closing: int
    """Connections sent a GO_AWAY, waiting for their close."""


def _storage_event(verb: ControlVerb, viewer: str, storage: Conn) -> Control:
    return control(verb, f"{viewer} {storage.key}")


def _role(conn: Conn) -> str:
    return "master" if conn.client_id is None else "viewer"


def _fail(stats: RouterStats, conn: Conn, action: Any, correlation_id: Any, error_type: str,
          description: str) -> list[Action]:
    """A refused message, counted; STATUS_RESPONSE only when it carried a correlationId."""
    stats.messages[message_type(action), REJECTED] += 1
    if type(correlation_id) is str and correlation_id:
        return [Send(conn, frames.status_response(correlation_id, error_type, description))]
    return _NOTHING

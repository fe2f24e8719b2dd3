"""The bus: how signaling deliveries and channel events travel between the sessions of a cluster.

The router (``signaling.router``) decides *what* goes *where*; the bus only carries envelopes from
the node where a message arrived to every node that has an interest in its channel. The embedded
server uses :class:`~signalite.bus.local.LocalBus` (a direct function call); a cluster puts Redis
behind the same interface without the router changing.

Contract for an implementation:

* **Topics** are channel ARNs. A node subscribes to a channel's topic while its router holds any
  state for that channel (a live socket or retained messages) and unsubscribes when it drops it.
  The hub calls :meth:`Bus.subscribe` / :meth:`Bus.unsubscribe` from plain (non-async) code.
* :meth:`Bus.publish` is **non-blocking** and returns ``None``: it hands the envelope over (a local
  bus delivers it inline; a network bus queues it for a writer task and pipelines). It must keep
  the order of envelopes published by one node on one topic, because the router's delivery order
  (an offer before its ICE candidates) relies on it. It must never raise because a peer is slow.
* Handlers are called with ``(topic, envelope)`` on the event loop, must not block, and are called
  for the publisher's own node too (a node learns of its own messages through the bus like anyone
  else). A network bus calls them from its reader task.
* :func:`encode` / :func:`decode` give a compact wire form for a network bus.

**Mailboxes** (presence and shared retention) are the other half of the bus. A node registers each
connection that can receive messages (:meth:`Bus.register`: atomically checks the channel's
viewer limit and connect rate across the cluster, takes the recipient key over from an older
connection wherever it is, and records which node holds it); a message is *posted*
(:meth:`Bus.post`: look up who holds the recipient key, else keep it for the channel's TTL) and
reaches the one node that holds the recipient, which hands it to :class:`MailHandler.deliver`;
:meth:`Bus.start` drains what was kept for a key once its connection can take it;
:meth:`Bus.unregister` ends a registration; :meth:`Bus.holds` asks whether anyone holds a key
(a storage session's claim, ``media.sessions``). Each message is delivered once, in the order one
sender posted it, to whichever node the recipient is connected to; docs/cluster.md has the
argument. The embedded bus keeps this in memory; the Redis bus in Redis, with leases that expire
when a node dies.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from typing import Any, Callable, NamedTuple, Protocol, Sequence, Union

MSG = "msg"
"""The kind of an :class:`Envelope`: a relayed client message."""
CTL = "ctl"
"""The kind of a :class:`Control`: a channel event."""


class Envelope(NamedTuple):
    kind: str
    """Always :data:`MSG` (what tells it from a :class:`Control` on the wire)."""
    recipient: str
    """``""`` = the channel's master, else a viewer ClientId."""
    msg_type: str
    """SDP_OFFER / SDP_ANSWER / ICE_CANDIDATE."""
    sender: str
    """The sender's key (``""`` = master, else the viewer's ClientId), for offer/answer replacement."""
    frame: str
    """The text frame to deliver, already serialized."""
    expires: float
    """Epoch seconds after which an undelivered message is dropped (sent time + channel TTL)."""


class Control(NamedTuple):
    """A channel event every node applies (TTL change, deletion, operator GO_AWAY…); it never
    expires on the bus. The router names the verbs (``signaling.router.ControlVerb``)."""

    kind: str
    """Always :data:`CTL`."""
    verb: str
    argument: str = ""


Message = Union[Envelope, Control]
"""What travels on a topic."""

Handler = Callable[[str, Message], None]

BUFFERED, REPLACED, EXPIRED = "buffered", "replaced", "expired"
"""What :meth:`MailHandler.outcome` reports about posted messages (the router's stats outcomes)."""
REFUSED_VIEWERS, REFUSED_RATE = "viewers", "rate"
"""Why :meth:`Bus.register` refused a connection (:attr:`Registration.refused`)."""

MAX_RETAINED_PER_RECIPIENT = 512
"""Messages kept per recipient key; beyond it the oldest is dropped (counted ``expired``)."""


class Holding(NamedTuple):
    """One registration in the cluster's presence (``signalite admin channels | clients``)."""

    arn: str
    key: str
    """``""`` = the master, else the viewer's ClientId."""
    node: str
    """The holding node's ``--node-id``."""
    virtual: bool


class BusUnavailable(ConnectionError):
    """The bus cannot take a registration now (Redis unreachable): a retriable refusal (503)."""


class Limits(NamedTuple):
    """The per-channel admission limits :meth:`Bus.register` enforces across the cluster."""

    max_viewers: int | None
    """Real (not virtual) viewers per channel; None: no limit."""
    connect_rate: float | None
    """Connects per second per channel (a token bucket with one second's burst); None: no limit."""


class Registration(NamedTuple):
    refused: str | None
    """None when registered, else :data:`REFUSED_VIEWERS` or :data:`REFUSED_RATE`."""
    replaced: bool = False
    """The key was taken over from an older live connection (on this node or another)."""


class MailHandler(Protocol):
    """What a node's bus calls back into (the hub). Tokens are the node's own connection ids."""

    def deliver(self, token: int, envelopes: Sequence[Envelope]) -> int:
        """Write ``envelopes`` to connection ``token``, in order; return how many were written
        (a prefix: a socket that is closing takes none). What was not written stays retained."""
        ...

    def taken_over(self, token: int) -> None:
        """A newer connection with the same key registered on another node: close this one."""
        ...

    def lost(self, token: int) -> None:
        """The registration no longer exists (this node was taken for dead): close the socket so
        that the client reconnects and registers again."""
        ...

    def outcome(self, arn: str, msg_type: str, outcome: str, sender: str, recipient: str) -> None:
        """A message of ``msg_type`` posted on channel ``arn`` by ``sender`` to ``recipient``
        (recipient keys: ``""`` = the master) was buffered, replaced or expired. Metrics count
        it; the live trace shows it when the channel is followed (hence the ARN and keys)."""
        ...

    def trace_wanted(self, arn: str, followed: bool) -> None:
        """Another node started (``followed``) or stopped following channel ``arn`` live: this
        node's events of that channel must (no longer) go to :meth:`Bus.trace`."""
        ...

    def trace_event(self, arn: str, event: dict[str, Any]) -> None:
        """An event of channel ``arn`` that another node noted for this node's followers."""
        ...


class NoMail:
    """The mail handler of a bus nobody has given one yet: every delivery is refused (kept)."""

    def deliver(self, token: int, envelopes: Sequence[Envelope]) -> int:
        return 0

    def taken_over(self, token: int) -> None:
        return None

    def lost(self, token: int) -> None:
        return None

    def outcome(self, arn: str, msg_type: str, outcome: str, sender: str, recipient: str) -> None:
        return None

    def trace_wanted(self, arn: str, followed: bool) -> None:
        return None

    def trace_event(self, arn: str, event: dict[str, Any]) -> None:
        return None


class Bus(ABC):
    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> bool:
        """True when the bus can carry messages (readiness)."""

    @abstractmethod
    def subscribe(self, topic: str, handler: Handler) -> None:
        """Call ``handler`` for every envelope published on ``topic`` (one handler per topic per node)."""

    @abstractmethod
    def unsubscribe(self, topic: str) -> None: ...

    @abstractmethod
    def publish(self, topic: str, envelope: Message) -> None:
        """Hand ``envelope`` to every subscriber of ``topic``, this node included. Non-blocking."""

    # --- mailboxes: presence and shared retention -------------------------------------------
    @abstractmethod
    def set_mail_handler(self, handler: MailHandler) -> None:
        """Where this node's deliveries, takeovers and outcomes go (the hub, before it serves)."""

    @abstractmethod
    async def register(self, arn: str, key: str, token: int, *, virtual: bool, limits: Limits) -> Registration:
        """Atomically: check ``limits`` (virtual connections are not counted and not rate-limited),
        record that this node's connection ``token`` holds recipient ``key`` of channel ``arn``,
        and take the key over from an older connection (whose node is told through
        :meth:`MailHandler.taken_over`, unless it is this node). Nothing is delivered to ``token``
        before :meth:`start`. Raises :class:`BusUnavailable` when it cannot be done now."""

    @abstractmethod
    def start(self, arn: str, key: str, token: int) -> None:
        """The connection can take messages: deliver what is retained for ``key`` (unexpired, in
        order), then whatever is posted to it, until :meth:`unregister`."""

    @abstractmethod
    def unregister(self, arn: str, key: str, token: int) -> None:
        """The connection is gone or closing: stop delivering to it; messages for ``key`` are
        retained again (for this or a later connection, on any node). Harmless when ``token`` no
        longer holds the key."""

    @abstractmethod
    def post(self, arn: str, envelope: Envelope) -> None:
        """Deliver ``envelope`` to the connection holding ``envelope.recipient``, wherever it is;
        if none does, retain it until ``envelope.expires`` (a newer SDP_OFFER / SDP_ANSWER from
        the same sender replaces an older retained one). Non-blocking; order of one node's posts
        to one recipient is kept."""

    @abstractmethod
    async def holds(self, arn: str, key: str) -> bool:
        """Whether a live connection (on any node) holds ``key`` of channel ``arn`` now. Asked
        after this node's earlier registrations and posts (the same order as theirs), so a
        registration of this node that returned is seen. Raises :class:`BusUnavailable`."""

    @abstractmethod
    def drop_channel(self, arn: str) -> None:
        """The channel was deleted: forget its presence and retained messages."""

    def tick(self, now: float) -> None:
        """The hub's periodic sweep (an in-memory bus expires retained messages here)."""
        return None

    def feed_epoch(self, topic: str) -> int | None:
        """None while this node may be missing what others publish on ``topic`` (its
        subscription is down or not confirmed yet);
        else a number that changes whenever it may have missed some (per-node caches that
        other nodes invalidate over the bus start over then). Always 0 in one process."""
        return 0

    def retained_count(self) -> int | None:
        """Messages this bus retains right now, when it knows cheaply (metrics); else None."""
        return None

    @abstractmethod
    async def retained(self, arn: str, key: str) -> list[Envelope]:
        """What is retained for ``key`` now, oldest first, unexpired (introspection, tests)."""

    # --- the live trace across nodes (signalite trace) ---------------------------------------
    async def follow(self, arn: str) -> None:
        """This node follows channel ``arn`` live: every other node sends its events of that
        channel here (:meth:`MailHandler.trace_event`) until :meth:`unfollow`. Returns once the
        nodes alive now know (bounded: a node that does not answer in time learns it at the next
        renewal). Channels nobody follows cost nothing. One process: nothing to do."""
        return None

    def unfollow(self, arn: str) -> None:
        """This node no longer follows ``arn`` (its last follower here left)."""
        return None

    def trace(self, arn: str, event: dict[str, Any]) -> None:
        """Hand this node's ``event`` of ``arn`` to the nodes that follow it (the hub calls it
        only for channels :meth:`MailHandler.trace_wanted` named). Non-blocking."""
        return None

    async def holdings(self, arn: str | None = None) -> list[Holding] | None:
        """Who holds which recipient key, cluster-wide (of channel ``arn``, else of every
        channel), for the admin listing; None when this node's own sockets are all there is
        (one process)."""
        return None


def encode(envelope: Message) -> bytes:
    return json.dumps(list(envelope), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode(data: bytes | str) -> Message:
    fields = json.loads(data)
    return Control(*fields) if fields[0] == CTL else Envelope(*fields)


def dispatch(handlers: dict[str, Handler], topic: str, envelope: Message) -> None:
    """Hand ``envelope`` to this node's subscriber of ``topic``, if any. A subscriber's bug is
    logged here so that it never reaches the publisher (a client's socket)."""
    handler = handlers.get(topic)
    if handler is not None:
        try:
            handler(topic, envelope)
        except Exception:
            logging.getLogger("signalite.bus").exception("bus handler failed on %s", topic)

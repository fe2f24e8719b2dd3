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

Retention of undelivered messages (MessageTtlSeconds) is done by each subscribed node's router,
for recipients not connected *to that node*. That is exact with one node. A cluster needs two more
things, which belong to the cluster bus and not to the router: presence (which node holds which
recipient key of a channel, so that only the node that will deliver, or one designated node when
the recipient is offline, retains a message), and a shared retention log per topic (e.g. a capped
Redis stream read back on subscribe) for a recipient that connects to another node later. The
envelope carries its own absolute expiry (``expires``, epoch seconds) for that.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from typing import Callable, NamedTuple, Union

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

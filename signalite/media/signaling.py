"""The storage peer's seat in the channel: the one place that knows the signaling hub's API.

A storage peer joins its channel as a viewer that has no socket, through the hub's *virtual
viewer* (the same one SendAlexaOfferToMaster uses): its messages route exactly like a WebSocket
viewer's (to the master, ``senderClientId`` = its client id, retained for the channel's TTL while
the master is offline), it does not count against the viewer quota, and what the master sends to
its client id reaches it. For JoinStorageSessionAsViewer the seat also takes viewers into its
session (:meth:`SignalingLink.join`): the router then sends what such a viewer addresses to the
master here instead (``Inbound.sender`` is its client id), and the peer writes to it as the master
would (:meth:`SignalingLink.send_to`). Everything else in ``signalite.media`` talks to a :class:`SignalingLink`;
re-wiring to another hub API means changing :func:`open_link` and :class:`_HubLink` only.

One session per channel, cluster-wide: the seat also *claims* the channel's reserved storage key
(:meth:`SignalingLink.claim`, the bus's presence registry), whose takeover rule makes the newest
claim win; a seat whose claim another node took over is closed (``ended_by`` is
:data:`~signalite.context.CLAIM_TAKEN_OVER`). Requests for the session from other nodes
(:func:`post_request`: a viewer to take in) are posted to the claim and reach the seat as
frames of a messageType no client can send; the link hands them to ``on_request`` instead of
returning them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

from ..bus.base import BusUnavailable

if TYPE_CHECKING:  # pragma: no cover
    from ..clock import Clock
    from ..context import SignalingPlane, VirtualViewer
    from ..store import Resource

log = logging.getLogger("signalite.storage")

_POLL = 30.0
"""How long one wait on the hub lasts; a wait that returns nothing sooner means the seat is gone."""
REQUEST_PREFIX = "SIGNALITE_"
"""The messageType prefix of requests posted to a claim (clients can only send SDP_OFFER,
SDP_ANSWER and ICE_CANDIDATE, and cannot address a claim's key)."""

RequestHandler = Callable[[str, str, str], None]
"""``on_request(kind, sender, payload)``: a request posted to the seat's claim."""


@dataclass(frozen=True)
class Inbound:
    """A message for the peer: ``kind`` is its messageType (``SDP_ANSWER``, ``ICE_CANDIDATE``,
    ``STATUS_RESPONSE``…), ``payload`` its messagePayload ("" if none), ``status`` its
    statusResponse (STATUS_RESPONSE only), ``sender`` the viewer that sent it (its
    senderClientId), None for the master."""

    kind: str
    payload: str = ""
    status: dict[str, Any] | None = None
    sender: str | None = None


class SignalingLink(Protocol):
    client_id: str
    ended_by: str
    """Why :meth:`receive` returned None ("" while it has not)."""

    async def send(self, action: str, payload: str) -> None:
        """Send ``SDP_OFFER`` or ``ICE_CANDIDATE`` (base64 payload) to the channel's master."""

    async def send_to(self, viewer: str, action: str, payload: str) -> None:
        """Send ``SDP_OFFER`` or ``ICE_CANDIDATE`` to a viewer taken in with :meth:`join`, as the
        master would (no senderClientId)."""

    def join(self, viewer: str) -> None:
        """Take ``viewer`` into the session: until it disconnects or :meth:`leave`, what it sends to
        the master comes here."""

    def leave(self, viewer: str) -> None: ...

    on_request: RequestHandler | None
    """Called with the requests posted to the seat's claim (see :meth:`claim`)."""

    async def claim(self, key: str) -> bool:
        """Claim the channel's reserved ``key`` for this seat, cluster-wide (a newer claim of it,
        on any node, closes the seat). False when the bus cannot take it now (Redis away)."""

    async def receive(self) -> Inbound | None:
        """The next message for this peer; None once the seat is gone (GO_AWAY, closed by the
        server: channel deleted, replaced, idle, shutdown). After None, always None."""

    async def close(self) -> None: ...


class _HubLink:
    """:class:`SignalingLink` over the hub's virtual viewer (``context.VirtualViewer``)."""

    def __init__(self, viewer: "VirtualViewer", client_id: str, clock: "Clock") -> None:
        self._viewer = viewer
        self._clock = clock
        self.client_id = client_id
        self.ended_by = ""
        self.on_request: RequestHandler | None = None
        self._gone = False

    async def send(self, action: str, payload: str) -> None:
        if self._gone:
            return
        try:
            await self._viewer.send(action, payload)
        except RuntimeError:  # the virtual viewer was closed under us
            self._end(self._viewer.close_reason or "closed by the server")

    async def send_to(self, viewer: str, action: str, payload: str) -> None:
        if self._gone:
            return
        try:
            await self._viewer.send_to(viewer, action, payload)
        except RuntimeError:
            self._end("closed by the server")

    def join(self, viewer: str) -> None:
        if self._gone:
            return
        try:
            self._viewer.join(viewer)
        except RuntimeError:
            self._end("closed by the server")

    def leave(self, viewer: str) -> None:
        if not self._gone:
            self._viewer.leave(viewer)

    async def claim(self, key: str) -> bool:
        if self._gone:
            return True
        try:
            await self._viewer.claim(key)
        except BusUnavailable as exc:
            log.warning("the storage peer %s could not claim its channel: %s", self.client_id, exc)
            return False
        except RuntimeError:  # the virtual viewer was closed under us
            self._end(self._viewer.close_reason or "closed by the server")
        return True

    async def receive(self) -> Inbound | None:
        clock = self._clock
        while not self._gone:
            began = clock.now()
            frame = await self._viewer.receive(_POLL)
            if frame is None:
                # The hub's receive returns None on its timeout (on the hub's clock, which is this
                # one) and, at once, when the viewer is closed: an early None is the close.
                if clock.now() - began < _POLL * 0.9:
                    self._end(self._viewer.close_reason or "closed by the server")
                continue
            kind = str(frame.get("messageType") or "")
            if kind.startswith(REQUEST_PREFIX):
                sender = frame.get("senderClientId")
                if self.on_request is not None and isinstance(sender, str) and sender:
                    self.on_request(kind, sender, str(frame.get("messagePayload") or ""))
                continue
            if kind == "GO_AWAY":
                self._end("GO_AWAY")
                break
            if kind == "RECONNECT_ICE_SERVER":  # the peer connection stands; nothing to renew here
                continue
            sender = frame.get("senderClientId")
            return Inbound(kind, str(frame.get("messagePayload") or ""), frame.get("statusResponse"),
                           sender if isinstance(sender, str) and sender else None)
        return None

    def _end(self, why: str) -> None:
        if not self._gone:
            self._gone = True
            self.ended_by = why

    async def close(self) -> None:
        self._end("closed by the storage session")
        try:
            await self._viewer.close()
        except Exception:  # closing is best effort: the hub may be shutting down
            log.debug("closing the storage peer's virtual viewer failed", exc_info=True)


def accepting(hub: "SignalingPlane") -> bool:
    """Whether this node's signaling plane takes new participants (not while it drains)."""
    return not hub.draining


async def open_link(hub: "SignalingPlane", channel: "Resource", client_id: str, clock: "Clock") -> SignalingLink:
    """Seat ``client_id`` in ``channel`` as a viewer. Raises LookupError if the channel is gone."""
    viewer = await hub.open_virtual_viewer(channel, client_id)
    return _HubLink(viewer, client_id, clock)


async def post_request(hub: "SignalingPlane", channel: "Resource", key: str, kind: str, sender: str,
                       payload: str = "") -> bool:
    """Post request ``kind`` (``REQUEST_PREFIX`` …) from ``sender`` to the seat holding the claim
    ``key`` of ``channel``, on whatever node; False when no seat holds it (or the bus is away,
    when no other node can be reached anyway)."""
    try:
        return await hub.post_to_claim(channel, key, kind, sender, payload)
    except BusUnavailable as exc:
        log.warning("cannot ask the cluster for the storage session of %s: %s", channel.arn, exc)
        return False

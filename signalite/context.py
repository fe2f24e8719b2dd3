"""What an operation may use, and the typed keys under which the application keeps it.

Every resource of a server lives in its ``web.Application`` under one :class:`aiohttp.web.AppKey`
(set by its own cleanup context in ``app.build_app``), so nothing is global and a test can build
as many servers as it likes. Operations never see HTTP: the REST edge hands them an
:class:`OpContext` with the caller's principal and the typed resources they need.

The signaling plane reaches the rest through two small protocols defined here, not through its
classes: the control plane tells it about channel changes (:class:`ChannelEvents`), the data
plane opens socket-less viewers on it (:class:`VirtualPeers`). So ``controlplane`` and
``dataplane`` never import ``signaling``, and ``signaling`` never imports either of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol, TypeVar

from aiohttp import web

from .aws.keys import KeyRing
from .aws.principal import Principal
from .bus.base import Bus
from .clock import Clock
from .config import Settings
from .store import Resource, Store

T = TypeVar("T")

class ChannelEvents(Protocol):
    """What the control plane tells live signaling sessions (on every node, through the bus)."""

    def channel_updated(self, channel: Resource) -> None:
        """The channel's configuration changed: its new MessageTtlSeconds applies from now on."""
        ...

    def channel_deleted(self, arn: str) -> None:
        """The channel is gone: close its sockets, drop its retained messages, refuse connects."""
        ...


CLAIM_TAKEN_OVER = "claimed by a newer connection on another node"
"""The ``close_reason`` of a virtual viewer whose claim (:meth:`VirtualViewer.claim`) a newer
claim on another node took over."""


class VirtualViewer(Protocol):
    """A viewer without a socket (SendAlexaOfferToMaster, storage sessions): routed exactly like a
    WebSocket viewer with the same client id."""

    client_id: str
    close_reason: str
    """Why the signaling plane closed it ("" while it has not)."""

    async def send(self, action: str, payload: str, correlation_id: str | None = None) -> None: ...

    async def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next frame delivered to this viewer (lowercase keys), or None on timeout or close."""
        ...

    async def close(self) -> None: ...

    # A storage session's seat (JoinStorageSessionAsViewer): see ``signaling.router.Router.join_storage``.
    async def send_to(self, recipient: str, action: str, payload: str) -> None:
        """To a viewer this seat took into its session, framed as the master's message."""
        ...

    def join(self, viewer: str) -> None:
        """Take ``viewer`` into this seat's session: its messages to the master come to this seat."""
        ...

    def leave(self, viewer: str) -> None: ...

    async def claim(self, key: str) -> None:
        """Hold the reserved ``key`` of the channel too, cluster-wide; a newer claim of it on
        another node closes this viewer. Raises ``BusUnavailable``."""
        ...


class VirtualPeers(Protocol):
    async def open_virtual_viewer(self, channel: Resource, client_id: str) -> VirtualViewer:
        """Connect a socket-less viewer to ``channel``; ``LookupError`` if it was deleted."""
        ...

    async def post_to_claim(self, channel: Resource, key: str, message_type: str, sender: str,
                            payload: str = "") -> bool:
        """Send a ``message_type`` frame from ``sender`` (with ``payload``) to the virtual viewer
        that claimed ``key`` of ``channel`` (:meth:`VirtualViewer.claim`), on whatever node; False
        when none holds it."""
        ...


class SignalingPlane(ChannelEvents, VirtualPeers, Protocol):
    """The node's signaling hub, as the other planes see it."""

    @property
    def draining(self) -> bool:
        """The node is shutting down: it takes no new connections."""
        ...

    async def drain(self, timeout: float) -> None:
        """Close this node's sockets over at most ``timeout`` seconds, refusing new ones."""
        ...

    async def live_channels(self) -> list[dict[str, Any]]:
        """The channels with sockets, per node, cluster-wide (admin API shapes)."""
        ...

    async def clients(self, arn: str) -> list[dict[str, Any]]:
        """The connections of ``arn`` on every node (admin API shapes)."""
        ...

    async def follow(self, arn: str, sink: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``sink`` with each live event of channel ``arn`` on every node until the returned
        function is called."""
        ...

    def disconnect_client(self, arn: str, client_id: str | None) -> bool:
        """The operator closes the master (None) or one viewer on every node; whether it was here."""
        ...

    def go_away(self, arn: str, reconnect_ice_server: bool = False) -> int:
        """The operator's GO_AWAY or RECONNECT_ICE_SERVER to a channel's clients on every node;
        how many sockets of this node it reached."""
        ...


class IceServers(Protocol):
    def ice_servers(self, ident: str) -> list[dict[str, Any]]:
        """The IceServerList of GetIceServerConfig, credentials minted for ``ident``."""
        ...


SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
KEYS = web.AppKey("keys", KeyRing)
STORE: web.AppKey[Store] = web.AppKey("store")
BUS: web.AppKey[Bus] = web.AppKey("bus")
HUB: web.AppKey[SignalingPlane] = web.AppKey("hub")
ICE: web.AppKey[IceServers] = web.AppKey("ice")


@dataclass(slots=True)
class OpContext:
    """One request as an operation sees it: who asks, and the server's resources."""

    principal: Principal
    request_id: str
    settings: Settings
    store: Store
    clock: Clock
    signaling: SignalingPlane
    app: web.Application
    """Only for :meth:`resource`: resources an operation module sets up itself."""

    @property
    def account(self) -> str:
        return self.principal.account_id

    @property
    def region(self) -> str:
        return self.principal.region

    @property
    def ice(self) -> IceServers:
        return self.app[ICE]

    def resource(self, key: web.AppKey[T]) -> T:
        return self.app[key]


Handler = Callable[[OpContext, dict[str, Any]], Awaitable["dict[str, Any] | None"]]

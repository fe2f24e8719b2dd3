"""The hub: this node's live sockets, wired to the router and the bus. Only I/O.

It carries out the WSS handshake (authentication, then :func:`~.handshake.admit` and the
router's limits), runs one receive loop per socket, carries out the router's actions (send,
close, publish, subscribe), runs the one periodic sweep (idle timeout, maximum duration, GO_AWAY
grace, TTL expiry) on the application's clock, and implements the signaling side of
:class:`~signalite.context.SignalingPlane` (channel events, socket-less viewers, operator
GO_AWAY). Every decision is the router's or the handshake's.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
from typing import Any, Callable, Sequence

from aiohttp import WSMsgType, web

from .. import channel as channels
from ..aws.errors import ServiceError
from ..aws.sigv4 import AuthError
from ..aws.wire import ServiceWire
from ..bus.base import MSG, Bus, BusUnavailable, Envelope, Limits, Message
from ..clock import Clock, wait_for
from ..config import Settings
from ..context import CLAIM_TAKEN_OVER
from ..edge import answers
from ..edge.auth import Authenticator
from ..identity.authorize import Authorizer
from ..metrics import EdgeStats
from ..store import Resource, Store
from . import frames, handshake
from .router import (
    CLOSE_GOING_AWAY,
    CLOSE_UNSUPPORTED,
    MASTER,
    Action,
    Close,
    Conn,
    Post,
    Publish,
    Refused,
    Router,
    Send,
    Subscribe,
    Unregister,
    Unsubscribe,
    refusal,
)
from .session import Session

log = logging.getLogger("signalite.signaling")
_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY


class _NotStarted:
    """Stands for the store and bus before :meth:`Hub.start`: routes exist before the server
    starts, but aiohttp serves no request until every cleanup context has started."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("the signaling hub has not started")


class VirtualViewer:
    """A viewer without a socket, for SendAlexaOfferToMaster (``Hub.open_virtual_viewer``).

    ``await send(action, payload, correlation_id=None)`` routes exactly like a connected viewer's
    message (to the master, with this client id as ``senderClientId``; retained for the channel's
    MessageTtlSeconds while the master is offline; STATUS_RESPONSE on failure when a correlation
    id is given). ``await receive(timeout)`` returns the next frame delivered to this client id as
    a dict with lowercase keys (``messageType``, ``messagePayload``, ``statusResponse``…), or None
    on timeout or once the peer is closed. ``await close()`` disconnects it.

    A storage peer's seat also takes viewers into its session (``join`` / ``leave``, see
    ``Router.join_storage``) and writes to them as the master would (``send_to``).
    """

    def __init__(self, hub: "Hub", client_id: str) -> None:
        self._hub = hub
        self.client_id = client_id
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._conn: Conn | None = None
        self._closed = False
        self.close_reason = ""
        """Why the hub closed it ("" until it does, or when it was closed by its owner)."""
        self.handle = _VirtualHandle(self)

    async def send(self, action: str, payload: str, correlation_id: str | None = None) -> None:
        if self._conn is None or not self._conn.alive:
            raise RuntimeError("the virtual viewer is closed")
        msg: dict[str, Any] = {"action": action, "messagePayload": payload}
        if correlation_id is not None:
            msg["correlationId"] = correlation_id
        hub = self._hub
        hub.run(hub.router.message(self._conn, json.dumps(msg, separators=(",", ":")), hub.clock.now()))

    def _live(self) -> Conn:
        if self._conn is None or not self._conn.alive:
            raise RuntimeError("the virtual viewer is closed")
        return self._conn

    async def send_to(self, recipient: str, action: str, payload: str) -> None:
        """To a viewer taken into this seat's storage session, framed as the master's."""
        hub = self._hub
        hub.run(hub.router.message_as_master(self._live(), recipient, action, payload, hub.clock.now()))

    def join(self, viewer: str) -> None:
        """Take ``viewer`` into this seat's storage session (its messages to the master come here)."""
        self._hub.run(self._hub.router.join_storage(self._live(), viewer))

    def leave(self, viewer: str) -> None:
        if self._conn is not None:
            self._hub.run(self._hub.router.leave_storage(self._conn, viewer))

    async def claim(self, key: str) -> None:
        """Hold ``key`` of the channel too (a reserved key no client id can be: ``Hub.claim``)."""
        await self._hub.claim(self._live(), key)

    async def receive(self, timeout: float) -> dict[str, Any] | None:
        if self._closed and self._queue.empty():
            return None
        try:
            text = await wait_for(self._hub.clock, self._queue.get(), timeout)
        except TimeoutError:
            return None
        if text is None:
            return None
        return frames.to_dict(text)

    async def close(self) -> None:
        self._closed = True
        if self._conn is not None:
            self._hub.run(self._hub.router.disconnect(self._conn, self._hub.clock.now()))
        self._queue.put_nowait(None)


class _VirtualHandle:
    __slots__ = ("peer",)

    def __init__(self, peer: VirtualViewer) -> None:
        self.peer = peer

    def send(self, text: str) -> bool:
        if self.peer._closed:
            return False
        self.peer._queue.put_nowait(text)
        return True

    def close(self, code: int, reason: str) -> None:
        if not self.peer._closed:
            self.peer.close_reason = reason
        self.peer._closed = True
        self.peer._queue.put_nowait(None)


class Hub:
    def __init__(self, settings: Settings, auth: Authenticator, clock: Clock, errors: ServiceWire,
                 stats: EdgeStats | None = None, authorizer: Authorizer | None = None) -> None:
        self.authorizer = authorizer
        """The policy step after authentication (None: every authenticated caller may connect)."""
        self.stats = stats or EdgeStats()
        """Handshake outcomes (the router counts connections and messages)."""
        self.node_id = settings.node_id
        self._followers: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        """Channel → this node's trace sinks (``signalite trace`` connected here)."""
        self._remote_traced: set[str] = set()
        """Channels followed on another node of the cluster: this node's events go to the bus too."""
        self.log_payloads = settings.log_payloads
        self.store: Store = _NotStarted()  # set by start()
        self.bus: Bus = _NotStarted()  # type: ignore[assignment]
        self.auth = auth
        self.clock = clock
        self.errors = errors
        """The service model whose error shapes the handshake's refusals are rendered with."""
        self.quotas = settings.quotas
        self.go_away_frames = settings.go_away_frames
        self.router = Router(self.quotas, go_away_frames=settings.go_away_frames, count_deliveries=settings.metrics)
        # A frame must hold the largest payload allowed (base64) plus the other fields.
        self.max_frame = max(self.quotas.max_frame_bytes, self.quotas.max_payload_bytes * 4 // 3 + 4096)
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False
        self.limits = Limits(self.quotas.max_viewers_per_channel, self.quotas.connects_per_second_per_channel)
        """What the bus's registration enforces across the cluster."""
        self._tokens = itertools.count(1)
        self._conns: dict[int, Conn] = {}
        """Registration token → connection, for the bus's deliveries (see MailHandler)."""
        self._early: set[int] = set()
        """Tokens registered but not yet connected in the router, and those of them taken over meanwhile."""
        self._taken_early: set[int] = set()
        self._claims: dict[int, tuple[Conn, str]] = {}
        """Claim token → the virtual connection holding the claim, and the claimed key (:meth:`claim`)."""
        self._claimed_by: dict[int, list[int]] = {}
        """A connection's token → the tokens of its claims (unregistered with it)."""

    # --- lifecycle -----------------------------------------------------------------------------
    @property
    def sweep_interval(self) -> float:
        q = self.quotas
        spans = [v for v in (q.idle_timeout_seconds, q.max_connection_seconds, q.go_away_grace_seconds) if v]
        return max(0.05, min([1.0, *(s / 4 for s in spans)]))

    async def start(self, store: Store, bus: Bus) -> None:
        """Serve with ``store`` and ``bus`` (opened by their own cleanup contexts)."""
        self.store = store
        self.bus = bus
        bus.set_mail_handler(self)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        interval = self.sweep_interval
        clock = self.clock
        while True:
            await clock.sleep(interval)
            try:
                now = clock.now()
                self.run(self.router.tick(now))
                self.bus.tick(now)
            except Exception:  # the sweep must survive anything
                log.exception("signaling sweep failed")

    @property
    def draining(self) -> bool:
        """True once the node stops taking connections (``/ready`` answers 503)."""
        return self._stopping

    def _live_sessions(self) -> list[Conn]:
        return [c for ch in self.router.channels.values() for c in ch.conns() if isinstance(c.handle, Session)]

    async def drain(self, timeout: float) -> None:
        """SIGTERM: refuse new connects (503), then close this node's sockets, spread over at
        most ``timeout`` seconds so that they do not all reconnect at once (to another node, or
        to this one once it is back), and return once they are gone or the time is up. GO_AWAY
        first only with ``--go-away-frames`` (the KVS C SDK deadlocks on it)."""
        self._stopping = True
        clock = self.clock
        conns = self._live_sessions()
        if not conns:
            return
        deadline = clock.now() + timeout
        pace = min(0.05, timeout / 2 / len(conns))  # the closes take at most half the drain time
        for conn in conns:
            if conn.alive:
                if self.go_away_frames:
                    conn.handle.send(frames.GO_AWAY_FRAME)
                conn.handle.close(CLOSE_GOING_AWAY, "server shutting down")
            if pace > 0:
                await clock.sleep(pace)
        while self._live_sessions() and clock.now() < deadline:
            await clock.sleep(0.05)

    async def shutdown(self, _app: web.Application | None = None) -> None:
        """Server stopping: close whatever is still connected (after :meth:`drain`, nothing)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        self._stopping = True
        waits = []
        for ch in list(self.router.channels.values()):
            for conn in ch.conns():
                handle = conn.handle
                if isinstance(handle, Session) and handle.ws is not None and not handle.ws.closed:
                    if self.go_away_frames and not handle.closing:
                        handle.send(frames.GO_AWAY_FRAME)
                    handle.reason = handle.reason or "server shutting down"
                    waits.append(handle.ws.close(code=CLOSE_GOING_AWAY, message=b"server shutting down"))
                else:
                    handle.close(CLOSE_GOING_AWAY, "server shutting down")
        if waits:
            await asyncio.wait([asyncio.ensure_future(w) for w in waits], timeout=3)

    # --- actions -------------------------------------------------------------------------------
    def run(self, actions: list[Action]) -> None:
        for action in actions:  # exact type checks (half the cost of isinstance): the relay path
            if type(action) is Send:
                action.conn.handle.send(action.text)
            elif type(action) is Post:
                self.bus.post(action.topic, action.envelope)
            elif type(action) is Close:
                action.conn.handle.close(action.code, action.reason)
            elif type(action) is Unregister:
                conn = action.conn
                if self._conns.get(conn.token) is conn:
                    del self._conns[conn.token]
                self.bus.unregister(conn.channel.arn, conn.key, conn.token)
                if conn.virtual and conn.token in self._claimed_by:
                    self._release_claims(conn)
            elif type(action) is Publish:
                self.bus.publish(action.topic, action.message)
            elif type(action) is Subscribe:
                self.bus.subscribe(action.topic, self._on_bus)
            elif type(action) is Unsubscribe:
                self.bus.unsubscribe(action.topic)
        if self.router.notes:
            self._flush_notes()

    def _on_bus(self, topic: str, message: Message) -> None:
        actions = self.router.deliver(topic, message, self.clock.now())
        if actions:
            self.run(actions)
        elif self.router.notes:
            self._flush_notes()

    # --- the live trace (signalite trace) ------------------------------------------------------
    async def follow(self, arn: str, sink: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``sink`` with every event of channel ``arn`` on every node of the cluster
        (connects, disconnects, messages and what became of them, each with its ``node``) until
        the returned function is called. Returns once the other nodes know (the bus's
        :meth:`~signalite.bus.base.Bus.follow`)."""
        sinks = self._followers.get(arn)
        first = sinks is None
        if sinks is None:
            sinks = self._followers[arn] = []
        sinks.append(sink)
        self.router.traced.add(arn)

        def unfollow() -> None:
            if sink in sinks:
                sinks.remove(sink)
            if not sinks and self._followers.get(arn) is sinks:
                del self._followers[arn]
                self.bus.unfollow(arn)
                if arn not in self._remote_traced:
                    self.router.traced.discard(arn)

        if first:
            try:
                await self.bus.follow(arn)
            except BaseException:
                unfollow()
                raise
        return unfollow

    def _trace(self, event: dict[str, Any]) -> None:
        """One of this node's events of a traced channel: to its followers here, and to the
        other nodes' followers through the bus."""
        arn = event["channel"]
        if arn in self._remote_traced:
            self.bus.trace(arn, event)
        self._to_sinks(arn, event)

    def _to_sinks(self, arn: str, event: dict[str, Any]) -> None:
        for sink in list(self._followers.get(arn, ())):
            try:
                sink(event)
            except Exception:  # a follower's failure must never reach a client's socket
                log.exception("trace follower failed")

    def trace_wanted(self, arn: str, followed: bool) -> None:
        """The bus: another node follows channel ``arn`` (or no longer does)."""
        if followed:
            self._remote_traced.add(arn)
            self.router.traced.add(arn)
        else:
            self._remote_traced.discard(arn)
            if arn not in self._followers:
                self.router.traced.discard(arn)

    def trace_event(self, arn: str, event: dict[str, Any]) -> None:
        """The bus: another node's event of a channel followed here."""
        self._to_sinks(arn, event)

    def _flush_notes(self) -> None:
        for note in self.router.take_notes():
            self._trace({"time": note.time, "event": note.event, "channel": note.channel,
                         "messageType": note.message_type, "sender": note.sender, "recipient": note.recipient,
                         "payload": note.payload, "detail": note.detail or None, "node": self.node_id})

    def _trace_connection(self, event: str, conn: Conn, **more: Any) -> None:
        self._trace({"time": self.clock.now(), "event": event, "channel": conn.channel.arn,
                     "messageType": None, "sender": conn.client_id, "recipient": None,
                     "role": "master" if conn.client_id is None else "viewer", "node": self.node_id, **more})

    # --- what is connected (signalite admin channels / clients) ---------------------------------
    async def live_channels(self) -> list[dict[str, Any]]:
        """The channels with sockets, one entry per channel and node: this node's from its
        router, the other nodes' from the bus's presence (cluster-wide). Retained messages are
        the bus's and not counted per channel here."""
        out = []
        for arn, ch in sorted(self.router.channels.items()):
            real = [c for c in ch.conns() if not c.virtual]
            out.append({"ChannelARN": arn, "Master": ch.master is not None and not ch.master.virtual,
                        "Viewers": sum(1 for c in real if c.client_id is not None), "Node": self.node_id})
        holdings = await self.bus.holdings()
        if holdings is None:
            return out
        elsewhere: dict[tuple[str, str], dict[str, Any]] = {}
        for h in holdings:
            if h.node == self.node_id or h.virtual:
                continue
            row = elsewhere.setdefault((h.arn, h.node), {"ChannelARN": h.arn, "Master": False, "Viewers": 0,
                                                          "Node": h.node})
            if h.key == MASTER:
                row["Master"] = True
            else:
                row["Viewers"] += 1
        out.extend(elsewhere.values())
        out.sort(key=lambda r: (r["ChannelARN"], r["Node"]))
        return out

    async def clients(self, arn: str) -> list[dict[str, Any]]:
        """The connections of channel ``arn`` on every node: this node's with all it knows, the
        other nodes' from the bus's presence (role, client id, node, virtual; the rest only the
        holding node knows)."""
        out = []
        for conn in self.router.connections(arn):
            handle = conn.handle
            remote = None
            if isinstance(handle, Session) and handle.transport is not None:
                peer = handle.transport.get_extra_info("peername")
                remote = f"{peer[0]}:{peer[1]}" if peer else None
            out.append({"Role": "master" if conn.client_id is None else "viewer", "ClientId": conn.client_id,
                        "Node": self.node_id, "RemoteAddress": remote, "ConnectedSince": conn.opened,
                        "MessagesIn": conn.sent, "MessagesOut": conn.received, "Virtual": conn.virtual,
                        "State": conn.state.value,
                        # A viewer in a storage session (JoinStorageSessionAsViewer): the session's seat.
                        "StorageSession": conn.upstream or None})
        holdings = await self.bus.holdings(arn)
        for h in holdings or ():
            # Not the claims (:meth:`claim`): their keys are no client ids, and no connections.
            if h.node != self.node_id and (h.key == MASTER or frames.valid_id(h.key)):
                out.append({"Role": "master" if h.key == MASTER else "viewer", "ClientId": h.key or None,
                            "Node": h.node, "Virtual": h.virtual})
        return out

    # --- the bus's mailboxes call back here (bus.base.MailHandler) ------------------------------
    def deliver(self, token: int, envelopes: Sequence[Envelope]) -> int:
        """Messages for connection ``token``: written in order; returns how many were (a socket
        that is closing takes none, and the bus keeps them for the key's next connection)."""
        conn = self._conns.get(token)
        if conn is None:
            claim = self._claims.get(token)
            if claim is None:
                return 0
            return self._deliver_claim(claim[0], envelopes)
        written = 0
        for action in self.router.deliver_mail(conn, envelopes, self.clock.now()):
            if not action.conn.handle.send(action.text):  # type: ignore[union-attr]
                break
            written += 1
        return written

    def taken_over(self, token: int) -> None:
        conn = self._conns.get(token)
        if conn is not None:
            self.run(self.router.taken_over(conn, self.clock.now()))
        elif token in self._claims:
            self._claim_lost(token)
        elif token in self._early:
            self._taken_early.add(token)

    def lost(self, token: int) -> None:
        conn = self._conns.get(token)
        if conn is not None:
            self.run(self.router.lost(conn, self.clock.now()))
        elif token in self._claims:
            self._claim_lost(token)
        elif token in self._early:
            self._taken_early.add(token)

    def outcome(self, arn: str, msg_type: str, outcome: str, sender: str, recipient: str) -> None:
        router = self.router
        router.outcome(arn, msg_type, outcome, sender, recipient, self.clock.now())
        if router.notes:
            self._flush_notes()

    async def _register(self, arn: str, client_id: str | None, *, virtual: bool) -> tuple[int, str | None]:
        """Register a connection with the bus (cluster-wide limits, takeover): its token and,
        when refused, why. Raises BusUnavailable."""
        token = next(self._tokens)
        self._early.add(token)
        try:
            reg = await self.bus.register(arn, MASTER if client_id is None else client_id, token,
                                          virtual=virtual, limits=self.limits)
        except BaseException:
            self._early.discard(token)
            raise
        if reg.refused is not None:
            self._early.discard(token)
        return token, reg.refused

    def _connected(self, conn: Conn) -> list[Action]:
        """The router has the registered connection: deliveries may find it now."""
        token = conn.token
        self._early.discard(token)
        self._conns[token] = conn
        if token in self._taken_early:  # taken over while its handshake was under way
            self._taken_early.discard(token)
            return self.router.taken_over(conn, self.clock.now())
        return []

    # --- channel events (ChannelEvents, for the control plane) --------------------------------
    def channel_updated(self, channel: Resource) -> None:
        """UpdateSignalingChannel: the new TTL applies to messages sent from now on."""
        self.run(self.router.update_ttl(channel.arn, channels.message_ttl(channel)))

    def channel_deleted(self, arn: str) -> None:
        """DeleteSignalingChannel: close the channel's sockets (on every node), drop its presence
        and retained messages."""
        self.run(self.router.delete_channel(arn))
        self.bus.drop_channel(arn)

    def go_away(self, arn: str, reconnect_ice_server: bool = False) -> int:
        """The operator's GO_AWAY (closed after the grace) or RECONNECT_ICE_SERVER to a channel's
        clients. Returns how many sockets on this node it reached."""
        count = len(self.router.connections(arn))
        self.run(self.router.go_away(arn, reconnect_ice_server))
        return count

    def disconnect_client(self, arn: str, client_id: str | None) -> bool:
        """The operator closes the master (``client_id`` None) or one viewer, wherever it is
        connected. Returns whether it is connected to this node."""
        conns = self.router.connections(arn)
        here = any(c.client_id == client_id and not c.virtual for c in conns)
        self.run(self.router.disconnect_client(arn, client_id))
        return here

    # --- the virtual viewer of SendAlexaOfferToMaster (VirtualPeers) ----------------------------
    async def open_virtual_viewer(self, channel: Resource, client_id: str) -> VirtualViewer:
        """Connect a socket-less viewer ``client_id`` to ``channel`` (see :class:`VirtualViewer`).

        It replaces a viewer connected with the same client id, does not count against the
        viewer quota, and gets messages the master sends to ``client_id``. Raises ``LookupError``
        if the channel was deleted.
        """
        peer = VirtualViewer(self, client_id)
        token, _ = await self._register(channel.arn, client_id, virtual=True)  # virtual: never refused
        try:
            conn, actions = self.router.connect(channel.arn, client_id, channels.message_ttl(channel),
                                                self.clock.now(), peer.handle, virtual=True, token=token)
        except Refused as exc:
            self._early.discard(token)
            self.bus.unregister(channel.arn, client_id, token)
            raise LookupError(exc.message) from None
        peer._conn = conn
        actions += self._connected(conn)
        self.run(actions)
        self.bus.start(channel.arn, client_id, token)
        return peer

    # --- claims: one holder of a reserved key per channel, cluster-wide --------------------------
    async def claim(self, conn: Conn, key: str) -> None:
        """Register virtual connection ``conn`` also as the holder of ``key`` of its channel, a
        reserved key no client id can be (``signalite.media.sessions``: one storage session per
        channel). The bus's takeover rule makes the newest claim win across the cluster: when
        another node claims the key, the bus tells this one, which closes ``conn``
        (:data:`CLAIM_TAKEN_OVER`). A claim taken over on this node is the claimer's to end (the
        embedded bus tells nobody). What :meth:`post_to_claim` sends reaches ``conn`` as frames.
        The claim ends with ``conn``. Raises BusUnavailable."""
        arn = conn.channel.arn
        token = next(self._tokens)
        self._early.add(token)
        try:
            await self.bus.register(arn, key, token, virtual=True, limits=self.limits)
        finally:
            self._early.discard(token)
        if not conn.alive:  # closed while it registered
            self.bus.unregister(arn, key, token)
            return
        self._claims[token] = (conn, key)
        self._claimed_by.setdefault(conn.token, []).append(token)
        if token in self._taken_early:  # a newer claim came first
            self._taken_early.discard(token)
            self._claim_lost(token)
            return
        self.bus.start(arn, key, token)

    async def post_to_claim(self, channel: Resource, key: str, message_type: str, sender: str,
                            payload: str = "") -> bool:
        """Post a ``message_type`` from ``sender`` (with ``payload``) to whoever holds ``key`` of
        ``channel``, wherever it runs; False (nothing posted) when nobody holds it. Raises
        BusUnavailable."""
        if not await self.bus.holds(channel.arn, key):
            return False
        now = self.clock.now()
        frame = frames.message(message_type, payload, sender)
        self.bus.post(channel.arn, Envelope(MSG, key, message_type, sender, frame,
                                            now + channels.message_ttl(channel)))
        return True

    def _deliver_claim(self, conn: Conn, envelopes: Sequence[Envelope]) -> int:
        if not conn.alive:
            return 0
        written = 0
        for envelope in envelopes:
            if not conn.handle.send(envelope.frame):
                break
            written += 1
        return written

    def _claim_lost(self, token: int) -> None:
        conn, _ = self._claims[token]
        self.run(self.router.taken_over(conn, self.clock.now(), CLAIM_TAKEN_OVER))

    def _release_claims(self, conn: Conn) -> None:
        for token in self._claimed_by.pop(conn.token, ()):
            claim = self._claims.pop(token, None)
            if claim is not None:
                self.bus.unregister(conn.channel.arn, claim[1], token)

    # --- the WSS endpoint ----------------------------------------------------------------------
    def _refuse(self, request: web.Request, refusal: handshake.Refuse) -> web.Response:
        self.stats.handshakes[refusal.code] += 1
        return answers.error(request, self.errors, refusal.code, refusal.message, answers.new_request_id(),
                             status=refusal.status)

    async def handle_connect(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            if "text/html" in request.headers.get("Accept", ""):  # a browser: the landing page
                from ..console import landing_page
                return landing_page(request)
            return self._refuse(request, handshake.Refuse(
                400, "InvalidArgumentException",
                "This is the Signalite WSS signaling endpoint: connect with a WebSocket upgrade "
                "and a presigned URL (ConnectAsMaster / ConnectAsViewer)."))
        if self._stopping:
            return self._refuse(request, handshake.Refuse(503, "ServiceUnavailableException",
                                                          "The server is shutting down."))
        try:
            principal, query = await self.auth.authenticate_presigned(request)
        except AuthError as exc:
            return self._refuse(request, handshake.refuse_auth(exc))
        arn = handshake.channel_arn(query)
        try:
            resource = await self.store.get_by_arn(arn) if arn is not None else None
        except ConnectionError as exc:  # the store is unreachable: retriable, at once
            return self._refuse(request, handshake.Refuse(503, "ServiceUnavailableException",
                                                          f"Signaling is unavailable right now ({exc}); retry."))
        now = self.clock.now()
        decision = handshake.admit(query, principal, resource, now)
        if isinstance(decision, handshake.Refuse):
            return self._refuse(request, decision)
        if self.authorizer is not None and not principal.is_root:
            action = "kinesisvideo:ConnectAsMaster" if decision.is_master else "kinesisvideo:ConnectAsViewer"
            try:
                await self.authorizer.check(principal, action, decision.arn, code="AccessDeniedException",
                                            source_ip=request.remote, secure=request.secure,
                                            resource_tags=resource.tags if resource is not None else None)
            except ServiceError as exc:
                return self._refuse(request, handshake.Refuse(403, exc.code, exc.message))
        key = MASTER if decision.client_id is None else decision.client_id
        try:
            token, refused = await self._register(decision.arn, decision.client_id, virtual=False)
        except BusUnavailable as exc:
            return self._refuse(request, handshake.Refuse(503, "ServiceUnavailableException",
                                                          f"Signaling is unavailable right now ({exc}); retry."))
        if refused is not None:
            limit = refusal(refused, self.quotas, master=decision.client_id is None)
            return self._refuse(request, handshake.Refuse(limit.status, limit.code, limit.message))
        session = Session()
        try:
            conn, actions = self.router.connect(decision.arn, decision.client_id, decision.ttl, self.clock.now(),
                                                session, token=token)
        except Refused as exc:
            self._early.discard(token)
            self.bus.unregister(decision.arn, key, token)
            return self._refuse(request, handshake.Refuse(exc.status, exc.code, exc.message))
        actions += self._connected(conn)
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        protocols = tuple(p.strip() for p in offered.split(",") if p.strip())[:1]
        ws = web.WebSocketResponse(protocols=protocols, autoping=True, compress=False,
                                   max_msg_size=self.max_frame, heartbeat=None)
        try:
            await ws.prepare(request)
        except BaseException:
            # Still close the socket this one replaced; drop only what was meant for this one.
            self.run([a for a in actions if not (isinstance(a, (Send, Close)) and a.conn is conn)])
            self.run(self.router.disconnect(conn, self.clock.now()))
            raise
        session.attach(ws, request.transport)
        self.stats.handshakes["accepted"] += 1
        role = "master" if decision.is_master else "viewer"
        if log.isEnabledFor(logging.INFO):
            log.info("connected %s %s of %s", role, decision.client_id or "", decision.arn,
                     extra={"event": "connect", "role": role, "channel": decision.arn,
                            "client_id": decision.client_id, "account": principal.account_id,
                            "remote": request.remote})
        decision_arn = decision.arn
        if decision.arn in self.router.traced:
            self._trace_connection("connect", conn, remote=request.remote)
        del query, principal, resource, offered, protocols, decision  # only the socket's state stays
        # The receive loop is inline (not a helper coroutine): one frame less per idle socket.
        router = self.router
        clock = self.clock
        try:
            if actions:
                self.run(actions)
            del actions
            if conn.alive:
                self.bus.start(decision_arn, key, token)
            while True:
                msg = await ws.receive()
                kind = msg.type
                if kind is _TEXT:
                    if self.log_payloads:
                        _log_payload(conn, msg.data)
                    out = router.message(conn, msg.data, clock.now())
                    if out:
                        self.run(out)
                    elif router.notes:
                        self._flush_notes()
                elif kind is _BINARY:
                    session.closing = True
                    session.reason = "binary frame (text frames only)"
                    await ws.close(code=CLOSE_UNSUPPORTED, message=b"text frames only")
                    break
                else:  # CLOSE / CLOSING / CLOSED / ERROR (aiohttp itself sends 1009 for an oversized frame)
                    break
        finally:
            self.run(router.disconnect(conn, clock.now()))
            reason = session.reason or f"closed by the client ({ws.close_code})"
            if conn.channel.arn in router.traced:
                self._trace_connection("disconnect", conn, reason=reason)
            if log.isEnabledFor(logging.INFO):
                log.info("disconnected %s %s of %s: %s", role, conn.client_id or "", conn.channel.arn, reason,
                         extra={"event": "disconnect", "role": role, "channel": conn.channel.arn,
                                "client_id": conn.client_id, "reason": reason})
            # aiohttp keeps the error of a close it could not finish (the peer already gone); its
            # traceback holds the frames that hold this response, its request, handler and
            # transport: a reference cycle that only a full collection would free. Without it the
            # closed socket is freed by reference counting.
            error = ws.exception()
            if error is not None:
                error.__traceback__ = None
        return ws


def _log_payload(conn: Conn, text: str) -> None:
    """``--log-payloads``: a client's frame with its decoded payload (SDP, ICE candidate). Off by
    default: payloads carry IP addresses and fingerprints."""
    try:
        inbound = frames.parse(text)
        payload = base64.b64decode(inbound.payload, validate=True).decode("utf-8", "replace") \
            if isinstance(inbound.payload, str) else None
    except (frames.Malformed, ValueError):
        inbound, payload = None, None
    log.info("message %s from %s of %s", getattr(inbound, "action", "?"), conn.client_id or "master",
             conn.channel.arn, extra={"event": "message", "channel": conn.channel.arn, "client_id": conn.client_id,
                                      "message_type": getattr(inbound, "action", None),
                                      "recipient": getattr(inbound, "recipient", None), "payload": payload})

"""The hub: this node's live sockets, wired to the router and the bus.

It accepts the WSS handshake (presigned SigV4, channel lookup, role, limits), runs one receive
loop per socket, carries out the router's actions (send, close, publish, subscribe), runs the one
periodic sweep (idle timeout, maximum duration, GO_AWAY grace, TTL expiry), and applies channel
events from the control plane and the admin command. All routing decisions are the router's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any, Callable

from aiohttp import WSMsgType, web

from ..aws.sigv4 import AuthError, SigV4Verifier, split_presigned_query
from ..bus.base import Bus, Envelope
from ..controlplane.channels import message_ttl
from ..services import Services
from ..store import Resource
from . import frames
from .router import (CLOSE, CLOSE_GOING_AWAY, CLOSE_UNSUPPORTED, CTL_DELETE, CTL_GO_AWAY, CTL_RECONNECT_ICE,
                     CTL_TTL, PUBLISH, SEND, SUBSCRIBE, UNSUBSCRIBE, Conn, Refused, Router, control_envelope)
from .session import Session

log = logging.getLogger("signalite.signaling")
_TEXT = WSMsgType.TEXT
_BINARY = WSMsgType.BINARY

NOT_FOUND = "The requested channel is not found or not active."


def _error(status: int, code: str, message: str) -> web.Response:
    return web.Response(
        status=status, content_type="application/json",
        text=json.dumps({"__type": code, "Message": message, "message": message}),
        headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())},
    )


class VirtualViewer:
    """A viewer without a socket, for SendAlexaOfferToMaster (``Hub.open_virtual_viewer``).

    ``await send(action, payload, correlation_id=None)`` routes exactly like a connected viewer's
    message (to the master, with this client id as ``senderClientId``; retained for the channel's
    MessageTtlSeconds while the master is offline; STATUS_RESPONSE on failure when a correlation
    id is given). ``await receive(timeout)`` returns the next frame delivered to this client id as
    a dict with lowercase keys (``messageType``, ``messagePayload``, ``statusResponse``…), or None
    on timeout or once the peer is closed. ``await close()`` disconnects it.
    """

    def __init__(self, hub: "Hub", client_id: str) -> None:
        self._hub = hub
        self.client_id = client_id
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._conn: Conn | None = None
        self._closed = False
        self.handle = _VirtualHandle(self)

    async def send(self, action: str, payload: str, correlation_id: str | None = None) -> None:
        if self._conn is None or not self._conn.alive:
            raise RuntimeError("the virtual viewer is closed")
        msg: dict[str, Any] = {"action": action, "messagePayload": payload}
        if correlation_id is not None:
            msg["correlationId"] = correlation_id
        hub = self._hub
        hub.run(hub.router.message(self._conn, json.dumps(msg, separators=(",", ":")), hub.clock()))

    async def receive(self, timeout: float) -> dict[str, Any] | None:
        if self._closed and self._queue.empty():
            return None
        try:
            text = await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None
        if text is None:
            return None
        return frames.to_dict(text)

    async def close(self) -> None:
        self._closed = True
        if self._conn is not None:
            self._hub.run(self._hub.router.disconnect(self._conn, self._hub.clock()))
        self._queue.put_nowait(None)


class _VirtualHandle:
    __slots__ = ("peer",)

    def __init__(self, peer: VirtualViewer) -> None:
        self.peer = peer

    def send(self, text: str) -> None:
        if not self.peer._closed:
            self.peer._queue.put_nowait(text)

    def close(self, code: int, reason: str) -> None:
        self.peer._closed = True
        self.peer._queue.put_nowait(None)


class Hub:
    def __init__(self, services: Services, verifier: SigV4Verifier, bus: Bus,
                 clock: Callable[[], float] = time.time) -> None:
        self.services = services
        self.verifier = verifier
        self.bus = bus
        self.clock = clock
        self.quotas = services.settings.quotas
        self.router = Router(self.quotas)
        # A frame must hold the largest payload allowed (base64) plus the other fields.
        self.max_frame = max(self.quotas.max_frame_bytes, self.quotas.max_payload_bytes * 4 // 3 + 4096)
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False

    # --- lifecycle -----------------------------------------------------------------------------
    @property
    def sweep_interval(self) -> float:
        q = self.quotas
        spans = [v for v in (q.idle_timeout_seconds, q.max_connection_seconds, q.go_away_grace_seconds) if v]
        return max(0.05, min([1.0, *(s / 4 for s in spans)]))

    async def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())

    async def _sweep(self) -> None:
        interval = self.sweep_interval
        while True:
            await asyncio.sleep(interval)
            try:
                self.run(self.router.tick(self.clock()))
            except Exception:  # the sweep must survive anything
                log.exception("signaling sweep failed")

    async def shutdown(self, _app: web.Application | None = None) -> None:
        """Server stopping: GO_AWAY and close every socket (clients reconnect elsewhere)."""
        if self._stopping:
            return
        self._stopping = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        waits = []
        for ch in list(self.router.channels.values()):
            for conn in ch.conns():
                handle = conn.handle
                handle.send(frames.GO_AWAY_FRAME)
                if isinstance(handle, Session) and handle.ws is not None and not handle.ws.closed:
                    waits.append(handle.ws.close(code=CLOSE_GOING_AWAY, message=b"server shutting down"))
                else:
                    handle.close(CLOSE_GOING_AWAY, "server shutting down")
        if waits:
            await asyncio.wait([asyncio.ensure_future(w) for w in waits], timeout=3)

    # --- actions -------------------------------------------------------------------------------
    def run(self, actions: list[Any]) -> None:
        for action in actions:
            op = action[0]
            if op is SEND:
                action[1].handle.send(action[2])
            elif op is PUBLISH:
                self.bus.publish(action[1], action[2])
            elif op is CLOSE:
                action[1].handle.close(action[2], action[3])
            elif op is SUBSCRIBE:
                self.bus.subscribe(action[1], self._on_bus)
            elif op is UNSUBSCRIBE:
                self.bus.unsubscribe(action[1])

    def _on_bus(self, topic: str, envelope: Envelope) -> None:
        actions = self.router.deliver(topic, envelope, self.clock())
        if actions:
            self.run(actions)

    # --- channel events (called by the control plane and the admin API) ----------------------
    def _control(self, arn: str, verb: str, argument: str = "") -> None:
        if verb == CTL_DELETE:
            if len(self.router.deleted) > 100_000:  # only guards handshakes racing a delete
                self.router.deleted.clear()
            self.router.deleted.add(arn)  # refuse late connects even if no socket of it is here
        self.bus.publish(arn, control_envelope(verb, argument))

    async def channel_updated(self, resource: Resource) -> None:
        """UpdateSignalingChannel: the new TTL applies to messages sent from now on."""
        self._control(resource.arn, CTL_TTL, str(message_ttl(resource)))

    async def channel_deleted(self, arn: str) -> None:
        """DeleteSignalingChannel: GO_AWAY to the channel's sockets, close them, drop retained messages."""
        self._control(arn, CTL_DELETE)

    async def send_go_away(self, arn: str, reconnect_ice_server: bool = False) -> int:
        """Admin: GO_AWAY (closed after the grace) or RECONNECT_ICE_SERVER to a channel's clients.
        Returns how many sockets on this node it reached."""
        count = len(self.router.connections(arn))
        self._control(arn, CTL_RECONNECT_ICE if reconnect_ice_server else CTL_GO_AWAY)
        return count

    # --- the virtual viewer of SendAlexaOfferToMaster -------------------------------------------
    async def open_virtual_viewer(self, channel_arn: str, client_id: str) -> VirtualViewer:
        """Connect a socket-less viewer ``client_id`` to ``channel_arn`` (see :class:`VirtualViewer`).

        It replaces a viewer connected with the same client id, does not count against the
        viewer quota, and gets messages the master sends to ``client_id``. Raises ``LookupError``
        if the channel does not exist.
        """
        resource = await self.services.store.get_by_arn(channel_arn)
        if resource is None or resource.kind != "channel":
            raise LookupError(NOT_FOUND)
        peer = VirtualViewer(self, client_id)
        try:
            conn, actions = self.router.connect(channel_arn, client_id, message_ttl(resource), self.clock(),
                                                peer.handle, virtual=True)
        except Refused as exc:
            raise LookupError(exc.message) from None
        peer._conn = conn
        self.run(actions)
        return peer

    # --- the WSS endpoint ----------------------------------------------------------------------
    async def handle_connect(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return _error(400, "InvalidArgumentException",
                          "This is the Signalite WSS signaling endpoint: connect with a WebSocket upgrade "
                          "and a presigned URL (ConnectAsMaster / ConnectAsViewer).")
        if self._stopping:
            return _error(503, "ServiceUnavailableException", "The server is shutting down.")
        url = request.rel_url
        raw_query = url.raw_query_string
        # Parsed once, for the signature and for the parameters, and not through ``url.query``,
        # whose cache would live as long as the socket.
        split = split_presigned_query(raw_query)
        try:
            principal = self.verifier.verify_presigned("GET", url.raw_path, raw_query,
                                                       request.headers.get("Host", ""), split)
        except AuthError as exc:
            if exc.status == 403:
                return _error(403, "AccessDeniedException", exc.message)
            return _error(exc.status, "InvalidArgumentException", exc.message)
        query = split[0]
        arn = query.get("X-Amz-ChannelARN")
        if not arn:
            return _error(400, "InvalidArgumentException", "X-Amz-ChannelARN is required.")
        client_id = query.get("X-Amz-ClientId")
        if client_id is not None and not frames.valid_client_id(client_id):
            return _error(400, "InvalidArgumentException",
                          "X-Amz-ClientId must be 1 to 256 characters of [a-zA-Z0-9_.-] and must not start with AWS_.")
        resource = await self.services.store.get_by_arn(arn)
        if (resource is None or resource.kind != "channel" or resource.status != "ACTIVE"
                or resource.account != principal.account_id or resource.region != principal.region):
            return _error(404, "ResourceNotFoundException", NOT_FOUND)
        session = Session()
        try:
            conn, actions = self.router.connect(arn, client_id, message_ttl(resource), self.clock(), session)
        except Refused as exc:
            return _error(exc.status, exc.code, exc.message)
        offered = request.headers.get("Sec-WebSocket-Protocol", "")
        protocols = tuple(p.strip() for p in offered.split(",") if p.strip())[:1]
        ws = web.WebSocketResponse(protocols=protocols, autoping=True, compress=False,
                                   max_msg_size=self.max_frame, heartbeat=None)
        try:
            await ws.prepare(request)
        except BaseException:
            # Still close the socket this one replaced; drop only what was meant for this one.
            self.run([a for a in actions if a[1] is not conn])
            self.run(self.router.disconnect(conn, self.clock()))
            raise
        session.attach(ws, request.transport)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("connected %s of %s", "master" if client_id is None else f"viewer {client_id}", arn)
        del url, raw_query, split, query, principal, resource, offered, protocols  # only the socket's state stays
        # The receive loop is inline (not a helper coroutine): one frame less per idle socket.
        router = self.router
        clock = self.clock
        try:
            if actions:
                self.run(actions)
            del actions
            while True:
                msg = await ws.receive()
                kind = msg.type
                if kind is _TEXT:
                    out = router.message(conn, msg.data, clock())
                    if out:
                        self.run(out)
                elif kind is _BINARY:
                    session.closing = True
                    await ws.close(code=CLOSE_UNSUPPORTED, message=b"text frames only")
                    break
                else:  # CLOSE / CLOSING / CLOSED / ERROR (aiohttp itself sends 1009 for an oversized frame)
                    break
        finally:
            self.run(router.disconnect(conn, clock()))
            # aiohttp keeps the error of a close it could not finish (the peer already gone); its
            # traceback holds the frames that hold this response, its request, handler and
            # transport: a reference cycle that only a full collection would free. Without it the
            # closed socket is freed by reference counting.
            exc = ws.exception()
            if exc is not None:
                exc.__traceback__ = None
        return ws

    # --- the admin API (signalite admin go-away) -------------------------------------------------
    async def handle_admin(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            principal = self.verifier.verify_headers(
                request.method, request.raw_path.split("?", 1)[0], request.query_string, request.headers, body,
                get_all=request.headers.getall)
        except AuthError as exc:
            return _error(exc.status, exc.code, exc.message)
        root = self.services.keys.root
        if principal.user != "root" or principal.account_id != root.account_id:
            return _error(403, "AccessDeniedException", "Only the root key may use the admin API.")
        try:
            params = json.loads(body or b"{}")
            arn = params["ChannelARN"]
            kind = params.get("Type", "GO_AWAY")
            if kind not in ("GO_AWAY", "RECONNECT_ICE_SERVER") or not isinstance(arn, str):
                raise ValueError(kind)
        except (ValueError, KeyError, TypeError):
            return _error(400, "InvalidArgumentException",
                          'Send {"ChannelARN": "...", "Type": "GO_AWAY" | "RECONNECT_ICE_SERVER"}.')
        resource = await self.services.store.get_by_arn(arn)
        if resource is None or resource.kind != "channel":
            return _error(404, "ResourceNotFoundException", NOT_FOUND)
        count = await self.send_go_away(arn, reconnect_ice_server=kind == "RECONNECT_ICE_SERVER")
        return web.json_response({"ChannelARN": arn, "Type": kind, "Connections": count})

"""Signaling test helpers: botocore-presigned WSS URLs (a real signer) and a small raw client.

"Nothing (more) arrived" is never a quiet window here: :meth:`Peer.frames_before_marker` makes a
marker frame travel to the peer by a path that is ordered after the frames in question, and what
came before the marker is all there was. See its docstring for the two paths and what each proves.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import uuid
from datetime import datetime
from typing import Any
from unittest import mock
from urllib.parse import urlencode

import websockets
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from .server import ACCESS_KEY, REGION, SECRET_KEY, Server


def presign(server: Server, arn: str, client_id: str | None = None, *, region: str = REGION,
            access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, token: str | None = None,
            expires: int = 299, extra: dict[str, str] | None = None, base: str | None = None,
            at: datetime | None = None) -> str:
    """A presigned WSS URL from botocore's own signer; ``at`` signs as if the client clock said so."""
    params: dict[str, str] = {"X-Amz-ChannelARN": arn}
    if client_id is not None:
        params["X-Amz-ClientId"] = client_id
    if extra:
        params.update(extra)
    req = AWSRequest(method="GET", url=(base or server.url) + "/?" + urlencode(params))
    signer = SigV4QueryAuth(Credentials(access_key, secret_key, token), "kinesisvideo", region, expires=expires)
    if at is None:
        signer.add_auth(req)
    else:
        with mock.patch("botocore.auth.get_current_datetime", lambda: at.replace(tzinfo=None)):
            signer.add_auth(req)
    return req.url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)


def ssl_ctx(server: Server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=server.ca)


def b64(obj: Any) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


class Peer:
    """A raw WebSocket client (python ``websockets``) that speaks KVS frames."""

    def __init__(self, ws: Any, client_id: str | None) -> None:
        self.ws = ws
        self.client_id = client_id

    async def send(self, action: str, payload: str, recipient: str | None = None,
                   correlation_id: str | None = None, **extra: Any) -> None:
        msg: dict[str, Any] = {"action": action, "messagePayload": payload}
        if recipient is not None:
            msg["recipientClientId"] = recipient
        if correlation_id is not None:
            msg["correlationId"] = correlation_id
        msg.update(extra)
        await self.ws.send(json.dumps(msg))

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(raw, str), "the server must send text frames"
        return json.loads(raw)

    async def recv_raw(self, timeout: float = 5.0) -> str | bytes:
        return await asyncio.wait_for(self.ws.recv(), timeout)

    async def frames_before_marker(self, via: "Peer | None" = None, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Make a marker reach this peer and return every frame that arrived before it.

        The marker's path is what makes "nothing else came" provable, without waiting for silence:

        * ``via=None`` (a self-marker): this peer sends a frame the server refuses with a
          STATUS_RESPONSE (an unknown action with a correlationId). The server handles a socket's
          frames one after the other and answers a refusal at once, so the answer comes after
          everything it sent this peer while handling the peer's earlier frames, and after
          everything it sent because of events the test already saw it handle (another client
          received the message something would have come along with). Use it for "no
          STATUS_RESPONSE to my message" and "nothing more was retained for me".
        * ``via=other``: ``other`` sends this peer an ICE_CANDIDATE marker (the master to a viewer,
          or a viewer to the master). One sender's messages reach one recipient in order, across
          the nodes of a cluster too, so it comes after everything ``other`` sent before it. Use
          it for "nothing ``other`` sent reached me" and "what ``other`` sent reached me once".

        ``timeout`` is a safety net per frame, not a timing.
        """
        tag = f"marker-{uuid.uuid4().hex}"
        if via is None:
            await self.send("MARKER", "eA==", correlation_id=tag)

            def is_marker(frame: dict[str, Any]) -> bool:
                status = frame.get("statusResponse") or {}
                return frame.get("messageType") == "STATUS_RESPONSE" and status.get("correlationId") == tag
        else:
            payload = b64({"marker": tag})
            await via.send("ICE_CANDIDATE", payload, recipient=self.client_id if via.client_id is None else None)

            def is_marker(frame: dict[str, Any]) -> bool:
                return frame.get("messageType") == "ICE_CANDIDATE" and frame.get("messagePayload") == payload
        before: list[dict[str, Any]] = []
        while not is_marker(frame := await self.recv(timeout)):
            before.append(frame)
        return before

    async def assert_nothing_before_marker(self, via: "Peer | None" = None) -> None:
        """Assert that no frame is waiting for this peer (see :meth:`frames_before_marker`)."""
        before = await self.frames_before_marker(via)
        assert not before, f"unexpected frames before the marker: {before}"

    async def closed(self, timeout: float = 10.0) -> tuple[int | None, str]:
        """Wait until the server closes; returns (code, reason). Frames received meanwhile are skipped."""
        try:
            async with asyncio.timeout(timeout):
                async for _ in self.ws:
                    pass
        except websockets.ConnectionClosed:
            pass
        rcvd = self.ws.protocol.close_rcvd
        return (rcvd.code, rcvd.reason) if rcvd else (None, "")

    async def ended(self, timeout: float = 10.0) -> tuple[int | None, str, list[dict[str, Any]]]:
        """Wait until the server closes; returns (code, reason, the frames that came before it)."""
        got: list[dict[str, Any]] = []
        try:
            async with asyncio.timeout(timeout):
                async for raw in self.ws:
                    got.append(json.loads(raw))
        except websockets.ConnectionClosed:
            pass
        rcvd = self.ws.protocol.close_rcvd
        return (rcvd.code, rcvd.reason, got) if rcvd else (None, "", got)

    async def close(self) -> None:
        await self.ws.close()


async def connect(server: Server, arn: str, client_id: str | None = None, **kw: Any) -> Peer:
    subprotocols = kw.pop("subprotocols", None)
    url = presign(server, arn, client_id, **kw)
    ws = await websockets.connect(url, ssl=ssl_ctx(server), subprotocols=subprotocols, max_size=None, max_queue=None,
                                  open_timeout=10, ping_interval=None)
    return Peer(ws, client_id)


async def handshake_status(server: Server, url: str, **kw: Any) -> int:
    """Try a handshake that should fail; return the HTTP status."""
    try:
        ws = await websockets.connect(url, ssl=ssl_ctx(server), open_timeout=10, **kw)
    except websockets.InvalidStatus as exc:
        return exc.response.status_code
    await ws.close()
    return 101

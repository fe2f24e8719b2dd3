"""Signaling test helpers: botocore-presigned WSS URLs (a real signer) and a small raw client."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
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

    async def nothing(self, timeout: float = 0.3) -> bool:
        """True if no frame arrives within ``timeout`` (a safety-net wait, not a timing assertion)."""
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected frame: {raw!r}")

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

"""``GET /_signalite/admin/trace``: one channel's live events over a WebSocket (``signalite trace``).

The request is presigned like a KVS connect (SigV4 query string, service ``kinesisvideo``, the
channel in ``X-Amz-ChannelARN``) and goes through the same authentication as every entry point;
only an account root may follow a channel (the server's root any channel, another account's root
only its own). Each event is one JSON text frame: ``time`` (epoch seconds), ``event`` (connect,
disconnect, sent, delivered, buffered, expired, replaced, rejected), ``channel``,
``messageType``, ``sender`` and ``recipient`` (client ids, null for the master), ``payload`` (the
base64 messagePayload), ``role``, ``reason``, ``detail``, ``node``. In a cluster the node the
follower is connected to merges every node's events (the bus's ``follow``); ``following`` is
sent once the other nodes know. Decoding SDP and ICE is the client's work (``signalite.tracing``),
so a busy channel costs the server only the JSON.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import WSMsgType, web

from .. import channel as channels
from ..aws.sigv4 import AuthError
from ..aws.wire import ServiceWire
from ..context import HUB, KEYS, STORE
from ..edge import answers
from ..edge.auth import Authenticator

TRACE_PATH = "/_signalite/admin/trace"
MAX_QUEUED = 10_000
"""Events kept for a follower that reads slower than the channel talks; beyond it the trace ends."""


def setup(app: web.Application, auth: Authenticator, errors: ServiceWire) -> None:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await handle_trace(request, auth, errors)

    app.router.add_get(TRACE_PATH, handle)


async def handle_trace(request: web.Request, auth: Authenticator, errors: ServiceWire) -> web.StreamResponse:
    def refuse(status: int, code: str, message: str) -> web.Response:
        return answers.error(request, errors, code, message, answers.new_request_id(), status=status)

    try:
        principal, query = await auth.authenticate_presigned(request)
    except AuthError as exc:
        return refuse(exc.status, exc.code, exc.message)
    root = request.app[KEYS].root
    if not principal.is_root:
        return refuse(403, "AccessDeniedException", "Only an account's root key may follow a channel.")
    arn = query.get("X-Amz-ChannelARN", "")
    resource = await request.app[STORE].get_by_arn(arn) if arn else None
    if resource is None or resource.kind != channels.KIND or (
            principal.account_id not in (root.account_id, resource.account)):  # the server's root, or its own
        return refuse(404, "ResourceNotFoundException", channels.NOT_FOUND)
    ws = web.WebSocketResponse(heartbeat=20, compress=False)
    await ws.prepare(request)
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def sink(event: dict[str, Any]) -> None:
        if queue.qsize() >= MAX_QUEUED:
            queue.put_nowait(None)  # too slow a reader: end the trace rather than grow without bound
        else:
            queue.put_nowait(event)

    unfollow = await request.app[HUB].follow(arn, sink)  # once every node traces it
    reader = asyncio.ensure_future(_until_closed(ws))
    try:
        await ws.send_str(json.dumps({"event": "following", "channel": arn, "time": None}))
        while not reader.done():
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait((getter, reader), return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            event = getter.result()
            if event is None:
                break
            await ws.send_str(json.dumps(event, separators=(",", ":")))
    finally:
        unfollow()
        reader.cancel()
        await ws.close()
    return ws


async def _until_closed(ws: web.WebSocketResponse) -> None:
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break

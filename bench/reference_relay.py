"""The ceiling: a minimal aiohttp + uvloop WebSocket relay with the KVS signaling envelope.

What it does per message is what any KVS-style relay must do, and nothing more:

* on connect: read ``X-Amz-ChannelARN`` / ``X-Amz-ClientId`` from the query (no SigV4 check,
  no store, no quotas, no retention): a master is the socket without a ClientId;
* per inbound text frame: ``json.loads``, viewer → the channel's master (with ``senderClientId``),
  master → the viewer named by ``recipientClientId``; ``json.dumps`` the KVS-style outbound frame;
  send it: ``--write aiohttp`` awaits aiohttp's ``ws.send_str``; ``--write direct`` writes the
  unmasked text frame straight to the peer's transport from plain code, which is how Signalite's
  session sends (and about 10-15% less CPU per message). ``bench.relay`` uses ``direct``, so the
  reference is the ceiling and the ratio isolates what Signalite's own logic costs.

Undeliverable messages are dropped. Otherwise it is the idiomatic aiohttp handler, so its figures are
"what the stack gives you" and Signalite's are read as a ratio against it.

Run: ``python -m bench.reference_relay --port 9001 [--tls-port 9002 --tls-cert C --tls-key K]
[--write aiohttp|direct]``.
It prints ``READY`` on stdout once listening and stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import signal
import ssl
import sys
import weakref
from typing import Any

from aiohttp import WSMsgType, web

_dumps = json.JSONEncoder(separators=(",", ":")).encode
_loads = json.loads


class Channel:
    __slots__ = ("master", "viewers")

    def __init__(self) -> None:
        self.master: web.WebSocketResponse | None = None
        self.viewers: dict[str, web.WebSocketResponse] = {}


CHANNELS: dict[str, Channel] = {}

DIRECT = False
"""``--write direct``: put the outgoing text frame on the peer's transport from plain code (one
``transport.write``, no coroutine), which is what Signalite's session does; the default awaits
aiohttp's ``send_str``."""
peer_transports: weakref.WeakKeyDictionary[web.WebSocketResponse, Any] = weakref.WeakKeyDictionary()


def _frame(data: bytes) -> bytes:
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + data
    return b"\x81\x7f" + n.to_bytes(8, "big") + data


async def handle(request: web.Request) -> web.StreamResponse:
    query = request.rel_url.query
    arn = query.get("X-Amz-ChannelARN")
    if not arn:
        return web.Response(status=400, text="X-Amz-ChannelARN is required")
    client_id = query.get("X-Amz-ClientId")
    ws = web.WebSocketResponse(autoping=True)
    await ws.prepare(request)
    if DIRECT:
        peer_transports[ws] = request.transport
    channel = CHANNELS.get(arn)
    if channel is None:
        channel = CHANNELS[arn] = Channel()
    if client_id is None:
        channel.master = ws
    else:
        channel.viewers[client_id] = ws
    try:
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            try:
                d: Any = _loads(msg.data)
                action = d["action"]
                payload = d["messagePayload"]
            except (ValueError, KeyError, TypeError):
                continue
            if client_id is None:  # master -> viewer
                peer = channel.viewers.get(d.get("recipientClientId"))
                out = {"messagePayload": payload, "messageType": action}
            else:  # viewer -> master
                peer = channel.master
                out = {"messagePayload": payload, "messageType": action, "senderClientId": client_id}
            if peer is not None and not peer.closed:
                if DIRECT:
                    transport = peer_transports.get(peer)
                    if transport is not None and not transport.is_closing():
                        transport.write(_frame(_dumps(out).encode()))
                    continue
                try:
                    await peer.send_str(_dumps(out))
                except (ConnectionError, RuntimeError):
                    pass
    finally:
        if client_id is None:
            if channel.master is ws:
                channel.master = None
        elif channel.viewers.get(client_id) is ws:
            del channel.viewers[client_id]
        if channel.master is None and not channel.viewers:
            CHANNELS.pop(arn, None)
    return ws


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(args: argparse.Namespace) -> None:
    app = web.Application()
    app.router.add_get("/", handle)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    sites = [web.TCPSite(runner, "127.0.0.1", args.port, reuse_address=True, backlog=args.backlog)]
    if args.tls_port:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        ctx.set_alpn_protocols(["http/1.1"])
        sites.append(web.TCPSite(runner, "127.0.0.1", args.tls_port, ssl_context=ctx, reuse_address=True,
                                 backlog=args.backlog))
    for site in sites:
        await site.start()
    print("READY", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="plain ws:// listener on 127.0.0.1")
    parser.add_argument("--tls-port", type=int, help="optional wss:// listener on 127.0.0.1")
    parser.add_argument("--tls-cert", help="PEM certificate chain for --tls-port")
    parser.add_argument("--tls-key", help="PEM key for --tls-port")
    parser.add_argument("--backlog", type=int, default=128, help="listen backlog (default 128, aiohttp's)")
    parser.add_argument("--write", choices=("aiohttp", "direct"), default="aiohttp",
                        help="aiohttp: await ws.send_str (default); direct: one transport.write of the frame")
    args = parser.parse_args(argv)
    if args.tls_port and not (args.tls_cert and args.tls_key):
        parser.error("--tls-port needs --tls-cert and --tls-key")
    raise_fd_limit()
    global DIRECT
    DIRECT = args.write == "direct"
    import uvloop

    uvloop.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

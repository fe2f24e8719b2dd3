"""An aiortc master and aiortc viewers open real data channels, signaling through Signalite.

Run inside a lo-only network namespace. The WSS URLs are presigned by botocore (a real signer),
messages use the KVS envelope the SDKs use (base64 of the JSON RTCSessionDescription). aiortc
does not trickle, so each pair exchanges one SDP_OFFER and one SDP_ANSWER with candidates inside.
Prints one JSON line and exits 0 only if every viewer got its own pong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import aioice.ice  # noqa: E402
import websockets  # noqa: E402
from aiortc import RTCPeerConnection  # noqa: E402

from tests.e2e.peers.kvs import decode, encode, presign  # noqa: E402
from tests.support.server import running_server  # noqa: E402

# aioice skips 127.0.0.1; in a lo-only namespace that leaves no candidates at all.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []








async def run_master(url: str, ctx: ssl.SSLContext, ready: asyncio.Event, stop: asyncio.Event) -> list[str]:
    seen: list[str] = []
    pcs: list[RTCPeerConnection] = []
    async with websockets.connect(url, ssl=ctx) as ws:
        ready.set()

        async def handle(frame: dict) -> None:
            if frame.get("messageType") != "SDP_OFFER":
                return
            viewer = frame["senderClientId"]
            pc = RTCPeerConnection()
            pcs.append(pc)

            @pc.on("datachannel")
            def on_dc(channel) -> None:  # type: ignore[no-untyped-def]
                @channel.on("message")
                def on_message(msg: str) -> None:
                    seen.append(f"{viewer}:{msg}")
                    channel.send(f"pong: {msg}")

            await pc.setRemoteDescription(decode(frame["messagePayload"]))
            await pc.setLocalDescription(await pc.createAnswer())
            await ws.send(json.dumps({"action": "SDP_ANSWER", "recipientClientId": viewer,
                                      "messagePayload": encode(pc.localDescription)}))

        reader = asyncio.create_task(_read(ws, handle))
        await stop.wait()
        reader.cancel()
    for pc in pcs:
        await pc.close()
    return seen


async def _read(ws, handle) -> None:  # type: ignore[no-untyped-def]
    async for raw in ws:
        if raw:
            await handle(json.loads(raw))


async def run_viewer(url: str, ctx: ssl.SSLContext, client_id: str, timeout: float) -> list[str]:
    got: list[str] = []
    done = asyncio.Event()
    pc = RTCPeerConnection()
    channel = pc.createDataChannel("kvsDataChannel")

    @channel.on("open")
    def on_open() -> None:
        channel.send(f"ping from {client_id}")

    @channel.on("message")
    def on_message(msg: str) -> None:
        got.append(msg)
        done.set()

    async with websockets.connect(url, ssl=ctx) as ws:
        await pc.setLocalDescription(await pc.createOffer())
        await ws.send(json.dumps({"action": "SDP_OFFER", "messagePayload": encode(pc.localDescription)}))

        async def handle(frame: dict) -> None:
            if frame.get("messageType") == "SDP_ANSWER":
                await pc.setRemoteDescription(decode(frame["messagePayload"]))

        reader = asyncio.create_task(_read(ws, handle))
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except TimeoutError:
            pass
        reader.cancel()
    await pc.close()
    return got


async def amain(viewers: int, timeout: float, server_args: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp) / "srv", *server_args) as srv:
        kv = srv.boto()
        arn = kv.create_signaling_channel(ChannelName="aiortc-pair")["ChannelARN"]
        eps = kv.get_signaling_channel_endpoint(
            ChannelARN=arn, SingleMasterChannelEndpointConfiguration={"Protocols": ["WSS"], "Role": "MASTER"})
        wss = eps["ResourceEndpointList"][0]["ResourceEndpoint"]
        ctx = ssl.create_default_context(cafile=srv.ca)
        ready, stop = asyncio.Event(), asyncio.Event()
        master = asyncio.create_task(run_master(presign(wss, arn, None), ctx, ready, stop))
        await asyncio.wait_for(ready.wait(), timeout)
        ids = [f"aiortc-viewer-{i}" for i in range(viewers)]
        results = await asyncio.gather(*(run_viewer(presign(wss, arn, cid), ctx, cid, timeout) for cid in ids))
        stop.set()
        seen = await master
        got = dict(zip(ids, results))
        ok = all(got[cid] == [f"pong: ping from {cid}"] for cid in ids)
        print(json.dumps({"ok": ok, "viewer_messages": got, "master_messages": seen,
                          **({} if ok else {"server_log": srv.log()[-4000:]})}))
        return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--viewers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--server-arg", action="append", default=[], help="extra flag for signalite serve")
    args = parser.parse_args()
    return asyncio.run(amain(args.viewers, args.timeout, args.server_arg))


if __name__ == "__main__":
    raise SystemExit(main())

"""An aiortc master streams generated H.264 video and Opus audio into Signalite's storage peer.

Run inside a lo-only network namespace. It starts the real server, creates a stream and a
channel with media storage, connects an aiortc master over WSS (a botocore-presigned URL), calls
JoinStorageSession with boto3's ``kinesis-video-webrtc-storage`` client on the WEBRTC endpoint,
answers the storage peer's offer with a generated video track (320x240, 30 fps, encoded by
aiortc as H.264: the offer allows nothing else) and a generated Opus tone, then:

* ``--replace``: after the first session delivered some frames, calls JoinStorageSession again;
  the server must close the first storage peer's connection (the master sees it close) and the
  second must record too;
* ``--end``: the master leaves (closes its peer connections and its socket), or the channel is
  deleted, or the server is stopped (SIGTERM) while the master streams; then it waits for the
  recordings to be finished (``complete`` in ``signalite admin recordings --json``).

Each recording is opened with PyAV and decoded. Prints one JSON line, exits 0 if the flow ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import aioice.ice  # noqa: E402
import av  # noqa: E402
import websockets  # noqa: E402
from aiortc import RTCPeerConnection  # noqa: E402
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack  # noqa: E402

from tests.e2e.peers.kvs import decode, encode, presign  # noqa: E402
from tests.support.media import endpoints, finished_recordings, inspect, storage_channel  # noqa: E402
from tests.support.server import running_server  # noqa: E402

# aioice skips 127.0.0.1; in a lo-only namespace that leaves this (test) master no candidates.
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"] if use_ipv4 else []

WIDTH, HEIGHT = 320, 240


class Pattern(VideoStreamTrack):
    """Moving bars at 30 fps (aiortc paces ``recv``); counts what it produced."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        rows = [bytes((x * 3 + shift) % 256 for x in range(WIDTH)) for shift in range(0, 256, 8)]
        self._lumas = [row * HEIGHT for row in rows]
        self._chroma = bytes([128]) * (WIDTH // 2 * HEIGHT // 2)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(self._lumas[self.sent % len(self._lumas)])
        frame.planes[1].update(self._chroma)
        frame.planes[2].update(self._chroma)
        frame.pts, frame.time_base = pts, time_base
        self.sent += 1
        return frame


class Tone(AudioStreamTrack):
    """A 440 Hz tone, 20 ms frames of 48 kHz mono (aiortc paces ``recv``)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        samples = [int(8000 * math.sin(2 * math.pi * 440 * i / 48000)) for i in range(960)]
        self._pcm = b"".join(s.to_bytes(2, "little", signed=True) for s in samples)

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()  # paced silence with the right pts
        frame.planes[0].update(self._pcm[: frame.planes[0].buffer_size])
        self.sent += 1
        return frame








class Master:
    """A KVS master that answers every offer with a fresh pair of generated tracks."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.peers: dict[str, dict[str, Any]] = {}
        self.offers: list[str] = []
        self.changed = asyncio.Event()
        self.offer_sdps: list[str] = []

    async def read(self) -> None:
        async for raw in self.ws:
            if not raw:
                continue
            frame = json.loads(raw)
            if frame.get("messageType") == "SDP_OFFER":
                await self.answer(frame["senderClientId"], frame["messagePayload"])

    async def answer(self, sender: str, payload: str) -> None:
        self.offers.append(sender)
        offer = decode(payload)
        self.offer_sdps.append(offer.sdp)
        pc = RTCPeerConnection()
        video, audio = Pattern(), Tone()
        entry = {"pc": pc, "video": video, "audio": audio, "states": []}
        self.peers[sender] = entry

        @pc.on("connectionstatechange")
        def on_state() -> None:
            entry["states"].append(pc.connectionState)
            self.changed.set()

        await pc.setRemoteDescription(offer)
        pc.addTrack(video)
        pc.addTrack(audio)
        await pc.setLocalDescription(await pc.createAnswer())
        await self.ws.send(json.dumps({"action": "SDP_ANSWER", "recipientClientId": sender,
                                       "messagePayload": encode(pc.localDescription)}))
        self.changed.set()

    async def until(self, predicate: Any, timeout: float, what: str) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                try:
                    await asyncio.wait_for(self.changed.wait(), 0.1)  # states, or frames produced since
                except TimeoutError:
                    pass
        del what


async def amain(args: argparse.Namespace) -> int:
    result: dict[str, Any] = {"ok": False}
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp) / "srv", *args.server_arg) as srv:
        try:
            kv = srv.boto()
            arn, _ = storage_channel(kv, "cam")
            eps = endpoints(kv, arn)
            storage = srv.boto("kinesis-video-webrtc-storage", endpoint=eps["WEBRTC"])
            ctx = ssl.create_default_context(cafile=srv.ca)
            async with websockets.connect(presign(eps["WSS"], arn), ssl=ctx) as ws:
                master = Master(ws)
                reader = asyncio.create_task(master.read())
                began = time.monotonic()
                await asyncio.to_thread(storage.join_storage_session, channelArn=arn)
                await master.until(lambda: master.offers and master.peers[master.offers[0]]["video"].sent >= args.frames,
                                   args.timeout, "first session streams")
                first = master.offers[0]
                if args.replace:
                    await asyncio.to_thread(storage.join_storage_session, channelArn=arn)
                    await master.until(lambda: len(master.offers) >= 2, args.timeout, "second offer")
                    second = master.offers[1]
                    # The server stops the first storage peer: its connection closes on the master's side.
                    await master.until(lambda: master.peers[first]["pc"].connectionState in ("closed", "failed"),
                                       args.timeout, "first session closed by the server")
                    await master.until(lambda: master.peers[second]["video"].sent >= args.frames,
                                       args.timeout, "second session streams")
                result["offer_has_h264_and_opus"] = all(
                    "H264/90000" in sdp and "opus/48000" in sdp and "VP8" not in sdp and "a=recvonly" in sdp
                    for sdp in master.offer_sdps)
                last = master.peers[master.offers[-1]]["pc"]
                if args.end == "delete":
                    await asyncio.to_thread(kv.delete_signaling_channel, ChannelARN=arn)
                elif args.end == "shutdown":
                    result["server_exit"] = await asyncio.to_thread(srv.stop)
                if args.end != "leave":  # the server ends the storage peer: its connection closes
                    await master.until(lambda: last.connectionState in ("closed", "failed"), args.timeout,
                                       "storage peer closed by the server")
                result["senders"] = master.offers
                result["sent"] = {sender: {"video": p["video"].sent, "audio": p["audio"].sent,
                                           "states": p["states"]} for sender, p in master.peers.items()}
                for entry in master.peers.values():
                    await entry["pc"].close()
                reader.cancel()
            result["streamed_seconds"] = time.monotonic() - began
            listed = await asyncio.to_thread(finished_recordings, srv.data_dir, len(master.offers), args.timeout)
            result["recordings"] = listed
            result["inspected"] = [inspect(r["path"]) for r in listed]
            result["ok"] = True
        except Exception as exc:  # report what happened; the test asserts on it
            result["error"] = f"{type(exc).__name__}: {exc}"
        result["server_log"] = srv.log()[-6000:]
    print(json.dumps(result))
    return 0 if result["ok"] else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replace", action="store_true", help="call JoinStorageSession a second time")
    parser.add_argument("--frames", type=int, default=60, help="video frames to stream per session")
    parser.add_argument("--end", choices=("leave", "delete", "shutdown"), default="leave",
                        help="how the last session ends: the master leaves, the channel is deleted, "
                             "or the server shuts down (SIGTERM)")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--server-arg", action="append", default=[], help="extra flag for signalite serve")
    return asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())

"""JoinStorageSessionAsViewer with aiortc peers against the real server (issue 8, item 3).

Run inside a lo-only network namespace. It starts the real server, creates a channel with media
storage, connects the aiortc master of ``aiortc_storage.py`` (generated H.264 video and an Opus
tone; it answers every offer), and:

1. unless ``--viewer-first``: calls JoinStorageSession and waits until the master streams;
2. connects an aiortc viewer over WSS (ConnectAsViewer, client id ``viewer-1``) and calls
   JoinStorageSessionAsViewer with boto3's ``kinesis-video-webrtc-storage`` client on the
   viewer's WEBRTC endpoint (with ``--viewer-first`` this is the first storage call: the session
   is created by it and offers to the master itself);
3. the viewer answers the SDP_OFFER the storage session sends it (as the master would: no
   senderClientId), with a 1 kHz Opus tone as its audio, and sends its candidates as
   ICE_CANDIDATE messages too (they must go to the session, not to the master);
4. waits until the viewer has decoded ``--frames`` of the master's video frames and received
   audio, and has sent two seconds of its tone; then the master leaves, which ends the session;
5. waits for the two recordings (the master's, the viewer's audio) to be complete and opens
   each with PyAV.

Prints one JSON line, exits 0 if the flow ran.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import ssl
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import websockets  # noqa: E402
from aiortc import RTCPeerConnection  # noqa: E402
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack  # noqa: E402

from tests.e2e.peers.aiortc_storage import Master  # noqa: E402  (also lets aioice use 127.0.0.1)
from tests.e2e.peers.kvs import decode, encode, presign  # noqa: E402
from tests.support.media import endpoints, finished_recordings, inspect, storage_channel, tone_hz  # noqa: E402
from tests.support.server import running_server  # noqa: E402

VIEWER = "viewer-1"


class ViewerTone(AudioStreamTrack):
    """A continuous 1 kHz tone (nothing like the master's), in the frames aiortc paces; the
    viewer's recording must hold this one."""

    HZ = 1000

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0
        self._at = 0

    async def recv(self) -> av.AudioFrame:
        frame = await super().recv()  # paced silence with the right pts, s16 mono
        rate, n = frame.sample_rate, frame.samples
        pcm = b"".join(int(8000 * math.sin(2 * math.pi * self.HZ * (self._at + i) / rate)).to_bytes(
            2, "little", signed=True) for i in range(n))
        self._at += n
        frame.planes[0].update(pcm)
        self.sent += 1
        return frame


class RecordingMaster(Master):
    """The master of ``aiortc_storage.py``, noting who sent it what."""

    def __init__(self, ws: Any) -> None:
        super().__init__(ws)
        self.received: list[tuple[str, str | None]] = []

    async def read(self) -> None:
        async for raw in self.ws:
            if not raw:
                continue
            frame = json.loads(raw)
            self.received.append((frame.get("messageType"), frame.get("senderClientId")))
            if frame.get("messageType") == "SDP_OFFER":
                await self.answer(frame["senderClientId"], frame["messagePayload"])


class Viewer:
    """A KVS viewer in a storage session: it answers the offers it gets, as the KVS JS SDK's
    sample page does in its ingestion mode."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.offers: list[dict[str, Any]] = []
        self.pc: RTCPeerConnection | None = None
        self.tone = ViewerTone()
        self.frames = {"video": 0, "audio": 0}
        self.sizes: set[tuple[int, int]] = set()
        self.states: list[str] = []
        self.candidates_sent = 0
        self._readers: list[asyncio.Task[None]] = []

    async def read(self) -> None:
        async for raw in self.ws:
            if not raw:
                continue
            frame = json.loads(raw)
            if frame.get("messageType") == "SDP_OFFER":
                await self.answer(frame)

    async def answer(self, frame: dict[str, Any]) -> None:
        offer = decode(frame["messagePayload"])
        self.offers.append({"sender": frame.get("senderClientId"), "sdp": offer.sdp})
        if self.pc is not None:  # a newer offer replaces the connection, as the SDK's page does
            await self.pc.close()
        pc = self.pc = RTCPeerConnection()

        @pc.on("connectionstatechange")
        def on_state() -> None:
            self.states.append(pc.connectionState)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._readers.append(asyncio.ensure_future(self._count(track)))

        await pc.setRemoteDescription(offer)
        pc.addTrack(self.tone)
        await pc.setLocalDescription(await pc.createAnswer())
        await self.ws.send(json.dumps({"action": "SDP_ANSWER", "messagePayload": encode(pc.localDescription)}))
        # Its candidates are in the answer already; trickle them as well, as browsers do: the
        # router must send these to the storage session too, not to the master.
        for line in pc.localDescription.sdp.splitlines():
            if line.startswith("a=candidate:"):
                payload = {"candidate": line[2:], "sdpMid": "0", "sdpMLineIndex": 0}
                await self.ws.send(json.dumps({"action": "ICE_CANDIDATE", "messagePayload": _b64(payload)}))
                self.candidates_sent += 1

    async def _count(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.frames[track.kind] += 1
                if track.kind == "video":
                    self.sizes.add((frame.width, frame.height))
        except MediaStreamError:
            pass


def _b64(obj: Any) -> str:
    import base64

    return base64.b64encode(json.dumps(obj).encode()).decode()


async def until(predicate: Any, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


async def amain(args: argparse.Namespace) -> int:
    result: dict[str, Any] = {"ok": False}
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp) / "srv") as srv:
        try:
            kv = srv.boto()
            arn, _ = storage_channel(kv, "cam")
            eps = endpoints(kv, arn)
            viewer_eps = {e["Protocol"]: e["ResourceEndpoint"] for e in kv.get_signaling_channel_endpoint(
                ChannelARN=arn, SingleMasterChannelEndpointConfiguration={
                    "Protocols": ["WSS", "WEBRTC"], "Role": "VIEWER"})["ResourceEndpointList"]}
            storage = srv.boto("kinesis-video-webrtc-storage", endpoint=viewer_eps["WEBRTC"])
            ctx = ssl.create_default_context(cafile=srv.ca)
            async with websockets.connect(presign(eps["WSS"], arn), ssl=ctx) as master_ws:
                master = RecordingMaster(master_ws)
                master_reader = asyncio.create_task(master.read())
                if not args.viewer_first:
                    await asyncio.to_thread(srv.boto("kinesis-video-webrtc-storage", endpoint=eps["WEBRTC"])
                                            .join_storage_session, channelArn=arn)
                    await until(lambda: master.offers and master.peers[master.offers[0]]["video"].sent >= 15,
                                args.timeout)
                async with websockets.connect(presign(viewer_eps["WSS"], arn, VIEWER), ssl=ctx) as viewer_ws:
                    viewer = Viewer(viewer_ws)
                    viewer_reader = asyncio.create_task(viewer.read())
                    status = await asyncio.to_thread(storage.join_storage_session_as_viewer, channelArn=arn,
                                                     clientId=VIEWER)
                    result["join_status"] = status["ResponseMetadata"]["HTTPStatusCode"]
                    await until(lambda: viewer.frames["video"] >= args.frames and viewer.frames["audio"] > 0
                                and viewer.tone.sent >= 100, args.timeout)
                    result["master_offers"] = master.offers
                    result["master_received"] = master.received
                    # The master leaves: the session ends, and with it the viewer's connection.
                    for entry in master.peers.values():
                        await entry["pc"].close()
                    master_reader.cancel()
                    assert viewer.pc is not None
                    await until(lambda: viewer.pc is not None and viewer.pc.connectionState in ("closed", "failed"),
                                args.timeout)
                    result["viewer"] = {"offers": viewer.offers, "frames": viewer.frames, "sizes": sorted(viewer.sizes),
                                        "tone_sent": viewer.tone.sent, "states": viewer.states,
                                        "candidates_sent": viewer.candidates_sent}
                    await viewer.pc.close()
                    viewer_reader.cancel()
            listed = await asyncio.to_thread(finished_recordings, srv.data_dir, 2, args.timeout)
            result["recordings"] = listed
            result["inspected"] = [{**inspect(r["path"]), "tone_hz": tone_hz(r["path"])} for r in listed]
            result["ok"] = True
        except Exception as exc:  # report what happened; the test asserts on it
            result["error"] = f"{type(exc).__name__}: {exc}"
        result["server_log"] = srv.log()[-6000:]
    print(json.dumps(result))
    return 0 if result["ok"] else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--viewer-first", action="store_true",
                        help="JoinStorageSessionAsViewer before any JoinStorageSession (it creates the session)")
    parser.add_argument("--frames", type=int, default=30, help="master video frames the viewer must decode")
    parser.add_argument("--timeout", type=float, default=40.0)
    return asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())

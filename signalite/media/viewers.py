"""JoinStorageSessionAsViewer: the storage peer's connection to each viewer that joins its session.

As on AWS, a viewer does not connect to the master: it connects to the storage session, which
offers to it as if it were the master (an SDP_OFFER without senderClientId, through the router's
per-viewer override: ``Router.join_storage``), sends it the master's video and audio, and records
the viewer's audio. Per viewer, one :class:`ViewerLeg`:

* **Offer**: sendonly H.264 video and sendrecv Opus audio (viewers may send audio, never video,
  as the service requires); aiortc gathers before it offers, so the candidates are in the SDP.
* **The master's media, without re-encoding.** The storage peer's tap already has the master's
  encoded frames; a :class:`Fanout` per kind hands them, as ``av.Packet`` objects, to one
  :class:`ForwardTrack` per viewer, which aiortc's sender packetizes as they are (its
  ``pack`` path for pre-encoded media). Not aiortc's ``MediaRelay``: its buffered proxies queue
  without bound and its unbuffered ones drop arbitrary frames, while a dropped H.264 delta frame
  breaks the picture until the next key frame. Each viewer's video starts at a key frame (the
  master is asked for one, and the last SPS/PPS are put in front of an IDR that lacks them) and
  restarts at one after a drop; its queue is bounded.
* **The viewer's audio** goes to its own recording, a sibling of the session's file:
  ``<start>-<session>.viewer.<client id>.mkv`` (audio only, Opus, same sidecar scheme with
  ``viewer``), listed by ``signalite admin recordings`` and kept for the stream's retention like
  the master's. A sibling rather than a second track of the session's file: Matroska needs every
  track before its first frame, and viewers come and go while the master's file is written.

Not done: the viewer's audio is not forwarded to the master or to other viewers (the master's
connection is receive-only; AWS mixes it in).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import av
from aiortc import RTCConfiguration, RTCIceCandidate, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .peer import encode_description, offer_loopback_when_alone, prefer_codec, tap_encoded_frames
from .recorder import AUDIO, CLOCK, NAL_SPS, VIDEO, MatroskaRecorder, RecordingInfo, is_key_frame, nal_types

if TYPE_CHECKING:  # pragma: no cover
    from .peer import Plan
    from .signaling import SignalingLink

log = logging.getLogger("signalite.storage")

FORWARD_QUEUE = 300
"""Frames a viewer's track may lag behind the master (about 5 s of 30 fps video) before it drops."""
CONNECT_TIMEOUT = 30.0
"""From the viewer's answer to a connected peer connection."""
ANSWER_TIMEOUT = 60.0
"""How long the offer waits for the viewer's answer (the viewer is connected: it just joined)."""


def parameter_sets(access_unit: bytes) -> bytes | None:
    """The NAL units in front of the first slice (SPS, PPS, SEI…) of an access unit that has an
    SPS, start codes included; None if it has none."""
    if NAL_SPS not in nal_types(access_unit):
        return None
    at = 0
    while True:
        at = access_unit.find(b"\x00\x00\x01", at)
        if at < 0 or at + 3 >= len(access_unit):
            return None
        if 1 <= access_unit[at + 3] & 0x1F <= 5:
            start = at - 1 if at > 0 and access_unit[at - 1] == 0 else at
            return access_unit[:start]
        at += 3


class ForwardTrack(MediaStreamTrack):
    """One viewer's copy of one of the master's tracks: encoded frames in, ``av.Packet`` out.

    Closed until :meth:`open` (the viewer's connection is up): frames before that would only
    arrive late, in a burst. Video passes from a key frame on; ``want_key_frame`` asks the
    master for one whenever the track waits for it."""

    def __init__(self, kind: str, want_key_frame: Callable[[], None]) -> None:
        super().__init__()
        self.kind = kind
        self._want_key_frame = want_key_frame
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._open = False
        self._waits = kind == VIDEO
        self._first: int | None = None
        self._time_base = Fraction(1, CLOCK[kind])
        self.forwarded = 0
        self.dropped = 0

    def open(self) -> None:
        self._open = True
        if self._waits:
            self._want_key_frame()

    def push(self, data: bytes, rtp: int, headers: bytes | None = None) -> None:
        """A frame of the master's (``headers``: its latest SPS/PPS, for an IDR without them)."""
        if not self._open or self.readyState != "live":
            return
        if self._queue.qsize() >= FORWARD_QUEUE:
            self.dropped += 1
            self._waits = self.kind == VIDEO
            return
        if self._waits:
            if not is_key_frame(data):
                self.dropped += 1
                self._want_key_frame()
                return
            self._waits = False
        if self.kind == VIDEO and headers and is_key_frame(data) and parameter_sets(data) is None:
            data = headers + data
        if self._first is None:
            self._first = rtp
        packet = av.Packet(data)
        packet.pts = packet.dts = (rtp - self._first) & 0xFFFFFFFF
        packet.time_base = self._time_base
        self._queue.put_nowait(packet)
        self.forwarded += 1

    def finish(self) -> None:
        self._queue.put_nowait(None)

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        return packet


class Fanout:
    """The master's frames of one kind, to every viewer's :class:`ForwardTrack`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.tracks: set[ForwardTrack] = set()
        self._headers: bytes | None = None

    def push(self, data: bytes, rtp: int) -> None:
        if self.kind == VIDEO:
            headers = parameter_sets(data)
            if headers:
                self._headers = headers
        for track in self.tracks:
            track.push(data, rtp, self._headers)


def viewer_session_name(session: str, client_id: str) -> str:
    """The session part of a viewer's recording's file name: ``<session>.viewer.<client id>``, the
    client id shortened (with a hash) where a long one would make the name too long for a file
    system (client ids have up to 256 characters; a file name, 255 bytes)."""
    if len(client_id) > 64:
        client_id = f"{client_id[:40]}~{hashlib.sha256(client_id.encode()).hexdigest()[:16]}"
    return f"{session}.viewer.{client_id}"


class ViewerLeg:
    """The storage peer's connection to one viewer. ``await run()`` returns why it ended."""

    def __init__(self, plan: "Plan", client_id: str, link: "SignalingLink", fanouts: dict[str, Fanout],
                 configuration: RTCConfiguration, want_key_frame: Callable[[], None],
                 now: Callable[[], float]) -> None:
        self.plan = plan
        self.client_id = client_id
        self.link = link
        self.reason = ""
        self.recording: RecordingInfo | None = None
        self.recorder: MatroskaRecorder | None = None
        self.pc = RTCPeerConnection(configuration)
        self._fanouts = fanouts
        self._now = now
        self._tracks = {kind: ForwardTrack(kind, want_key_frame) for kind in (VIDEO, AUDIO)}
        self._ended = asyncio.Event()
        self._answered = asyncio.Event()
        self._connected = asyncio.Event()
        self._pending: list[RTCIceCandidate | None] = []
        self._audio_receiver: Any = None

    @property
    def recording_path(self) -> Path | None:
        return self.recorder.path if self.recorder is not None else None

    @property
    def forwarded(self) -> dict[str, int]:
        return {kind: track.forwarded for kind, track in self._tracks.items()}

    def end(self, reason: str) -> None:
        if not self._ended.is_set():
            self.reason = reason
            self._ended.set()

    async def run(self) -> str:
        try:
            await self._offer()
            waiting = asyncio.ensure_future(self._watch())
            try:
                await self._ended.wait()
            finally:
                waiting.cancel()
        finally:
            await self._teardown()
        return self.reason

    async def _offer(self) -> None:
        pc = self.pc
        video = pc.addTransceiver(self._tracks[VIDEO], direction="sendonly")
        prefer_codec(video, VIDEO, "video/h264")
        audio = pc.addTransceiver(self._tracks[AUDIO], direction="sendrecv")
        prefer_codec(audio, AUDIO, "audio/opus")
        self._audio_receiver = audio.receiver
        tap_encoded_frames(audio.receiver, self._record)
        offer_loopback_when_alone(pc)
        pc.on("connectionstatechange", self._on_state)
        await pc.setLocalDescription(await pc.createOffer())
        await self.link.send_to(self.client_id, "SDP_OFFER", encode_description(pc.localDescription))

    async def _watch(self) -> None:
        try:
            await asyncio.wait_for(self._answered.wait(), ANSWER_TIMEOUT)
        except TimeoutError:
            self.end(f"the viewer sent no SDP_ANSWER within {ANSWER_TIMEOUT:g} s")
            return
        try:
            await asyncio.wait_for(self._connected.wait(), CONNECT_TIMEOUT)
        except TimeoutError:
            self.end(f"the viewer's peer connection did not connect within {CONNECT_TIMEOUT:g} s of the answer")

    def _record(self, data: bytes, timestamp: int) -> None:
        if self.recorder is not None:
            self.recorder.push(AUDIO, data, timestamp)

    async def on_answer(self, desc: dict[str, Any]) -> None:
        if self._answered.is_set() or self._ended.is_set():
            return
        sdp = desc.get("sdp")
        if desc.get("type", "answer") != "answer" or not isinstance(sdp, str):
            self.end("the viewer's SDP_ANSWER is not an answer")
            return
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except ValueError as exc:
            self.end(f"the viewer's SDP_ANSWER is not usable: {exc}")
            return
        self._answered.set()
        log.info("storage session %s: viewer %s answered", self.plan.session, self.client_id)
        receiving = any(t.receiver is self._audio_receiver and t.currentDirection in ("sendrecv", "recvonly")
                        for t in self.pc.getTransceivers())
        if receiving:
            plan = self.plan
            self.recorder = MatroskaRecorder(
                plan.media_root, plan.stream_name, viewer_session_name(plan.session, self.client_id), {AUDIO},
                {"stream_arn": plan.stream_arn, "channel_arn": plan.channel_arn, "viewer": self.client_id},
                now=self._now, on_failure=lambda exc: log.warning(
                    "storage session %s: recording viewer %s's audio failed: %s", plan.session, self.client_id, exc))
        pending, self._pending = self._pending, []
        for candidate in pending:
            await self._add_candidate(candidate)

    async def on_candidate(self, candidate: RTCIceCandidate | None) -> None:
        if not self._answered.is_set():
            self._pending.append(candidate)
        else:
            await self._add_candidate(candidate)

    async def _add_candidate(self, candidate: RTCIceCandidate | None) -> None:
        try:
            await self.pc.addIceCandidate(candidate)
        except Exception as exc:  # an unresolvable mDNS name, an unknown mid: one candidate less
            log.debug("storage session %s: viewer %s's candidate not added: %s", self.plan.session,
                      self.client_id, exc)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and not self._connected.is_set():
            self._connected.set()
            for kind, track in self._tracks.items():
                self._fanouts[kind].tracks.add(track)
                track.open()
        elif state in ("failed", "closed"):
            self.end(f"the viewer's peer connection is {state}")

    async def _teardown(self) -> None:
        for kind, track in self._tracks.items():
            self._fanouts[kind].tracks.discard(track)
            track.finish()
        try:
            await asyncio.wait_for(self.pc.close(), 10)
        except Exception:
            log.warning("storage session %s: closing viewer %s's peer connection failed", self.plan.session,
                        self.client_id, exc_info=True)
        if self.recorder is not None:
            self.recording = await self.recorder.close()

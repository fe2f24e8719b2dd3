"""The storage peer: an aiortc peer connection that offers to the channel's master, receives its
H.264 video and Opus audio, and hands the encoded frames to the recorder (and, through
``viewers``, to the viewers that joined with JoinStorageSessionAsViewer).

It is the *controlling* peer, as AWS's storage session is: it sends the SDP_OFFER (recvonly
H.264 video and Opus audio transceivers; aiortc gathers its candidates before the offer, so they
are in the SDP), applies the master's SDP_ANSWER, adds the ICE candidates the master trickles
(buffered until the answer is applied) and records what arrives.

Two things aiortc has no public API for, each done on this peer's own objects only:

* **Encoded frames.** aiortc's receiver reassembles each frame from RTP and queues it for its
  decoder thread. :func:`tap_encoded_frames` puts a stand-in for that one receiver's queue in place
  before the receiver starts: frames go to the recorder as they are (no decoding, no re-encoding),
  and the end-of-stream marker still ends the decoder thread and the track as before.
* **Loopback candidates.** aioice leaves out 127.0.0.1. Where the host has no other address (a
  loopback-only network namespace, an offline machine), :func:`offer_loopback_when_alone` adds
  127.0.0.1 host candidates to this peer's gatherers, so a master on the same host can connect.

Viewers (JoinStorageSessionAsViewer): :meth:`StoragePeer.add_viewer` takes a viewer into the
session (a ``viewers.ViewerLeg`` per viewer, at most ``sessions.MAX_VIEWERS``; a newer join of the
same client id replaces its leg, as on AWS). Messages from the seat are told apart by their
sender: the master's have none, a viewer's carry its client id. Legs end with the session.

ICE servers: none by default (host candidates; the storage peer runs on the server, which the
master reaches anyway); a list in the GetIceServerConfig shape can be given.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import queue
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import aioice.ice
from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from ..clock import Clock, wait_for
from .recorder import AUDIO, VIDEO, MatroskaRecorder, RecordingInfo
from .signaling import SignalingLink

if TYPE_CHECKING:  # pragma: no cover
    from .viewers import ViewerLeg

log = logging.getLogger("signalite.storage")
if logging.getLogger().getEffectiveLevel() > logging.DEBUG and logging.getLogger("aioice").level == logging.NOTSET:
    # aioice logs every connectivity check at INFO: a line per candidate pair per session in the
    # server's log. Its warnings stay; ``--log-level debug`` shows everything.
    logging.getLogger("aioice").setLevel(logging.WARNING)

CONNECT_TIMEOUT = 30.0
"""From the answer to a connected peer connection (ICE and DTLS)."""
ANSWER_MARGIN = 15.0
"""Beyond the channel's MessageTtlSeconds (how long the offer waits for an offline master)."""
KEY_FRAME_INTERVAL = 1.0
"""At most one key-frame request (RTCP PLI) per this many seconds."""
_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"


@dataclass(frozen=True)
class Plan:
    """Everything a storage session needs to know, fixed when JoinStorageSession is called."""

    channel_arn: str
    stream_arn: str
    stream_name: str
    session: str
    client_id: str
    media_root: Path
    answer_timeout: float
    ice_servers: list[dict[str, Any]] = field(default_factory=list)


# --- the two aiortc extensions -----------------------------------------------------------------

class _EncodedTap:
    """Stands in for an ``RTCRtpReceiver``'s decoder queue: ``put((codec, frame))`` comes from the
    receiver on the event loop and goes to ``sink(frame.data, frame.timestamp)``; ``put(None)``
    (the receiver stopping) reaches the decoder thread's ``get()``, which then ends the track."""

    def __init__(self, sink: Callable[[bytes, int], None]) -> None:
        self._sink = sink
        self._end: queue.SimpleQueue[None] = queue.SimpleQueue()

    def put(self, item: Any) -> None:
        if item is None:
            self._end.put(None)
            return
        try:
            _codec, frame = item
            self._sink(frame.data, frame.timestamp)
        except Exception:  # the receiver's RTP path must never see a recorder problem
            log.exception("storage peer: dropping a frame")

    def get(self, *args: Any, **kwargs: Any) -> None:
        return self._end.get()


def tap_encoded_frames(receiver: RTCRtpReceiver, sink: Callable[[bytes, int], None]) -> None:
    """Send ``receiver``'s reassembled frames to ``sink`` instead of its decoder. Must be called
    before the receiver starts (before the remote description is applied)."""
    if not hasattr(receiver, _DECODER_QUEUE):
        raise RuntimeError("this aiortc version has no receiver decoder queue to tap; "
                           "Signalite's storage peer needs aiortc 1.x (tested with 1.16)")
    setattr(receiver, _DECODER_QUEUE, _EncodedTap(sink))


def offer_loopback_when_alone(pc: RTCPeerConnection) -> bool:
    """Add 127.0.0.1 host candidates to ``pc``'s gathering if the host has no other address."""
    if aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True):
        return False
    patched: set[int] = set()
    for transceiver in pc.getTransceivers():
        connection: Any = transceiver.receiver.transport.transport.iceGatherer._connection
        if id(connection) in patched or not hasattr(connection, "_local_candidates"):
            continue
        patched.add(id(connection))
        original = connection.gather_candidates

        async def gather(connection: Any = connection, original: Callable[[], Any] = original) -> None:
            await original()
            if not any(c.host == "127.0.0.1" for c in connection.local_candidates):
                connection._local_candidates += await connection.get_component_candidates(
                    component=1, addresses=["127.0.0.1"])

        connection.gather_candidates = gather
    return bool(patched)


# --- KVS message payloads ----------------------------------------------------------------------

def encode_description(desc: RTCSessionDescription) -> str:
    """What the KVS SDKs send and expect: base64 of the JSON ``{"type", "sdp"}``."""
    return base64.b64encode(json.dumps({"type": desc.type, "sdp": desc.sdp}).encode()).decode()


def decode_payload(payload: str) -> dict[str, Any]:
    """The JSON object inside a base64 messagePayload (ValueError if it is not one)."""
    try:
        value = json.loads(base64.b64decode(payload, validate=False))
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"not base64 JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def parse_candidate(obj: dict[str, Any]) -> RTCIceCandidate | None:
    """An ICE_CANDIDATE payload (``{"candidate", "sdpMid", "sdpMLineIndex"}``) as aiortc's
    candidate; None for the end-of-candidates marker (an empty candidate)."""
    text = obj.get("candidate") or ""
    if not isinstance(text, str):
        raise ValueError("candidate is not a string")
    if not text:
        return None
    if text.startswith("candidate:"):
        text = text[len("candidate:"):]
    candidate = candidate_from_sdp(text)
    mid, index = obj.get("sdpMid"), obj.get("sdpMLineIndex")
    candidate.sdpMid = str(mid) if mid is not None else None
    candidate.sdpMLineIndex = int(index) if isinstance(index, (int, str)) and str(index).isdigit() else None
    if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
        candidate.sdpMLineIndex = 0
    return candidate


def ice_servers(entries: list[dict[str, Any]]) -> list[RTCIceServer]:
    """GetIceServerConfig entries (``Uris``, ``Username``, ``Password``) as aiortc servers."""
    out = []
    for entry in entries:
        urls = entry.get("Uris") or entry.get("urls") or []
        if urls:
            out.append(RTCIceServer(urls=list(urls), username=entry.get("Username") or entry.get("username"),
                                    credential=entry.get("Password") or entry.get("credential")))
    return out


def prefer_codec(transceiver: RTCRtpTransceiver, kind: str, mime: str) -> None:
    """Offer only ``mime`` (and its RTX) on ``transceiver``."""
    capabilities = RTCRtpReceiver.getCapabilities(kind)
    assert capabilities is not None
    codecs = [c for c in capabilities.codecs if c.mimeType.lower() in (mime, f"{kind}/rtx")]
    transceiver.setCodecPreferences(codecs)


# --- the peer ----------------------------------------------------------------------------------

class StoragePeer:
    """One storage session's peer connection. ``await run()`` returns why it ended; ``end(reason)``
    (from anywhere on the event loop) makes it end."""

    def __init__(self, plan: Plan, link: SignalingLink, clock: Clock) -> None:
        self.plan = plan
        self.link = link
        self.clock = clock
        self.reason = ""
        self.recording: RecordingInfo | None = None
        self.recorder: MatroskaRecorder | None = None
        self._ended = asyncio.Event()
        self._answered = asyncio.Event()
        self._connected = asyncio.Event()
        self._pending: list[RTCIceCandidate | None] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._receivers: dict[str, RTCRtpReceiver] = {}
        self._transceivers: dict[str, RTCRtpTransceiver] = {}
        self._live_tracks = 0
        self._last_key_request = 0.0
        self.pc: RTCPeerConnection | None = None
        from . import viewers  # it builds on this module's helpers

        self._viewers = viewers
        self._fanouts = {kind: viewers.Fanout(kind) for kind in (VIDEO, AUDIO)}
        self._legs: dict[str, "ViewerLeg"] = {}
        self._leg_tasks: set[asyncio.Task[None]] = set()
        self.viewer_recordings: list[RecordingInfo] = []
        self.viewers_at_end: frozenset[str] = frozenset()
        """The viewers in the session when it ended (a session replaced on another node hands them over)."""

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    def end(self, reason: str) -> None:
        if not self._ended.is_set():
            self.reason = reason
            self.viewers_at_end = frozenset(self._legs)
            self._ended.set()

    @property
    def recording_path(self) -> Path | None:
        return self.recorder.path if self.recorder is not None else None

    @property
    def recording_paths(self) -> set[Path]:
        """The recordings being written: the master's and each viewer's."""
        paths = {leg.recording_path for leg in self._legs.values()} | {self.recording_path}
        return {p for p in paths if p is not None}

    # --- viewers (JoinStorageSessionAsViewer) -------------------------------------------------
    @property
    def viewers(self) -> set[str]:
        return set(self._legs)

    def add_viewer(self, client_id: str) -> None:
        """Take viewer ``client_id`` into the session and offer to it; a leg it already has is
        replaced ("the new request takes precedence"). The caller checks the viewer limit."""
        if self._ended.is_set():
            return
        old = self._legs.get(client_id)
        if old is not None:
            old.end("replaced by a newer JoinStorageSessionAsViewer")
        leg = self._viewers.ViewerLeg(
            self.plan, client_id, self.link, self._fanouts,
            RTCConfiguration(iceServers=ice_servers(self.plan.ice_servers)), self._want_key_frame, self.clock.now)
        self._legs[client_id] = leg
        self.link.join(client_id)
        task = asyncio.get_running_loop().create_task(self._run_leg(leg))
        self._leg_tasks.add(task)
        task.add_done_callback(self._leg_tasks.discard)

    async def _run_leg(self, leg: "ViewerLeg") -> None:
        reason = "failed"
        try:
            reason = await leg.run()
        except Exception:  # one viewer's failure ends its leg, never the session
            log.exception("storage session %s: viewer %s failed", self.plan.session, leg.client_id)
        finally:
            if self._legs.get(leg.client_id) is leg:
                del self._legs[leg.client_id]
                self.link.leave(leg.client_id)
            if leg.recording is not None:
                self.viewer_recordings.append(leg.recording)
        log.info("storage session %s: viewer %s left (%s); forwarded %s; recorded %s", self.plan.session,
                 leg.client_id, reason, leg.forwarded, leg.recording.path if leg.recording else "nothing")

    async def _from_viewer(self, sender: str, kind: str, payload: str) -> None:
        leg = self._legs.get(sender)
        if leg is None:
            return
        try:
            obj = decode_payload(payload)
            if kind == "SDP_ANSWER":
                await leg.on_answer(obj)
            elif kind == "ICE_CANDIDATE":
                await leg.on_candidate(parse_candidate(obj))
        except (ValueError, KeyError, IndexError) as exc:
            log.debug("storage session %s: ignoring viewer %s's malformed %s: %s", self.plan.session, sender,
                      kind, exc)

    async def run(self) -> str:
        try:
            await self._start()
            await self._ended.wait()
        finally:
            await self._teardown()
        return self.reason

    # --- setup ------------------------------------------------------------------------------
    async def _start(self) -> None:
        pc = self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers(self.plan.ice_servers)))
        for kind, mime in ((VIDEO, "video/h264"), (AUDIO, "audio/opus")):
            transceiver = pc.addTransceiver(kind, direction="recvonly")
            prefer_codec(transceiver, kind, mime)
            tap_encoded_frames(transceiver.receiver, self._sink(kind))
            self._receivers[kind] = transceiver.receiver
            self._transceivers[kind] = transceiver
        offer_loopback_when_alone(pc)
        pc.on("connectionstatechange", self._on_state)
        pc.on("track", self._on_track)
        await pc.setLocalDescription(await pc.createOffer())
        await self.link.send("SDP_OFFER", encode_description(pc.localDescription))
        self._spawn(self._read())
        self._spawn(self._watch())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("storage session %s: %s", self.plan.session, task.exception(), exc_info=task.exception())
            self.end(f"internal error: {task.exception()}")

    def _sink(self, kind: str) -> Callable[[bytes, int], None]:
        fanout = self._fanouts[kind]

        def push(data: bytes, timestamp: int) -> None:
            if self.recorder is not None:
                self.recorder.push(kind, data, timestamp)
            if fanout.tracks:
                fanout.push(data, timestamp)
        return push

    # --- signaling ----------------------------------------------------------------------------
    async def _read(self) -> None:
        while True:
            msg = await self.link.receive()
            if msg is None:
                self.end(f"its seat in the channel ended: {self.link.ended_by or 'closed'} "
                         "(channel deleted, GO_AWAY, idle, or the server stopping)")
                return
            if msg.sender is not None:
                await self._from_viewer(msg.sender, msg.kind, msg.payload)
            elif msg.kind == "SDP_ANSWER":
                await self._on_answer(msg.payload)
            elif msg.kind == "ICE_CANDIDATE":
                await self._on_candidate(msg.payload)
            elif msg.kind == "STATUS_RESPONSE":
                log.warning("storage session %s: the signaling plane refused a message: %s",
                            self.plan.session, msg.status)

    async def _on_answer(self, payload: str) -> None:
        pc = self.pc
        if pc is None or self._answered.is_set():
            return
        try:
            desc = decode_payload(payload)
            sdp = desc["sdp"]
            if desc.get("type", "answer") != "answer" or not isinstance(sdp, str):
                raise ValueError("not an answer")
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        except (ValueError, KeyError) as exc:
            self.end(f"the master's SDP_ANSWER is not usable: {exc}")
            return
        self._answered.set()
        expected = {k for k, t in self._transceivers.items() if t.currentDirection in ("recvonly", "sendrecv")}
        if not expected:
            self.end("the master's answer sends no audio or video")
            return
        plan = self.plan
        self.recorder = MatroskaRecorder(
            plan.media_root, plan.stream_name, plan.session, expected,
            {"stream_arn": plan.stream_arn, "channel_arn": plan.channel_arn}, now=self.clock.now,
            want_key_frame=self._want_key_frame, on_failure=lambda exc: self.end(f"recording failed: {exc}"))
        pending, self._pending = self._pending, []
        for candidate in pending:
            await self._add_candidate(candidate)

    async def _on_candidate(self, payload: str) -> None:
        try:
            candidate = parse_candidate(decode_payload(payload))
        except (ValueError, KeyError, IndexError) as exc:
            log.debug("storage session %s: ignoring a malformed ICE candidate: %s", self.plan.session, exc)
            return
        if not self._answered.is_set():
            self._pending.append(candidate)
        else:
            await self._add_candidate(candidate)

    async def _add_candidate(self, candidate: RTCIceCandidate | None) -> None:
        if self.pc is None:
            return
        try:
            await self.pc.addIceCandidate(candidate)
        except Exception as exc:  # an unresolvable mDNS name, an unknown mid: one candidate less
            log.debug("storage session %s: candidate not added: %s", self.plan.session, exc)

    async def _watch(self) -> None:
        try:
            await wait_for(self.clock, self._answered.wait(), self.plan.answer_timeout)
        except TimeoutError:
            self.end(f"the master sent no SDP_ANSWER within {self.plan.answer_timeout:g} s")
            return
        try:
            await wait_for(self.clock, self._connected.wait(), CONNECT_TIMEOUT)
        except TimeoutError:
            self.end(f"the peer connection did not connect within {CONNECT_TIMEOUT:g} s of the answer")

    # --- media --------------------------------------------------------------------------------
    def _on_state(self) -> None:
        pc = self.pc
        if pc is None:
            return
        state = pc.connectionState
        if state == "connected":
            self._connected.set()
        elif state in ("failed", "closed"):
            self.end(f"the peer connection is {state}")

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._live_tracks += 1
        self._spawn(self._until_ended(track))

    async def _until_ended(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()  # with the tap, this only returns at the end
        except MediaStreamError:
            pass
        self._live_tracks -= 1
        if self._live_tracks <= 0:
            self.end("the master's tracks ended")

    def _want_key_frame(self) -> None:
        now = time.monotonic()
        if now - self._last_key_request < KEY_FRAME_INTERVAL:
            return
        self._last_key_request = now
        receiver = self._receivers.get(VIDEO)
        send_pli = getattr(receiver, "_send_rtcp_pli", None)
        if receiver is None or send_pli is None:
            return
        for source in receiver.getSynchronizationSources():
            self._spawn(self._request_key_frame(send_pli, source.source))

    async def _request_key_frame(self, send_pli: Callable[[int], Any], ssrc: int) -> None:
        try:
            await send_pli(ssrc)
        except Exception as exc:  # a lost request is retried on the next frame that cannot be used
            log.debug("storage session %s: key-frame request failed: %s", self.plan.session, exc)

    # --- teardown -----------------------------------------------------------------------------
    async def _teardown(self) -> None:
        for leg in list(self._legs.values()):
            leg.end(f"the storage session ended: {self.reason}")
        if self._leg_tasks:
            await asyncio.wait(list(self._leg_tasks), timeout=15)
        for task in list(self._tasks):
            task.cancel()
        if self.pc is not None:
            try:
                await asyncio.wait_for(self.pc.close(), 10)
            except Exception:
                log.warning("storage session %s: closing the peer connection failed", self.plan.session,
                            exc_info=True)
        if self.recorder is not None:
            self.recording = await self.recorder.close()
        await self.link.close()

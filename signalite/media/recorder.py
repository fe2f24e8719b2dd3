"""Encoded H.264 and Opus frames into one Matroska file, written on the recorder's own thread.

No re-encoding: the frames the storage peer reassembles from RTP (H.264 access units in Annex B
form, Opus packets) are muxed as they are, by PyAV, with the stream's codec parameters taken from
the media itself: the H.264 SPS/PPS become the track's ``avcC`` (PyAV extracts them from the first
key frame), its width and height come from decoding that one key frame, and the Opus track gets
an ``OpusHead`` (from an Opus encoder context that is opened for its header and never fed).

Threading: :meth:`push` runs on the event loop and only puts the frame on a queue (or drops it);
the file is opened, written and closed on the recorder's thread, so a slow disk never stalls
signaling. When the queue is over :data:`MAX_QUEUE` frames, frames are dropped (video until the
next key frame, which is requested).

Timing: each track's frames are placed by their RTP timestamps (90 kHz video, 48 kHz audio)
relative to the track's first frame, and the tracks are aligned by the arrival time of their first
frames (no RTCP sender-report mapping: good to within the network jitter of those two frames).
The file starts at the first frame that can be written (video: a key frame with its SPS) once
every expected track has one, or :data:`START_WINDOW` seconds after the first of them; a track
that starts later than that is not recorded (logged).
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable

import av

from . import library

log = logging.getLogger("signalite.storage")

VIDEO, AUDIO = "video", "audio"
CLOCK = {VIDEO: 90_000, AUDIO: 48_000}
START_WINDOW = 5.0
MAX_QUEUE = 3000
"""About 30 s of 30 fps video with 50 Opus packets a second."""
NAL_SLICE, NAL_IDR, NAL_SPS = 1, 5, 7


def nal_types(access_unit: bytes) -> list[int]:
    """NAL unit types of an Annex B access unit, up to its first slice (types 1..5).

    Start codes cannot occur inside a NAL unit (emulation prevention), so a plain search for
    ``00 00 01`` finds every unit; the 4-byte form ``00 00 00 01`` contains it.
    """
    types: list[int] = []
    at = access_unit.find(b"\x00\x00\x01")
    while 0 <= at < len(access_unit) - 3:
        kind = access_unit[at + 3] & 0x1F
        types.append(kind)
        if NAL_SLICE <= kind <= NAL_IDR:
            break
        at = access_unit.find(b"\x00\x00\x01", at + 3)
    return types


def is_key_frame(access_unit: bytes) -> bool:
    return NAL_IDR in nal_types(access_unit)


def can_start(access_unit: bytes) -> bool:
    """A video track can start at an IDR frame that carries its SPS (PPS follows it)."""
    types = nal_types(access_unit)
    return NAL_IDR in types and NAL_SPS in types


@dataclass
class Placement:
    """Where a track's frames go on the file's timeline (in the track's clock units)."""

    first_rtp: int
    offset: int
    """Ticks between the file's start and the track's first frame."""
    last: int = -1

    def pts(self, rtp: int) -> int:
        """The frame's timestamp: strictly increasing, as the muxer requires."""
        value = self.offset + rtp - self.first_rtp
        if value <= self.last:
            value = self.last + 1
        self.last = value
        return value


def placements(firsts: dict[str, tuple[int, float]]) -> dict[str, Placement]:
    """Each track's placement from its first frame ``(rtp timestamp, arrival in seconds)``; the
    earliest first frame is the file's start."""
    origin = min(arrival for _, arrival in firsts.values())
    return {kind: Placement(rtp, round((arrival - origin) * CLOCK[kind])) for kind, (rtp, arrival) in firsts.items()}


@dataclass
class _Frame:
    kind: str
    data: bytes
    rtp: int
    arrival: float
    """``time.monotonic()`` when it was pushed (media timing is real time, whatever the clock)."""
    wall: float
    """The server clock's time when it was pushed."""


@dataclass
class RecordingInfo:
    """What the recorder wrote (also the sidecar's content)."""

    path: Path
    start: float
    end: float
    frames: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    width: int = 0
    height: int = 0


class MatroskaRecorder:
    """Records one storage session's media into ``root/<stream>/<start>-<session>.mkv``.

    ``expected`` are the kinds the session negotiated (``{"video", "audio"}``);
    ``meta`` goes into the sidecar (``stream_arn``, ``channel_arn``, ``session``); ``now`` is the
    server's clock (epoch seconds: the recording's start and end, which retention compares with it);
    ``want_key_frame`` is called on the event loop when video needs a key frame to (re)start;
    ``on_failure`` (on the event loop) when the file cannot be written any more.
    """

    def __init__(self, root: Path, stream: str, session: str, expected: set[str], meta: dict[str, Any], *,
                 now: Callable[[], float] = time.time, want_key_frame: Callable[[], None] | None = None,
                 on_failure: Callable[[BaseException], None] | None = None) -> None:
        self.root = root
        self.stream = stream
        self.session = session
        self.expected = set(expected)
        self.meta = dict(meta)
        self._now = now
        self._want_key_frame = want_key_frame
        self._on_failure = on_failure
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[_Frame | None] = queue.SimpleQueue()
        self._video_waits = True
        """Video frames are dropped until one the track can (re)start at."""
        self._closed = False
        self._failed = False
        self._dropped: dict[str, int] = {VIDEO: 0, AUDIO: 0}
        self._done: asyncio.Future[RecordingInfo | None] = self._loop.create_future()
        self.info: RecordingInfo | None = None
        self._thread = threading.Thread(target=self._run, name=f"recorder-{session}", daemon=True)
        self._thread.start()

    # --- event loop side --------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        return self.info.path if self.info is not None else None

    def push(self, kind: str, data: bytes, rtp: int) -> None:
        """A reassembled frame of ``kind`` with its (unwrapped) RTP timestamp. Never raises."""
        if self._closed or self._failed or not data:
            return
        if self._queue.qsize() >= MAX_QUEUE:
            self._dropped[kind] += 1
            if kind == VIDEO:
                self._video_waits = True
            return
        if kind == VIDEO and self._video_waits:
            if not (can_start(data) if self.info is None else is_key_frame(data)):
                self._dropped[kind] += 1
                if self._want_key_frame is not None:
                    self._want_key_frame()
                return
            self._video_waits = False
        self._queue.put(_Frame(kind, data, rtp, time.monotonic(), self._now()))

    async def close(self) -> RecordingInfo | None:
        """Finish the file (and its sidecar); None if nothing was recorded."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        return await asyncio.shield(self._done)

    # --- recorder thread ----------------------------------------------------------------------
    def _run(self) -> None:
        writer = _Writer(self)
        result: RecordingInfo | None = None
        error: BaseException | None = None
        try:
            writer.run()
        except Exception as exc:  # a full disk, a muxer refusal: the session stops, signaling does not care
            error = exc
            self._failed = True
            log.exception("recording of stream %s (session %s) failed", self.stream, self.session)
        finally:
            try:
                result = writer.finish(complete=error is None)
            except Exception:
                log.exception("could not finish the recording of stream %s (session %s)", self.stream, self.session)
            self._loop.call_soon_threadsafe(self._resolve, result, error)

    def _resolve(self, result: RecordingInfo | None, error: BaseException | None) -> None:
        if not self._done.done():
            self._done.set_result(result)
        if error is not None and self._on_failure is not None:
            self._on_failure(error)


class _Writer:
    """The recorder thread's state: the start window, then the open container."""

    def __init__(self, rec: MatroskaRecorder) -> None:
        self.rec = rec
        self.pending: list[_Frame] = []
        self.firsts: dict[str, _Frame] = {}
        self.container: Any = None
        self.streams: dict[str, Any] = {}
        self.places: dict[str, Placement] = {}
        self.frames = {VIDEO: 0, AUDIO: 0}
        self.late = {VIDEO: 0, AUDIO: 0}
        self.last_wall = 0.0
        self.info: RecordingInfo | None = None

    def run(self) -> None:
        q = self.rec._queue
        while True:
            if self.container is None and self.pending:  # inside the start window
                remaining = self.pending[0].arrival + START_WINDOW - time.monotonic()
                try:
                    item = q.get(timeout=remaining) if remaining > 0 else q.get_nowait()
                except queue.Empty:
                    self.open()
                    continue
            else:
                item = q.get()
            if item is None:
                return  # finish() opens the file if frames are still waiting
            if self.container is not None:
                self.write(item)
                continue
            self.pending.append(item)
            self.firsts.setdefault(item.kind, item)
            if self.rec.expected <= self.firsts.keys():
                self.open()

    def open(self) -> None:
        """Start the file with the tracks that have a first frame, then write what waited."""
        if self.container is not None or not self.firsts:
            return
        rec = self.rec
        first_wall = min(f.wall for f in self.firsts.values())
        path = library.recording_path(rec.root, rec.stream, first_wall, rec.session)
        path.parent.mkdir(parents=True, exist_ok=True)
        info = RecordingInfo(path=path, start=first_wall, end=first_wall)
        container = av.open(str(path), "w", format="matroska")
        self.container = container
        container.metadata["title"] = f"{rec.stream} ({rec.session})"
        container.metadata["SIGNALITE_STREAM"] = rec.stream
        container.metadata["SIGNALITE_SESSION"] = rec.session
        container.metadata["DATE_RECORDED"] = library.iso(first_wall)
        for key in ("stream_arn", "channel_arn"):
            if rec.meta.get(key):
                container.metadata[f"SIGNALITE_{key.upper()}"] = rec.meta[key]
        if VIDEO in self.firsts:
            width, height = _dimensions(self.firsts[VIDEO].data)
            info.width, info.height = width, height
            stream = container.add_mux_stream("h264", width=width, height=height)
            stream.time_base = Fraction(1, CLOCK[VIDEO])
            self.streams[VIDEO] = stream
        if AUDIO in self.firsts:
            self.streams[AUDIO] = _opus_stream(container)
        self.places = placements({k: (f.rtp, f.arrival) for k, f in self.firsts.items()})
        self.info = rec.info = info
        library.write_sidecar(path, self.sidecar(complete=False))
        for kind in rec.expected - self.firsts.keys():
            log.warning("stream %s (session %s): no %s within %g s of the first frame; recording without it",
                        rec.stream, rec.session, kind, START_WINDOW)
        pending, self.pending = self.pending, []
        for item in pending:
            self.write(item)

    def write(self, item: _Frame) -> None:
        stream = self.streams.get(item.kind)
        if stream is None:
            self.late[item.kind] += 1
            return
        clock = CLOCK[item.kind]
        packet = av.Packet(item.data)
        packet.stream = stream
        packet.pts = packet.dts = self.places[item.kind].pts(item.rtp)
        packet.time_base = Fraction(1, clock)
        packet.is_keyframe = item.kind == AUDIO or is_key_frame(item.data)
        self.container.mux(packet)
        self.frames[item.kind] += 1
        self.last_wall = max(self.last_wall, item.wall)

    def finish(self, complete: bool) -> RecordingInfo | None:
        if self.container is None and self.pending and complete:
            self.open()
        if self.container is None or self.info is None:
            return None
        try:
            self.container.close()
        finally:
            self.info.end = max(self.last_wall, self.info.start)
            self.info.frames = {k: v for k, v in self.frames.items() if k in self.streams}
            rec_dropped = self.rec._dropped
            self.info.dropped = {k: rec_dropped[k] + self.late[k] for k in (VIDEO, AUDIO)
                                 if rec_dropped[k] + self.late[k]}
            library.write_sidecar(self.info.path, self.sidecar(complete=complete))
        return self.info

    def sidecar(self, complete: bool) -> dict[str, Any]:
        info = self.info
        assert info is not None
        meta: dict[str, Any] = {
            "stream": self.rec.stream, "session": self.rec.session, "start": library.iso(info.start),
            "end": library.iso(info.end) if complete else None, "complete": complete,
            **{k: v for k, v in self.rec.meta.items() if k in ("stream_arn", "channel_arn", "viewer")},
        }
        if VIDEO in self.firsts:
            meta["video"] = {"codec": "h264", "width": info.width, "height": info.height,
                             "frames": self.frames[VIDEO]}
        if AUDIO in self.firsts:
            meta["audio"] = {"codec": "opus", "sample_rate": CLOCK[AUDIO], "frames": self.frames[AUDIO]}
        if complete and info.dropped:
            meta["dropped"] = info.dropped
        return meta


def _dimensions(access_unit: bytes) -> tuple[int, int]:
    """Width and height of the video, from decoding its first key frame once."""
    decoder: Any = av.CodecContext.create("h264", "r")
    try:
        decoder.decode(av.Packet(access_unit))
        decoder.decode(None)
    except av.FFmpegError:
        pass
    if not decoder.width or not decoder.height:
        raise ValueError("the first H.264 key frame does not decode; cannot tell the video size")
    return int(decoder.width), int(decoder.height)


def _opus_stream(container: Any) -> Any:
    """An Opus track with an ``OpusHead`` (Matroska requires one): the header of an Opus encoder
    context, which is never fed. Without libopus, a track without the header (FFmpeg still reads it)."""
    try:
        stream = container.add_stream("libopus", rate=CLOCK[AUDIO], layout="stereo")
    except (ValueError, av.FFmpegError):
        stream = container.add_mux_stream("opus", rate=CLOCK[AUDIO])
    stream.time_base = Fraction(1, CLOCK[AUDIO])
    return stream

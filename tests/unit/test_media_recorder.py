"""The recorder: H.264 access-unit inspection, track placement, and a real Matroska file from
frames encoded by PyAV (libx264, libopus) as a master's encoder would send them."""

from __future__ import annotations

import asyncio
import json
from fractions import Fraction
from pathlib import Path

import av

from signalite.media import library
from signalite.media.recorder import (
    AUDIO,
    VIDEO,
    MatroskaRecorder,
    Placement,
    can_start,
    is_key_frame,
    nal_types,
    placements,
)

SPS = b"\x00\x00\x00\x01\x67\x42\xc0\x1e"
PPS = b"\x00\x00\x00\x01\x68\xce\x3c\x80"
IDR = b"\x00\x00\x01\x65\x88\x84\x00"
SLICE = b"\x00\x00\x00\x01\x41\x9a\x00"


def test_nal_types_stop_at_the_first_slice():
    assert nal_types(SPS + PPS + IDR + SLICE) == [7, 8, 5]
    assert nal_types(b"\x00\x00\x00\x01\x06\x05" + SLICE) == [6, 1]
    assert nal_types(b"") == [] and nal_types(b"\x00\x00\x01") == []


def test_key_frames_and_where_a_track_can_start():
    assert is_key_frame(SPS + PPS + IDR) and can_start(SPS + PPS + IDR)
    assert is_key_frame(IDR) and not can_start(IDR)  # no SPS: no track parameters yet
    assert not is_key_frame(SLICE) and not can_start(SPS + PPS + SLICE)


def test_tracks_are_aligned_by_their_first_frames_arrival():
    places = placements({VIDEO: (1000, 10.5), AUDIO: (48_000, 10.0)})
    assert places[AUDIO].offset == 0 and places[VIDEO].offset == 45_000  # half a second at 90 kHz
    assert places[VIDEO].pts(1000) == 45_000 and places[VIDEO].pts(4000) == 48_000
    assert places[AUDIO].pts(48_960) == 960


def test_timestamps_only_ever_increase():
    place = Placement(first_rtp=0, offset=0)
    assert [place.pts(t) for t in (0, 3000, 3000, 2000, 9000)] == [0, 3000, 3001, 3002, 9000]


def _h264(frames: int) -> list[tuple[bytes, int]]:
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = 160, 120, "yuv420p"
    enc.time_base = Fraction(1, 90_000)
    enc.options = {"tune": "zerolatency", "preset": "ultrafast"}
    enc.gop_size = 30
    out: list[tuple[bytes, int]] = []
    for i in range(frames):
        frame = av.VideoFrame(160, 120, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([(i * 7) % 256]) * plane.buffer_size)
        frame.pts, frame.time_base = i * 3000, enc.time_base
        out += [(bytes(p), int(p.pts)) for p in enc.encode(frame)]
    return out


def _opus(frames: int) -> list[tuple[bytes, int]]:
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format = 48_000, "stereo", "s16"
    enc.time_base = Fraction(1, 48_000)
    out: list[tuple[bytes, int]] = []
    for i in range(frames):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(bytes(960 * 4))
        frame.sample_rate, frame.pts, frame.time_base = 48_000, i * 960, enc.time_base
        out += [(bytes(p), int(p.pts)) for p in enc.encode(frame)]
    return out


def _record(tmp_path: Path, video: list[tuple[bytes, int]], audio: list[tuple[bytes, int]],
            expected: set[str]) -> tuple[library.Recording | None, list[int]]:
    asked: list[int] = []

    async def run() -> None:
        rec = MatroskaRecorder(tmp_path, "cam", "0123456789abcdef", expected, {"stream_arn": "arn:s"},
                               want_key_frame=lambda: asked.append(1))
        for i in range(max(len(video), len(audio))):
            if i < len(video):
                rec.push(VIDEO, *video[i])
            if i < len(audio):
                rec.push(AUDIO, *audio[i])
        await rec.close()

    asyncio.run(run())
    listed = library.scan(tmp_path)
    return (listed[0] if listed else None), asked


def test_frames_become_a_matroska_file_that_decodes_without_re_encoding(tmp_path: Path):
    video, audio = _h264(60), _opus(100)
    rec, asked = _record(tmp_path, video, audio, {VIDEO, AUDIO})
    assert rec is not None and rec.complete and not asked
    assert rec.path.parent == tmp_path / "cam" and rec.path.suffix == ".mkv"
    with av.open(str(rec.path)) as container:
        assert [s.codec_context.name for s in container.streams] == ["h264", "opus"]
        assert container.streams.audio[0].codec_context.extradata[:8] == b"OpusHead"
        assert container.metadata.get("SIGNALITE_STREAM") == "cam"
        packets = [bytes(p) for p in container.demux(video=0) if p.size]
    # The same bitstream (length-prefixed in Matroska): no frame was decoded and re-encoded.
    assert len(packets) == len(video)
    assert all(p.endswith(v[0][-16:]) for p, v in zip(packets, video))
    with av.open(str(rec.path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 60
    with av.open(str(rec.path)) as container:
        assert abs(container.duration / 1e6 - 2.0) < 0.2
    side = json.loads(library.sidecar_path(rec.path).read_text())
    assert side["video"] == {"codec": "h264", "frames": 60, "width": 160, "height": 120}
    assert side["audio"]["frames"] == 100 and side["complete"] is True and side["stream_arn"] == "arn:s"


def test_video_waits_for_a_key_frame_with_its_sps_and_asks_for_one(tmp_path: Path):
    video = _h264(45)  # key frames at 0 and 30
    rec, asked = _record(tmp_path, video[5:], [], {VIDEO})
    assert asked, "the recorder asks for a key frame while it drops frames it cannot start at"
    assert rec is not None
    with av.open(str(rec.path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 15  # from the key frame at 30


def test_audio_only_when_no_video_comes(tmp_path: Path):
    rec, _ = _record(tmp_path, [], _opus(50), {AUDIO})
    assert rec is not None and "video" not in rec.details
    with av.open(str(rec.path)) as container:
        assert [s.type for s in container.streams] == ["audio"]


def test_nothing_recorded_leaves_no_file(tmp_path: Path):
    rec, _ = _record(tmp_path, [], [], {VIDEO, AUDIO})
    assert rec is None and not any(tmp_path.iterdir())

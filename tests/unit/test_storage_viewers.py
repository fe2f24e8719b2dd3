"""The storage peer's viewer legs, their pure parts: the key-frame gate and parameter sets of a
viewer's copy of the master's video, the fan-out, and the viewer recording's file name."""

from __future__ import annotations

import pytest
from aiortc.mediastreams import MediaStreamError

from signalite.media import library
from signalite.media.viewers import FORWARD_QUEUE, Fanout, ForwardTrack, parameter_sets, viewer_session_name

SPS = b"\x00\x00\x00\x01\x67\x42\xc0\x1f\xaa"
PPS = b"\x00\x00\x00\x01\x68\xce\x3c\x80"
IDR = b"\x00\x00\x00\x01\x65\x88\x84\x00"
DELTA = b"\x00\x00\x00\x01\x41\x9a\x02\x00"


def test_parameter_sets_are_what_precedes_the_first_slice():
    assert parameter_sets(SPS + PPS + IDR) == SPS + PPS
    assert parameter_sets(IDR) is None and parameter_sets(DELTA) is None
    assert parameter_sets(b"\x00\x00\x01\x67\x42" + b"\x00\x00\x01\x68\xce" + b"\x00\x00\x01\x65\x88") == \
        b"\x00\x00\x01\x67\x42" + b"\x00\x00\x01\x68\xce"


async def test_a_viewers_video_starts_at_a_key_frame_once_it_is_open():
    asked: list[int] = []
    track = ForwardTrack("video", lambda: asked.append(1))
    track.push(SPS + PPS + IDR, 1000)  # not open yet: the viewer's connection is not up
    assert track.forwarded == 0 and asked == []
    track.open()
    assert asked == [1]  # asks the master for a key frame at once
    track.push(DELTA, 4000)
    assert track.forwarded == 0 and track.dropped == 1 and len(asked) == 2
    track.push(IDR, 7000, headers=SPS + PPS)  # an IDR without its SPS gets the latest in front
    track.push(DELTA, 10000)
    first, second = await track.recv(), await track.recv()
    assert bytes(first) == SPS + PPS + IDR and first.pts == 0 and first.time_base.denominator == 90_000
    assert bytes(second) == DELTA and second.pts == 3000
    track.finish()
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_a_viewer_that_falls_behind_restarts_at_the_next_key_frame():
    track = ForwardTrack("video", lambda: None)
    track.open()
    track.push(SPS + PPS + IDR, 0)
    for i in range(FORWARD_QUEUE - 1):
        track.push(DELTA, 3000 * (i + 1))
    track.push(DELTA, 10**6)  # the queue is full: dropped, and video waits for a key frame
    assert track.dropped == 1
    for _ in range(FORWARD_QUEUE):
        await track.recv()
    track.push(DELTA, 10**6 + 3000)
    assert track.dropped == 2
    track.push(SPS + PPS + IDR, 10**6 + 6000)
    assert bytes(await track.recv()) == SPS + PPS + IDR


async def test_audio_passes_from_the_first_packet_and_the_fanout_reaches_every_viewer():
    audio = Fanout("audio")
    one, two = ForwardTrack("audio", lambda: None), ForwardTrack("audio", lambda: None)
    for track in (one, two):
        track.open()
        audio.tracks.add(track)
    audio.push(b"\xfc\x01", 48_000)
    audio.push(b"\xfc\x02", 48_960)
    for track in (one, two):
        assert [(bytes(p), p.pts) for p in (await track.recv(), await track.recv())] == [
            (b"\xfc\x01", 0), (b"\xfc\x02", 960)]
    video = Fanout("video")
    late = ForwardTrack("video", lambda: None)
    video.push(SPS + PPS + IDR, 0)  # remembered for viewers that start at an IDR without them
    late.open()
    video.tracks.add(late)
    video.push(IDR, 3000)
    assert bytes(await late.recv()) == SPS + PPS + IDR


def test_a_viewer_recording_is_named_after_the_session_and_the_viewer(tmp_path):
    assert viewer_session_name("0123456789abcdef", "viewer-1") == "0123456789abcdef.viewer.viewer-1"
    long_id = "v" * 256
    name = viewer_session_name("0123456789abcdef", long_id)
    assert name != viewer_session_name("0123456789abcdef", "v" * 255)
    path = library.recording_path(tmp_path, "cam", 1.8e9, name)
    assert len(path.name.encode()) < 255 and len(library.sidecar_path(path).name.encode()) < 255

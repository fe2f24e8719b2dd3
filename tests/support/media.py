"""Helpers for the WebRTC ingestion tests: a channel with media storage, the recordings listing
(``signalite admin recordings --json``), and what PyAV finds in a recording."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def storage_channel(kv: Any, name: str, retention_hours: int = 1) -> tuple[str, str]:
    """Create a stream and a channel whose media storage records to it: (channel ARN, stream ARN)."""
    stream = kv.create_stream(StreamName=f"{name}-stream", DataRetentionInHours=retention_hours)["StreamARN"]
    arn = kv.create_signaling_channel(ChannelName=f"{name}-channel")["ChannelARN"]
    kv.update_media_storage_configuration(ChannelARN=arn,
                                          MediaStorageConfiguration={"Status": "ENABLED", "StreamARN": stream})
    return arn, stream


def endpoints(kv: Any, arn: str) -> dict[str, str]:
    """The master's WSS, HTTPS and WEBRTC endpoints."""
    listed = kv.get_signaling_channel_endpoint(ChannelARN=arn, SingleMasterChannelEndpointConfiguration={
        "Protocols": ["WSS", "HTTPS", "WEBRTC"], "Role": "MASTER"})["ResourceEndpointList"]
    return {e["Protocol"]: e["ResourceEndpoint"] for e in listed}


def recordings(data_dir: Path) -> list[dict[str, Any]]:
    """``signalite admin recordings --json`` (until admin.py wires it: the same command's module)."""
    err = ""
    for cmd in (["-m", "signalite", "admin", "recordings"], ["-m", "signalite.recordings"]):
        r = subprocess.run([sys.executable, *cmd, "--json", "--data-dir", str(data_dir)], capture_output=True, text=True)
        if r.returncode == 0:
            return json.loads(r.stdout)
        err = r.stderr
    raise RuntimeError(f"signalite admin recordings failed: {err}")


def finished_recordings(data_dir: Path, count: int, timeout: float) -> list[dict[str, Any]]:
    """Wait (polling the listing) until ``count`` recordings are listed and all are complete."""
    deadline = time.monotonic() + timeout
    listed: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        listed = recordings(data_dir)
        if len(listed) >= count and all(r["complete"] for r in listed):
            break
        time.sleep(0.2)
    return listed


def inspect(path: str) -> dict[str, Any]:
    """Tracks, duration, size and decoded frames and samples of a recording, as PyAV sees it."""
    import av

    with av.open(path) as container:
        info: dict[str, Any] = {"streams": [f"{s.type}/{s.codec_context.name}" for s in container.streams],
                                "duration": (container.duration or 0) / 1e6}
        if container.streams.video:
            ctx = container.streams.video[0].codec_context
            info["width"], info["height"] = ctx.width, ctx.height
    frames, last = 0, 0.0
    with av.open(path) as container:
        if container.streams.video:
            for frame in container.decode(video=0):
                frames += 1
                last = float(frame.time) if frame.time is not None else last
    info["video_frames"], info["last_video_time"] = frames, last
    with av.open(path) as container:
        info["audio_samples"] = sum(f.samples for f in container.decode(audio=0)) if container.streams.audio else 0
    return info


def tone_hz(path: str) -> float:
    """The frequency of the tone in a recording's (first) audio track, from the zero crossings of
    its first channel: tells a viewer's tone from the master's."""
    import array

    import av

    crossings, samples, last = 0, 0, 0.0
    with av.open(path) as container:
        for frame in container.decode(audio=0):
            if frame.format.name != "fltp":
                raise ValueError(f"expected planar float audio, got {frame.format.name}")
            values = array.array("f", bytes(frame.planes[0]))[: frame.samples]
            for value in values:
                if (value >= 0) != (last >= 0):
                    crossings += 1
                last = value
            samples += frame.samples
            rate = frame.sample_rate
    return crossings / 2 / (samples / rate) if samples else 0.0

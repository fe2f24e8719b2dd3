"""WebRTC ingestion (JoinStorageSession, issue 8 item 3) against the real server.

The media tests run a real aiortc master (``tests/e2e/peers/aiortc_storage.py``) inside a lo-only
network namespace: it streams generated H.264 video and Opus audio to Signalite's storage peer,
and the recording is opened and decoded with PyAV. The error tests use boto3's
``kinesis-video-webrtc-storage`` client on the WEBRTC endpoint.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest

from signalite.media import library
from tests.support.media import recordings, storage_channel
from tests.support.netns import needs_netns, run_python_in_netns

FRAMES = 60  # per session, at 30 fps: two seconds


def _result(r) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    lines = [line for line in r.output.splitlines() if line.startswith("{")]
    assert lines, f"peer program printed no result:\n{r}"
    return json.loads(lines[-1])


def _run(*args: str) -> dict[str, Any]:
    r = run_python_in_netns("tests/e2e/peers/aiortc_storage.py", "--frames", str(FRAMES), *args, timeout=150)
    result = _result(r)
    assert r.ok and result["ok"], result.get("error") or r
    return result


def _check_recording(listed: dict[str, Any], inspected: dict[str, Any], sent: dict[str, Any]) -> None:
    assert listed["stream"] == "cam-stream" and "/media/cam-stream/" in listed["path"]
    assert listed["complete"] is True and listed["bytes"] > 0
    assert listed["start"] < listed["end"]
    assert inspected["streams"] == ["video/h264", "audio/opus"]
    assert (inspected["width"], inspected["height"]) == (320, 240)
    assert 0 < inspected["video_frames"] <= sent["video"]
    assert inspected["audio_samples"] > 0
    # Media time, not wall time: the frames' timestamps span what the master sent (30 fps).
    seconds = sent["video"] / 30
    assert seconds * 0.5 <= inspected["duration"] <= seconds + 1.5, inspected
    assert seconds * 0.5 <= inspected["last_video_time"] <= seconds + 1.0, inspected


@pytest.mark.netns
@needs_netns
def test_aiortc_master_streams_into_a_recording_that_decodes():
    result = _run()
    assert result["offer_has_h264_and_opus"], "the storage peer must offer recvonly H.264 video and Opus audio only"
    (sender,) = result["senders"]
    assert sender.startswith("signalite-storage-")
    assert len(result["recordings"]) == 1
    _check_recording(result["recordings"][0], result["inspected"][0], result["sent"][sender])
    assert result["recordings"][0]["video"]["codec"] == "h264" and result["recordings"][0]["audio"]["codec"] == "opus"


@pytest.mark.netns
@needs_netns
def test_a_second_join_storage_session_replaces_the_first():
    result = _run("--replace")
    first, second = result["senders"]
    assert first != second
    # The program waited for the server to close the first storage peer while the master stayed.
    assert result["sent"][first]["states"][-1] in ("closed", "failed")
    assert len(result["recordings"]) == 2, result["recordings"]
    by_session = {r["session"]: (r, i) for r, i in zip(result["recordings"], result["inspected"])}
    for sender in (first, second):
        listed, inspected = by_session[sender.removeprefix("signalite-storage-")]
        _check_recording(listed, inspected, result["sent"][sender])
    assert by_session[first.removeprefix("signalite-storage-")][0]["end"] <= \
        by_session[second.removeprefix("signalite-storage-")][0]["end"]


@pytest.mark.netns
@needs_netns
@pytest.mark.parametrize("end", ["delete", "shutdown"])
def test_channel_delete_and_server_shutdown_end_the_session_and_finish_the_file(end):
    result = _run("--end", end)
    (sender,) = result["senders"]
    if end == "shutdown":
        assert result["server_exit"] == 0
    assert len(result["recordings"]) == 1
    _check_recording(result["recordings"][0], result["inspected"][0], result["sent"][sender])


@pytest.mark.netns
@pytest.mark.browser
@needs_netns
def test_chromium_master_with_the_kvs_sdk_and_a_fake_camera_streams_into_a_recording():
    r = run_python_in_netns("tests/e2e/peers/chromium_storage.py", "--frames", str(FRAMES), timeout=180)
    result = _result(r)
    assert r.ok and result["ok"], result.get("error") or r
    assert result["page_error"] is None and result["sent"]["codec"] == "video/H264"
    assert result["sender"].startswith("signalite-storage-") and "connected" in result["states"]
    (listed,) = result["recordings"]
    (inspected,) = result["inspected"]
    assert listed["stream"] == "browser-stream" and listed["complete"] is True
    assert inspected["streams"] == ["video/h264", "audio/opus"]
    assert (inspected["width"], inspected["height"]) == (320, 240)  # what the page asked the camera for
    assert 0 < inspected["video_frames"] <= result["sent"]["frames"] + 5  # the browser counted a moment earlier
    assert inspected["audio_samples"] > 0
    # Media time: no longer than the browser streamed, and at most 60 frames per second of it.
    assert inspected["video_frames"] / 60 <= inspected["duration"] <= result["streamed_seconds"] + 1.0, inspected


# --- errors (no media) --------------------------------------------------------------------------

def _error(exc: pytest.ExceptionInfo) -> tuple[str, int, str]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def _storage_channel(kv, name: str) -> str:  # type: ignore[no-untyped-def]
    return storage_channel(kv, name)[0]


def _webrtc(server, kv, arn: str):  # type: ignore[no-untyped-def]
    endpoint = kv.get_signaling_channel_endpoint(
        ChannelARN=arn, SingleMasterChannelEndpointConfiguration={"Protocols": ["WEBRTC"], "Role": "MASTER"},
    )["ResourceEndpointList"][0]["ResourceEndpoint"]
    return server.boto("kinesis-video-webrtc-storage", endpoint=endpoint)


def test_unknown_channel_is_resource_not_found(server, kv, name):
    arn = _storage_channel(kv, name)
    storage = _webrtc(server, kv, arn)
    missing = arn.rsplit("/", 2)[0] + "/no-such-channel/1700000000000"
    with pytest.raises(storage.exceptions.ResourceNotFoundException) as exc:
        storage.join_storage_session(channelArn=missing)
    assert _error(exc)[:2] == ("ResourceNotFoundException", 404)
    other_account = arn.replace(":111122223333:", ":999988887777:")
    with pytest.raises(storage.exceptions.ResourceNotFoundException):
        storage.join_storage_session(channelArn=other_account)


def test_channel_without_media_storage_is_invalid_argument(server, kv, name):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    storage = server.boto("kinesis-video-webrtc-storage")  # the base URL: WEBRTC is refused for this channel
    with pytest.raises(storage.exceptions.InvalidArgumentException) as exc:
        storage.join_storage_session(channelArn=arn)
    code, status, message = _error(exc)
    assert (code, status) == ("InvalidArgumentException", 400) and "media storage" in message
    enabled = _storage_channel(kv, name + "-on")
    kv.update_media_storage_configuration(ChannelARN=enabled, MediaStorageConfiguration={"Status": "DISABLED"})
    with pytest.raises(storage.exceptions.InvalidArgumentException):
        storage.join_storage_session(channelArn=enabled)


def test_a_stream_arn_is_not_a_channel(server, kv, name):
    stream = kv.create_stream(StreamName=name, DataRetentionInHours=1)["StreamARN"]
    storage = server.boto("kinesis-video-webrtc-storage")
    with pytest.raises(storage.exceptions.InvalidArgumentException) as exc:
        storage.join_storage_session(channelArn=stream)
    assert "channelArn" in _error(exc)[2]


def test_join_without_a_connected_master_answers_at_once(server, kv, name):
    # The offer waits for the master (the channel's TTL), the call does not; a newer call replaces it.
    arn = _storage_channel(kv, name)
    storage = _webrtc(server, kv, arn)
    for _ in range(3):
        assert storage.join_storage_session(channelArn=arn)["ResponseMetadata"]["HTTPStatusCode"] == 200
    kv.delete_signaling_channel(ChannelARN=arn)  # ends the waiting session
    with pytest.raises(storage.exceptions.ResourceNotFoundException):
        storage.join_storage_session(channelArn=arn)


def test_recordings_older_than_the_streams_retention_are_deleted(server, kv, name):
    # Recordings as a session leaves them (a file and its sidecar), one ended 2 h ago and one just
    # now, of a stream that keeps 1 h; a JoinStorageSession runs the retention sweep.
    arn, stream_arn = storage_channel(kv, name, retention_hours=1)
    stream = kv.describe_stream(StreamARN=stream_arn)["StreamInfo"]["StreamName"]
    now = time.time()
    paths = {}
    for label, end in (("old", now - 2 * 3600), ("young", now - 60)):
        path = library.recording_path(library.media_root(server.data_dir), stream, end - 30, f"{label}{os.getpid()}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x1a\x45\xdf\xa3")
        library.write_sidecar(path, {"stream": stream, "stream_arn": stream_arn, "start": library.iso(end - 30),
                                     "end": library.iso(end), "complete": True})
        paths[label] = path
    assert {r["path"] for r in recordings(server.data_dir) if r["stream"] == stream} == {str(p) for p in paths.values()}
    _webrtc(server, kv, arn).join_storage_session(channelArn=arn)
    deadline = time.monotonic() + 20
    while paths["old"].exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # the sweep runs in the server, right after the session starts
    assert not paths["old"].exists() and not library.sidecar_path(paths["old"]).exists()
    assert paths["young"].exists()
    assert [r["path"] for r in recordings(server.data_dir) if r["stream"] == stream] == [str(paths["young"])]
    kv.delete_signaling_channel(ChannelARN=arn)


# --- JoinStorageSessionAsViewer ------------------------------------------------------------------

@pytest.mark.netns
@needs_netns
@pytest.mark.parametrize("viewer_first", [False, True], ids=["master-first", "viewer-first"])
def test_aiortc_viewer_joins_the_storage_session_sees_the_master_and_its_audio_is_recorded(viewer_first):
    args = ["--viewer-first"] if viewer_first else []
    r = run_python_in_netns("tests/e2e/peers/aiortc_storage_viewer.py", "--frames", "30", *args, timeout=150)
    result = _result(r)
    assert r.ok and result["ok"], result.get("error") or r
    assert result["join_status"] == 200
    (session,) = result["master_offers"]  # viewer-first: the viewer's call created the session
    viewer = result["viewer"]
    # The storage session offered to the viewer as the master would: no senderClientId, H.264
    # video it sends, Opus audio both ways, nothing else.
    (offer,) = viewer["offers"]
    assert offer["sender"] is None
    sdp = offer["sdp"]
    video, audio = sdp.split("m=video", 1)[1].split("m=audio", 1)
    assert "H264/90000" in video and "VP8" not in video and "a=sendonly" in video
    assert "opus/48000" in audio and "a=sendrecv" in audio
    # It decoded the master's video (320x240) and received audio, relayed by the session.
    assert viewer["frames"]["video"] >= 30 and viewer["frames"]["audio"] > 0
    assert viewer["sizes"] == [[320, 240]] and "connected" in viewer["states"]
    # Its answer and candidates went to the storage session, never to the master.
    assert viewer["candidates_sent"] > 0
    assert all(sender != "viewer-1" for _, sender in result["master_received"]), result["master_received"]
    # Two recordings: the master's, and the viewer's audio beside it (same stream and session).
    by_viewer = {r.get("viewer"): (r, i) for r, i in zip(result["recordings"], result["inspected"])}
    assert set(by_viewer) == {None, "viewer-1"}, result["recordings"]
    master_listed, master_inspected = by_viewer[None]
    viewer_listed, viewer_inspected = by_viewer["viewer-1"]
    assert master_listed["session"] == session.removeprefix("signalite-storage-")
    assert master_inspected["streams"] == ["video/h264", "audio/opus"] and master_inspected["video_frames"] > 0
    assert viewer_listed["stream"] == "cam-stream" and viewer_listed["complete"] is True
    assert viewer_listed["session"] == f"{master_listed['session']}.viewer.viewer-1"
    assert viewer_listed["path"].endswith(f"-{master_listed['session']}.viewer.viewer-1.mkv")
    assert viewer_inspected["streams"] == ["audio/opus"] and viewer_inspected["audio_samples"] > 0
    # The viewer's own tone (1 kHz), not the master's audio.
    assert 900 <= viewer_inspected["tone_hz"] <= 1100, viewer_inspected
    assert not 900 <= master_inspected["tone_hz"] <= 1100, master_inspected
    # Media time: about the two seconds of tone the viewer sent, never more than it sent.
    assert 0.5 <= viewer_inspected["duration"] <= viewer["tone_sent"] * 0.02 + 0.5, viewer_inspected


def test_join_storage_session_as_viewer_errors(server, kv, name):
    arn = _storage_channel(kv, name)
    storage = _webrtc(server, kv, arn)
    missing = arn.rsplit("/", 2)[0] + "/no-such-channel/1700000000000"
    with pytest.raises(storage.exceptions.ResourceNotFoundException) as exc:
        storage.join_storage_session_as_viewer(channelArn=missing, clientId="viewer-1")
    assert _error(exc)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(storage.exceptions.ResourceNotFoundException):
        storage.join_storage_session_as_viewer(channelArn=arn.replace(":111122223333:", ":999988887777:"),
                                               clientId="viewer-1")
    plain = kv.create_signaling_channel(ChannelName=name + "-plain")["ChannelARN"]
    base = server.boto("kinesis-video-webrtc-storage")
    with pytest.raises(base.exceptions.InvalidArgumentException) as exc:
        base.join_storage_session_as_viewer(channelArn=plain, clientId="viewer-1")
    code, status, message = _error(exc)
    assert (code, status) == ("InvalidArgumentException", 400) and "media storage" in message
    stream = kv.describe_media_storage_configuration(ChannelARN=arn)["MediaStorageConfiguration"]["StreamARN"]
    with pytest.raises(base.exceptions.InvalidArgumentException) as exc:
        base.join_storage_session_as_viewer(channelArn=stream, clientId="viewer-1")
    assert "channelArn" in _error(exc)[2]
    with pytest.raises(storage.exceptions.InvalidArgumentException) as exc:  # the model's pattern
        storage.join_storage_session_as_viewer(channelArn=arn, clientId="not a client id!")
    assert "clientId" in _error(exc)[2]


def test_a_session_takes_three_viewers_and_a_viewer_may_join_again(server, kv, name):
    # No master and no viewer socket: the session is created by the first call and waits; the
    # offers wait for their viewers. A fourth viewer is refused as AWS refuses it (the KVS JS SDK's
    # sample does not retry on this message); a viewer already in may call again (its new request
    # takes precedence), and JoinStorageSession (the master's side) keeps the viewers.
    arn = _storage_channel(kv, name)
    storage = _webrtc(server, kv, arn)
    for viewer in ("v1", "v2", "v3"):
        assert storage.join_storage_session_as_viewer(channelArn=arn, clientId=viewer)[
            "ResponseMetadata"]["HTTPStatusCode"] == 200
    with pytest.raises(storage.exceptions.ClientLimitExceededException) as exc:
        storage.join_storage_session_as_viewer(channelArn=arn, clientId="v4")
    code, status, message = _error(exc)
    assert code == "ClientLimitExceededException" and status == 400
    assert "maximum number of viewers connected to the session" in message.lower()
    storage.join_storage_session_as_viewer(channelArn=arn, clientId="v2")
    storage.join_storage_session(channelArn=arn)
    with pytest.raises(storage.exceptions.ClientLimitExceededException):
        storage.join_storage_session_as_viewer(channelArn=arn, clientId="v4")
    kv.delete_signaling_channel(ChannelARN=arn)  # ends the waiting session
    with pytest.raises(storage.exceptions.ResourceNotFoundException):
        storage.join_storage_session_as_viewer(channelArn=arn, clientId="v1")


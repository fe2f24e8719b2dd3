"""The storage peer's pure parts: KVS payloads, ICE candidates, ICE servers, the encoded-frame tap."""

from __future__ import annotations

import base64
import json
import threading

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from signalite.media.peer import (
    _EncodedTap,
    decode_payload,
    encode_description,
    ice_servers,
    parse_candidate,
    tap_encoded_frames,
)


def b64(obj: object) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


def test_descriptions_are_base64_json_as_the_kvs_sdks_send_them():
    payload = encode_description(RTCSessionDescription(sdp="v=0\r\n", type="offer"))
    assert json.loads(base64.b64decode(payload)) == {"type": "offer", "sdp": "v=0\r\n"}
    assert decode_payload(payload) == {"type": "offer", "sdp": "v=0\r\n"}


@pytest.mark.parametrize("payload", ["not base64!", b64([1, 2]), base64.b64encode(b"\xff\xfe").decode(), ""])
def test_payloads_that_are_not_a_json_object_are_refused(payload: str):
    with pytest.raises(ValueError):
        decode_payload(payload)


def test_candidates_as_browsers_and_the_c_sdk_trickle_them():
    c = parse_candidate({"candidate": "candidate:842163049 1 udp 1677729535 192.0.2.7 61834 typ srflx raddr "
                                      "10.0.0.2 rport 61834 generation 0", "sdpMid": "0", "sdpMLineIndex": 0})
    assert c is not None
    assert (c.ip, c.port, c.type, c.protocol, c.sdpMid, c.sdpMLineIndex) == ("192.0.2.7", 61834, "srflx", "udp", "0", 0)
    bare = parse_candidate({"candidate": "1 1 udp 2122260223 127.0.0.1 5000 typ host", "sdpMLineIndex": "1"})
    assert bare is not None and bare.sdpMLineIndex == 1 and bare.sdpMid is None
    assert parse_candidate({"candidate": "", "sdpMid": "0"}) is None  # end of candidates
    defaulted = parse_candidate({"candidate": "1 1 udp 1 127.0.0.1 5000 typ host"})
    assert defaulted is not None and defaulted.sdpMLineIndex == 0
    with pytest.raises(ValueError):
        parse_candidate({"candidate": 5})


def test_ice_servers_in_the_get_ice_server_config_shape():
    servers = ice_servers([{"Uris": ["turn:127.0.0.1:3478?transport=udp"], "Username": "u", "Password": "p", "Ttl": 300},
                           {"Uris": []}, {"urls": ["stun:127.0.0.1:3478"]}])
    assert [(s.urls, s.username, s.credential) for s in servers] == [
        (["turn:127.0.0.1:3478?transport=udp"], "u", "p"), (["stun:127.0.0.1:3478"], None, None)]


def test_the_tap_takes_frames_and_passes_the_end_on_to_the_decoder_thread():
    got: list[tuple[bytes, int]] = []
    tap = _EncodedTap(lambda data, ts: got.append((data, ts)))

    class Frame:
        data, timestamp = b"\x00\x00\x00\x01\x65", 3000

    tap.put((object(), Frame()))
    assert got == [(b"\x00\x00\x00\x01\x65", 3000)]
    ended: list[None] = []
    worker = threading.Thread(target=lambda: ended.append(tap.get()))
    worker.start()
    tap.put(None)
    worker.join(5)
    assert ended == [None] and not worker.is_alive()


def test_a_failing_sink_never_reaches_the_receiver():
    def boom(data: bytes, ts: int) -> None:
        raise OSError("disk full")

    class Frame:
        data, timestamp = b"x", 0

    _EncodedTap(boom).put((object(), Frame()))  # logged, not raised


async def test_the_tap_replaces_one_receivers_decoder_queue():
    pc = RTCPeerConnection()
    try:
        video = pc.addTransceiver("video", direction="recvonly")
        audio = pc.addTransceiver("audio", direction="recvonly")
        tap_encoded_frames(video.receiver, lambda data, ts: None)
        assert isinstance(video.receiver._RTCRtpReceiver__decoder_queue, _EncodedTap)
        assert not isinstance(audio.receiver._RTCRtpReceiver__decoder_queue, _EncodedTap)
    finally:
        await pc.close()

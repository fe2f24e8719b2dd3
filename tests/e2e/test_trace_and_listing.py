"""``signalite trace`` against a real exchange, and ``signalite admin channels | clients``."""

from __future__ import annotations

import asyncio
import base64
import json

from signalite.tracing import Timeline, decode_payload, describe, enrich, parse_candidate
from tests.support.signaling import b64, connect
from tests.support.tracecli import TraceReader, cli

SDP = "\r\n".join([
    "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "a=mid:0", "a=sendrecv", "a=rtpmap:111 opus/48000/2",
    "a=ice-ufrag:abcd", "a=fingerprint:sha-256 12:AB:34:CD", "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "a=mid:1", "a=recvonly", "a=rtpmap:96 H264/90000", "a=rtpmap:97 VP8/90000",
    "",
])
CANDIDATE = "candidate:842163049 1 udp 1677729535 203.0.113.7 61000 typ srflx raddr 10.0.0.2 rport 61000 generation 0"


def test_decoding_of_candidates_sdp_and_steps():
    assert parse_candidate(CANDIDATE) == {
        "foundation": "842163049", "component": 1, "protocol": "udp", "priority": 1677729535,
        "address": "203.0.113.7", "port": 61000, "type": "srflx", "relatedAddress": "10.0.0.2", "relatedPort": 61000}
    sdp = decode_payload("SDP_OFFER", b64({"type": "offer", "sdp": SDP}))["sdp"]
    assert [(m["kind"], m["codecs"], m["direction"]) for m in sdp["media"]] == [
        ("audio", ["opus"], "sendrecv"), ("video", ["H264", "VP8"], "recvonly")]
    assert sdp["ufrag"] == "abcd" and sdp["fingerprint"] == "sha-256 12:AB:34:CD"
    assert sdp["candidates"][0]["type"] == "host" and sdp["candidates"][0]["port"] == 50000
    assert decode_payload("ICE_CANDIDATE", "not base64!") == {"raw": "not base64!"}
    timeline = Timeline()
    offer = enrich({"event": "sent", "time": 10.0, "messageType": "SDP_OFFER", "sender": "v", "recipient": None}, timeline)
    answer = enrich({"event": "sent", "time": 10.25, "messageType": "SDP_ANSWER", "sender": None, "recipient": "v"}, timeline)
    assert "step" not in offer and answer["step"] == "answer +250 ms after the offer"
    line = describe(enrich({"event": "delivered", "time": 0.0, "messageType": "ICE_CANDIDATE", "sender": None,
                            "recipient": "v", "payload": b64({"candidate": CANDIDATE})}, Timeline()))
    assert "master → v" in line and "srflx udp 203.0.113.7:61000" in line and "via 10.0.0.2:61000" in line


async def test_trace_follows_a_real_exchange_with_sdp_and_ice_decoded(server, name):
    kv = server.boto()
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    # following, 2 connects, offer/answer/candidate each sent + delivered, a candidate sent (to nobody) and
    # buffered, 1 disconnect
    expected = 1 + 2 + 6 + 2 + 1
    trace = cli(server, "trace", name, "--json", "--count", str(expected), background=True)
    try:
        first = json.loads(await asyncio.to_thread(trace.stdout.readline))
        assert first["event"] == "following" and first["channel"] == arn
        master = await connect(server, arn)
        viewer = await connect(server, arn, "v1")
        await viewer.send("SDP_OFFER", b64({"type": "offer", "sdp": SDP}))
        await master.recv()
        await master.send("SDP_ANSWER", b64({"type": "answer", "sdp": SDP}), recipient="v1")
        await viewer.recv()
        await master.send("ICE_CANDIDATE", b64({"candidate": CANDIDATE, "sdpMid": "0"}), recipient="v1")
        await viewer.recv()
        await master.send("ICE_CANDIDATE", b64({"candidate": CANDIDATE}), recipient="offline")
        await viewer.close()
        out, err = await asyncio.to_thread(trace.communicate, timeout=30)
    finally:
        if trace.poll() is None:
            trace.kill()
    events = [json.loads(line) for line in out.splitlines()]
    assert trace.returncode == 0, err
    summary = [(e["event"], e.get("messageType"), e.get("sender"), e.get("recipient")) for e in events]
    assert summary[:2] == [("connect", None, None, None), ("connect", None, "v1", None)]
    assert ("sent", "SDP_OFFER", "v1", None) in summary and ("delivered", "SDP_OFFER", "v1", None) in summary
    assert ("delivered", "SDP_ANSWER", None, "v1") in summary
    assert ("sent", "ICE_CANDIDATE", None, "offline") in summary
    assert ("buffered", "ICE_CANDIDATE", None, "offline") in summary  # kept by the bus for its TTL
    assert summary[-1] == ("disconnect", None, "v1", None)
    offer = next(e for e in events if e["event"] == "delivered" and e["messageType"] == "SDP_OFFER")
    assert offer["decoded"]["sdp"]["ufrag"] == "abcd" and offer["decoded"]["sdp"]["media"][1]["codecs"] == ["H264", "VP8"]
    answer = next(e for e in events if e["event"] == "sent" and e["messageType"] == "SDP_ANSWER")
    assert answer["step"].startswith("answer +") and answer["step"].endswith("ms after the offer")
    candidate = next(e for e in events if e["event"] == "delivered" and e["messageType"] == "ICE_CANDIDATE")
    assert candidate["decoded"]["candidate"]["address"] == "203.0.113.7"
    assert all({"time", "event", "messageType", "sender", "recipient"} <= e.keys() for e in events[1:])
    await master.close()


async def test_trace_shows_buffered_replaced_and_expired_messages(server, name):
    """What the bus does with messages nobody takes yet, as the trace shows it: buffered (for an
    offline viewer), replaced (a second SDP_OFFER from the same sender before the recipient
    connects) and expired (after the channel's MessageTtlSeconds is lowered to 5 s, the model's
    minimum: a TTL change applies to messages sent from then on)."""
    kv = server.boto()
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    trace = TraceReader.start(server, name)
    try:
        await trace.until("following")
        master = await connect(server, arn)
        await trace.until("connect")
        await master.send("SDP_OFFER", b64({"type": "offer", "sdp": SDP}), recipient="late-viewer")
        buffered = await trace.until("buffered", messageType="SDP_OFFER")
        assert (buffered["sender"], buffered["recipient"]) == (None, "late-viewer")
        assert {"time", "node"} <= buffered.keys() and isinstance(buffered["time"], float)
        await master.send("SDP_OFFER", b64({"type": "offer", "sdp": SDP + "a=newer\r\n"}), recipient="late-viewer")
        replaced = await trace.until("replaced", messageType="SDP_OFFER")
        assert (replaced["sender"], replaced["recipient"]) == (None, "late-viewer")
        viewer = await connect(server, arn, "late-viewer")
        got = await viewer.recv()
        assert "a=newer" in json.loads(base64.b64decode(got["messagePayload"]))["sdp"]  # the older one was replaced
        delivered = await trace.until("delivered", messageType="SDP_OFFER")
        assert delivered["recipient"] == "late-viewer"
        summary = trace.summary()
        assert summary.count(("buffered", "SDP_OFFER", None, "late-viewer")) == 2
        assert summary.count(("replaced", "SDP_OFFER", None, "late-viewer")) == 1
        assert summary.count(("delivered", "SDP_OFFER", None, "late-viewer")) == 1

        info = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]
        kv.update_signaling_channel(ChannelARN=arn, CurrentVersion=info["Version"],
                                    SingleMasterConfiguration={"MessageTtlSeconds": 5})
        await viewer.send("ICE_CANDIDATE", b64({"candidate": CANDIDATE}))
        await master.recv()  # the master is still there: delivered, not kept
        await master.send("ICE_CANDIDATE", b64({"candidate": CANDIDATE}), recipient="never-viewer")
        await trace.until("buffered", messageType="ICE_CANDIDATE")
        expired = await trace.until("expired", messageType="ICE_CANDIDATE")  # the sweep drops it once its TTL is past
        assert (expired["sender"], expired["recipient"], expired["messageType"]) == (None, "never-viewer",
                                                                                       "ICE_CANDIDATE")
        assert expired["time"] >= delivered["time"]
        assert [e for e in trace.events if e["event"] == "expired"] == [expired]  # the delivered one did not
        await viewer.close()
        await master.close()
    finally:
        trace.stop()


def test_trace_refuses_an_unknown_channel_and_a_bad_key(server):
    done = cli(server, "trace", "no-such-channel")
    assert done.returncode == 1 and "no channel named no-such-channel" in done.stderr


async def test_admin_channels_and_clients_list_what_is_connected(server, name):
    arn = server.boto().create_signaling_channel(ChannelName=name)["ChannelARN"]
    master = await connect(server, arn)
    viewer = await connect(server, arn, "v-9")
    await viewer.send("SDP_OFFER", b64({"type": "offer", "sdp": "x"}))
    await master.recv()
    channels = cli(server, "admin", "channels", "--json")
    assert channels.returncode == 0, channels.stderr
    mine = [c for c in json.loads(channels.stdout) if c["ChannelARN"] == arn]
    assert mine == [{"ChannelARN": arn, "Master": True, "Viewers": 1, "Node": mine[0]["Node"]}]
    clients = cli(server, "admin", "clients", arn, "--json")
    assert clients.returncode == 0, clients.stderr
    rows = {c["Role"]: c for c in json.loads(clients.stdout)}
    assert rows["viewer"]["ClientId"] == "v-9" and rows["viewer"]["MessagesIn"] == 1
    assert rows["master"]["MessagesOut"] == 1 and rows["master"]["RemoteAddress"].startswith("127.0.0.1:")
    table = cli(server, "admin", "clients", arn)
    assert "v-9" in table.stdout and "ROLE" in table.stdout
    await master.close()
    await viewer.close()

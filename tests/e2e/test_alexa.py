"""SendAlexaOfferToMaster end to end: a raw WebSocket master (botocore-presigned URL) receives the
offer as an SDP_OFFER from SenderClientId and its SDP_ANSWER comes back as ``Answer`` to boto3, the
AWS CLI and JS SDK v3; an offline master that connects within the wait still answers; a master
that never answers yields ClientLimitExceededException after min(TTL, 30 s)."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import sys
from pathlib import Path

import pytest

from tests.e2e.test_ice import NODE_DIR, https_endpoint
from tests.support.signaling import b64, connect

OFFER = b64({"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=alexa\r\n"})
ANSWER = b64({"type": "answer", "sdp": "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=master\r\n"})
CANDIDATE = b64({"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0})


def make_channel(kv, name: str, ttl: int | None = None) -> str:
    extra = {"SingleMasterConfiguration": {"MessageTtlSeconds": ttl}} if ttl else {}
    return kv.create_signaling_channel(ChannelName=name, **extra)["ChannelARN"]


def signaling_client(server, kv, arn):
    # a read timeout far above the server's bounded wait: a hang would surface as ReadTimeout
    return server.boto("kinesis-video-signaling", endpoint=https_endpoint(kv, arn), read_timeout=90)


def call(sig, arn: str, sender: str, payload: str = OFFER) -> asyncio.Task:
    return asyncio.create_task(asyncio.to_thread(
        sig.send_alexa_offer_to_master, ChannelARN=arn, SenderClientId=sender, MessagePayload=payload))


async def next_offer(master, timeout: float = 15.0) -> dict:
    while True:
        frame = await master.recv(timeout)
        if frame.get("messageType") == "SDP_OFFER":
            return frame


async def test_master_answers(server, kv, name):
    arn = make_channel(kv, name)
    sig = signaling_client(server, kv, arn)
    master = await connect(server, arn)
    try:
        pending = call(sig, arn, "alexa-device-1")
        frame = await next_offer(master)
        assert frame["messagePayload"] == OFFER
        assert frame["senderClientId"] == "alexa-device-1"
        # candidates and answers for someone else are not the answer
        await master.send("ICE_CANDIDATE", CANDIDATE, recipient="alexa-device-1")
        await master.send("SDP_ANSWER", b64({"type": "answer", "sdp": "other"}), recipient="someone-else")
        await master.send("SDP_ANSWER", ANSWER, recipient="alexa-device-1")
        resp = await pending
        assert resp["Answer"] == ANSWER
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    finally:
        await master.close()


async def test_two_alexa_calls_get_their_own_answers(server, kv, name):
    arn = make_channel(kv, name)
    sig = signaling_client(server, kv, arn)
    master = await connect(server, arn)
    try:
        calls = {sender: call(sig, arn, sender, b64({"type": "offer", "sdp": sender})) for sender in ("echo-a", "echo-b")}
        for _ in calls:
            frame = await next_offer(master)
            sender = frame["senderClientId"]
            await master.send("SDP_ANSWER", b64({"type": "answer", "sdp": "for " + sender}), recipient=sender)
        for sender, pending in calls.items():
            answer = json.loads(base64.b64decode((await pending)["Answer"]))
            assert answer == {"type": "answer", "sdp": "for " + sender}
    finally:
        await master.close()


async def test_offline_master_connects_within_the_wait_and_answers(server, kv, name):
    """The offer goes out while no master is connected, is retained, reaches the master when it
    connects, and the master's answer still ends the waiting call.

    "While no master is connected" is made observable, not waited for. The server says nothing
    outside when it retains a message, so the test makes the retention itself tell:

    1. A WebSocket viewer with the Alexa sender's client id (the stand-in) sends a stale offer to
       the absent master, which the server retains; the answer to the stand-in's marker, sent
       after it, says the server has handled it.
    2. The Alexa call's virtual viewer replaces the stand-in (it is closed, without a GO_AWAY
       frame), then sends its offer. The close is the event the test waits for: the server asks
       for it and routes the offer in one step, so the offer is in before the master's connect
       is handled.
    3. The master connects. A retained offer replaces an older retained offer from the same sender
       (docs/signaling.md), so if the Alexa offer was retained before the master came, the master
       gets it and never the stale one; had it come later, the stale one would arrive first. The
       assertions check exactly that, so the order is proven by what arrives, not assumed.
    """
    arn = make_channel(kv, name, ttl=20)
    sig = signaling_client(server, kv, arn)
    stand_in = await connect(server, arn, "alexa-late")
    await stand_in.send("SDP_OFFER", b64({"type": "offer", "sdp": "stale"}))
    await stand_in.assert_nothing_before_marker()
    pending = call(sig, arn, "alexa-late")
    code, reason, frames = await stand_in.ended(timeout=30)  # replaced by the Alexa call
    assert (code, reason, frames) == (1000, "replaced by a newer connection", [])
    assert not pending.done()
    master = await connect(server, arn)
    try:
        frame = await master.recv()  # retained for the TTL, delivered on connect, in place of the stale one
        assert frame == {"messageType": "SDP_OFFER", "messagePayload": OFFER, "senderClientId": "alexa-late"}
        await master.assert_nothing_before_marker()  # and the stale offer is gone, not merely later
        await master.send("SDP_ANSWER", ANSWER, recipient="alexa-late")
        assert (await pending)["Answer"] == ANSWER
    finally:
        await master.close()


async def test_no_answer_is_a_clear_bounded_error(server, kv, name):
    """TTL 5 s → the wait is 5 s. Both an absent master and a silent one (it gets the offer, sends
    only a candidate) end in ClientLimitExceededException, not a hang (read timeout is 90 s)."""
    absent = make_channel(kv, name + "-absent", ttl=5)
    silent = make_channel(kv, name + "-silent", ttl=5)
    sig = signaling_client(server, kv, absent)
    master = await connect(server, silent)
    try:
        pending = {arn: call(sig, arn, "alexa-waits") for arn in (absent, silent)}
        frame = await next_offer(master)
        assert frame["senderClientId"] == "alexa-waits"
        await master.send("ICE_CANDIDATE", CANDIDATE, recipient="alexa-waits")
        for task in pending.values():
            with pytest.raises(sig.exceptions.ClientLimitExceededException) as err:
                await task
            message = err.value.response["Error"]["Message"]
            assert "did not answer" in message and "alexa-waits" in message and "5 s" in message
            assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    finally:
        await master.close()


def test_validation_and_not_found(server, kv, name):
    arn = make_channel(kv, name)
    sig = signaling_client(server, kv, arn)
    for params, member in [
        ({"SenderClientId": "bad id!", "MessagePayload": OFFER}, "SenderClientId"),
        ({"SenderClientId": "a" * 257, "MessagePayload": OFFER}, "SenderClientId"),
        ({"SenderClientId": "alexa", "MessagePayload": "not base64!"}, "MessagePayload"),
        ({"SenderClientId": "alexa", "MessagePayload": "A" * 10001}, "MessagePayload"),
    ]:
        with pytest.raises(sig.exceptions.InvalidArgumentException) as err:
            sig.send_alexa_offer_to_master(ChannelARN=arn, **params)
        assert member.lower() in str(err.value).lower()
    with pytest.raises(sig.exceptions.ResourceNotFoundException) as err:
        sig.send_alexa_offer_to_master(ChannelARN=arn.replace(f"/{name}/", f"/{name}-gone/"),
                                       SenderClientId="alexa", MessagePayload=OFFER)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    forged = server.boto("kinesis-video-signaling", endpoint=server.url,
                         secret_key="not-the-secret-key-0000000000000000000000")
    with pytest.raises(forged.exceptions.ClientError) as err:
        forged.send_alexa_offer_to_master(ChannelARN=arn, SenderClientId="alexa", MessagePayload=OFFER)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


async def test_rate_limit_per_channel(server, kv, name):
    """AWS quota: 5 calls per second per channel; the excess is ClientLimitExceededException."""
    arn = make_channel(kv, name)
    sig = signaling_client(server, kv, arn)
    master = await connect(server, arn)

    async def answer_all() -> None:
        while True:
            frame = await next_offer(master, timeout=60)
            await master.send("SDP_ANSWER", ANSWER, recipient=frame["senderClientId"])

    answering = asyncio.create_task(answer_all())
    try:
        results = await asyncio.gather(*(call(sig, arn, f"burst-{i}") for i in range(15)), return_exceptions=True)
    finally:
        answering.cancel()
        await master.close()
    answered = [r for r in results if isinstance(r, dict)]
    throttled = [r for r in results if isinstance(r, sig.exceptions.ClientLimitExceededException)]
    assert len(answered) + len(throttled) == 15, results
    assert answered and all(r["Answer"] == ANSWER for r in answered)
    assert throttled and "calls per second" in str(throttled[0])


async def test_aws_cli(server, kv, name):
    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    if aws is None:
        pytest.skip("the AWS CLI is not installed")
    arn = make_channel(kv, name)
    master = await connect(server, arn)
    try:
        proc = await asyncio.create_subprocess_exec(
            aws, "kinesis-video-signaling", "send-alexa-offer-to-master", "--channel-arn", arn,
            "--sender-client-id", "cli-alexa", "--message-payload", OFFER,
            "--endpoint-url", https_endpoint(kv, arn), "--output", "json",
            env=server.client_env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        frame = await next_offer(master, timeout=30)
        await master.send("SDP_ANSWER", ANSWER, recipient=frame["senderClientId"])
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        assert json.loads(out) == {"Answer": ANSWER}
    finally:
        await master.close()


@pytest.mark.node
async def test_js_sdk_v3(server, kv, name):
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "@aws-sdk" / "client-kinesis-video-signaling").exists():
        pytest.skip("Node.js or tests/node/node_modules is missing")
    arn = make_channel(kv, name)
    missing = make_channel(kv, name + "-ttl5", ttl=5)

    async def run(channel: str, sender: str) -> dict:
        proc = await asyncio.create_subprocess_exec(
            node, str(NODE_DIR / "dp-alexa.mjs"), channel, https_endpoint(kv, channel), sender, OFFER,
            env=server.client_env, cwd=NODE_DIR, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        return json.loads(out)

    master = await connect(server, arn)
    try:
        ok = asyncio.create_task(run(arn, "js-alexa"))
        unanswered = asyncio.create_task(run(missing, "js-alexa"))
        frame = await next_offer(master, timeout=30)
        assert frame["senderClientId"] == "js-alexa"
        await master.send("SDP_ANSWER", ANSWER, recipient="js-alexa")
        result = await ok
        assert result["Answer"] == ANSWER and result["requestId"]
        error = (await unanswered)["error"]
        assert error["name"] == "ClientLimitExceededException" and error["status"] == 400
        assert "did not answer" in error["message"]
    finally:
        await master.close()


@pytest.mark.node
async def test_kvs_js_sdk_master_answers(server, kv, name):
    """The official KVS WebRTC SDK as the master (Node, ws): its sdpOffer event names the Alexa sender
    and its sendSdpAnswer reaches boto3 as Answer."""
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "amazon-kinesis-video-streams-webrtc").exists():
        pytest.skip("Node.js or tests/node/node_modules is missing")
    arn = make_channel(kv, name)
    eps = kv.get_signaling_channel_endpoint(
        ChannelARN=arn, SingleMasterChannelEndpointConfiguration={"Protocols": ["WSS", "HTTPS"], "Role": "MASTER"})
    wss = {e["Protocol"]: e["ResourceEndpoint"] for e in eps["ResourceEndpointList"]}["WSS"]
    proc = await asyncio.create_subprocess_exec(
        node, str(NODE_DIR / "dp-alexa-master.mjs"), arn, wss, "1", env=server.client_env, cwd=NODE_DIR,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.strip() == b"open", (line, await proc.stderr.read())
        sig = signaling_client(server, kv, arn)
        resp = await asyncio.to_thread(sig.send_alexa_offer_to_master, ChannelARN=arn,
                                       SenderClientId="alexa-echo-show", MessagePayload=OFFER)
        answer = json.loads(base64.b64decode(resp["Answer"]))
        assert answer == {"type": "answer", "sdp": "answer-for-alexa-echo-show"}
        report = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        assert report["offers"] == [{"from": "alexa-echo-show", "type": "offer",
                                     "sdp": json.loads(base64.b64decode(OFFER))["sdp"]}]
        assert report["errors"] == []
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()

"""The WSS signaling plane over real sockets: python ``websockets`` clients with botocore-presigned URLs
against the real server process. One test per rule of the issue (handshake, relay, retention,
connection rules, quota profiles, hostile input)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import websockets

from tests.support.server import ACCESS_KEY, SECRET_KEY, Server, running_server
from tests.support.signaling import b64, connect, handshake_status, presign, ssl_ctx
from tests.support.wait import eventually_async


@pytest.fixture(scope="module")
def short_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Tiny idle timeout, maximum duration and GO_AWAY grace, so the timers can be tested quickly."""
    with running_server(tmp_path_factory.mktemp("short"), "--idle-timeout", "1", "--max-connection-seconds", "2",
                        "--go-away-grace", "0.5") as s:
        yield s


@pytest.fixture(scope="module")
def frames_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """As ``short_server``, with ``--go-away-frames``: GO_AWAY before each server-initiated close."""
    with running_server(tmp_path_factory.mktemp("frames"), "--idle-timeout", "1", "--max-connection-seconds", "2",
                        "--go-away-grace", "0.5", "--go-away-frames") as s:
        yield s


@pytest.fixture(scope="module")
def relaxed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("relaxed"), "--quotas", "relaxed") as s:
        yield s


def channel(server: Server, name: str, ttl: int | None = None) -> str:
    kw = {"SingleMasterConfiguration": {"MessageTtlSeconds": ttl}} if ttl else {}
    return server.boto().create_signaling_channel(ChannelName=name, **kw)["ChannelARN"]


def healthy(server: Server) -> bool:
    with urllib.request.urlopen(f"{server.http_url}/health", timeout=5) as r:
        return r.status == 200


# --- 1. handshake --------------------------------------------------------------------------------

async def test_master_and_viewer_connect_with_botocore_presigned_urls(server, name):
    arn = channel(server, name)
    master = await connect(server, arn)
    viewer = await connect(server, arn, "viewer-1")
    await viewer.send("SDP_OFFER", b64({"type": "offer", "sdp": "v=0"}))
    got = await master.recv()
    assert got["senderClientId"] == "viewer-1"
    await master.close()
    await viewer.close()


async def test_parameter_order_does_not_matter(server, name):
    arn = channel(server, name)
    url = presign(server, arn, "shuffled")
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    random.Random(7).shuffle(pairs)
    shuffled = f"{parts.scheme}://{parts.netloc}/?" + urlencode(pairs)
    ws = await websockets.connect(shuffled, ssl=ssl_ctx(server), open_timeout=10)
    await ws.close()


async def test_security_token_is_signed_inside_the_query(server, name):
    arn = channel(server, name)
    creds = server.boto("sts").get_session_token(DurationSeconds=900)["Credentials"]
    url = presign(server, arn, "tok", access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],
                  token=creds["SessionToken"])
    ws = await websockets.connect(url, ssl=ssl_ctx(server), open_timeout=10)
    await ws.close()
    token = creds["SessionToken"]
    tampered = url.replace(token[-12:], token[-12:][::-1])
    assert tampered != url
    assert await handshake_status(server, tampered) == 403
    made_up = presign(server, arn, "tok", token="FakeSessionToken/with+chars=")  # the root key with a made-up token
    assert await handshake_status(server, made_up) == 403


@pytest.mark.parametrize("case", ["wrong-secret", "unknown-key", "tampered-arn", "other-host-port"])
async def test_bad_signatures_are_403(server, name, case):
    arn = channel(server, name)
    if case == "wrong-secret":
        url = presign(server, arn, "v", secret_key="not-the-secret")
    elif case == "unknown-key":
        url = presign(server, arn, "v", access_key="AKIDUNKNOWN000000000")
    elif case == "tampered-arn":
        url = presign(server, arn, "v").replace("X-Amz-ClientId=v", "X-Amz-ClientId=w")
    else:  # the host is signed as sent, port included
        url = presign(server, arn, "v", base=f"https://127.0.0.1:{server.port + 1}")
        url = url.replace(f":{server.port + 1}/", f":{server.port}/")
    assert await handshake_status(server, url) == 403


async def test_expiry_and_clock_skew(server, name):
    arn = channel(server, name)
    now = datetime.now(UTC)
    # X-Amz-Expires is honoured, in both directions.
    assert await handshake_status(server, presign(server, arn, "v", at=now - timedelta(seconds=400), expires=299)) == 403
    assert await handshake_status(server, presign(server, arn, "v", at=now - timedelta(seconds=400), expires=3600)) == 101
    # A client clock up to 5 minutes ahead is tolerated; beyond, the signature is not yet current.
    assert await handshake_status(server, presign(server, arn, "v", at=now + timedelta(seconds=200))) == 101
    assert await handshake_status(server, presign(server, arn, "v", at=now + timedelta(seconds=600))) == 403


async def test_expired_signature_answer_names_the_cause(server, name):
    arn = channel(server, name)
    url = presign(server, arn, "v", at=datetime.now(UTC) - timedelta(hours=1), expires=60)
    with pytest.raises(websockets.InvalidStatus) as exc:
        await websockets.connect(url, ssl=ssl_ctx(server), open_timeout=10)
    assert exc.value.response.status_code == 403
    assert b"Signature expired" in exc.value.response.body


@pytest.mark.parametrize("client_id", ["", "bad id", "AWS_VIEWER", "aws_viewer", "x" * 257, "é"])
async def test_invalid_client_ids_are_400(server, name, client_id):
    arn = channel(server, name)
    assert await handshake_status(server, presign(server, arn, client_id)) == 400


async def test_longest_valid_client_id_is_accepted(server, name):
    arn = channel(server, name)
    peer = await connect(server, arn, "a" * 256)
    await peer.close()


async def test_missing_channel_arn_is_400(server):
    req_url = presign(server, "placeholder")
    parts = urlsplit(req_url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query) if k != "X-Amz-ChannelARN"]
    # Re-sign without the ARN so the signature itself is valid.
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="GET", url=server.url + "/?X-Amz-ClientId=v")
    SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "kinesisvideo", "us-west-2", expires=299).add_auth(req)
    assert pairs  # the original had the other parameters
    assert await handshake_status(server, req.url.replace("https://", "wss://")) == 400


async def test_unknown_deleted_and_other_region_channels_are_404(server, name):
    kv = server.boto()
    arn = channel(server, name)
    assert await handshake_status(server, presign(server, arn.replace(name, name + "-nope"))) == 404
    assert await handshake_status(server, presign(server, arn, "v", region="us-east-1")) == 404
    kv.delete_signaling_channel(ChannelARN=arn)
    assert await handshake_status(server, presign(server, arn)) == 404


async def test_any_origin_subprotocol_echo_and_ping(server, name):
    arn = channel(server, name)
    url = presign(server, arn, "v")
    ws = await websockets.connect(url, ssl=ssl_ctx(server), origin="http://somewhere.example:1234",
                                  subprotocols=["wss"], open_timeout=10)
    assert ws.subprotocol == "wss"
    pong = await ws.ping()
    await asyncio.wait_for(pong, 5)
    await ws.close()


async def test_plain_get_without_upgrade_is_a_clear_400(server):
    req = urllib.request.Request(server.http_url + "/")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=5)
    assert exc.value.code == 400
    assert json.loads(exc.value.read())["__type"] == "InvalidArgumentException"


# --- 2. relay ------------------------------------------------------------------------------------

async def test_routing_between_master_and_viewers(server, name):
    arn = channel(server, name)
    master = await connect(server, arn)
    v1, v2 = await connect(server, arn, "v1"), await connect(server, arn, "v2")
    await v1.send("SDP_OFFER", "b2ZmZXIx", recipient="v2")  # a viewer's recipient is ignored
    assert await master.recv() == {"messagePayload": "b2ZmZXIx", "messageType": "SDP_OFFER", "senderClientId": "v1"}
    await master.send("SDP_ANSWER", "YW5zd2VyMg==", recipient="v2", correlation_id="corr-ok")
    assert await v2.recv() == {"messagePayload": "YW5zd2VyMg==", "messageType": "SDP_ANSWER"}
    await master.assert_nothing_before_marker()  # no STATUS_RESPONSE on success
    await v1.assert_nothing_before_marker()  # neither its own offer nor v2's answer came back to v1
    for p in (master, v1, v2):
        await p.close()


async def test_c_sdk_casing_pretty_printed_with_ice_server_list(server, name):
    arn = channel(server, name)
    master = await connect(server, arn)
    viewer = await connect(server, arn, "ConsumerViewer")
    await viewer.send_raw('{\n\t"action": "SDP_OFFER",\n\t"RecipientClientId": "ProducerMaster",\n'
                          '\t"MessagePayload": "eyJ0eXBlIjoib2ZmZXIifQ==",\n\t"CorrelationId": "c1",\n'
                          '\t"IceServerList": [{"Password": "p", "Ttl": 270, "Uris": ["turn:x"], "Username": "u"}]\n}')
    assert await master.recv() == {"messagePayload": "eyJ0eXBlIjoib2ZmZXIifQ==", "messageType": "SDP_OFFER",
                                   "senderClientId": "ConsumerViewer"}
    await master.send_raw('{\n\t"action": "ICE_CANDIDATE",\n\t"RecipientClientId": "ConsumerViewer",\n'
                          '\t"MessagePayload": "Y2FuZA=="\n}')
    assert await viewer.recv() == {"messagePayload": "Y2FuZA==", "messageType": "ICE_CANDIDATE"}
    await master.close()
    await viewer.close()


async def test_payload_passes_through_byte_for_byte_and_frames_are_compact_lowercase(server, name):
    arn = channel(server, name)
    master = await connect(server, arn)
    viewer = await connect(server, arn, "v")
    payload = base64.b64encode(os.urandom(3000)).decode()
    await viewer.send("SDP_OFFER", payload)
    raw = await master.recv_raw()
    assert raw == '{"messagePayload":"%s","messageType":"SDP_OFFER","senderClientId":"v"}' % payload
    await master.close()
    await viewer.close()


async def test_status_response_only_with_correlation_id(server, name):
    arn = channel(server, name)
    master = await connect(server, arn)
    await master.send("SDP_ANSWER", "eA==")  # no recipient, no correlationId: no answer at all
    await master.send("SDP_ANSWER", "eA==", recipient="bad id!", correlation_id="1697058567743")
    status = await master.recv()  # the answer to the second frame is the first frame to arrive
    assert status == {"messageType": "STATUS_RESPONSE", "statusResponse": {
        "correlationId": "1697058567743", "errorType": "InvalidArgumentException", "statusCode": "400",
        "description": status["statusResponse"]["description"]}}
    await master.close()


# --- 3. retention --------------------------------------------------------------------------------

async def test_messages_for_an_offline_master_are_delivered_in_order_on_connect(server, name):
    arn = channel(server, name)
    viewer = await connect(server, arn, "v")
    for i, action in enumerate(["SDP_OFFER", "ICE_CANDIDATE", "ICE_CANDIDATE"]):
        await viewer.send(action, b64({"n": i}))
    await viewer.send("SDP_OFFER", b64({"n": "newer"}))  # replaces the undelivered offer
    await viewer.close()
    master = await connect(server, arn)
    got = [await master.recv() for _ in range(3)]
    assert [json.loads(base64.b64decode(g["messagePayload"]))["n"] for g in got] == [1, 2, "newer"]
    assert all(g["senderClientId"] == "v" for g in got)
    await master.assert_nothing_before_marker()  # the replaced offer is not delivered after all
    await master.close()


async def test_messages_for_an_offline_viewer_are_delivered_on_connect(server, name):
    arn = channel(server, name)
    master = await connect(server, arn)
    await master.send("SDP_ANSWER", "YTE=", recipient="late")
    await master.send("SDP_ANSWER", "YTI=", recipient="late")  # replaces the first answer
    await master.send("ICE_CANDIDATE", "Yw==", recipient="late")
    viewer = await connect(server, arn, "late")
    assert [(m["messageType"], m["messagePayload"]) for m in [await viewer.recv(), await viewer.recv()]] == [
        ("SDP_ANSWER", "YTI="), ("ICE_CANDIDATE", "Yw==")]
    await master.close()
    await viewer.close()


async def test_ttl_expiry_and_ttl_change_applies_to_later_messages(server, name):
    kv = server.boto()
    arn = channel(server, name, ttl=5)
    viewer = await connect(server, arn, "v")
    await viewer.send("ICE_CANDIDATE", "b2xk")  # kept 5 s
    version = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["Version"]
    kv.update_signaling_channel(ChannelARN=arn, CurrentVersion=version,
                                SingleMasterConfiguration={"MessageTtlSeconds": 120})
    await viewer.send("ICE_CANDIDATE", "bmV3")  # kept 120 s
    await asyncio.sleep(5.5)
    master = await connect(server, arn)
    assert (await master.recv())["messagePayload"] == "bmV3"
    await master.assert_nothing_before_marker()
    await master.close()
    await viewer.close()


# --- 4. connection rules -------------------------------------------------------------------------

@pytest.mark.parametrize("frames", [False, True], ids=["default", "go-away-frames"])
async def test_newest_master_wins_and_the_older_is_closed(server, frames_server, name, frames):
    server = frames_server if frames else server
    arn = channel(server, name)
    old = await connect(server, arn)
    new = await connect(server, arn)
    code, _, got = await old.ended()
    assert code == 1000 and got == ([{"messageType": "GO_AWAY"}] if frames else [])
    viewer = await connect(server, arn, "v")
    await viewer.send("SDP_OFFER", "eA==")
    assert (await new.recv())["senderClientId"] == "v"
    await new.close()
    await viewer.close()


async def test_viewer_reconnecting_with_the_same_client_id_replaces_the_older_socket(server, name):
    arn = channel(server, name)
    master = await connect(server, arn)
    old = await connect(server, arn, "same")
    new = await connect(server, arn, "same")
    code, _, got = await old.ended()
    assert code == 1000 and got == []  # no frame: the KVS C SDK deadlocks on GO_AWAY
    await master.send("SDP_ANSWER", "eA==", recipient="same")
    assert (await new.recv())["messagePayload"] == "eA=="
    await master.close()
    await new.close()


async def test_viewers_per_channel_limit(make_server, name):
    s = make_server("--connects-per-second", "0")  # the aws viewer quota (10), connect rate lifted
    arn = channel(s, name)
    viewers = [await connect(s, arn, f"v{i}") for i in range(10)]
    with pytest.raises(websockets.InvalidStatus) as exc:
        await connect(s, arn, "v10")
    assert exc.value.response.status_code == 400
    assert b"ClientLimitExceededException" in exc.value.response.body
    replaced = await connect(s, arn, "v3")  # a reconnect is not an extra viewer
    master = await connect(s, arn)  # the master is not a viewer
    await viewers[0].close()
    await viewers[0].ws.wait_closed()

    async def slot_free() -> bool:  # the server notices the close asynchronously: ask until it has
        return await handshake_status(s, presign(s, arn, "v10")) == 101

    await eventually_async(slot_free, what="a freed viewer slot being reusable")
    for p in [*viewers[1:], replaced, master]:
        await p.close()


async def test_connects_per_second_per_channel(server, name):
    arn = channel(server, name)
    # 20 simultaneous handshakes: the first 3 pass at once; however slow the machine, 20 cannot all
    # pass at 3 per second unless they take more than 6 s.
    # Masters, so that the viewer quota plays no part (each new master replaces the previous one).
    results = await asyncio.gather(*(handshake_status(server, presign(server, arn)) for i in range(20)))
    assert results.count(101) >= 3 and results.count(400) >= 1
    assert set(results) == {101, 400}


async def test_message_rates_per_connection(server, name):
    arn = channel(server, name)
    master = await connect(server, arn)
    viewer = await connect(server, arn, "v")
    for i in range(12):
        await viewer.send("SDP_OFFER", "eA==", correlation_id=f"sdp-{i}")
    for i in range(45):
        await viewer.send("ICE_CANDIDATE", "eA==", correlation_id=f"ice-{i}")
    statuses = await viewer.frames_before_marker()  # every refusal of the 57 comes before the marker's
    errors = {s["statusResponse"]["errorType"] for s in statuses}
    kinds = {s["statusResponse"]["correlationId"].split("-")[0] for s in statuses}
    assert errors == {"ClientLimitExceededException"} and kinds == {"sdp", "ice"}
    await master.close()
    await viewer.close()


async def test_payload_limit(server, name):
    arn = channel(server, name)
    master = await connect(server, arn)
    viewer = await connect(server, arn, "v")
    big_ok = base64.b64encode(os.urandom(10_000)).decode()  # what the C SDK's large-payload test sends
    assert len(big_ok) > 13_300
    await viewer.send("SDP_OFFER", big_ok, correlation_id="c" * 256)
    assert (await master.recv())["messagePayload"] == big_ok
    await viewer.send("SDP_OFFER", base64.b64encode(os.urandom(11_000)).decode(), correlation_id="too-big")
    status = await viewer.recv()
    assert status["statusResponse"]["correlationId"] == "too-big"
    assert status["statusResponse"]["errorType"] == "InvalidArgumentException"
    await master.assert_nothing_before_marker(via=viewer)  # the refused offer was not relayed
    await master.close()
    await viewer.close()


@pytest.mark.parametrize("frames", [False, True], ids=["default", "go-away-frames"])
async def test_idle_timeout_closes(short_server, frames_server, name, frames):
    server = frames_server if frames else short_server
    arn = channel(server, name)
    peer = await connect(server, arn, "quiet")
    code, reason, got = await peer.ended()
    assert code == 1001 and "idle" in reason
    assert got == ([{"messageType": "GO_AWAY"}] if frames else [])


@pytest.mark.parametrize("frames", [False, True], ids=["default", "go-away-frames"])
async def test_maximum_connection_duration_closes(short_server, frames_server, name, frames):
    server = frames_server if frames else short_server
    arn = channel(server, name)
    peer = await connect(server, arn, "busy")

    async def keep_busy() -> None:
        # Pacing, not ordering: activity well inside the 1 s idle timeout, so that the maximum
        # duration, not idleness, is what ends the connection.
        while True:
            await peer.send("NOT_AN_ACTION", "eA==")  # activity without any answer
            await asyncio.sleep(0.1)

    busy = asyncio.create_task(keep_busy())
    try:
        code, reason, got = await peer.ended()
    finally:
        busy.cancel()
    assert code == 1001 and "maximum" in reason
    assert got == ([{"messageType": "GO_AWAY"}] if frames else [])


@pytest.mark.parametrize("frames", [False, True], ids=["default", "go-away-frames"])
async def test_delete_channel_closes_sockets(server, frames_server, name, frames):
    server = frames_server if frames else server
    kv = server.boto()
    arn = channel(server, name)
    master, viewer = await connect(server, arn), await connect(server, arn, "v")
    kv.delete_signaling_channel(ChannelARN=arn)
    for p in (master, viewer):
        code, _, got = await p.ended()
        assert code == 1001 and got == ([{"messageType": "GO_AWAY"}] if frames else [])
    assert await handshake_status(server, presign(server, arn)) == 404


def _admin(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIGNALITE_ACCESS_KEY_ID": ACCESS_KEY, "SIGNALITE_SECRET_ACCESS_KEY": SECRET_KEY}
    return subprocess.run([sys.executable, "-m", "signalite", "admin", "go-away", "--data-dir", str(server.data_dir),
                           *args], env=env, capture_output=True, text=True, timeout=60)


async def test_admin_command_reconnect_ice_server_and_go_away(make_server, name):
    short_server = make_server("--go-away-grace", "0.5")  # no idle timeout racing the admin commands
    arn = channel(short_server, name)
    master = await connect(short_server, arn)
    viewer = await connect(short_server, arn, "v")
    done = await asyncio.to_thread(_admin, short_server, "--channel-arn", arn, "--reconnect-ice-server")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["Connections"] == 2
    for p in (master, viewer):
        assert await p.recv() == {"messageType": "RECONNECT_ICE_SERVER"}
    done = await asyncio.to_thread(_admin, short_server, "--channel-arn", arn)
    assert done.returncode == 0, done.stderr
    for p in (master, viewer):
        assert await p.recv() == {"messageType": "GO_AWAY"}
        code, _ = await p.closed()
        assert code == 1001


def test_admin_api_refuses_unsigned_and_unknown_requests(server, name):
    req = urllib.request.Request(server.http_url + "/_signalite/admin/signaling", method="POST",
                                 data=json.dumps({"ChannelARN": "x"}).encode())
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=5)
    assert exc.value.code == 403
    env_less = subprocess.run([sys.executable, "-m", "signalite", "admin", "go-away", "--data-dir",
                               str(server.data_dir), "--channel-arn", "arn:aws:kinesisvideo:us-west-2:111122223333:"
                               "channel/none/1700000000000"],
                              env={**os.environ, "SIGNALITE_ACCESS_KEY_ID": ACCESS_KEY,
                                   "SIGNALITE_SECRET_ACCESS_KEY": "wrong-secret"},
                              capture_output=True, text=True, timeout=60)
    assert env_less.returncode == 1 and "403" in env_less.stderr


# --- 5. quota profiles ---------------------------------------------------------------------------

async def test_relaxed_profile_lifts_viewer_connect_and_message_limits(relaxed_server, name):
    s = relaxed_server
    arn = channel(s, name)
    master = await connect(s, arn)
    viewers = await asyncio.gather(*(connect(s, arn, f"v{i}") for i in range(25)))
    for i in range(30):
        await viewers[0].send("SDP_OFFER", b64({"i": i}), correlation_id=f"c{i}")
    got = [await master.recv() for _ in range(30)]
    assert [json.loads(base64.b64decode(g["messagePayload"]))["i"] for g in got] == list(range(30))
    await viewers[0].assert_nothing_before_marker()  # no STATUS_RESPONSE: nothing was refused
    for p in (master, *viewers):
        await p.close()


def test_quota_profiles():
    from signalite.config import Quotas, settings_from

    aws = Quotas.profile("aws")
    assert (aws.max_viewers_per_channel, aws.connects_per_second_per_channel, aws.sdp_messages_per_second,
            aws.ice_messages_per_second, aws.idle_timeout_seconds, aws.max_connection_seconds) == (10, 3, 5, 20, 600, 3600)
    relaxed = Quotas.profile("relaxed")
    assert relaxed.max_viewers_per_channel >= 1000
    assert relaxed.connects_per_second_per_channel is None and relaxed.max_connection_seconds is None
    assert relaxed.idle_timeout_seconds is None  # design.md: relaxed lifts the 10-minute idle timeout
    assert relaxed.sdp_messages_per_second is None and relaxed.ice_messages_per_second is None
    import argparse

    from signalite.config import add_serve_arguments

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    settings = settings_from(parser.parse_args(["--quotas", "relaxed", "--max-viewers", "50", "--sdp-rate", "2"]),
                             {"SIGNALITE_ICE_RATE": "7", "SIGNALITE_MAX_PAYLOAD": "2048"})
    q = settings.quotas
    assert (q.max_viewers_per_channel, q.sdp_messages_per_second, q.ice_messages_per_second, q.max_payload_bytes) == (
        50, 2, 7, 2048)


# --- hostile input -------------------------------------------------------------------------------

@pytest.mark.parametrize("frame, code", [("{not json", 1007), ("[1, 2, 3]", 1007), ('"text"', 1007),
                                         (b"\x00\x01binary", 1003), ("x" * 200_000, 1009)])
async def test_hostile_frames_get_a_clear_close(server, name, frame, code):
    arn = channel(server, name)
    peer = await connect(server, arn, "hostile")
    await peer.send_raw(frame)
    got, _ = await peer.closed()
    assert got == code
    assert healthy(server)
    again = await connect(server, arn, "hostile")  # the channel still works
    await again.close()


async def test_unknown_actions_and_missing_fields(server, name):
    arn = channel(server, name)
    master = await connect(server, arn)
    viewer = await connect(server, arn, "v")
    await viewer.send("PING", "eA==")
    await viewer.send_raw('{"messagePayload": "eA=="}')
    await viewer.send_raw('{"action": "SDP_OFFER"}')
    await viewer.send_raw('{"action": "SDP_OFFER", "messagePayload": 12}')
    await viewer.assert_nothing_before_marker()  # refused, but without a correlationId: no answer
    await master.assert_nothing_before_marker(via=viewer)  # and nothing relayed
    await viewer.send("PING", "eA==", correlation_id="p1")
    await viewer.send_raw('{"action": "SDP_OFFER", "correlationId": "p2"}')
    await viewer.send_raw('{"action": "SDP_OFFER", "messagePayload": "eA==", "correlationId": "bad id"}')
    got = [(await viewer.recv())["statusResponse"] for _ in range(3)]
    assert [g["correlationId"] for g in got] == ["p1", "p2", "bad id"]
    assert {g["errorType"] for g in got} == {"InvalidArgumentException"}
    await viewer.send("SDP_OFFER", "b2s=")  # the connection is still fine
    assert (await master.recv())["messagePayload"] == "b2s="
    await master.close()
    await viewer.close()


async def test_flood_is_answered_and_the_server_stays_healthy(server, name):
    arn = channel(server, name)
    master = await connect(server, arn)
    viewer = await connect(server, arn, "flood")
    junk = ['{"action":"ICE_CANDIDATE","messagePayload":"eA==","correlationId":"f%d"}' % i for i in range(2000)]
    junk += ['{"action":"NOPE"}'] * 1000
    for frame in junk:
        await viewer.send_raw(frame)
    await viewer.send("SDP_OFFER", "ZW5k", correlation_id="end")
    statuses = await viewer.frames_before_marker()  # the answers to all 3001 frames come before the marker's
    assert {s["statusResponse"]["errorType"] for s in statuses} == {"ClientLimitExceededException"}
    assert len(statuses) >= 1900  # 20/s ICE: nearly all refused, each with its correlationId
    assert healthy(server)
    other = await connect(server, arn, "after-flood")
    await other.send("SDP_OFFER", "b2s=")
    while (msg := await master.recv())["senderClientId"] != "after-flood":
        pass
    assert msg["messagePayload"] == "b2s="
    for p in (master, viewer, other):
        await p.close()


async def test_a_viewer_that_never_reads_is_closed_as_a_slow_consumer(relaxed_server, name):
    s = relaxed_server
    arn = channel(s, name)
    master = await connect(s, arn)
    url = presign(s, arn, "sleepy")
    # A client that stops reading: websockets pauses the socket once 4 frames wait unread.
    sleepy = await websockets.connect(url, ssl=ssl_ctx(s), max_queue=4, max_size=None, ping_interval=None,
                                      open_timeout=10)
    payload = base64.b64encode(os.urandom(9000)).decode()
    for _ in range(4000):  # ~48 MB for one socket: far beyond kernel buffers plus the 8 MiB backlog
        await master.send("ICE_CANDIDATE", payload, recipient="sleepy")  # waits while the socket is full
    code = None
    try:
        async with asyncio.timeout(30):
            async for _ in sleepy:  # read everything the server had already sent, then its close
                pass
    except websockets.ConnectionClosed:
        pass
    rcvd = sleepy.protocol.close_rcvd
    code = rcvd.code if rcvd else None
    assert code in (1008, None)  # 1008 "slow consumer", or the transport aborted if the close timed out
    assert healthy(s)
    other = await connect(s, arn, "awake")
    await other.send("SDP_OFFER", "b2s=")
    while (await master.recv())["messageType"] != "SDP_OFFER":
        pass
    await master.close()
    await other.close()


def _admin_cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SIGNALITE_ACCESS_KEY_ID": ACCESS_KEY, "SIGNALITE_SECRET_ACCESS_KEY": SECRET_KEY}
    return subprocess.run([sys.executable, "-m", "signalite", "admin", *args, "--data-dir", str(server.data_dir)],
                          env=env, capture_output=True, text=True, timeout=60)


async def test_admin_disconnect_closes_one_viewer_or_the_master_without_a_frame(server, name):
    arn = channel(server, name)
    master, viewer, other = await connect(server, arn), await connect(server, arn, "v"), await connect(server, arn, "w")
    done = await asyncio.to_thread(_admin_cli, server, "disconnect", arn, "v")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"ChannelARN": arn, "ClientId": "v", "ConnectedHere": True}
    assert await viewer.ended() == (1001, "disconnected by the operator", [])
    await master.send("SDP_ANSWER", "eA==", recipient="w")  # the others stay connected and routed
    assert (await other.recv())["messagePayload"] == "eA=="
    done = await asyncio.to_thread(_admin_cli, server, "disconnect", arn, "--master")
    assert done.returncode == 0, done.stderr
    assert await master.ended() == (1001, "disconnected by the operator", [])
    await other.close()
    gone = await asyncio.to_thread(_admin_cli, server, "disconnect", arn.replace(name, name + "-x"), "v")
    assert gone.returncode == 1 and "ResourceNotFoundException" in gone.stderr

"""GetIceServerConfig with real clients (boto3, AWS CLI, JS SDK v3) against the HTTPS endpoint that
GetSignalingChannelEndpoint returns: shape, validation, errors. TURN allocation is in test_turn.py,
the STUN responder in test_stun.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.support.server import REGION

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
PATTERN = re.compile(r"[a-zA-Z0-9_.-]+")


def https_endpoint(kv, arn: str, role: str = "VIEWER") -> str:
    eps = kv.get_signaling_channel_endpoint(
        ChannelARN=arn, SingleMasterChannelEndpointConfiguration={"Protocols": ["WSS", "HTTPS"], "Role": role})
    return {e["Protocol"]: e["ResourceEndpoint"] for e in eps["ResourceEndpointList"]}["HTTPS"]


@pytest.fixture
def channel(kv, name):
    return kv.create_signaling_channel(ChannelName=name)["ChannelARN"]


@pytest.fixture
def sig(server, kv, channel):
    return server.boto("kinesis-video-signaling", endpoint=https_endpoint(kv, channel))


def check_c_sdk_limits(ice_list: list[dict]) -> None:
    """What the KVS C SDK requires of the response (kvs-signaling.md §4.1)."""
    assert 1 <= len(ice_list) <= 5
    for entry in ice_list:
        assert 1 <= len(entry["Uris"]) <= 4
        assert all(len(u) <= 256 and u.split(":", 1)[0] in ("turn", "turns", "stun", "stuns") for u in entry["Uris"])
        assert isinstance(entry["Ttl"], int) and 30 < entry["Ttl"] <= 86400
        for key in ("Username", "Password"):
            if key in entry:
                assert 1 <= len(entry[key]) <= 256


def test_default_is_the_embedded_stun_server(server, sig, channel):
    """No TURN configured: never an empty list; one stun: URI of this server, Ttl 300, no credentials."""
    resp = sig.get_ice_server_config(ChannelARN=channel)
    ice = resp["IceServerList"]
    check_c_sdk_limits(ice)
    assert len(ice) == 1
    (uri,) = ice[0]["Uris"]
    assert re.fullmatch(r"stun:127\.0\.0\.1:\d+", uri)
    assert ice[0]["Ttl"] == 300
    assert "Username" not in ice[0] and "Password" not in ice[0]
    assert resp["ResponseMetadata"]["RequestId"]


def test_all_optional_members_and_no_websocket_needed(sig, channel):
    """The C SDK sends ClientId + Service before it connects; nothing needs a live socket."""
    resp = sig.get_ice_server_config(ChannelARN=channel, ClientId="ProducerMaster", Service="TURN",
                                     Username="user-1.a_b")
    check_c_sdk_limits(resp["IceServerList"])


@pytest.mark.parametrize("params, member", [
    ({"ClientId": "bad id!"}, "ClientId"),
    ({"ClientId": "x" * 257}, "ClientId"),
    ({"Username": "no:colons"}, "Username"),
    ({"Service": "STUN"}, "Service"),
])
def test_invalid_members_are_invalid_argument(sig, channel, params, member):
    with pytest.raises(sig.exceptions.InvalidArgumentException) as err:
        sig.get_ice_server_config(ChannelARN=channel, **params)
    assert member.lower() in str(err.value).lower()
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_unknown_channel_other_account_region_and_bad_arn(server, sig, channel, name):
    with pytest.raises(sig.exceptions.ResourceNotFoundException) as err:
        sig.get_ice_server_config(ChannelARN=channel.replace(f"/{name}/", f"/{name}-gone/"))
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    # another account's ARN is not found (resources are namespaced by the credential scope) ...
    with pytest.raises(sig.exceptions.ResourceNotFoundException):
        sig.get_ice_server_config(ChannelARN=channel.replace(":111122223333:", ":999988887777:"))
    # ... and so is this channel when the caller signs for another region
    other = server.boto("kinesis-video-signaling", region="eu-west-1", endpoint=server.url)
    with pytest.raises(other.exceptions.ResourceNotFoundException):
        other.get_ice_server_config(ChannelARN=channel)
    with pytest.raises(sig.exceptions.InvalidArgumentException):
        sig.get_ice_server_config(ChannelARN="arn:aws:kinesisvideo:us-west-2:111122223333:stream/x/1")


def test_deleted_channel_is_not_found(kv, sig, channel):
    kv.delete_signaling_channel(ChannelARN=channel)
    with pytest.raises(sig.exceptions.ResourceNotFoundException):
        sig.get_ice_server_config(ChannelARN=channel)


def test_sigv4_is_verified(server, kv, channel):
    forged = server.boto("kinesis-video-signaling", endpoint=https_endpoint(kv, channel),
                         secret_key="not-the-secret-key-0000000000000000000000")
    with pytest.raises(ClientError) as err:
        forged.get_ice_server_config(ChannelARN=channel)
    assert err.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    stranger = server.boto("kinesis-video-signaling", endpoint=https_endpoint(kv, channel),
                           access_key="AKIDUNKNOWN000000000")
    with pytest.raises(ClientError) as err:
        stranger.get_ice_server_config(ChannelARN=channel)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_turn_uris_are_grouped_by_host_four_per_entry(make_server, name):
    uris = [f"turn:turn-a.example:3478?transport={t}" for t in ("udp", "tcp")] + [
        f"turns:turn-a.example:{p}?transport=tcp" for p in (443, 5349, 5350)] + [
        "turn:192.0.2.7:3478?transport=udp"]
    srv = make_server("--turn-uri", ",".join(uris), env={"SIGNALITE_TURN_SECRET": "shh", "SIGNALITE_TURN_TTL": "600"})
    kv = srv.boto()
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    sig = srv.boto("kinesis-video-signaling", endpoint=https_endpoint(kv, arn))
    before = int(time.time())
    ice = sig.get_ice_server_config(ChannelARN=arn, ClientId="viewer-7")["IceServerList"]
    check_c_sdk_limits(ice)
    assert [e["Uris"] for e in ice] == [uris[:4], uris[4:5], uris[5:]]
    for e in ice:
        expiry, ident = e["Username"].split(":", 1)
        assert ident == "viewer-7" and PATTERN.fullmatch(ident)
        assert before + 600 <= int(expiry) <= int(time.time()) + 600
        assert e["Ttl"] == 600
    # the Username member of the request wins over ClientId; without either, the channel name
    ice = sig.get_ice_server_config(ChannelARN=arn, ClientId="viewer-7", Username="alexa.42")["IceServerList"]
    assert ice[0]["Username"].endswith(":alexa.42")
    ice = sig.get_ice_server_config(ChannelARN=arn)["IceServerList"]
    assert ice[0]["Username"].endswith(":" + name)


def test_more_than_five_servers_are_cut_to_five(make_server, name):
    uris = [f"turn:198.51.100.{i}:3478?transport=udp" for i in range(1, 8)]
    srv = make_server("--turn-uri", ",".join(uris), "--turn-secret", "shh")
    kv = srv.boto()
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    ice = srv.boto("kinesis-video-signaling", endpoint=https_endpoint(kv, arn)).get_ice_server_config(
        ChannelARN=arn)["IceServerList"]
    assert [e["Uris"][0] for e in ice] == uris[:5]


@pytest.mark.parametrize("args, message", [
    (["--turn-uri", "turn:127.0.0.1:3478"], "--turn-secret"),
    (["--turn-uri", "http://127.0.0.1:3478", "--turn-secret", "s"], "turn:"),
    (["--turn-ttl", "30"], "--turn-ttl"),
    (["--turn-ttl", "86401"], "--turn-ttl"),
])
def test_bad_ice_configuration_refuses_to_start(tmp_path, args, message):
    proc = subprocess.run([sys.executable, "-m", "signalite", "serve", "--data-dir", str(tmp_path), "--port", "0",
                           *args], capture_output=True, text=True, timeout=30,
                          env={k: v for k, v in os.environ.items() if not k.startswith("SIGNALITE_")})
    assert proc.returncode != 0
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_aws_cli(server, kv, channel):
    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    if aws is None:
        pytest.skip("the AWS CLI is not installed")
    out = subprocess.run([aws, "kinesis-video-signaling", "get-ice-server-config", "--channel-arn", channel,
                          "--client-id", "cli-viewer", "--endpoint-url", https_endpoint(kv, channel), "--output", "json"],
                         capture_output=True, text=True, env=server.client_env, timeout=60)
    assert out.returncode == 0, out.stderr
    ice = json.loads(out.stdout)["IceServerList"]
    check_c_sdk_limits(ice)
    bad = subprocess.run([aws, "kinesis-video-signaling", "get-ice-server-config", "--channel-arn", channel + "0",
                          "--endpoint-url", https_endpoint(kv, channel)],
                         capture_output=True, text=True, env=server.client_env, timeout=60)
    assert bad.returncode != 0 and "ResourceNotFoundException" in bad.stderr


@pytest.mark.node
def test_js_sdk_v3(server, name):
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "@aws-sdk" / "client-kinesis-video-signaling").exists():
        pytest.skip("Node.js or tests/node/node_modules is missing")
    out = subprocess.run([node, str(NODE_DIR / "dp-ice.mjs"), name, "js-viewer"], capture_output=True, text=True,
                         env=server.client_env, cwd=NODE_DIR, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["https"] == server.url
    check_c_sdk_limits(result["IceServerList"])
    assert result["IceServerList"][0]["Uris"][0].startswith("stun:127.0.0.1:")
    assert result["requestId"]
    assert result["errors"]["missing"]["name"] == "ResourceNotFoundException"
    assert result["errors"]["missing"]["status"] == 404
    assert result["errors"]["badClientId"]["name"] == "InvalidArgumentException"
    assert result["errors"]["badClientId"]["status"] == 400
    assert REGION in result["ChannelARN"]

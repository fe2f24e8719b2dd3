"""Policies decide, as on AWS: a matrix over REST and the WSS handshake with real clients (boto3,
websockets; the KVS JS SDK in Node and in Chromium), for IAM users, federation tokens and role sessions."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import websockets
from botocore.exceptions import ClientError
from websockets.exceptions import InvalidStatus

from tests.support.netns import needs_netns, run_python_in_netns
from tests.support.server import ACCOUNT, Server
from tests.support.signaling import presign, ssl_ctx


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action, resource="*", **extra) -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def err(exc: pytest.ExceptionInfo) -> tuple[str, int, str]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


async def wss_status(server: Server, arn: str, creds: dict, client_id: str | None = "viewer-1") -> int:
    url = presign(server, arn, client_id, access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],
                  token=creds.get("SessionToken"))
    try:
        ws = await websockets.connect(url, ssl=ssl_ctx(server), open_timeout=10)
    except InvalidStatus as exc:
        return exc.response.status_code
    await ws.close()
    return 101


@pytest.fixture
def iam(server):
    return server.boto("iam", region="us-east-1")


@pytest.fixture
def channels(server, name):
    kv = server.boto()
    allowed = kv.create_signaling_channel(ChannelName=f"{name}-a", Tags=[{"Key": "team", "Value": "red"}])["ChannelARN"]
    other = kv.create_signaling_channel(ChannelName=f"{name}-b", Tags=[{"Key": "team", "Value": "blue"}])["ChannelARN"]
    return allowed, other


@pytest.fixture
def make_user(server, iam, name):
    made = []

    def factory(*statements: dict) -> dict:
        user = f"{name[:40]}-u{len(made)}"
        iam.create_user(UserName=user)
        if statements:
            iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=doc(*statements))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        made.append((user, key["AccessKeyId"]))
        return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"], "User": user}

    yield factory
    for user, key_id in made:
        iam.delete_access_key(UserName=user, AccessKeyId=key_id)
        iam.delete_user_policy(UserName=user, PolicyName="p") if _has_policy(iam, user) else None
        iam.delete_user(UserName=user)


def _has_policy(iam, user: str) -> bool:
    return "p" in iam.list_user_policies(UserName=user)["PolicyNames"]


def kv_as(server: Server, creds: dict):
    return server.boto(access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],
                       session_token=creds.get("SessionToken"))


async def test_a_user_without_policies_may_do_nothing(server, make_user, channels):
    creds = make_user()
    a, _ = channels
    with pytest.raises(ClientError) as exc:
        kv_as(server, creds).describe_signaling_channel(ChannelARN=a)
    code, status, message = err(exc)
    assert (code, status) == ("AccessDeniedException", 401)
    assert message == (f"User: arn:aws:iam::{ACCOUNT}:user/{creds['User']} is not authorized to perform: "
                       f"kinesisvideo:DescribeSignalingChannel on resource: {a} because no identity-based policy "
                       "allows the kinesisvideo:DescribeSignalingChannel action")
    assert await wss_status(server, a, creds) == 403


async def test_allow_on_one_channel_and_nothing_else(server, make_user, channels):
    a, b = channels
    creds = make_user(allow(["kinesisvideo:DescribeSignalingChannel", "kinesisvideo:ConnectAsViewer",
                             "kinesisvideo:GetSignalingChannelEndpoint"], a))
    kv = kv_as(server, creds)
    assert kv.describe_signaling_channel(ChannelARN=a)["ChannelInfo"]["ChannelARN"] == a
    assert kv.describe_signaling_channel(ChannelName=a.split("/")[1])["ChannelInfo"]["ChannelARN"] == a  # by name
    with pytest.raises(ClientError) as exc:
        kv.describe_signaling_channel(ChannelARN=b)
    assert err(exc)[0] == "AccessDeniedException"
    with pytest.raises(ClientError) as exc:
        kv.delete_signaling_channel(ChannelARN=a)  # not an allowed action
    assert err(exc)[0] == "AccessDeniedException"
    assert await wss_status(server, a, creds) == 101
    assert await wss_status(server, a, creds, client_id=None) == 403  # ConnectAsMaster is not allowed
    assert await wss_status(server, b, creds) == 403
    with pytest.raises(ClientError) as exc:
        kv.list_signaling_channels()
    assert err(exc)[0] == "AccessDeniedException"


async def test_an_explicit_deny_wins_and_is_said_so(server, make_user, channels):
    a, _ = channels
    creds = make_user(allow("kinesisvideo:*"), deny(["kinesisvideo:ConnectAs*", "kinesisvideo:GetSignalingChannelEndpoint"], a))
    kv = kv_as(server, creds)
    kv.describe_signaling_channel(ChannelARN=a)  # allowed by the first statement
    assert await wss_status(server, a, creds) == 403
    with pytest.raises(ClientError) as exc:
        kv.get_signaling_channel_endpoint(ChannelARN=a, SingleMasterChannelEndpointConfiguration={
            "Protocols": ["WSS"], "Role": "MASTER"})
    code, _, message = err(exc)
    assert code == "AccessDeniedException" and message.endswith("with an explicit deny in an identity-based policy")


async def test_not_action_and_wildcards(server, make_user, channels):
    a, b = channels
    creds = make_user({"Effect": "Allow", "NotAction": "kinesisvideo:Delete*", "Resource": "*"})
    kv = kv_as(server, creds)
    kv.describe_signaling_channel(ChannelARN=b)
    assert await wss_status(server, b, creds, client_id=None) == 101
    with pytest.raises(ClientError) as exc:
        kv.delete_signaling_channel(ChannelARN=b)
    assert err(exc)[0] == "AccessDeniedException"
    creds2 = make_user(allow("kinesisvideo:Describe*", a.rsplit("/", 1)[0] + "/*"))  # the channel by name, any creation time
    kv_as(server, creds2).describe_signaling_channel(ChannelARN=a)
    with pytest.raises(ClientError):
        kv_as(server, creds2).describe_signaling_channel(ChannelARN=b)


async def test_conditions_on_source_ip_and_resource_tags(server, make_user, channels):
    a, b = channels
    red_only = make_user(allow("kinesisvideo:*", "*", Condition={"StringEquals": {"aws:ResourceTag/team": "red"}}))
    kv = kv_as(server, red_only)
    kv.describe_signaling_channel(ChannelARN=a)
    with pytest.raises(ClientError):
        kv.describe_signaling_channel(ChannelARN=b)
    assert await wss_status(server, a, red_only) == 101 and await wss_status(server, b, red_only) == 403
    elsewhere = make_user(allow("kinesisvideo:*", "*", Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}))
    with pytest.raises(ClientError):
        kv_as(server, elsewhere).describe_signaling_channel(ChannelARN=a)
    here = make_user(allow("kinesisvideo:*", "*", Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"},
                                                            "Bool": {"aws:SecureTransport": "true"}}))
    kv_as(server, here).describe_signaling_channel(ChannelARN=a)


async def test_a_federation_token_scoped_to_one_channel(server, make_user, channels):
    a, b = channels
    backend = make_user(allow(["sts:GetFederationToken", "kinesisvideo:*"]))
    sts = server.boto("sts", access_key=backend["AccessKeyId"], secret_key=backend["SecretAccessKey"])
    creds = sts.get_federation_token(Name="browser-1", DurationSeconds=900, Policy=doc(
        allow(["kinesisvideo:ConnectAsViewer", "kinesisvideo:DescribeSignalingChannel",
               "kinesisvideo:GetSignalingChannelEndpoint", "kinesisvideo:GetIceServerConfig"], a)))["Credentials"]
    kv = kv_as(server, creds)
    kv.describe_signaling_channel(ChannelARN=a)
    with pytest.raises(ClientError) as exc:
        kv.describe_signaling_channel(ChannelARN=b)
    assert err(exc)[0] == "AccessDeniedException" and "federated-user/browser-1" in err(exc)[2]
    assert await wss_status(server, a, creds) == 101
    assert await wss_status(server, a, creds, client_id=None) == 403
    assert await wss_status(server, b, creds) == 403
    endpoint = kv.get_signaling_channel_endpoint(ChannelARN=a, SingleMasterChannelEndpointConfiguration={
        "Protocols": ["HTTPS"], "Role": "VIEWER"})["ResourceEndpointList"][0]["ResourceEndpoint"]
    signaling = server.boto("kinesis-video-signaling", endpoint=endpoint, access_key=creds["AccessKeyId"],
                            secret_key=creds["SecretAccessKey"], session_token=creds["SessionToken"])
    assert signaling.get_ice_server_config(ChannelARN=a)["IceServerList"]
    with pytest.raises(ClientError):
        signaling.get_ice_server_config(ChannelARN=b)
    iam = server.boto("iam", region="us-east-1", access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],
                      session_token=creds["SessionToken"])
    with pytest.raises(ClientError) as exc:
        iam.list_users()
    assert err(exc)[:2] == ("AccessDenied", 403)  # federation credentials never reach IAM


def test_iam_itself_is_authorized(server, make_user, iam, name):
    reader = make_user(allow(["iam:GetUser", "iam:ListUsers"]))
    as_reader = server.boto("iam", region="us-east-1", access_key=reader["AccessKeyId"],
                            secret_key=reader["SecretAccessKey"])
    assert as_reader.get_user()["User"]["UserName"] == reader["User"]
    with pytest.raises(ClientError) as exc:
        as_reader.create_user(UserName=f"{name[:40]}-nope")
    code, status, message = err(exc)
    assert (code, status) == ("AccessDenied", 403) and "iam:CreateUser" in message
    sts = server.boto("sts", access_key=reader["AccessKeyId"], secret_key=reader["SecretAccessKey"])
    assert sts.get_caller_identity()["Arn"].endswith(f":user/{reader['User']}")  # always allowed


NODE_DIR = Path(__file__).resolve().parents[1] / "node"


@pytest.mark.node
@pytest.mark.skipif(shutil.which("node") is None or not (NODE_DIR / "node_modules" / "amazon-kinesis-video-streams-webrtc").exists(),
                    reason="needs Node.js and tests/node/node_modules")
def test_the_kvs_js_sdk_connects_as_a_viewer_with_a_federation_token_scoped_to_one_channel(server, make_user, channels):
    a, b = channels
    # the token's rights are the backend's intersected with its policy (as on AWS)
    backend = make_user(allow(["sts:GetFederationToken", "kinesisvideo:*"]))
    sts = server.boto("sts", access_key=backend["AccessKeyId"], secret_key=backend["SecretAccessKey"])
    creds = sts.get_federation_token(Name="js-viewer", DurationSeconds=900, Policy=doc(
        allow(["kinesisvideo:ConnectAsViewer"], a)))["Credentials"]
    wss = server.boto().get_signaling_channel_endpoint(ChannelARN=a, SingleMasterChannelEndpointConfiguration={
        "Protocols": ["WSS"], "Role": "VIEWER"})["ResourceEndpointList"][0]["ResourceEndpoint"]
    env = {**server.client_env, "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
           "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"], "AWS_SESSION_TOKEN": creds["SessionToken"]}

    def viewer(arn: str) -> dict:
        proc = subprocess.run(["node", str(NODE_DIR / "kvs-viewer-token.cjs"), arn, wss, "js-viewer-1"], cwd=NODE_DIR,
                              env=env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    allowed = viewer(a)
    assert allowed["opened"] and allowed["error"] is None, allowed
    refused = viewer(b)  # the same token, another channel: the handshake answers 403
    assert not refused["opened"] and refused["error"] is not None, refused


@needs_netns
@pytest.mark.netns
@pytest.mark.browser
@pytest.mark.skipif(not Path("/usr/bin/chromium").exists() or not (
    NODE_DIR / "node_modules/amazon-kinesis-video-streams-webrtc/dist/kvs-webrtc.min.js").exists(),
    reason="needs Debian chromium and the KVS SDK bundle in tests/node/node_modules")
def test_the_kvs_js_sdk_in_chromium_connects_as_a_viewer_with_a_federation_token_scoped_to_one_channel():
    # The browser mirror of the Node test above; the program starts its own server in a lo-only netns.
    r = run_python_in_netns("tests/e2e/peers/chromium_viewer_token.py", timeout=180)
    lines = [line for line in r.output.splitlines() if line.startswith("{")]
    assert lines, f"the browser program printed no result:\n{r}"
    result = json.loads(lines[-1])
    assert r.ok and result["ok"], r
    allowed, other = result["allowed"], result["other"]
    assert allowed["open"] and allowed["error"] is None, allowed
    assert allowed["socket_token"] and other["socket_token"]  # the SDK put the session token in the presigned URL
    assert allowed["socket_channel"] != other["socket_channel"]
    assert result["allowed_accepted"] == 1  # the server counted the browser's handshake as accepted ...
    assert not other["open"] and other["error"], other  # ... and the other channel's as refused (403),
    assert result["other_denied"] == 1 and result["other_accepted"] == 0  # the SDK's error event

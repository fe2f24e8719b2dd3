"""The real AWS CLI v1 (its own bundled botocore) against the server over TLS, configured only
through the environment that ``signalite env`` would print."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

AWS = str(Path(sys.executable).with_name("aws"))


def aws(server, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([AWS, "kinesisvideo", *args, "--output", "json"], env=server.client_env,
                          capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def out(server, *args: str) -> dict:
    text = aws(server, *args).stdout
    return json.loads(text) if text.strip() else {}


def test_cli_channel_lifecycle(server, name):
    arn = out(server, "create-signaling-channel", "--channel-name", name,
              "--single-master-configuration", "MessageTtlSeconds=30")["ChannelARN"]
    info = out(server, "describe-signaling-channel", "--channel-name", name)["ChannelInfo"]
    assert info["ChannelARN"] == arn
    assert info["SingleMasterConfiguration"] == {"MessageTtlSeconds": 30}
    # CLI v1 prints the raw epoch number it received.
    assert isinstance(info["CreationTime"], (int, float))

    out(server, "update-signaling-channel", "--channel-arn", arn, "--current-version", info["Version"],
        "--single-master-configuration", "MessageTtlSeconds=90")
    assert out(server, "describe-signaling-channel", "--channel-arn", arn)["ChannelInfo"][
        "SingleMasterConfiguration"] == {"MessageTtlSeconds": 90}

    eps = out(server, "get-signaling-channel-endpoint", "--channel-arn", arn,
              "--single-master-channel-endpoint-configuration", "Protocols=WSS,HTTPS,Role=VIEWER")["ResourceEndpointList"]
    assert {e["Protocol"]: e["ResourceEndpoint"] for e in eps}["HTTPS"] == server.url

    out(server, "tag-resource", "--resource-arn", arn, "--tags", "Key=team,Value=video", "Key=env,Value=ci")
    assert out(server, "list-tags-for-resource", "--resource-arn", arn)["Tags"] == {"team": "video", "env": "ci"}
    out(server, "untag-resource", "--resource-arn", arn, "--tag-key-list", "env")
    assert out(server, "list-tags-for-resource", "--resource-arn", arn)["Tags"] == {"team": "video"}

    out(server, "delete-signaling-channel", "--channel-arn", arn)
    gone = aws(server, "describe-signaling-channel", "--channel-arn", arn, check=False)
    assert gone.returncode != 0
    assert "ResourceNotFoundException" in gone.stderr


def test_cli_auto_pagination_resends_condition(server, name):
    names = [f"{name}-{i}" for i in range(5)]
    for n in names:
        out(server, "create-signaling-channel", "--channel-name", n)
    listed = out(server, "list-signaling-channels", "--page-size", "2",
                 "--channel-name-condition", f"ComparisonOperator=BEGINS_WITH,ComparisonValue={name}")
    assert [c["ChannelName"] for c in listed["ChannelInfoList"]] == names
    first = out(server, "list-signaling-channels", "--max-items", "2",
                "--channel-name-condition", f"ComparisonOperator=BEGINS_WITH,ComparisonValue={name}")
    assert [c["ChannelName"] for c in first["ChannelInfoList"]] == names[:2]
    assert first["NextToken"]


def test_cli_error_exit_code_and_message(server, name):
    proc = aws(server, "describe-signaling-channel", "--channel-name", name, check=False)
    assert proc.returncode == 255  # CLI v1: service error
    assert "An error occurred (ResourceNotFoundException) when calling the DescribeSignalingChannel operation" in proc.stderr
    assert "The requested channel is not found or not active." in proc.stderr


def test_cli_server_side_validation_error(server):
    proc = aws(server, "create-signaling-channel", "--channel-name", "bad name", check=False)
    assert proc.returncode == 255  # CLI v1: service error
    assert "InvalidArgumentException" in proc.stderr
    assert "channelName" in proc.stderr


def test_cli_streams_and_media_storage(server, name):
    stream = out(server, "create-stream", "--stream-name", name, "--data-retention-in-hours", "2")["StreamARN"]
    channel = out(server, "create-signaling-channel", "--channel-name", name)["ChannelARN"]
    out(server, "update-media-storage-configuration", "--channel-arn", channel,
        "--media-storage-configuration", f"StreamARN={stream},Status=ENABLED")
    assert out(server, "describe-media-storage-configuration", "--channel-arn", channel)[
        "MediaStorageConfiguration"] == {"StreamARN": stream, "Status": "ENABLED"}
    assert out(server, "describe-stream", "--stream-arn", stream)["StreamInfo"]["DataRetentionInHours"] == 2

"""The AWS SDK for JavaScript v3 (``@aws-sdk/client-kinesis-video``) against the real server over
TLS: every channel, tag and media-storage operation, typed errors and response metadata."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "node"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_DIR / "node_modules" / "@aws-sdk" / "client-kinesis-video").exists(),
    reason="node or tests/node/node_modules missing (run scripts/test-deps.sh)",
)


def run_node(server, script: str, *args: str) -> dict:
    proc = subprocess.run(["node", str(NODE_DIR / script), *args], cwd=NODE_DIR, env=server.client_env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def js(server) -> dict:
    return run_node(server, "cp-control-plane.mjs", "jsv3-cp-channel")


def test_create_and_describe(js, server):
    assert re.fullmatch(r"arn:aws:kinesisvideo:us-west-2:111122223333:channel/jsv3-cp-channel/\d{13}", js["arn"])
    assert js["createStatus"] == 200
    assert re.fullmatch(r"[0-9a-f-]{36}", js["createRequestId"])
    assert js["info"]["ChannelName"] == "jsv3-cp-channel"
    assert js["info"]["ChannelStatus"] == "ACTIVE"
    assert js["info"]["SingleMasterConfiguration"] == {"MessageTtlSeconds": 45}
    assert js["describeByName"] == js["arn"]


def test_creation_time_parses_to_a_date_matching_the_arn(js):
    assert js["creationTimeIsDate"] is True
    assert js["creationTimeMs"] == int(js["arn"].rsplit("/", 1)[1])


def test_typed_errors_with_metadata(js):
    missing = js["missing"]
    assert missing["name"] == "ResourceNotFoundException"
    assert missing["isResourceNotFound"] is True
    assert missing["status"] == 404
    assert re.fullmatch(r"[0-9a-f-]{36}", missing["requestId"])
    assert missing["message"] == "The requested channel is not found or not active."
    assert missing["fault"] == "client"
    invalid = js["invalid"]
    assert invalid["isInvalidArgument"] is True and invalid["status"] == 400
    assert "channelName" in invalid["message"]


def test_pagination(js):
    assert js["page1"] == ["jsv3-cp-channel-p0", "jsv3-cp-channel-p1"] and js["page1HasToken"]
    assert js["page2"] == ["jsv3-cp-channel-p2"] and not js["page2HasToken"]
    assert js["paginated"] == ["jsv3-cp-channel-p0", "jsv3-cp-channel-p1", "jsv3-cp-channel-p2"]


def test_update_and_version_mismatch(js):
    assert js["ttlAfterUpdate"] == 100
    assert js["versionChanged"] is True
    stale = js["staleUpdate"]
    assert stale["name"] == "VersionMismatchException" and stale["isVersionMismatch"] is True
    assert stale["status"] == 400
    assert js["staleDelete"]["isVersionMismatch"] is True


def test_endpoints(js, server):
    assert js["endpoints"]["HTTPS"] == server.url
    assert js["endpoints"]["WSS"].startswith("wss://127.0.0.1:")
    assert js["webrtcWithoutStorage"]["isInvalidArgument"] is True


def test_tags(js):
    assert js["tags"] == {"a": "2"}
    assert js["tooManyTags"]["name"] == "TagsPerResourceExceededLimitException"
    assert js["tooManyTags"]["status"] == 400


def test_media_storage(js):
    assert js["storageBefore"] == {"Status": "DISABLED"}
    assert js["storageAfter"] == {"Status": "ENABLED", "StreamARN": js["stream"]}
    assert js["mapped"] == [{"Type": "SIGNALING_CHANNEL", "ARN": js["arn"]}]
    assert js["webrtcEndpoint"]["Protocol"] == "WEBRTC"
    assert js["storageDisabled"] == {"Status": "DISABLED"}


def test_delete(js):
    assert js["afterDelete"]["isResourceNotFound"] is True

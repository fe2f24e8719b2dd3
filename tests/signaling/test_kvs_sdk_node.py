"""The official KVS WebRTC SDK for JavaScript (npm amazon-kinesis-video-streams-webrtc) in Node, as
one master and several viewers on Signalite's WSS endpoint: each offer, answer and candidate
reaches exactly the right peer."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
pytestmark = [
    pytest.mark.node,
    pytest.mark.skipif(shutil.which("node") is None or not (NODE_DIR / "node_modules" / "amazon-kinesis-video-streams-webrtc").exists(),
                       reason="needs Node.js and tests/node/node_modules"),
]


def test_kvs_js_sdk_master_and_viewers_route_exactly(make_server, name):
    # The aws profile allows 3 connects per second per channel, which 1 master + 3 viewers opened at
    # once would exceed (as on AWS): lift it, keep every other aws limit.
    server = make_server("--connects-per-second", "0")
    kv = server.boto()
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    endpoints = kv.get_signaling_channel_endpoint(
        ChannelARN=arn, SingleMasterChannelEndpointConfiguration={"Protocols": ["WSS"], "Role": "MASTER"})
    wss = endpoints["ResourceEndpointList"][0]["ResourceEndpoint"]
    assert wss.startswith("wss://")
    count = 3
    proc = subprocess.run(["node", str(NODE_DIR / "wss-kvs-sdk.cjs"), arn, wss, str(count)], cwd=NODE_DIR,
                          env=server.client_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["reason"] == "done", out
    assert out["errors"] == []
    ids = [f"node-viewer-{i}" for i in range(count)]
    master = out["master"]
    assert sorted((o["from"], o["sdp"]) for o in master["offers"]) == [(i, f"offer-from-{i}") for i in ids]
    assert sorted((c["from"], c["candidate"]) for c in master["candidates"]) == sorted(
        (i, f"candidate-{n}-from-{i}") for i in ids for n in (1, 2))
    assert master["statuses"] == []  # no STATUS_RESPONSE on success, even with a correlationId
    for i in ids:
        viewer = out["viewers"][i]
        assert viewer["answers"] == [{"from": None, "sdp": f"answer-for-{i}"}]  # no senderClientId from the master
        assert viewer["candidates"] == [{"from": None, "candidate": f"candidate-for-{i}"}]
        assert viewer["statuses"] == []

"""JoinStorageSessionAsViewer in a cluster: the storage session on one node, the viewer's
WebSocket on another (``--store postgresql://…``, ``--bus redis://…`` shared, as in
``test_cluster.py``). Signaling only: the viewer's answer is a real aiortc answer, but no media
flows (the media tests run in a lo-only namespace, where PostgreSQL and Redis are not)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from aiortc import RTCPeerConnection

from tests.e2e.peers.kvs import decode, encode
from tests.e2e.test_cluster import Cluster
from tests.integration.pg import postgres_proxy, postgres_schemas, postgres_url  # noqa: F401 - fixtures
from tests.integration.redis_support import redis_prefixes, redis_proxy, redis_url, via  # noqa: F401 - fixtures
from tests.support.media import storage_channel
from tests.support.server import ACCESS_KEY, SECRET_KEY, Server
from tests.support.signaling import b64, connect
from tests.support.wait import eventually


def _admin(node: Server, *args: str) -> str:
    """``signalite admin ARGS`` against ``node`` (its URL, the cluster's root key)."""
    env = {**os.environ, "SIGNALITE_ACCESS_KEY_ID": ACCESS_KEY, "SIGNALITE_SECRET_ACCESS_KEY": SECRET_KEY}
    out = subprocess.run([sys.executable, "-m", "signalite", "admin", *args, "--url", node.url, "--data-dir",
                          str(node.data_dir)], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _webrtc(server, kv, arn: str):  # type: ignore[no-untyped-def]
    endpoint = kv.get_signaling_channel_endpoint(
        ChannelARN=arn, SingleMasterChannelEndpointConfiguration={"Protocols": ["WEBRTC"], "Role": "VIEWER"},
    )["ResourceEndpointList"][0]["ResourceEndpoint"]
    return server.boto("kinesis-video-webrtc-storage", endpoint=endpoint)


async def test_a_viewer_on_another_node_joins_the_storage_session_through_the_bus(make_server, postgres_url,
                                                                                  redis_url, name):
    # The session runs on node A (it answered JoinStorageSessionAsViewer); the viewer's WebSocket
    # is on node B. The join is a channel event B applies to the viewer's connection; the offer
    # and the answer travel through the bus's mailboxes. When the seat closes (here: the operator
    # disconnects it on A), B sends the viewer's messages to the master again.
    a = make_server("--store", postgres_url, "--bus", redis_url)
    b = make_server("--store", postgres_url, "--bus", redis_url)
    cluster = Cluster(a, b, redis_url)
    arn = storage_channel(a.boto(), name)[0]
    master = await connect(a, arn)
    await cluster.wait_subscribers(arn, 1)
    viewer = await connect(b, arn, "viewer-1")
    await cluster.wait_subscribers(arn, 2)
    _webrtc(a, a.boto(), arn).join_storage_session_as_viewer(channelArn=arn, clientId="viewer-1")

    def joined_on_b() -> str | None:
        clients: list[dict[str, Any]] = json.loads(_admin(b, "clients", arn, "--json"))
        (entry,) = [c for c in clients if c.get("ClientId") == "viewer-1"]  # the master has none
        return entry.get("StorageSession")  # absent once it sends to the master again

    to_master = await master.recv(timeout=30)  # the session offers to the master too
    assert to_master["messageType"] == "SDP_OFFER"
    seat = to_master["senderClientId"]
    assert seat.startswith("signalite-storage-")
    assert eventually(joined_on_b, what="node B to apply the join") == seat
    offer = await viewer.recv(timeout=30)
    assert offer["messageType"] == "SDP_OFFER" and "senderClientId" not in offer
    pc = RTCPeerConnection()
    try:
        await pc.setRemoteDescription(decode(offer["messagePayload"]))
        await pc.setLocalDescription(await pc.createAnswer())
        await viewer.send("SDP_ANSWER", encode(pc.localDescription))
    finally:
        await pc.close()
    session = seat.removeprefix("signalite-storage-")
    eventually(lambda: f"storage session {session}: viewer viewer-1 answered" in a.log(),
               what=lambda: f"node A's storage session to apply the viewer's answer:\n{a.log()[-3000:]}")

    _admin(a, "disconnect", arn, seat)
    eventually(lambda: joined_on_b() is None, what="node B to learn that the seat is gone")
    # Node B learnt that the seat is gone: the viewer reaches the master again. One sender's
    # messages reach one recipient in order, so had the answer gone to the master, it would be
    # before this candidate.
    marker = b64({"candidate": "", "marker": "after the session"})
    await viewer.send("ICE_CANDIDATE", marker)
    got = await master.recv(timeout=30)
    assert got == {"messagePayload": marker, "messageType": "ICE_CANDIDATE", "senderClientId": "viewer-1"}
    await master.close()
    await viewer.close()

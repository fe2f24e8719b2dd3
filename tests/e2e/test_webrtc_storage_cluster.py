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

import botocore.exceptions
import pytest
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


def _two_nodes(make_server, postgres_url: str, redis_url: str, name: str) -> tuple[Server, Server, Cluster, str]:  # type: ignore[no-untyped-def]
    """Nodes ``a`` and ``b`` (``--node-id``) on the shared store and bus, and a channel with
    media storage: the set-up of every test here."""
    a = make_server("--store", postgres_url, "--bus", redis_url, "--node-id", "a")
    b = make_server("--store", postgres_url, "--bus", redis_url, "--node-id", "b")
    return a, b, Cluster(a, b, redis_url), storage_channel(a.boto(), name)[0]


async def _master_on_a_viewer_on_b(a: Server, b: Server, cluster: Cluster, arn: str) -> tuple[Any, Any]:
    """The master connected to node A and viewer-1 to node B, each known to both nodes."""
    master = await connect(a, arn)
    await cluster.wait_subscribers(arn, 1)
    viewer = await connect(b, arn, "viewer-1")
    await cluster.wait_subscribers(arn, 2)
    return master, viewer


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
    a, b, cluster, arn = _two_nodes(make_server, postgres_url, redis_url, name)
    master, viewer = await _master_on_a_viewer_on_b(a, b, cluster, arn)
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


def _seats(node: Server, arn: str) -> dict[str, list[str]]:
    """The storage peers' seats in channel ``arn`` across the cluster, by node (``admin clients``
    lists every node's connections, the other nodes' from the bus's presence)."""
    clients: list[dict[str, Any]] = json.loads(_admin(node, "clients", arn, "--json"))
    seats: dict[str, list[str]] = {}
    for c in clients:
        if c["Virtual"] and str(c.get("ClientId")).startswith("signalite-storage-"):
            seats.setdefault(c["Node"], []).append(c["ClientId"])
    return seats


def _storage_session_of(node: Server, node_id: str, arn: str, client_id: str) -> str | None:
    """The storage session viewer ``client_id``, connected to ``node`` (``--node-id node_id``), is in."""
    clients: list[dict[str, Any]] = json.loads(_admin(node, "clients", arn, "--json"))
    (entry,) = [c for c in clients if c.get("ClientId") == client_id and c["Node"] == node_id]
    return entry.get("StorageSession")


async def _answer(viewer, offer: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """Answer ``offer`` with a real aiortc answer (no media flows: PostgreSQL and Redis are not
    reachable from the lo-only namespace the media tests run in)."""
    pc = RTCPeerConnection()
    try:
        await pc.setRemoteDescription(decode(offer["messagePayload"]))
        await pc.setLocalDescription(await pc.createAnswer())
        await viewer.send("SDP_ANSWER", encode(pc.localDescription))
    finally:
        await pc.close()


async def test_the_newest_join_storage_session_wins_across_nodes(make_server, postgres_url, redis_url, name):
    # A session runs on node A (a viewer on node B joined it through A). JoinStorageSession on
    # node B starts one there, whose seat claims the channel's storage key; the registry's
    # takeover rule tells A, which closes its seat: the master ends up with one storage peer, and
    # A's viewer is handed over to B's session, which offers to it again.
    a, b, cluster, arn = _two_nodes(make_server, postgres_url, redis_url, name)
    master, viewer = await _master_on_a_viewer_on_b(a, b, cluster, arn)

    _webrtc(a, a.boto(), arn).join_storage_session_as_viewer(channelArn=arn, clientId="viewer-1")
    first = await master.recv(timeout=30)
    assert first["messageType"] == "SDP_OFFER"
    older = first["senderClientId"]
    assert _seats(b, arn) == {"a": [older]}
    assert eventually(lambda: _storage_session_of(b, "b", arn, "viewer-1"), what="node B to apply the join") == older
    offer = await viewer.recv(timeout=30)
    assert offer["messageType"] == "SDP_OFFER" and "senderClientId" not in offer

    _webrtc(b, b.boto(), arn).join_storage_session(channelArn=arn)
    second = await master.recv(timeout=30)
    assert second["messageType"] == "SDP_OFFER"
    newer = second["senderClientId"]
    assert newer.startswith("signalite-storage-") and newer != older
    # One storage peer left in the cluster: A closed the older seat.
    eventually(lambda: _seats(a, arn) == {"b": [newer]},
               what=lambda: f"node A to close the older seat:\n{a.log()[-3000:]}")
    old_session = older.removeprefix("signalite-storage-")
    assert f"storage session {old_session}: replaced by a newer JoinStorageSession on another node" in a.log()

    # The viewer is in the newer session now, which offers to it again.
    assert eventually(lambda: _storage_session_of(b, "b", arn, "viewer-1"),
                      what=lambda: f"the viewer to be handed over:\n{b.log()[-3000:]}") == newer
    while (frame := await viewer.recv(timeout=30)).get("messageType") != "SDP_OFFER":
        pass
    assert "senderClientId" not in frame
    await _answer(viewer, frame)
    new_session = newer.removeprefix("signalite-storage-")
    eventually(lambda: f"storage session {new_session}: viewer viewer-1 answered" in b.log(),
               what=lambda: f"node B's session to apply the viewer's answer:\n{b.log()[-3000:]}")

    # Once more, back on A: the newest request wins whichever node it reaches.
    _webrtc(a, a.boto(), arn).join_storage_session(channelArn=arn)
    third = await master.recv(timeout=30)
    assert third["messageType"] == "SDP_OFFER" and third["senderClientId"] not in (older, newer)
    eventually(lambda: _seats(b, arn) == {"a": [third["senderClientId"]]},
               what=lambda: f"node B to close its seat:\n{b.log()[-3000:]}")
    # Nothing else reached the master: no other storage peer offered.
    await master.assert_nothing_before_marker()
    await master.close()
    await viewer.close()


async def test_as_viewer_on_a_node_without_the_session_reaches_it_on_another(make_server, postgres_url,
                                                                             redis_url, name):
    # The session runs on node B (JoinStorageSession there); the viewer connects to node A and
    # calls JoinStorageSessionAsViewer on A. A has no session: it asks the bus who holds the
    # channel's storage claim and posts the join there, instead of starting a second session.
    a, b, cluster, arn = _two_nodes(make_server, postgres_url, redis_url, name)
    master = await connect(a, arn)
    await cluster.wait_subscribers(arn, 1)
    _webrtc(b, b.boto(), arn).join_storage_session(channelArn=arn)
    to_master = await master.recv(timeout=30)
    assert to_master["messageType"] == "SDP_OFFER"
    seat = to_master["senderClientId"]
    session = seat.removeprefix("signalite-storage-")
    assert _seats(a, arn) == {"b": [seat]}
    # The seat's claim is registered before its offer is sent: it is visible now.
    viewer = await connect(a, arn, "viewer-1")
    await cluster.wait_subscribers(arn, 2)

    _webrtc(a, a.boto(), arn).join_storage_session_as_viewer(channelArn=arn, clientId="viewer-1")
    offer = await viewer.recv(timeout=30)
    assert offer["messageType"] == "SDP_OFFER" and "senderClientId" not in offer
    assert eventually(lambda: _storage_session_of(a, "a", arn, "viewer-1"), what="node A to apply the join") == seat
    await _answer(viewer, offer)
    eventually(lambda: f"storage session {session}: viewer viewer-1 answered" in b.log(),
               what=lambda: f"node B's session to apply the viewer's answer:\n{b.log()[-3000:]}")
    assert f"storage session {session}: viewer viewer-1 joins (sent by another node)" in b.log()
    # A started no session of its own: no seat there, and the master got no other offer.
    assert _seats(a, arn) == {"b": [seat]}
    assert "joins channel" not in a.log()
    # The claim is no connection: the cluster-wide listing leaves it out.
    listed: list[dict[str, Any]] = json.loads(_admin(a, "clients", arn, "--json"))
    assert sorted((c["Node"], c.get("ClientId") or "master") for c in listed) == [
        ("a", "master"), ("a", "viewer-1"), ("b", seat)]
    await master.assert_nothing_before_marker()
    await master.close()
    await viewer.close()


async def test_the_viewer_limit_holds_for_a_viewer_on_another_node(make_server, postgres_url, redis_url, name):
    # The session runs on node A with its 3 viewers; a 4th calls JoinStorageSessionAsViewer on
    # node B, which has no session: B posts the join to A's session and waits for its verdict,
    # so the caller gets AWS's ClientLimitExceededException instead of a 200 that A then ignores.
    # A viewer joining again with a client id already in the session is no new viewer.
    a, b, _, arn = _two_nodes(make_server, postgres_url, redis_url, name)
    on_a, on_b = _webrtc(a, a.boto(), arn), _webrtc(b, b.boto(), arn)
    on_a.join_storage_session_as_viewer(channelArn=arn, clientId="viewer-1")  # starts the session on A
    assert eventually(lambda: list(_seats(b, arn)) == ["a"] or None, what="A's session holding the claim")
    on_a.join_storage_session_as_viewer(channelArn=arn, clientId="viewer-2")
    on_b.join_storage_session_as_viewer(channelArn=arn, clientId="viewer-3")  # the third, through B: joins
    assert eventually(lambda: "viewer viewer-3 joins (sent by another node)" in a.log() or None,
                      what="A's session to take viewer-3")
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        on_b.join_storage_session_as_viewer(channelArn=arn, clientId="viewer-4")
    assert refused.value.response["Error"]["Code"] == "ClientLimitExceededException"
    assert "maximum number of viewers" in refused.value.response["Error"]["Message"]
    assert "viewer viewer-4 (sent by another node) refused" in a.log()
    on_b.join_storage_session_as_viewer(channelArn=arn, clientId="viewer-2")  # already in: not refused
    assert list(_seats(b, arn)) == ["a"]  # B started no session of its own

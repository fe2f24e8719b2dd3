"""Two real ``signalite serve`` processes as one cluster: ``--store postgresql://…`` and
``--bus redis://…`` shared, python ``websockets`` clients with botocore-presigned URLs.

Each test has its own PostgreSQL schema and Redis channel prefix. Where a client must not send
before the other node listens, the test asks Redis itself (PUBSUB NUMSUB) rather than sleeping.

The last three tests were strict xfails until the bus had presence and shared retention
(``bus/base.py`` mailboxes); more cluster behaviour is in ``test_cluster_nodes.py``.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from signalite.bus.redis import parse_url as parse_bus_url
from tests.integration.pg import postgres_proxy, postgres_schemas, postgres_url  # noqa: F401 - fixtures
from tests.integration.redis_support import redis_prefixes, redis_proxy, redis_url, via  # noqa: F401 - fixtures
from tests.support.server import Server, refused_port
from tests.support.signaling import connect
from tests.support.wait import eventually, eventually_async


class Cluster:
    def __init__(self, a: Server, b: Server, bus_url: str) -> None:
        self.a, self.b = a, b
        self.bus_url = bus_url

    def channel(self, name: str) -> str:
        return self.a.boto().create_signaling_channel(ChannelName=name)["ChannelARN"]

    async def subscribers(self, arn: str) -> int:
        import redis.asyncio as aioredis

        url, prefix = parse_bus_url(self.bus_url)
        client = aioredis.Redis.from_url(url)
        try:
            result = await client.pubsub_numsub(f"{prefix}t:{arn}")
            return int(result[0][1])
        finally:
            await client.aclose()

    async def wait_subscribers(self, arn: str, count: int) -> None:
        """Until ``count`` nodes listen on the channel's topic (Redis answers; nothing is timed)."""
        async def enough() -> bool:
            return await self.subscribers(arn) >= count

        await eventually_async(enough, what=f"{count} nodes subscribing to {arn}", interval=0.02)


@pytest.fixture
def cluster(make_server, postgres_url, redis_url) -> Iterator[Cluster]:
    a = make_server("--store", postgres_url, "--bus", redis_url)
    b = make_server("--store", postgres_url, "--bus", redis_url)
    yield Cluster(a, b, redis_url)


def test_every_node_reports_store_and_bus_ready(cluster):
    for node in (cluster.a, cluster.b):
        status, body = node.ready()
        assert status == 200
        assert body == {"status": "ready", "store": "ok", "bus": "ok"}


async def test_master_on_one_node_and_viewer_on_another_talk_in_order(cluster, name):
    arn = cluster.channel(name)
    master = await connect(cluster.a, arn)
    await cluster.wait_subscribers(arn, 1)
    viewer = await connect(cluster.b, arn, "viewer-b")
    await cluster.wait_subscribers(arn, 2)

    await viewer.send("SDP_OFFER", "b2ZmZXI=")
    assert await master.recv() == {"messagePayload": "b2ZmZXI=", "messageType": "SDP_OFFER",
                                   "senderClientId": "viewer-b"}
    await master.send("SDP_ANSWER", "YW5zd2Vy", recipient="viewer-b")
    assert await viewer.recv() == {"messagePayload": "YW5zd2Vy", "messageType": "SDP_ANSWER"}

    for i in range(15):  # within the aws profile's 20 ICE messages per second per connection
        await viewer.send("ICE_CANDIDATE", f"dmlld2VyLXtp{i:04d}")
        await master.send("ICE_CANDIDATE", f"bWFzdGVyLXtp{i:04d}", recipient="viewer-b")
    at_master = [(await master.recv())["messagePayload"] for _ in range(15)]
    at_viewer = [(await viewer.recv())["messagePayload"] for _ in range(15)]
    assert at_master == [f"dmlld2VyLXtp{i:04d}" for i in range(15)]
    assert at_viewer == [f"bWFzdGVyLXtp{i:04d}" for i in range(15)]
    # each delivered once: the markers, sent after, are the next frames across the nodes too
    await master.assert_nothing_before_marker(via=viewer)
    await viewer.assert_nothing_before_marker(via=master)
    await master.close()
    await viewer.close()


async def test_viewers_on_both_nodes_reach_the_master(cluster, name):
    arn = cluster.channel(name)
    master = await connect(cluster.b, arn)
    near = await connect(cluster.b, arn, "near")
    far = await connect(cluster.a, arn, "far")
    await cluster.wait_subscribers(arn, 2)
    await near.send("SDP_OFFER", "bmVhcg==")
    await far.send("SDP_OFFER", "ZmFy")
    got = {(m["senderClientId"], m["messagePayload"]) for m in [await master.recv(), await master.recv()]}
    assert got == {("near", "bmVhcg=="), ("far", "ZmFy")}
    await master.send("SDP_ANSWER", "dG8tZmFy", recipient="far")
    await master.send("SDP_ANSWER", "dG8tbmVhcg==", recipient="near")
    assert (await far.recv())["messagePayload"] == "dG8tZmFy"
    assert (await near.recv())["messagePayload"] == "dG8tbmVhcg=="
    # neither answer reached the other viewer (nor twice its own), on either node
    await far.assert_nothing_before_marker(via=master)
    await near.assert_nothing_before_marker(via=master)
    for p in (master, near, far):
        await p.close()


async def test_deleting_a_channel_on_one_node_closes_its_sockets_on_the_other(cluster, name):
    arn = cluster.channel(name)
    master = await connect(cluster.b, arn)
    viewer = await connect(cluster.b, arn, "v")
    await cluster.wait_subscribers(arn, 1)
    cluster.a.boto().delete_signaling_channel(ChannelARN=arn)  # the API call lands on the other node
    for p in (master, viewer):
        code, _, got = await p.ended()
        assert code == 1001 and got == []  # closed without a GO_AWAY frame (the default)


def test_serve_fails_fast_with_a_clear_message_when_redis_is_unreachable(tmp_path, redis_prefixes):
    with refused_port() as closed:
        bus = f"redis://user:hunter2@127.0.0.1:{closed}/0"
        server = Server(data_dir=tmp_path / "srv", args=["--bus", bus])
        with pytest.raises(RuntimeError, match="server exited with 1"):
            server.start()
    log = server.log()
    assert "signalite: cannot connect to the Redis bus redis://user:***@127.0.0.1:" in log
    assert "hunter2" not in log and "Traceback" not in log


def test_ready_answers_503_while_redis_is_unreachable_and_recovers(make_server, redis_url, redis_proxy):
    server = make_server("--bus", via(redis_proxy, redis_url))
    assert server.ready()[0] == 200
    redis_proxy.stop()
    status, body = server.ready()
    assert status == 503
    assert body["store"] == "ok" and body["bus"].startswith("error: Redis")
    redis_proxy.start()
    eventually(lambda: server.ready()[0] == 200,  # the connections come back on next use
               what=lambda: f"/ready recovering (now {server.ready()})")


# --- presence and shared retention across nodes ------------------------------------------------

async def test_a_message_for_an_offline_master_reaches_it_on_another_node(cluster, name):
    arn = cluster.channel(name)
    viewer = await connect(cluster.b, arn, "v")
    await cluster.wait_subscribers(arn, 1)
    await viewer.send("SDP_OFFER", "b2ZmZXI=")
    master = await connect(cluster.a, arn)
    try:
        assert (await master.recv(timeout=3))["messagePayload"] == "b2ZmZXI="
    finally:
        await master.close()
        await viewer.close()


async def test_a_delivered_message_is_not_delivered_again_on_another_node(cluster, name):
    arn = cluster.channel(name)
    master = await connect(cluster.a, arn)
    viewer = await connect(cluster.b, arn, "v")
    await cluster.wait_subscribers(arn, 2)
    await viewer.send("SDP_OFFER", "b2ZmZXI=")
    assert (await master.recv())["messagePayload"] == "b2ZmZXI="  # delivered once, on node a
    await master.close()
    again = await connect(cluster.b, arn)  # the master reconnects through node b
    try:
        # Had node b retained the offer as well, it would send it on connect, before the answer
        # to the marker.
        await again.assert_nothing_before_marker()
    finally:
        await again.close()
        await viewer.close()


async def test_a_newer_master_on_another_node_replaces_the_older(cluster, name):
    arn = cluster.channel(name)
    old = await connect(cluster.a, arn)
    await cluster.wait_subscribers(arn, 1)
    new = await connect(cluster.b, arn)
    try:
        code, _, _ = await old.ended(timeout=3)
        assert code == 1000
    finally:
        await old.close()
        await new.close()

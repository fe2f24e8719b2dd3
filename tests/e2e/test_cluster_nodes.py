"""Three real ``signalite serve`` processes as one server: the same PostgreSQL store and Redis bus,
raw WebSocket clients and the KVS JS SDK spread over the nodes.

What is checked here is what a user of a cluster relies on (design.md, "Cluster"): metadata
changes and deletes reach every node; limits count across the cluster; a newer connection
replaces an older one wherever it is; a message is delivered exactly once, in order, whichever
nodes the sender and recipient use and however the recipient moves (a seeded random schedule);
``kill -9`` of a node and SIGTERM drain lose nothing; a node cut off from Redis answers 503
(retriable) and recovers. Nothing waits for a quiet moment: "nothing more arrived" is a marker
message that travels after the messages in question (one sender's messages stay in order).
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import websockets

from tests.integration.pg import postgres_proxy, postgres_schemas, postgres_url  # noqa: F401 - fixtures
from tests.integration.redis_support import redis_prefixes, redis_proxy, redis_url, via  # noqa: F401 - fixtures
from tests.support.server import Server
from tests.support.signaling import Peer, connect, handshake_status, presign
from tests.support.tracecli import TraceReader, cli
from tests.support.wait import eventually, eventually_async

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
LEASE = 1.0
"""The nodes' lease (bus URL ``lease``): a killed node's presence lapses after it."""


class Cluster:
    def __init__(self, nodes: list[Server]) -> None:
        self.nodes = nodes

    def __getitem__(self, i: int) -> Server:
        return self.nodes[i]

    def channel(self, name: str, ttl: int = 60) -> str:
        return self.nodes[0].boto().create_signaling_channel(
            ChannelName=name, SingleMasterConfiguration={"MessageTtlSeconds": ttl})["ChannelARN"]


@pytest.fixture
def make_cluster(make_server, postgres_url, redis_url, tmp_path) -> Iterator[Callable[..., Cluster]]:
    """``make_cluster(*flags, count=3)``: nodes on one store and bus, sharing one local CA (so a
    client that trusts one node trusts all, as behind one name)."""
    def make(*flags: str, count: int = 3, bus: str | None = None) -> Cluster:
        bus_url = bus or f"{redis_url}&lease={LEASE:g}"
        first = make_server("--store", postgres_url, "--bus", bus_url, "--node-id", "node-0", *flags)
        nodes = [first]
        for i in range(1, count):
            data = tmp_path / f"cluster-node-{i}-{time.monotonic_ns()}"
            (data / "tls").mkdir(parents=True)
            for f in ("ca.pem", "ca.key"):
                shutil.copy(first.data_dir / "tls" / f, data / "tls" / f)
            nodes.append(make_server("--store", postgres_url, "--bus", bus_url, "--node-id", f"node-{i}", *flags,
                                     data_dir=data))
        return Cluster(nodes)

    yield make


def payload(tag: str) -> str:
    import base64

    return base64.b64encode(tag.encode()).decode()


def tag_of(frame: dict[str, Any]) -> str:
    import base64

    return base64.b64decode(frame["messagePayload"]).decode()


async def fence(receiver: Peer, sender: Peer) -> list[str]:
    """Everything ``sender`` sent ``receiver`` so far, as received (ends with a marker from it)."""
    return [tag_of(f) for f in await receiver.frames_before_marker(via=sender)]


# --- metadata and limits ------------------------------------------------------------------------

async def test_updates_and_deletes_reach_every_node(make_cluster, name):
    c = make_cluster("--quotas", "relaxed")
    arn = c.channel(name, ttl=60)
    for node in c.nodes:  # every node has read (and cached) the channel
        kv = node.boto()
        kv.get_signaling_channel_endpoint(ChannelARN=arn)
        assert kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["SingleMasterConfiguration"] == {
            "MessageTtlSeconds": 60}
    version = c[0].boto().describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["Version"]
    c[1].boto().update_signaling_channel(ChannelARN=arn, CurrentVersion=version,
                                         SingleMasterConfiguration={"MessageTtlSeconds": 120})
    for node in c.nodes:
        kv = node.boto()
        eventually(lambda kv=kv: kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]
                   ["SingleMasterConfiguration"]["MessageTtlSeconds"] == 120, what="the update on every node")
    masters = [await connect(node, arn) for node in c.nodes[:1]]
    viewers = [await connect(node, arn, f"v{i}") for i, node in enumerate(c.nodes)]
    c[2].boto().delete_signaling_channel(ChannelARN=arn)
    for p in masters + viewers:  # closed on every node, without a GO_AWAY frame
        code, _, got = await p.ended()
        assert code == 1001 and got == []
    for node in c.nodes:
        kv = node.boto()
        with pytest.raises(kv.exceptions.ResourceNotFoundException):
            kv.get_signaling_channel_endpoint(ChannelARN=arn)
        assert await handshake_status(node, presign(node, arn, "late")) == 404


def _ssl(node: Server) -> Any:
    import ssl

    return ssl.create_default_context(cafile=node.ca)


async def test_the_viewer_limit_and_connect_rate_count_across_nodes(make_cluster, name):
    c = make_cluster("--connects-per-second", "0")  # aws profile: 10 viewers per channel
    arn = c.channel(name)
    viewers = [await connect(c[i % 3], arn, f"v{i}") for i in range(10)]
    for node in c.nodes:
        assert await handshake_status(node, presign(node, arn, "eleventh")) == 400
    again = await connect(c[2], arn, "v0")  # a viewer reusing its client id elsewhere: not a new one
    code, reason, got = await viewers[0].ended()
    assert (code, reason, got) == (1000, "replaced by a newer connection", [])
    await viewers[1].close()  # one leaves: there is room again, on any node
    extra = await eventually_async(lambda: _try_connect(c[0], arn, "v10"), what="room for a viewer")
    for p in [again, extra, *viewers[2:]]:
        await p.close()
    rated = make_cluster("--connects-per-second", "3", count=2)
    arn2 = rated.channel(name + "-rate")
    codes = []
    for i in range(8):
        node = rated[i % 2]
        codes.append(await handshake_status(node, presign(node, arn2, f"r{i}")))
    assert codes.count(400) >= 8 - 3 - 2  # 3 per second across both nodes (and what refilled meanwhile)


async def _try_connect(node: Server, arn: str, client_id: str) -> Peer | None:
    try:
        return await connect(node, arn, client_id)
    except websockets.InvalidStatus:
        return None


# --- delivery ------------------------------------------------------------------------------------

async def test_master_and_viewers_on_three_nodes_with_the_kvs_js_sdk(make_cluster, name):
    if shutil.which("node") is None or not (NODE_DIR / "node_modules" / "amazon-kinesis-video-streams-webrtc").exists():
        pytest.skip("needs Node.js and tests/node/node_modules")
    # relaxed: the master answers six viewers at once, over the aws profile's 5 SDP messages per second
    c = make_cluster("--quotas", "relaxed")
    arn = c.channel(name)
    endpoints = [n.boto().get_signaling_channel_endpoint(
        ChannelARN=arn, SingleMasterChannelEndpointConfiguration={"Protocols": ["WSS"], "Role": "VIEWER"}
    )["ResourceEndpointList"][0]["ResourceEndpoint"] for n in c.nodes]
    count = 6
    proc = subprocess.run(["node", str(NODE_DIR / "wss-kvs-sdk.cjs"), arn, endpoints[0], str(count),
                           ",".join(endpoints[1:] + endpoints[:1])], cwd=NODE_DIR,
                          env=c[0].client_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["reason"] == "done" and out["errors"] == [], json.dumps(out, indent=1)
    ids = [f"node-viewer-{i}" for i in range(count)]
    assert sorted(o["from"] for o in out["master"]["offers"]) == ids
    for i in ids:
        assert out["viewers"][i]["answers"] == [{"from": None, "sdp": f"answer-for-{i}"}]


async def test_a_seeded_random_race_of_connects_moves_and_sends_delivers_exactly_once_in_order(make_cluster, name):
    """Raw clients over three nodes: a master and three viewers send to each other while the
    viewers disconnect, reconnect on another node or connect anew while still connected (a
    takeover); every message, sent at any point, reaches its recipient once and in order."""
    c = make_cluster("--quotas", "relaxed")
    arn = c.channel(name)
    rnd = random.Random(20261201)
    master = await connect(c[0], arn)
    ids = ["v1", "v2", "v3"]
    viewers: dict[str, Peer] = {v: await connect(c[i], arn, v) for i, v in enumerate(ids)}
    sent_to: dict[str, list[str]] = {v: [] for v in ids}
    sent_from: dict[str, list[str]] = {v: [] for v in ids}
    got_by: dict[str, list[str]] = {v: [] for v in ids}
    got_master: list[tuple[str, str]] = []

    async def drain(peer: Peer, sink: Callable[[dict[str, Any]], None]) -> None:
        try:
            async for raw in peer.ws:
                sink(json.loads(raw))
        except websockets.ConnectionClosed:
            pass

    tasks: list[asyncio.Task[None]] = []

    def listen(v: str, peer: Peer) -> None:
        tasks.append(asyncio.create_task(drain(peer, lambda f, v=v: got_by[v].append(tag_of(f)))))

    tasks.append(asyncio.create_task(drain(master, lambda f: got_master.append((f["senderClientId"], tag_of(f))))))
    for v, p in viewers.items():
        listen(v, p)
    for step in range(120):
        v = rnd.choice(ids)
        r = rnd.random()
        if r < 0.45:
            tag = f"m>{v}#{len(sent_to[v])}"
            sent_to[v].append(tag)
            await master.send("ICE_CANDIDATE", payload(tag), recipient=v)
        elif r < 0.7:
            if viewers[v].ws.state is websockets.protocol.State.OPEN:
                tag = f"{v}>m#{len(sent_from[v])}"
                sent_from[v].append(tag)
                await viewers[v].send("ICE_CANDIDATE", payload(tag))
        elif r < 0.85:
            await viewers[v].close()  # gone for a while; messages for it are retained
        else:
            old = viewers[v]
            viewers[v] = await connect(c[rnd.randrange(3)], arn, v)  # anew, anywhere (a takeover if still open)
            listen(v, viewers[v])
            if old.ws.state is websockets.protocol.State.OPEN:
                await asyncio.wait_for(old.ws.wait_closed(), 10)  # its reader task sees the frames
                rcvd = old.ws.protocol.close_rcvd
                assert rcvd is not None and rcvd.code == 1000  # replaced
        if step % 10 == 0:
            await asyncio.sleep(0)
    for v in ids:
        if viewers[v].ws.state is not websockets.protocol.State.OPEN:
            viewers[v] = await connect(c[rnd.randrange(3)], arn, v)
            listen(v, viewers[v])
    for v in ids:  # a marker per direction closes each stream
        mark = f"end>{v}"
        await master.send("ICE_CANDIDATE", payload(mark), recipient=v)
        await eventually_async(lambda v=v, mark=mark: _has(got_by[v], mark), what=f"the end marker at {v}")
        back = f"end<{v}"
        await viewers[v].send("ICE_CANDIDATE", payload(back))
        await eventually_async(lambda back=back: _has([t for _, t in got_master], back),
                               what=f"the end marker from {v}")
    for v in ids:
        assert [t for t in got_by[v] if not t.startswith("end")] == sent_to[v]
        assert [t for s, t in got_master if s == v and not t.startswith("end")] == sent_from[v]
    for p in [master, *viewers.values()]:
        await p.close()
    for t in tasks:
        t.cancel()


async def _has(items: list[str], tag: str) -> bool:
    return tag in items


# --- failures and drain ---------------------------------------------------------------------------

async def _stream(c: Cluster, arn: str, victim: int, end: Callable[[Server], None], count: int = 400
                  ) -> tuple[list[str], list[str]]:
    """The master (node 0) sends ``count`` messages to a viewer on node ``victim``, which
    ``end`` kills or drains halfway; the viewer reconnects on node 2 when its socket ends.
    Returns (sent, received)."""
    master = await connect(c[0], arn)
    viewer = await connect(c[victim], arn, "v")
    received: list[str] = []
    sent: list[str] = []
    moved = asyncio.Event()

    async def follow() -> None:
        nonlocal viewer
        try:
            async for raw in viewer.ws:
                received.append(tag_of(json.loads(raw)))
        except websockets.ConnectionClosed:
            pass
        viewer = await connect(c[2], arn, "v")  # the client reconnects elsewhere, as the SDKs do
        moved.set()
        try:
            async for raw in viewer.ws:
                received.append(tag_of(json.loads(raw)))
        except websockets.ConnectionClosed:
            pass

    task = asyncio.create_task(follow())
    for i in range(count):
        if i == count // 2:
            end(c[victim])
        tag = f"m{i:05d}"
        sent.append(tag)
        await master.send("ICE_CANDIDATE", payload(tag), recipient="v")
        if i % 20 == 0:
            await asyncio.sleep(0.005)  # a steady stream, not one burst
    await asyncio.wait_for(moved.wait(), 30)
    await master.send("ICE_CANDIDATE", payload("end"), recipient="v")
    await eventually_async(lambda: _has(received, "end"), what="the end marker after the move")
    await master.close()
    await viewer.close()
    task.cancel()
    return sent, [t for t in received if t != "end"]


async def test_kill_9_of_the_recipients_node_loses_no_message(make_cluster, name):
    c = make_cluster("--quotas", "relaxed")
    arn = c.channel(name)
    sent, received = await _stream(c, arn, 1, lambda node: node.proc.send_signal(signal.SIGKILL))  # type: ignore[union-attr]
    assert set(received) == set(sent)  # nothing lost
    unique = list(dict.fromkeys(received))
    assert unique == sent  # in order (a message written just before the kill may come twice)
    assert len(received) - len(unique) <= 50


async def test_sigterm_drain_moves_clients_to_other_nodes_without_loss_or_duplicates(make_cluster, name):
    c = make_cluster("--quotas", "relaxed", "--drain-timeout", "5")
    arn = c.channel(name)
    sent, received = await _stream(c, arn, 1, lambda node: node.proc.send_signal(signal.SIGTERM))  # type: ignore[union-attr]
    assert received == sent
    assert c[1].proc is not None and c[1].proc.wait(30) == 0


def test_a_node_cut_off_from_redis_answers_503_and_recovers(make_cluster, redis_url, redis_proxy, name):
    c = make_cluster("--quotas", "relaxed", count=2, bus=f"{via(redis_proxy, redis_url)}&lease={LEASE:g}")
    arn = c.channel(name)
    redis_proxy.stop()
    for node in c.nodes:
        status, body = node.ready()
        assert status == 503 and body["store"] == "ok" and body["bus"].startswith("error: Redis")

    async def refused() -> int:
        return await handshake_status(c[0], presign(c[0], arn, "v"))

    assert eventually(lambda: asyncio.run(refused()) == 503, what="a WSS connect refused with 503")
    assert c[0].boto().describe_signaling_channel(ChannelARN=arn)  # the store still answers
    redis_proxy.start()
    eventually(lambda: all(n.ready()[0] == 200 for n in c.nodes), what="/ready 200 again")

    async def exchange() -> None:
        master = await connect(c[0], arn)
        viewer = await connect(c[1], arn, "v")
        await viewer.send("SDP_OFFER", payload("after"))
        assert tag_of(await master.recv()) == "after"
        await master.close()
        await viewer.close()

    asyncio.run(exchange())


# --- operations: the live trace and the admin listing across nodes ------------------------------

async def test_a_trace_on_one_node_follows_the_channel_on_every_node(make_cluster, name):
    """``signalite trace`` connected to node-0 sees what happens on node-1: a viewer there
    connecting, its offer buffered (its master not connected yet) and sent, then delivered on
    node-0, the answer the other way, the disconnect, and a message kept in Redis expiring; each
    event names its node. ``admin clients`` and ``admin channels`` on either node list both
    nodes' connections."""
    c = make_cluster(count=2)
    arn = c.channel(name)
    trace = TraceReader.start(c[0], arn)
    try:
        await trace.until("following")  # sent once node-1 knows the channel is followed
        viewer = await connect(c[1], arn, "v-b")
        joined = await trace.until("connect", sender="v-b")
        assert (joined["node"], joined["role"]) == ("node-1", "viewer")
        await viewer.send("SDP_OFFER", payload("offer-from-b"))
        sent = await trace.until("sent", messageType="SDP_OFFER")
        buffered = await trace.until("buffered", messageType="SDP_OFFER")
        assert (sent["node"], sent["sender"], sent["recipient"]) == ("node-1", "v-b", None)
        assert (buffered["node"], buffered["sender"], buffered["recipient"]) == ("node-1", "v-b", None)
        master = await connect(c[0], arn)
        assert tag_of(await master.recv()) == "offer-from-b"
        delivered = await trace.until("delivered", messageType="SDP_OFFER")
        assert (delivered["node"], delivered["sender"]) == ("node-0", "v-b")
        await master.send("SDP_ANSWER", payload("answer-to-b"), recipient="v-b")
        assert tag_of(await viewer.recv()) == "answer-to-b"
        answered = await trace.until("delivered", messageType="SDP_ANSWER")
        assert (answered["node"], answered["recipient"]) == ("node-1", "v-b")

        for node in c.nodes:
            listed = cli(node, "admin", "clients", arn, "--json")
            assert listed.returncode == 0, listed.stderr
            rows = sorted((r["Role"], r.get("ClientId"), r["Node"]) for r in json.loads(listed.stdout))
            assert rows == [("master", None, "node-0"), ("viewer", "v-b", "node-1")]
            here = [r for r in json.loads(listed.stdout) if r["Node"] == node.args[node.args.index("--node-id") + 1]]
            assert here and all(r["RemoteAddress"] for r in here)  # this node's own have the details
            channels = cli(node, "admin", "channels", "--json")
            assert channels.returncode == 0, channels.stderr
            mine = sorted((r["Node"], r["Master"], r["Viewers"]) for r in json.loads(channels.stdout)
                          if r["ChannelARN"] == arn)
            assert mine == [("node-0", True, 0), ("node-1", False, 1)]
        table = cli(c[0], "admin", "clients", arn)
        assert "node-1" in table.stdout and "v-b" in table.stdout, table.stderr

        await viewer.close()
        left = await trace.until("disconnect", sender="v-b")
        assert left["node"] == "node-1"

        # Kept in Redis for a viewer who never comes: the follower's node reports its expiry.
        kv = c[0].boto()
        version = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["Version"]
        kv.update_signaling_channel(ChannelARN=arn, CurrentVersion=version,
                                    SingleMasterConfiguration={"MessageTtlSeconds": 5})
        await master.send("ICE_CANDIDATE", payload("for-nobody"), recipient="never")
        await trace.until("buffered", recipient="never")
        expired = await trace.until("expired", recipient="never")
        assert (expired["messageType"], expired["sender"]) == ("ICE_CANDIDATE", None)
        await master.close()
    finally:
        trace.stop()


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)

"""Debian's nginx in front of two Signalite nodes, with the example configuration of the docs
(``docs/examples/nginx-signalite.conf``) on loopback ports: boto3 and WebSocket clients use one
URL, the nodes advertise it, a master and a viewer talk through it whichever node each lands on,
and a node that drains (SIGTERM) sends new connects to the other one (its 503s are retried)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import websockets

from tests.integration.pg import postgres_proxy, postgres_schemas, postgres_url  # noqa: F401 - fixtures
from tests.integration.redis_support import redis_prefixes, redis_proxy, redis_url  # noqa: F401 - fixtures
from tests.support.server import Server, free_port
from tests.support.signaling import Peer, b64, presign
from tests.support.wait import eventually

CONF = Path(__file__).resolve().parents[2] / "docs" / "examples" / "nginx-signalite.conf"
pytestmark = pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                                reason="needs Debian's nginx (scripts/test-deps.sh installs it)")


def _nginx() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


class Balancer:
    def __init__(self, port: int, prefix: Path) -> None:
        self.port, self.prefix = port, prefix
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, node_ports: list[int]) -> None:
        text = CONF.read_text().replace("@@PREFIX@@", str(self.prefix)).replace("@@PORT@@", str(self.port))
        text = text.replace("@@NODE_A@@", str(node_ports[0])).replace("@@NODE_B@@", str(node_ports[1]))
        conf = self.prefix / "nginx.conf"
        conf.write_text(text)
        self.proc = subprocess.Popen([_nginx(), "-p", str(self.prefix), "-c", str(conf), "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=open(self.prefix / "stderr.log", "wb"))

        def up() -> bool:
            assert self.proc is not None and self.proc.poll() is None, (self.prefix / "stderr.log").read_text()
            import urllib.request

            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        eventually(up, what="nginx answering")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def balanced(make_server, postgres_url, redis_url, tmp_path) -> Iterator[tuple[Balancer, list[Server]]]:
    lb = Balancer(free_port(), tmp_path / "nginx")
    lb.prefix.mkdir()
    flags = ["--store", postgres_url, "--bus", redis_url, "--quotas", "relaxed", "--public-url", lb.url,
             "--drain-timeout", "3"]
    nodes = [make_server(*flags, "--node-id", "lb-a"), make_server(*flags, "--node-id", "lb-b")]
    lb.start([n.http_port for n in nodes])
    try:
        yield lb, nodes
    finally:
        lb.stop()


async def _connect(lb: Balancer, node: Server, arn: str, client_id: str | None = None) -> Peer:
    url = presign(node, arn, client_id, base=lb.url)  # signed for the balancer's host, as a client does
    ws = await websockets.connect(url, open_timeout=10, ping_interval=None, max_size=None)
    return Peer(ws, client_id)


async def test_clients_talk_through_nginx_to_two_nodes_and_a_draining_node_is_skipped(balanced, name):
    lb, nodes = balanced
    kv = nodes[0].boto(endpoint=lb.url)
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    wss = kv.get_signaling_channel_endpoint(
        ChannelARN=arn, SingleMasterChannelEndpointConfiguration={"Protocols": ["WSS"], "Role": "MASTER"}
    )["ResourceEndpointList"][0]["ResourceEndpoint"]
    assert wss == f"ws://127.0.0.1:{lb.port}"  # every node advertises the balancer
    master = await _connect(lb, nodes[0], arn)
    viewers = [await _connect(lb, nodes[0], arn, f"v{i}") for i in range(4)]  # round robin: both nodes
    for v in viewers:
        await v.send("SDP_OFFER", b64({"from": v.client_id}))
    got = sorted([_decoded(await master.recv())["from"] for _ in viewers])
    assert got == ["v0", "v1", "v2", "v3"]
    for v in viewers:
        await master.send("SDP_ANSWER", b64({"to": v.client_id}), recipient=v.client_id)
        assert (await v.recv())["messageType"] == "SDP_ANSWER"
    logs = [n.log() for n in nodes]
    assert all("connected viewer" in text for text in logs)  # the viewers were spread over both nodes

    draining = nodes[1]
    assert draining.proc is not None
    draining.proc.send_signal(signal.SIGTERM)
    eventually(lambda: draining.proc.poll() is not None, what="the drained node exiting")  # type: ignore[union-attr]
    assert draining.proc.returncode == 0
    # Clients of the drained node reconnect through nginx and land on the live one; a message sent
    # meanwhile is kept for its recipient.
    await master.close()  # (if it was on the live node; else the drain closed it)
    late = await _connect(lb, nodes[0], arn, "late")
    await late.send("SDP_OFFER", b64({"from": "late"}))
    again = await _connect(lb, nodes[0], arn)  # the master, reconnected (or replaced) on the live node
    assert _decoded(await again.recv()) == {"from": "late"}
    for p in [master, again, late, *viewers]:
        await p.close()


def _decoded(frame: dict) -> dict:
    import base64

    return dict(json.loads(base64.b64decode(frame["messagePayload"])))


def test_the_example_configuration_is_valid(tmp_path):
    text = CONF.read_text().replace("@@PREFIX@@", str(tmp_path)).replace("@@PORT@@", str(free_port()))
    text = text.replace("@@NODE_A@@", "1").replace("@@NODE_B@@", "2")
    (tmp_path / "nginx.conf").write_text(text)
    proc = subprocess.run([_nginx(), "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr

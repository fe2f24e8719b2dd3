"""A server on port 443, as the KVS C SDK needs it (it refuses any URL that carries a port): the
advertised endpoints, ``endpoint.json`` and ``signalite env`` are port-less, clients that send
``Host: 127.0.0.1`` (no port) work, and ``signalite admin go-away --data-dir D`` is accepted (it
used to sign one host and send another: 403 InvalidSignatureException).

Binding 443 needs root, and nothing may listen on the machine's real 443, so the server runs in a
lo-only network namespace (``unshare -n``): the outer test runs the inner one there.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.support.netns import in_netns, needs_netns, run_pytest_in_netns
from tests.support.server import ACCESS_KEY, SECRET_KEY, Server, free_port
from tests.support.signaling import connect

PORTLESS = "https://127.0.0.1"


@needs_netns
@pytest.mark.netns
def test_a_server_on_port_443_advertises_and_is_operated_without_a_port():
    r = run_pytest_in_netns(f"{__file__}::test_inside_netns_port_443",
                            f"{__file__}::test_inside_netns_without_the_capability_port_443_is_refused_clearly",
                            timeout=240)
    assert r.ok, r
    assert "3 passed" in r.output, r


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIGNALITE_"))}
    return subprocess.run([sys.executable, "-m", "signalite", *args], env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=60)


async def test_inside_netns_port_443(tmp_path):
    if not in_netns():
        pytest.skip("runs inside `unshare -n` (see test_a_server_on_port_443_advertises_and_is_operated_without_a_port)")
    data = tmp_path / "d"
    server = Server(data_dir=data, port=443, http_port=free_port()).start()
    try:
        assert f"serving {PORTLESS}\n" in server.log() or f"serving {PORTLESS} " in server.log(), server.log()
        assert json.loads((data / "endpoint.json").read_text())["url"] == PORTLESS

        # REST as the C SDK sends it: Host without a port.
        kv = server.boto(endpoint=PORTLESS)
        arn = kv.create_signaling_channel(ChannelName="camera-443")["ChannelARN"]
        for role in ("MASTER", "VIEWER"):
            eps = kv.get_signaling_channel_endpoint(
                ChannelARN=arn, SingleMasterChannelEndpointConfiguration={"Protocols": ["WSS", "HTTPS"], "Role": role})
            assert {e["Protocol"]: e["ResourceEndpoint"] for e in eps["ResourceEndpointList"]} == {
                "WSS": "wss://127.0.0.1", "HTTPS": PORTLESS}
        ice = server.boto("kinesis-video-signaling", endpoint=PORTLESS).get_ice_server_config(
            ChannelARN=arn, ClientId="ProducerMaster")["IceServerList"]
        assert [e["Uris"] for e in ice] == [["stun:127.0.0.1:443"]]  # ICE URIs do carry ports

        # `signalite env` exports the port-less URL (read back from endpoint.json).
        env = _cli("env", "--data-dir", str(data), env={"SIGNALITE_ACCESS_KEY_ID": ACCESS_KEY,
                                                        "SIGNALITE_SECRET_ACCESS_KEY": SECRET_KEY})
        assert env.returncode == 0, env.stderr
        assert f"export AWS_ENDPOINT_URL_KINESIS_VIDEO={PORTLESS}\n" in env.stdout, env.stdout

        # A WSS client on the port-less URL (presigned with Host 127.0.0.1), then the admin command.
        master = await connect(server, arn, base=PORTLESS)
        keys = {"SIGNALITE_ACCESS_KEY_ID": ACCESS_KEY, "SIGNALITE_SECRET_ACCESS_KEY": SECRET_KEY}
        done = await asyncio.to_thread(_cli, "admin", "go-away", "--data-dir", str(data), "--channel-arn", arn,
                                       "--reconnect-ice-server", env=keys)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"ChannelARN": arn, "Type": "RECONNECT_ICE_SERVER", "Connections": 1}
        assert await master.recv() == {"messageType": "RECONNECT_ICE_SERVER"}
        # --url with the default port spelled out signs what it sends as well.
        done = await asyncio.to_thread(_cli, "admin", "go-away", "--data-dir", str(data), "--url",
                                       "https://127.0.0.1:443", "--channel-arn", arn, env=keys)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["Type"] == "GO_AWAY"
        await master.close()
    finally:
        server.stop()


@pytest.mark.parametrize("stun", [[], ["--stun-port", "3479"]])
def test_inside_netns_without_the_capability_port_443_is_refused_clearly(tmp_path, stun):
    if not in_netns():
        pytest.skip("runs inside `unshare -n` (see test_a_server_on_port_443_advertises_and_is_operated_without_a_port)")
    if shutil.which("setpriv") is None:
        pytest.skip("needs util-linux setpriv to drop CAP_NET_BIND_SERVICE")
    # Root without CAP_NET_BIND_SERVICE binds low ports no more than an ordinary user does.
    drop = ["setpriv", "--bounding-set=-net_bind_service", "--inh-caps=-net_bind_service"]
    proc = subprocess.run([*drop, sys.executable, "-m", "signalite", "serve", "--data-dir", str(tmp_path / "d"),
                           "--port", "443", *stun], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIGNALITE_"))})
    assert proc.returncode == 1, proc.stderr
    # The TCP listeners are bound first (before the app and its STUN responder start).
    assert "TCP 127.0.0.1:443" in proc.stderr and "CAP_NET_BIND_SERVICE" in proc.stderr and '"Port 443" in docs/devices.md' in proc.stderr
    assert "Traceback" not in proc.stderr

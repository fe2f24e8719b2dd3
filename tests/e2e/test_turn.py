"""Credentials from GetIceServerConfig allocate on a real coturn (aioice's TURN client), relay
data, and tampered or expired ones are refused; ``signalite serve --turn`` runs coturn itself."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aioice import stun, turn

from signalite.dataplane.turn import turn_rest_credentials
from tests.e2e.test_ice import NODE_DIR, check_c_sdk_limits, https_endpoint
from tests.support.coturn import coturn, needs_coturn, turn_target  # noqa: F401  (fixture)
from tests.support.server import PICK_PORT
from tests.support.wait import eventually, eventually_async

pytestmark = needs_coturn


def ice_servers(srv, name: str, **params) -> list[dict]:
    kv = srv.boto()
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    sig = srv.boto("kinesis-video-signaling", endpoint=https_endpoint(kv, arn))
    ice = sig.get_ice_server_config(ChannelARN=arn, **params)["IceServerList"]
    check_c_sdk_limits(ice)
    return ice


class Received(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        self.queue.put_nowait((data, addr))


async def allocate(uri: str, username: str, password: str, ca: str | None = None):
    server_addr, transport = turn_target(uri)
    tls = ssl.create_default_context(cafile=ca) if uri.startswith("turns:") else None
    return await turn.create_turn_endpoint(Received, server_addr, username, password, transport=transport, ssl=tls)


async def relay_roundtrip(uri: str, username: str, password: str, ca: str | None = None) -> None:
    """Allocate, then send through the relay to a plain UDP peer on loopback and back."""
    loop = asyncio.get_running_loop()
    relay, client = await allocate(uri, username, password, ca)
    peer_transport, peer = await loop.create_datagram_endpoint(Received, local_addr=("127.0.0.1", 0))
    try:
        relayed = relay.get_extra_info("sockname")
        peer_addr = peer_transport.get_extra_info("sockname")
        assert relayed[0] == "127.0.0.1" and relayed[1] not in (0, None)
        relay.sendto(b"through-turn", peer_addr)
        data, source = await asyncio.wait_for(peer.queue.get(), 10)
        assert data == b"through-turn" and source == relayed
        peer_transport.sendto(b"back", source)
        data, source = await asyncio.wait_for(client.queue.get(), 10)
        assert data == b"back" and source == peer_addr
    finally:
        peer_transport.close()
        relay.close()


async def refused(uri: str, username: str, password: str) -> int | None:
    try:
        relay, _ = await allocate(uri, username, password)
    except stun.TransactionFailed as exc:
        return exc.response.error_code
    relay.close()
    return None


@pytest.fixture
def turn_server(make_server, coturn):  # noqa: F811
    return make_server("--turn-uri", coturn.uri_list, "--turn-secret", coturn.secret)


async def test_credentials_allocate_and_relay_udp_and_tcp(turn_server, coturn, name):  # noqa: F811
    (entry,) = ice_servers(turn_server, name, ClientId="viewer-1")
    assert entry["Uris"] == coturn.uris
    assert entry["Username"].endswith(":viewer-1")
    for uri in entry["Uris"]:
        await relay_roundtrip(uri, entry["Username"], entry["Password"])


async def test_credentials_from_aws_cli_and_js_v3_allocate(turn_server, coturn, name):  # noqa: F811
    """The same call through the AWS CLI and JS SDK v3 gives credentials coturn accepts."""
    got: list[dict] = []
    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    if aws is not None:
        kv = turn_server.boto()
        arn = kv.create_signaling_channel(ChannelName=name + "-cli")["ChannelARN"]
        out = subprocess.run([aws, "kinesis-video-signaling", "get-ice-server-config", "--channel-arn", arn,
                              "--client-id", "cli-viewer", "--endpoint-url", https_endpoint(kv, arn)],
                             capture_output=True, text=True, env=turn_server.client_env, timeout=60)
        assert out.returncode == 0, out.stderr
        got.append(json.loads(out.stdout)["IceServerList"][0])
    node = shutil.which("node")
    if node is not None and (NODE_DIR / "node_modules" / "@aws-sdk" / "client-kinesis-video-signaling").exists():
        out = subprocess.run([node, str(NODE_DIR / "dp-ice.mjs"), name + "-js", "js-viewer"], capture_output=True,
                             text=True, env=turn_server.client_env, cwd=NODE_DIR, timeout=60)
        assert out.returncode == 0, out.stderr
        got.append(json.loads(out.stdout)["IceServerList"][0])
    if not got:
        pytest.skip("neither the AWS CLI nor Node.js is available")
    for entry in got:
        assert entry["Uris"] == coturn.uris
        for uri in entry["Uris"]:
            assert await refused(uri, entry["Username"], entry["Password"]) is None


async def test_tampered_credentials_are_refused(turn_server, coturn, name):  # noqa: F811
    (entry,) = ice_servers(turn_server, name)
    uri, user, password = entry["Uris"][0], entry["Username"], entry["Password"]
    expiry, ident = user.split(":", 1)
    flipped = ("A" if password[0] != "A" else "B") + password[1:]
    assert await refused(uri, user, flipped) == 401                               # password changed
    assert await refused(uri, f"{int(expiry) + 86400}:{ident}", password) == 401  # expiry extended
    assert await refused(uri, f"{expiry}:someone-else", password) == 401          # identity changed
    assert await refused(uri, user, password) is None                             # the original still works


async def test_expired_credentials_are_refused(turn_server, coturn, name):  # noqa: F811
    """Correctly signed with the shared secret, but with an expiry in the past: coturn refuses."""
    (entry,) = ice_servers(turn_server, name)
    user, password = turn_rest_credentials(coturn.secret, "late-viewer", int(time.time()) - 5)
    assert await refused(entry["Uris"][0], user, password) == 401
    fresh_user, fresh_password = turn_rest_credentials(coturn.secret, "late-viewer", int(time.time()) + 60)
    assert await refused(entry["Uris"][0], fresh_user, fresh_password) is None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its parent) is not alive
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _coturn_pid(data_dir: Path) -> int:
    return int((data_dir / "turn" / "turnserver.pid").read_text().strip())


async def test_serve_turn_runs_and_supervises_coturn(make_server, tmp_path, name):
    data_dir = tmp_path / "with-turn"
    srv = make_server("--turn", "--turn-port", PICK_PORT, data_dir=data_dir)
    port = int(srv.option("--turn-port"))
    (entry,) = ice_servers(srv, name, ClientId="master-1")
    # AWS's three forms (turn udp, turns udp, turns tcp) plus plain TCP; coturn reuses the HTTPS
    # certificate for turns: on the same port
    base = f"127.0.0.1:{port}"
    assert entry["Uris"] == [f"turn:{base}?transport=udp", f"turns:{base}?transport=udp",
                             f"turns:{base}?transport=tcp", f"turn:{base}?transport=tcp"]
    for uri in entry["Uris"]:
        if uri != f"turns:{base}?transport=udp":  # DTLS: aioice has no client for it
            await relay_roundtrip(uri, entry["Username"], entry["Password"], ca=srv.ca)

    # the generated secret is private and persisted; the secret never appears on coturn's command line
    secret_file = data_dir / "turn" / "secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    pid = _coturn_pid(data_dir)
    secret = secret_file.read_text().strip()
    assert secret not in Path(f"/proc/{pid}/cmdline").read_text()

    # a coturn that dies is restarted, and the credentials handed out before still work
    os.kill(pid, signal.SIGKILL)

    async def replaced_and_relaying() -> bool:
        try:
            new_pid = _coturn_pid(data_dir)
        except (OSError, ValueError):  # the new coturn has not written its pid file yet
            return False
        return new_pid != pid and await refused(entry["Uris"][0], entry["Username"], entry["Password"]) is None

    await eventually_async(replaced_and_relaying, what=lambda: f"a restarted coturn relaying:\n{srv.log()}",
                           interval=0.2)
    assert "coturn exited" in srv.log()

    # restarting Signalite keeps the secret, so earlier credentials stay valid; stopping it stops coturn
    srv.restart()
    assert secret_file.read_text().strip() == secret
    assert await refused(entry["Uris"][3], entry["Username"], entry["Password"]) is None
    last = _coturn_pid(data_dir)
    srv.stop()
    assert not _alive(last)


def test_coturn_does_not_outlive_a_killed_signalite(make_server, tmp_path):
    data_dir = tmp_path / "killed"
    srv = make_server("--turn", "--turn-port", PICK_PORT, data_dir=data_dir)
    pid = _coturn_pid(data_dir)
    assert _alive(pid)
    srv.stop(signal.SIGKILL)
    eventually(lambda: not _alive(pid), what="coturn exiting with its killed Signalite")


async def test_serve_turn_with_given_secret(make_server, name):
    srv = make_server("--turn", "--turn-port", PICK_PORT, env={"SIGNALITE_TURN_SECRET": "given-secret"})
    (entry,) = ice_servers(srv, name)
    user, password = turn_rest_credentials("given-secret", "x", int(time.time()) + 60)
    assert await refused(entry["Uris"][0], user, password) is None


def test_serve_turn_without_coturn_says_so(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALITE_")}
    proc = subprocess.run([sys.executable, "-m", "signalite", "serve", "--data-dir", str(tmp_path), "--port", "0",
                           "--turn", "--turnserver", str(tmp_path / "no-such-turnserver")],
                          capture_output=True, text=True, timeout=30, env=env)
    assert proc.returncode != 0
    assert "--turn needs coturn's turnserver" in proc.stderr and "apt-get install coturn" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_turn_port_taken_fails_clearly(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        try:
            tcp.bind(("127.0.0.1", port))
            tcp.listen()
        except OSError:
            pytest.skip("could not hold both UDP and TCP of one port")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNALITE_")}
        proc = subprocess.run([sys.executable, "-m", "signalite", "serve", "--data-dir", str(tmp_path),
                               "--port", "0", "--turn", "--turn-port", str(port)],
                              capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode != 0
    assert "signalite: --turn: coturn" in proc.stderr and "Traceback" not in proc.stderr

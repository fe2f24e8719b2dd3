"""Server-initiated ends and the SDKs that must survive them (issue 8, "Devices and ingestion").

For every reason the server ends a connection — idle timeout, maximum duration,
DeleteSignalingChannel, the operator's DisconnectClient, drain on SIGTERM, replacement by a newer
connection — a master and a viewer of each SDK must be closed **without** a GO_AWAY or
RECONNECT_ICE_SERVER frame (the KVS C SDK v1.14.0 deadlocks on either), reconnect by themselves,
and still exchange messages afterwards:

* ``csdk``: :class:`tests.support.csdk.CSdkClient`, the C SDK's wire behaviour and its reaction to
  ends (it records ``hung`` where the real SDK would deadlock);
* ``js``: the official ``amazon-kinesis-video-streams-webrtc`` SignalingClient in Node
  (tests/node/kvs-sdk-reconnect.cjs), re-opened on 'close' as the SDK's master sample does.

With ``--go-away-frames`` the C SDK model hangs on the idle GO_AWAY (why the default is off) and
the JS SDK still reconnects. A last pair of tests runs the C SDK model in strict mode (no port in
any URL) against a server on port 443 inside ``unshare -n``.

Everything waits on events (a client's counters, the Node script's event lines); nothing sleeps
for ordering.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import ssl
import subprocess
import sys
import urllib.request
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Protocol

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.support import signaling
from tests.support.csdk import HANGS_ON, VIEWER_CLIENT_ID, CSdkClient, CSdkConfig, b64
from tests.support.netns import in_netns, needs_netns, run_pytest_in_netns
from tests.support.server import ACCESS_KEY, REGION, SECRET_KEY, Server, free_port

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SCRIPT = NODE_DIR / "kvs-sdk-reconnect.cjs"
HAVE_NODE = shutil.which("node") is not None and (NODE_DIR / "node_modules" / "amazon-kinesis-video-streams-webrtc").exists()
JS_VIEWER_ID = "node-viewer"
MASTER, VIEWER = "master", "viewer"
WAIT = 20.0
"""Upper bound of every wait (a bound, not a timing assertion: most waits end within a second)."""


# --- one master and one viewer of an SDK, behind one interface ----------------------------------

class Pair(Protocol):
    viewer_id: str

    def opens(self, role: str) -> int: ...
    def ends(self, role: str) -> list[tuple[int | None, str]]: ...
    def arn(self, role: str) -> str | None: ...
    def control_frames(self) -> list[str]: ...
    async def wait(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None: ...
    async def exchange(self, tag: str) -> None: ...


async def wait_opens(pair: Pair, n: int) -> None:
    await pair.wait(lambda: pair.opens(MASTER) >= n and pair.opens(VIEWER) >= n, f"{n} opens of each role")


class CSdkPair:
    """A master and a viewer of the C SDK model on one channel, created by the master on 404."""

    viewer_id = VIEWER_CLIENT_ID

    def __init__(self, server: Server, channel: str, **config: Any) -> None:
        self.changed = asyncio.Condition()
        base: dict[str, Any] = {"control_plane_url": server.url, "channel_name": channel, "ca": server.ca,
                                "strict_port": False, "ping_interval": 0.2, **config}
        self.clients = {MASTER: CSdkClient(CSdkConfig(role="MASTER", **base), self.changed),
                        VIEWER: CSdkClient(CSdkConfig(role="VIEWER", **base), self.changed)}

    @property
    def master(self) -> CSdkClient:
        return self.clients[MASTER]

    @property
    def viewer(self) -> CSdkClient:
        return self.clients[VIEWER]

    def opens(self, role: str) -> int:
        return self.clients[role].connects

    def ends(self, role: str) -> list[tuple[int | None, str]]:
        return [(e.code, e.reason) for e in self.clients[role].ends]

    def arn(self, role: str) -> str | None:
        return self.clients[role].channel_arn

    def control_frames(self) -> list[str]:
        return [f for c in self.clients.values() for f in c.frames if _message_type(f) in HANGS_ON]

    def describe(self) -> str:
        return " | ".join(c.describe() for c in self.clients.values())

    async def wait(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        failed = lambda: any(c.failure is not None or c.hung for c in self.clients.values())
        try:
            async with asyncio.timeout(timeout):
                async with self.changed:
                    await self.changed.wait_for(lambda: predicate() or failed())
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}: {self.describe()}") from None
        assert predicate(), f"a client failed or hung waiting for {what}: {self.describe()}"

    async def exchange(self, tag: str) -> None:
        """The viewer's offer reaches the master (with its senderClientId) and the master's answer
        the viewer. A message is re-sent if its sender or recipient reconnected meanwhile (it may
        have been in flight on a socket that was closing)."""
        m, v = self.master, self.viewer
        got_offer = lambda: any(_payload(x).get("sdp") == tag and x.get("senderClientId") == v.config.wss_client_id
                                for x in m.received if x.get("messageType") == "SDP_OFFER")
        got_answer = lambda: any(_payload(x).get("sdp") == "answer-to:" + tag
                                 for x in v.received if x.get("messageType") == "SDP_ANSWER")
        await self._deliver(v, lambda: v.send("SDP_OFFER", b64({"type": "offer", "sdp": tag}),
                                              correlation_id=v.correlation_id()), got_offer, f"offer {tag}")
        await self._deliver(m, lambda: m.send("SDP_ANSWER", b64({"type": "answer", "sdp": "answer-to:" + tag}),
                                              recipient=v.config.wss_client_id), got_answer, f"answer {tag}")

    async def _deliver(self, sender: CSdkClient, send: Callable[[], Any], arrived: Callable[[], bool], what: str) -> None:
        async with asyncio.timeout(WAIT):
            while not arrived():
                await self.wait(lambda: sender.connected, f"{sender.config.role} connected to send {what}")
                gens = tuple(c.connects for c in self.clients.values())
                try:
                    await send()
                except (ConnectionError, OSError):
                    continue
                await self.wait(lambda g=gens: arrived() or tuple(c.connects for c in self.clients.values()) != g,  # type: ignore[misc]
                                f"{what} delivered")


class JsPair:
    """tests/node/kvs-sdk-reconnect.cjs: the JS SDK's master and viewer, driven over stdin/stdout."""

    viewer_id = JS_VIEWER_ID

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.changed = asyncio.Condition()
        self.events: list[dict[str, Any]] = []
        self.summary: dict[str, Any] | None = None
        self.reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def start(cls, server: Server, channel: str, *extra: str) -> "JsPair":
        proc = await asyncio.create_subprocess_exec(
            "node", str(SCRIPT), channel, "master,viewer", "--viewer-id", JS_VIEWER_ID, "--timeout", "90", *extra,
            cwd=NODE_DIR, env=server.client_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL)
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            event = json.loads(line)
            async with self.changed:
                self.events.append(event)
                if event["event"] == "summary":
                    self.summary = event
                self.changed.notify_all()
        async with self.changed:
            self.changed.notify_all()

    def _of(self, kind: str, role: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == kind and (role is None or e.get("role") == role)]

    def opens(self, role: str) -> int:
        return len(self._of("open", role))

    def ends(self, role: str) -> list[tuple[int | None, str]]:
        return [(e["code"], e["reason"]) for e in self._of("close", role)]

    def arn(self, role: str) -> str | None:
        opened = self._of("open", role)
        return opened[-1]["arn"] if opened else None

    def control_frames(self) -> list[str]:
        return [e["messageType"] for e in self._of("frame")]

    async def wait(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
        try:
            async with asyncio.timeout(timeout):
                async with self.changed:
                    await self.changed.wait_for(lambda: predicate() or self.reader.done())
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}: {self.events[-12:]}") from None
        assert predicate(), f"the Node script ended while waiting for {what}: {self.events[-12:]}"

    async def command(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def exchange(self, tag: str) -> None:
        await self.command(f"exchange {tag}")
        await self.wait(lambda: any(e.get("tag") == tag for e in self._of("exchanged")), f"exchange {tag}")

    async def stop(self) -> dict[str, Any]:
        if self.proc.returncode is None:
            try:
                await self.command("quit")
                await self.wait(lambda: self.summary is not None, "the summary")
            except (ConnectionError, AssertionError):
                pass
        try:
            async with asyncio.timeout(10):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        await self.reader
        return self.summary or {}


@pytest.fixture(params=["csdk", pytest.param("js", marks=pytest.mark.node)])
def sdk(request: pytest.FixtureRequest) -> str:
    if request.param == "js" and not HAVE_NODE:
        pytest.skip("needs Node.js and tests/node/node_modules")
    return str(request.param)


@asynccontextmanager
async def open_pair(sdk: str, server: Server, channel: str, *, recreate: bool = False) -> AsyncIterator[Pair]:
    """Both roles connected once. The channel exists first (the C SDK model would create it itself;
    the JS samples expect it); ``recreate``: the JS script re-creates it if it disappears."""
    server.boto().create_signaling_channel(ChannelName=channel)
    if sdk == "csdk":
        pair = CSdkPair(server, channel)
        for c in pair.clients.values():
            await c.start()
        try:
            await wait_opens(pair, 1)
            yield pair
        finally:
            for c in pair.clients.values():
                await c.stop()
    else:
        js = await JsPair.start(server, channel, *(["--create"] if recreate else []))
        try:
            await wait_opens(js, 1)
            yield js
        finally:
            await js.stop()


def assert_clean_ends(pair: Pair, role: str, code: int, reason: str) -> None:
    """Every end of ``role`` was a plain close with ``code``/``reason``, and no frame that hangs the
    C SDK was ever sent to either role."""
    ends = pair.ends(role)
    assert ends and all(e == (code, reason) for e in ends), ends
    assert pair.control_frames() == []
    if isinstance(pair, CSdkPair):
        assert not any(c.hung for c in pair.clients.values()), pair.describe()
        # Every connect, reconnects included, came after the SDK's whole sequence from Describe.
        ops = pair.clients[role].operations()
        connects = [i for i, op in enumerate(ops) if op == "ConnectWss"]
        assert len(connects) >= 2, ops
        assert all(ops[i - 3:i] == ["DescribeSignalingChannel", "GetSignalingChannelEndpoint", "GetIceServerConfig"]
                   for i in connects), ops


def _message_type(frame: str) -> str | None:
    try:
        return json.loads(frame).get("messageType") if frame else None
    except ValueError:
        return None


def _payload(msg: dict[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(base64.b64decode(msg.get("messagePayload", "")))
    except ValueError:
        return {}


def admin_disconnect(server: Server, arn: str, client_id: str | None = None) -> dict[str, Any]:
    """The admin API's DisconnectClient, SigV4-signed with the root key (no CLI command yet)."""
    body: dict[str, str] = {"ChannelARN": arn}
    if client_id is not None:
        body["ClientId"] = client_id
    req = AWSRequest(method="POST", url=server.url + "/_signalite/admin/disconnect", data=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "kinesisvideo", REGION).add_auth(req)
    prepared = req.prepare()
    data = prepared.body if isinstance(prepared.body, bytes) else str(prepared.body).encode()
    http = urllib.request.Request(prepared.url, data=data, method="POST", headers=dict(prepared.headers.items()))
    with urllib.request.urlopen(http, context=ssl.create_default_context(cafile=server.ca), timeout=10) as r:
        assert r.status == 200
        return json.loads(r.read())


# --- each reason, each SDK ----------------------------------------------------------------------

async def test_idle_timeout_closes_without_a_frame_and_the_sdk_reconnects(make_server, name, sdk):
    # The C SDK model pings every 0.2 s: pings are not activity, so it idles out like the JS SDK.
    server = make_server("--idle-timeout", "1")
    async with open_pair(sdk, server, name) as pair:
        await wait_opens(pair, 2)
        await pair.exchange("after-idle")
        assert_clean_ends(pair, MASTER, 1001, "idle timeout")
        assert_clean_ends(pair, VIEWER, 1001, "idle timeout")


async def test_max_duration_closes_without_a_frame_and_the_sdk_reconnects(make_server, name, sdk):
    server = make_server("--idle-timeout", "0", "--max-connection-seconds", "2")
    async with open_pair(sdk, server, name) as pair:
        await pair.exchange("before")
        await wait_opens(pair, 2)
        await pair.exchange("after-max-duration")
        assert_clean_ends(pair, MASTER, 1001, "maximum connection duration reached")
        assert_clean_ends(pair, VIEWER, 1001, "maximum connection duration reached")


async def test_delete_closes_without_a_frame_and_the_sdk_recreates_and_reconnects(make_server, name, sdk):
    server = make_server("--connects-per-second", "0")
    async with open_pair(sdk, server, name, recreate=True) as pair:
        old = pair.arn(MASTER)
        assert old is not None
        await asyncio.to_thread(server.boto().delete_signaling_channel, ChannelARN=old)
        await pair.wait(lambda: all(pair.opens(r) >= 2 and pair.arn(r) not in (None, old) for r in (MASTER, VIEWER)),
                        "both roles on the re-created channel")
        assert pair.arn(MASTER) == pair.arn(VIEWER)
        await pair.exchange("after-delete")
        assert_clean_ends(pair, MASTER, 1001, "the signaling channel was deleted")
        assert_clean_ends(pair, VIEWER, 1001, "the signaling channel was deleted")
        if isinstance(pair, CSdkPair):  # it found the channel gone (404) and created it, as the SDK does
            assert "CreateSignalingChannel" in pair.master.operations() + pair.viewer.operations()


async def test_operator_disconnect_closes_without_a_frame_and_the_sdk_reconnects(make_server, name, sdk):
    server = make_server("--connects-per-second", "0")
    async with open_pair(sdk, server, name) as pair:
        arn = pair.arn(MASTER)
        assert arn is not None
        out = await asyncio.to_thread(admin_disconnect, server, arn)  # no ClientId: the master
        assert out["ConnectedHere"] is True
        await pair.wait(lambda: pair.opens(MASTER) >= 2, "the master back")
        assert pair.opens(VIEWER) == 1
        out = await asyncio.to_thread(admin_disconnect, server, arn, pair.viewer_id)
        assert out["ConnectedHere"] is True
        await pair.wait(lambda: pair.opens(VIEWER) >= 2, "the viewer back")
        await pair.exchange("after-disconnect")
        assert_clean_ends(pair, MASTER, 1001, "disconnected by the operator")
        assert_clean_ends(pair, VIEWER, 1001, "disconnected by the operator")


async def test_drain_on_sigterm_closes_without_a_frame_and_the_sdk_reconnects_after_restart(make_server, name, sdk):
    server = make_server("--drain-timeout", "1", "--connects-per-second", "0")
    async with open_pair(sdk, server, name) as pair:
        code = await asyncio.to_thread(server.stop)  # SIGTERM; returns once the process has exited
        assert code == 0, server.log()
        await pair.wait(lambda: bool(pair.ends(MASTER) and pair.ends(VIEWER)), "both ends seen")
        await asyncio.to_thread(server.start)  # the same data dir and ports: the channel is still there
        await wait_opens(pair, 2)
        await pair.exchange("after-restart")
        assert_clean_ends(pair, MASTER, 1001, "server shutting down")
        assert_clean_ends(pair, VIEWER, 1001, "server shutting down")


async def test_replacement_closes_without_a_frame_and_the_sdk_reconnects(make_server, name, sdk):
    # A newer connection with the same role (and client id) replaces the SDK's; the SDK reconnects
    # and replaces it in turn (two devices sharing one identity take turns; the newest always wins).
    server = make_server("--connects-per-second", "0")
    async with open_pair(sdk, server, name) as pair:
        arn = pair.arn(MASTER)
        assert arn is not None
        newer = await signaling.connect(server, arn)
        await pair.wait(lambda: pair.opens(MASTER) >= 2, "the master back")
        assert (await newer.closed())[0] == 1000  # replaced by the SDK's reconnect
        newer = await signaling.connect(server, arn, pair.viewer_id)
        await pair.wait(lambda: pair.opens(VIEWER) >= 2, "the viewer back")
        assert (await newer.closed())[0] == 1000
        await pair.exchange("after-replacement")
        assert_clean_ends(pair, MASTER, 1000, "replaced by a newer connection")
        assert_clean_ends(pair, VIEWER, 1000, "replaced by a newer connection")


# --- with --go-away-frames: the reason the default is off ------------------------------------------

GO_AWAY_SERVER = ("--go-away-frames", "--idle-timeout", "1", "--go-away-grace", "0.5")


async def test_with_go_away_frames_the_c_sdk_hangs_on_the_idle_go_away(make_server, name):
    server = make_server(*GO_AWAY_SERVER)
    async with CSdkClient(CSdkConfig(server.url, name, ca=server.ca, strict_port=False, ping_interval=0.2)) as master:
        await master.wait_for(lambda: master.hung, what="the GO_AWAY")
        assert master.hung_on == "GO_AWAY"
        # The server closes the socket after the grace; the deadlocked SDK never notices.
        await master.wait_for(lambda: master.closed_while_hung, what="the server's close after the grace")
        assert master.connects == 1 and master.ends == []
        assert master.operations()[-1] == "ConnectWss"  # no Describe again: no reconnect, ever


@pytest.mark.node
@pytest.mark.skipif(not HAVE_NODE, reason="needs Node.js and tests/node/node_modules")
async def test_with_go_away_frames_the_js_sdk_ignores_the_frame_and_reconnects_on_the_close(make_server, name):
    server = make_server(*GO_AWAY_SERVER)
    async with open_pair("js", server, name) as pair:
        await wait_opens(pair, 2)
        await pair.exchange("after-go-away")
        assert "GO_AWAY" in pair.control_frames()
        assert pair.ends(MASTER)[0] == (1001, "idle timeout")


async def test_admin_go_away_always_sends_its_frame_and_hangs_the_c_sdk(make_server, name, tmp_path):
    # The operator's command names the frame it sends; its help says who hangs on it.
    server = make_server()
    config: dict[str, Any] = {"control_plane_url": server.url, "ca": server.ca, "strict_port": False,
                              "ping_interval": 0.2}
    for flag, frame in (([], "GO_AWAY"), (["--reconnect-ice-server"], "RECONNECT_ICE_SERVER")):
        async with CSdkClient(CSdkConfig(channel_name=f"{name}-{frame.lower()}", **config)) as master:
            await master.wait_connects(1)
            env = {**server.client_env, "SIGNALITE_ACCESS_KEY_ID": ACCESS_KEY, "SIGNALITE_SECRET_ACCESS_KEY": SECRET_KEY}
            cli = await asyncio.to_thread(subprocess.run, [
                sys.executable, "-m", "signalite", "admin", "go-away", "--channel-arn", str(master.channel_arn),
                "--data-dir", str(server.data_dir), *flag], env=env, capture_output=True, text=True, timeout=30)
            assert cli.returncode == 0, cli.stderr
            await master.wait_for(lambda: master.hung, what=frame)
            assert master.hung_on == frame


# --- strict mode (no port in any URL) on 443, inside unshare -n ---------------------------------------

@pytest.mark.parametrize("public_url", [None, "https://127.0.0.1"], ids=["advertised", "public-url"])
async def test_inner_strict_c_sdk_on_443(tmp_path, public_url):
    """Run by the two tests below inside a lo-only namespace, where this process may bind 443."""
    if not in_netns():
        pytest.skip("runs inside `unshare -n` (test_strict_c_sdk_on_443_*)")
    args = ["--idle-timeout", "1"] + (["--public-url", public_url] if public_url else [])
    server = Server(data_dir=tmp_path / "srv", port=443, http_port=free_port(), args=args)
    await asyncio.to_thread(server.start)
    try:
        pair = CSdkPair(server, "strict-443", control_plane_url="https://127.0.0.1", strict_port=True)
        for c in pair.clients.values():
            await c.start()
        try:
            await wait_opens(pair, 1)
            await pair.exchange("on-443")
            await wait_opens(pair, 2)  # the idle timeout ended both; they came back by themselves
            await pair.exchange("on-443-again")
            assert_clean_ends(pair, MASTER, 1001, "idle timeout")
            for c in pair.clients.values():
                assert all(b"Host: 127.0.0.1\r\n" in call.request_head for call in c.calls), c.calls
                assert all(":443" not in url for url in c.endpoints.values()), c.endpoints
        finally:
            for c in pair.clients.values():
                await c.stop()
    finally:
        await asyncio.to_thread(server.stop)


@needs_netns
@pytest.mark.netns
def test_strict_c_sdk_on_443_with_the_urls_the_server_advertises():
    r = run_pytest_in_netns(f"{__file__}::test_inner_strict_c_sdk_on_443[advertised]")
    assert r.ok, str(r)


@needs_netns
@pytest.mark.netns
def test_strict_c_sdk_on_443_with_a_port_less_public_url():
    r = run_pytest_in_netns(f"{__file__}::test_inner_strict_c_sdk_on_443[public-url]")
    assert r.ok, str(r)

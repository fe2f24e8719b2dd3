"""The Redis bus connects as its URL says: password and user, database, TLS (verified, or not),
Unix socket. Its writer and subscription use their own connections (signalite/bus/resp.py), so
each form is checked end to end against a private ``redis-server`` started here (the same
binary the shared test Redis runs): a message posted for nobody is kept in the URL's database,
a published one reaches a second node, and a wrong password or an untrusted certificate is
refused at ``open`` with ConnectionError instead of a node that starts and cannot work.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest

from signalite.bus.base import Envelope, Message
from signalite.bus.redis import RedisBus, parse_url
from signalite.tls import ensure_local_tls
from tests.support.server import free_port

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")

PASSWORD = "bus-connection-test-secret"


class PrivateRedis:
    def __init__(self, tmp: Path) -> None:
        self.dir = tmp
        self.port, self.tls_port = free_port(), free_port()
        self.socket = tmp / "redis.sock"
        self.tls = ensure_local_tls(tmp, ["localhost"])
        self.start()

    def start(self) -> None:
        self.socket.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--requirepass", PASSWORD, "--unixsocket", str(self.socket),
             "--unixsocketperm", "700", "--tls-port", str(self.tls_port), "--tls-cert-file", str(self.tls.cert),
             "--tls-key-file", str(self.tls.key), "--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the private redis-server did not start (built without TLS?)")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


FORMS = ("password, database 3", "user default, database 0", "tls, verified with the CA", "tls, not verified",
         "unix socket, database 4")


def _urls(r: PrivateRedis) -> dict[str, str]:
    urls = {
        "password, database 3": f"redis://:{PASSWORD}@127.0.0.1:{r.port}/3?prefix=conn:",
        "user default, database 0": f"redis://default:{PASSWORD}@127.0.0.1:{r.port}/0?prefix=conn:",
        "tls, verified with the CA": f"rediss://:{PASSWORD}@localhost:{r.tls_port}/1?prefix=conn:&ssl_ca_certs={r.tls.ca}",
        "tls, not verified": f"rediss://:{PASSWORD}@127.0.0.1:{r.tls_port}/2?prefix=conn:&ssl_cert_reqs=none",
        "unix socket, database 4": f"unix://:{PASSWORD}@{r.socket}?db=4&prefix=conn:",
    }
    assert tuple(urls) == FORMS
    return urls


@pytest.mark.parametrize("form", FORMS)
async def test_a_bus_url_of_each_form_keeps_and_carries_messages(private_redis: PrivateRedis, form: str):
    import redis.asyncio as aioredis

    url = _urls(private_redis)[form]
    a, b = RedisBus(url, name="a"), RedisBus(url, name="b")
    await a.open()
    await b.open()
    try:
        arn = f"arn:aws:kinesisvideo:us-west-2:111122223333:channel/conn-{time.monotonic_ns()}/1"
        a.post(arn, Envelope("msg", "v1", "ICE_CANDIDATE", "m", '{"n":1}', time.time() + 60))
        assert [e.frame for e in await a.retained(arn, "v1")] == ['{"n":1}']  # after the post: one queue
        assert [e.frame for e in await b.retained(arn, "v1")] == ['{"n":1}']  # the other node sees it too
        heard: list[Message] = []
        b.subscribe("topic", lambda _topic, message: heard.append(message))
        await b.synced()
        a.publish("topic", Envelope("msg", "x", "ICE_CANDIDATE", "m", '{"n":2}', time.time() + 60))
        deadline = time.monotonic() + 5
        while not heard and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert [getattr(e, "frame", None) for e in heard] == ['{"n":2}']
        assert await a.ping() and await b.ping()
    finally:
        await a.close()
        await b.close()
    # ... and in the URL's database, where an operator looking for it would look.
    direct = aioredis.Redis.from_url(parse_url(url)[0], **({"ssl_cert_reqs": "none"} if url.startswith("rediss") else {}))
    try:
        assert await direct.exists(f"conn:q:{arn}|v1") == 1
    finally:
        await direct.aclose()


@pytest.mark.parametrize("url", [
    "redis://:wrong-password@127.0.0.1:{port}/0?prefix=conn:",
    "rediss://:" + PASSWORD + "@localhost:{tls_port}/0?prefix=conn:",  # the server's CA is not trusted
])
async def test_a_bus_that_cannot_authenticate_or_trust_redis_refuses_to_open(private_redis: PrivateRedis, url: str):
    bus = RedisBus(url.format(port=private_redis.port, tls_port=private_redis.tls_port))
    with pytest.raises(ConnectionError):
        await bus.open()
    await bus.close()


async def _eventually(check, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_the_bus_reloads_its_script_after_redis_forgot_it(private_redis: PrivateRedis):
    import redis.asyncio as aioredis

    url = _urls(private_redis)["password, database 3"]
    bus = RedisBus(url)
    await bus.open()
    direct = aioredis.Redis.from_url(parse_url(url)[0])
    try:
        await direct.script_flush()  # what a restarted Redis (or an operator) does to scripts
        arn = f"arn:aws:kinesisvideo:us-west-2:111122223333:channel/flush-{time.monotonic_ns()}/1"
        bus.post(arn, Envelope("msg", "v1", "ICE_CANDIDATE", "m", '{"n":1}', time.time() + 60))
        assert [e.frame for e in await bus.retained(arn, "v1")] == ['{"n":1}']
        assert bus.available
    finally:
        await direct.aclose()
        await bus.close()


async def test_the_bus_comes_back_by_itself_after_redis_restarts(private_redis: PrivateRedis):
    """Both of the bus's own connections break; the writer sends again on a new one (the script
    loaded again: a restarted Redis has none), the subscription subscribes again and then takes
    for its registrations. Runs last in this module: it restarts the module's server."""
    url = _urls(private_redis)["password, database 3"]
    a, b = RedisBus(url, name="a"), RedisBus(url, name="b")
    await a.open()
    await b.open()
    heard: list[Message] = []
    b.subscribe("topic", lambda _topic, message: heard.append(message))
    await b.synced()
    try:
        private_redis.stop()
        private_redis.start()  # the same ports, nothing kept
        arn = f"arn:aws:kinesisvideo:us-west-2:111122223333:channel/restart-{time.monotonic_ns()}/1"
        a.post(arn, Envelope("msg", "v1", "ICE_CANDIDATE", "m", '{"n":1}', time.time() + 60))

        async def kept() -> bool:
            try:
                return [e.frame for e in await a.retained(arn, "v1")] == ['{"n":1}']
            except ConnectionError:
                return False

        await _eventually(kept, "the post made after the restart")
        async def available() -> bool:
            return a.available and b.available

        await _eventually(available, "both buses available")

        async def carried() -> bool:
            a.publish("topic", Envelope("msg", "x", "ICE_CANDIDATE", "m", '{"n":2}', time.time() + 60))
            await asyncio.sleep(0.1)
            return any(getattr(e, "frame", None) == '{"n":2}' for e in heard)

        await _eventually(carried, "a publish reaching the other node's new subscription")
    finally:
        await a.close()
        await b.close()

"""Real PostgreSQL for tests: one throw-away schema per test, dropped at the end of the session.

``SIGNALITE_TEST_POSTGRES_URL`` names the server (default: the local trust-auth ``test`` database).
When it cannot be reached the PostgreSQL tests are skipped with the reason, unless
``SIGNALITE_REQUIRE_POSTGRES=1`` (set it in CI), which turns the skip into a failure.

Also here: :class:`TcpProxy`, a real TCP relay in front of PostgreSQL that a test can cut or
freeze, to see how the store and ``/ready`` behave when the database goes away.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import socket
import threading
from typing import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

POSTGRES_URL = os.environ.get("SIGNALITE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE = os.environ.get("SIGNALITE_REQUIRE_POSTGRES", "").lower() in ("1", "true", "yes")


def with_schema(url: str, schema: str) -> str:
    sep = "&" if urlsplit(url).query else "?"
    return f"{url}{sep}schema={schema}"


def with_port(url: str, port: int, host: str = "127.0.0.1") -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


async def _execute(url: str, *statements: str) -> list[object]:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        return [await conn.fetch(s) for s in statements]
    finally:
        await conn.close()


def execute(url: str, *statements: str) -> list[object]:
    """Run SQL on a fresh connection from synchronous code (fixtures, e2e tests)."""
    return asyncio.run(_execute(url, *statements))


def _unreachable_reason() -> str | None:
    try:
        execute(POSTGRES_URL, "SELECT 1")
    except Exception as exc:  # any failure to connect means "not available here"
        return f"PostgreSQL not reachable at {POSTGRES_URL} ({type(exc).__name__}: {exc}); " \
               "set SIGNALITE_TEST_POSTGRES_URL"
    return None


@pytest.fixture(scope="session")
def postgres_schemas() -> Iterator[Callable[[], str]]:
    """A factory of store URLs, each in a brand-new schema of the test database."""
    reason = _unreachable_reason()
    if reason is not None:
        if REQUIRE:
            pytest.fail(reason + " (SIGNALITE_REQUIRE_POSTGRES is set)")
        pytest.skip(reason)
    session = f"sigtest_{os.getpid()}_{secrets.token_hex(3)}"
    counter = itertools.count()
    made: list[str] = []

    def new_url() -> str:
        schema = f"{session}_{next(counter)}"
        made.append(schema)
        return with_schema(POSTGRES_URL, schema)

    yield new_url
    if made:
        execute(POSTGRES_URL, *(f'DROP SCHEMA IF EXISTS "{s}" CASCADE' for s in made))


@pytest.fixture
def postgres_url(postgres_schemas: Callable[[], str]) -> str:
    """A store URL of its own (fresh schema) for this test."""
    return postgres_schemas()


class TcpProxy:
    """A TCP relay ``127.0.0.1:port`` → target, in threads. ``stop()`` cuts every connection and
    refuses new ones; ``start()`` listens again on the same port; ``freeze()`` keeps sockets open
    but relays nothing (a database that stopped answering); ``hold_replies()`` relays requests
    but holds the server's answers (a reply lost after the request took effect); ``abandon()``
    makes the connections open now relay nothing ever again, without closing them, while new
    ones work (a NAT or load balancer that dropped their state silently)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        self._replies = threading.Event()
        self._replies.set()
        self._live: set[threading.Event] = set()
        self._abandoned: list[threading.Event] = []

    def __enter__(self) -> "TcpProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.thaw()
        self.stop()

    def start(self) -> "TcpProxy":
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)
        with self._lock:
            sockets, self._sockets = self._sockets, set()
            abandoned, self._abandoned = self._abandoned, []
        for s in sockets:
            _close(s)
        for gate in abandoned:
            gate.set()  # their pumps find the sockets closed and end

    def freeze(self) -> None:
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()
        self._replies.set()

    def hold_replies(self) -> None:
        self._replies.clear()

    def abandon(self) -> None:
        with self._lock:
            gates, self._live = self._live, set()
            self._abandoned.extend(gates)
        for gate in gates:
            gate.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                if self._listener is not listener:
                    _close(client)
                    _close(upstream)
                    return
                self._sockets.update((client, upstream))
                gate = threading.Event()
                gate.set()
                self._live.add(gate)
            threading.Thread(target=self._pump, args=(client, upstream, (gate,)), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, (gate, self._replies)), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, gates: tuple[threading.Event, ...]) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                for gate in gates:
                    gate.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            _close(src)
            _close(dst)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


@pytest.fixture
def postgres_proxy() -> Iterator[TcpProxy]:
    """A :class:`TcpProxy` in front of the test PostgreSQL server."""
    parts = urlsplit(POSTGRES_URL)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        yield proxy

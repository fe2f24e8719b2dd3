"""Shared fixtures: a real Signalite process per session (``server``), or per test on demand
(``make_server``), and unique channel names so tests never step on each other."""

from __future__ import annotations

import itertools
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.support.server import Server, running_server

_names = itertools.count()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("signalite")) as s:
        yield s


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start extra servers with their own flags: ``make_server("--quotas", "relaxed")``."""
    with ExitStack() as stack:
        def factory(*args: str, env: dict[str, str] | None = None, data_dir: Path | None = None) -> Server:
            d = data_dir or tmp_path / f"srv{next(_names)}"
            return stack.enter_context(running_server(d, *args, env=env))

        yield factory


@pytest.fixture
def kv(server: Server):
    return server.boto("kinesisvideo")


@pytest.fixture
def name(request: pytest.FixtureRequest) -> str:
    """A channel/stream name unique to this test."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name)[:40]
    return f"{base}-{os.getpid()}-{next(_names)}"

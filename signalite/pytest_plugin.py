"""The pytest plugin ``pip install signalite`` registers (entry point group ``pytest11``).

Fixtures:

* ``signalite_server`` — session scope: one isolated :class:`~signalite.testing.SignaliteServer`
  (free ports, temp data dir, its own CA). Attributes: ``endpoint_url``, ``region``,
  ``account_id``, ``access_key_id``, ``secret_access_key``, ``ca_bundle``, and ``env``, a dict of
  the variables ``signalite env`` prints.
* ``signalite_env`` — function scope: ``signalite_server.env`` in ``os.environ`` for the test
  (restored after it); returns the server.

Server flags for the session come from the ``signalite_options`` ini option (``pytest.ini``:
``signalite_options = --quotas relaxed``) or the ``--signalite-option`` command-line option.
"""

from __future__ import annotations

import os
import shlex
from typing import Any, Iterator

import pytest

from .testing import SignaliteServer


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("signalite")
    group.addoption("--signalite-option", action="append", default=[], metavar="FLAG",
                    help="a `signalite serve` flag for the signalite_server fixture (repeatable)")
    parser.addini("signalite_options", "`signalite serve` flags for the signalite_server fixture", default="")


def _options(config: pytest.Config) -> dict[str, Any]:
    words = shlex.split(str(config.getini("signalite_options"))) + [
        w for item in config.getoption("--signalite-option") for w in shlex.split(item)]
    options: dict[str, Any] = {}
    i = 0
    while i < len(words):
        name = words[i].removeprefix("--").replace("-", "_")
        if i + 1 < len(words) and not words[i + 1].startswith("--"):
            options[name] = words[i + 1]
            i += 2
        else:
            options[name] = True
            i += 1
    return options


@pytest.fixture(scope="session")
def signalite_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignaliteServer]:
    server = SignaliteServer(tmp_path_factory.mktemp("signalite"), **_options(request.config))
    with server:
        yield server


@pytest.fixture
def signalite_env(signalite_server: SignaliteServer, monkeypatch: pytest.MonkeyPatch) -> SignaliteServer:
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)  # a developer's own profile must not leak into the test
    for key, value in signalite_server.env.items():
        monkeypatch.setenv(key, value)
    return signalite_server

"""Run a program inside a fresh network namespace that has only ``lo`` (``unshare -n`` + ``ip link
set lo up``), so WebRTC peers, coturn and the server can only ever talk over 127.0.0.1.

Everything that must talk to each other has to be started *inside* the namespace (it has its own
loopback): the program you run starts the Signalite server (``tests.support.server.running_server``),
coturn (``tests.support.coturn.running_coturn``), browsers and peers itself.

Three ways in, all returning a :class:`NetnsResult` (exit code and combined output):

* ``run_in_netns([...argv])`` — any command;
* ``run_python_in_netns("tests/e2e/x.py", *args)`` or ``run_python_in_netns("-m", "tests.e2e.x")``
  — the test venv's Python, repo root on ``sys.path``;
* ``run_pytest_in_netns("tests/e2e/test_x.py::test_inner")`` — one pytest node; inside,
  :func:`in_netns` is true, so the inner test can ``pytest.skip`` when run outside.

Needs root (CI runs as root); :data:`needs_netns` skips a test where ``unshare -n`` is unavailable.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import pytest

REPO = Path(__file__).resolve().parents[2]
MARKER = "SIGNALITE_TEST_NETNS"
"""Set to ``1`` in the environment of everything started inside the namespace."""
_PRELUDE = 'ip link set lo up || exit 97; exec "$@"'


@dataclass
class NetnsResult:
    returncode: int
    output: str
    argv: list[str]

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def __str__(self) -> str:
        return f"$ {' '.join(self.argv)}\n(exit {self.returncode})\n{self.output}"


@functools.lru_cache(maxsize=1)
def netns_available() -> bool:
    """True when ``unshare -n`` works here and lo can be brought up (root, or a permissive userns)."""
    try:
        r = subprocess.run(["unshare", "-n", "sh", "-c", _PRELUDE, "sh", "true"],
                           capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


needs_netns = pytest.mark.skipif(not netns_available(),
                                 reason="needs root and `unshare -n` (WebRTC tests stay on a lo-only netns)")


def in_netns() -> bool:
    """True inside a namespace made by this module."""
    return os.environ.get(MARKER) == "1"


def run_in_netns(argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                 cwd: Path | str | None = None, timeout: float = 120) -> NetnsResult:
    full_env = dict(os.environ if env is None else env)
    full_env[MARKER] = "1"
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH", "")]))
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    # No proxy can be reached from inside, and none must be used for 127.0.0.1.
    for key in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        full_env.pop(key, None)
    cmd = ["unshare", "-n", "sh", "-c", _PRELUDE, "sh", *argv]
    try:
        r = subprocess.run(cmd, env=full_env, cwd=str(cwd or REPO), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return NetnsResult(-1, out + f"\n[netns: timed out after {timeout} s]", list(argv))
    return NetnsResult(r.returncode, r.stdout.decode(errors="replace"), list(argv))


def run_python_in_netns(*args: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> NetnsResult:
    """``python <args>`` with the test venv's interpreter (a script path, or ``-m module``, or ``-c``)."""
    return run_in_netns([sys.executable, *args], env=env, timeout=timeout)


def run_pytest_in_netns(*nodeids: str, env: Mapping[str, str] | None = None, timeout: float = 180,
                        extra: Sequence[str] = ()) -> NetnsResult:
    """Run pytest node(s) inside the namespace (quietly, no cache writes, no recursion into this)."""
    return run_python_in_netns("-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *extra, *nodeids,
                               env=env, timeout=timeout)

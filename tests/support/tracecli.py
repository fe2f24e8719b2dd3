"""Run ``signalite trace`` and ``signalite admin`` against a test server, as a user does."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

from tests.support.server import ACCESS_KEY, SECRET_KEY, Server


def cli(server: Server, *args: str, background: bool = False) -> Any:
    """``signalite ARGS --data-dir …`` with the root key in the environment: a finished
    ``CompletedProcess``, or with ``background`` a running ``Popen`` (text pipes)."""
    env = {**os.environ, "SIGNALITE_ACCESS_KEY_ID": ACCESS_KEY, "SIGNALITE_SECRET_ACCESS_KEY": SECRET_KEY}
    argv = [sys.executable, "-m", "signalite", *args, "--data-dir", str(server.data_dir)]
    if background:
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)


class TraceReader:
    """The lines of a running ``signalite trace CHANNEL --json``, read as they come: a test waits
    for the event it expects (nothing is asserted about time)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []

    @classmethod
    def start(cls, server: Server, channel: str) -> "TraceReader":
        return cls(cli(server, "trace", channel, "--json", background=True))

    async def until(self, event: str, timeout: float = 60.0, **match: Any) -> dict[str, Any]:
        """The first event named ``event`` whose fields equal ``match`` (already read or next)."""
        def fits(e: dict[str, Any]) -> bool:
            return e["event"] == event and all(e.get(k) == v for k, v in match.items())

        async with asyncio.timeout(timeout):
            for e in self.events:
                if fits(e):
                    return e
            assert self.proc.stdout is not None
            while True:
                line = await asyncio.to_thread(self.proc.stdout.readline)
                if not line:
                    raise AssertionError(f"the trace ended before {event} {match}: {self.proc.communicate()[1]}")
                e = json.loads(line)
                self.events.append(e)
                if fits(e):
                    return e

    def summary(self) -> list[tuple[Any, ...]]:
        return [(e["event"], e.get("messageType"), e.get("sender"), e.get("recipient")) for e in self.events]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=30)

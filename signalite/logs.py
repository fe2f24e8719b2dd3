"""Log lines: plain text, or one JSON object per line (``--log-format json``).

JSON lines carry ``ts`` (ISO 8601, UTC), ``level``, ``logger``, ``msg`` and, where they apply, the
context the code passed as ``extra`` (``request_id``, ``account``, ``channel``, ``client_id``,
``operation``, ``status``, ``duration_ms``, ``role``, ``reason``, ``event``…). Secrets are never
passed to a logger (keys, signatures and session tokens stay out of every ``extra``); SDP and ICE
payloads appear only with ``--log-payloads``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import TextIO

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``asctime level logger: message``, with the date and time formatted once per second
    rather than once per line (``time.strftime`` is most of a plain line's formatting cost)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        second = int(record.created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
        return f"{self._stamp},{int(record.msecs):03d}"


class LoopBatchedHandler(logging.StreamHandler[TextIO]):
    """A stream handler that writes the lines logged during one event-loop iteration together.

    The access log writes a line per request; one ``write`` + ``flush`` system call per line was
    a fifth of a REST request's CPU under load. Lines logged on the event loop's thread are
    queued and written by one callback that the loop runs right after the callbacks that logged
    them — on an idle server that is at once, under load it is one write for every line of the
    iteration. Nothing waits for a timer, so a line is never held back while the server is idle,
    and a test that reads the log after a request sees it. Warnings and errors, lines logged
    from other threads (aiortc's, PyAV's) or outside a loop, and :meth:`flush` (which
    ``logging.shutdown`` calls at exit) write everything queued first, in order."""

    MAX_QUEUED = 512

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._queued: list[str] = []
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:  # called with self.lock held (Handler.handle)
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        loop = None
        if record.levelno < logging.WARNING:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                pass
        self._queued.append(line)
        if loop is None or len(self._queued) >= self.MAX_QUEUED:
            self._write_queued()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._drain)

    def _drain(self) -> None:
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            self._scheduled = False
            self._write_queued()

    def _write_queued(self) -> None:
        if not self._queued:
            return
        lines, self._queued = self._queued, []
        try:
            self.stream.write("\n".join(lines) + self.terminator)
            self.stream.flush()
        except Exception:  # a closed or full stderr must not break the request that logged
            self.handleError(logging.makeLogRecord({"msg": lines[-1]}))

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_queued()
        super().flush()


def configure(level: str, fmt: str) -> None:
    """Send the server's logs to stderr as ``fmt`` (``text`` or ``json``) from ``level`` up."""
    # The logging HOWTO's "Optimization": no caller, thread or process lookups per record; no
    # format uses them.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = LoopBatchedHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's own access log would repeat ours without the context; asyncio's debug chatter too.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

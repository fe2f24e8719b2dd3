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


_JSON = json.JSONEncoder(default=str, separators=(",", ":"))
"""One encoder for every line: ``json.dumps`` with options builds a new one per call."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return _JSON.encode(line)

    def direct(self, created: float, level: str, name: str, message: str, extra: dict[str, object]) -> str:
        """What :meth:`format` gives a record with these fields, no arguments and no exception."""
        line: dict[str, object] = {"ts": _iso(created), "level": level.lower(), "logger": name, "msg": message}
        for key, value in extra.items():
            if value is not None:
                line[key] = value
        return _JSON.encode(line)


def _iso(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TextFormatter(logging.Formatter):
    """``asctime level logger: message``, with the date and time formatted once per second
    rather than once per line (``time.strftime`` is most of a plain line's formatting cost)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 (logging's name)
        return self._time(record.created, record.msecs)

    def _time(self, created: float, msecs: float) -> str:
        second = int(created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second))
        return f"{self._stamp},{int(msecs):03d}"

    def direct(self, created: float, level: str, name: str, message: str, extra: dict[str, object]) -> str:
        """What :meth:`format` gives a record with these fields, no arguments and no exception."""
        return f"{self._time(created, int((created - int(created)) * 1000))} {level} {name}: {message}"


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
        self._enqueue(line, record.levelno)

    def _enqueue(self, line: str, levelno: int) -> None:
        loop = None
        if levelno < logging.WARNING:
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


_DIRECT_FORMATTERS = (TextFormatter, JsonFormatter)


class DirectLog:
    """One logger's info lines, written straight to the server's own handler when nothing else
    could see the record on the way — no handler or filter on the logger or its parents, the
    root's one handler the server's :class:`LoopBatchedHandler` with its own formatter (tests'
    ``caplog``, a library's or an embedding application's handler all make it take the usual
    path) — as exactly the line the formatter would write.

    The access log writes one line per request. Through :mod:`logging` that line cost ≈ 12 µs
    of a ≈ 100 µs REST request (a LogRecord of ~20 attributes, the extra copied in, the handler
    chain and the formatter); written directly, about a fifth of that. Whether the direct path
    applies is looked at on every line (a few attribute reads), so a handler added at any time
    sees every line after it."""

    __slots__ = ("logger",)

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def _handler(self) -> LoopBatchedHandler | None:
        logger: logging.Logger | None = self.logger
        root = logging.root
        while logger is not None and logger is not root:
            if logger.handlers or logger.filters or not logger.propagate or logger.disabled:
                return None
            logger = logger.parent
        if root.filters or len(root.handlers) != 1:
            return None
        handler = root.handlers[0]
        if (type(handler) is not LoopBatchedHandler or handler.filters or handler.level > logging.INFO
                or type(handler.formatter) not in _DIRECT_FORMATTERS):
            return None
        return handler

    def info(self, message: str, extra: dict[str, object]) -> None:
        """Log ``message`` (already formatted) at INFO with ``extra``, if INFO is enabled."""
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handler = self._handler()
        if handler is None:
            logger.info("%s", message, extra=extra)
            return
        formatter = handler.formatter
        assert isinstance(formatter, _DIRECT_FORMATTERS)
        with handler.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            handler._enqueue(formatter.direct(time.time(), "INFO", logger.name, message, extra), logging.INFO)

"""The log handler batches a loop iteration's lines into one write, and never holds a line back
past the iteration that logged it (or at all, for warnings and lines logged off the loop)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading

import pytest

from signalite.logs import JsonFormatter, LoopBatchedHandler, TextFormatter


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return super().write(text)


@pytest.fixture
def logged():
    stream = CountingStream()
    handler = LoopBatchedHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger("signalite.test-logs")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log, stream
    log.handlers[:] = []


async def test_lines_of_one_iteration_are_one_write_right_after_it(logged):
    log, stream = logged
    for i in range(5):
        log.info("line %d", i)
    assert stream.writes == []  # still in the iteration that logged them
    await asyncio.sleep(0)  # the loop runs the drain callback next
    assert stream.writes == ["INFO line 0\nINFO line 1\nINFO line 2\nINFO line 3\nINFO line 4\n"]
    log.info("later")
    await asyncio.sleep(0)
    assert stream.writes[-1] == "INFO later\n"


async def test_a_warning_writes_what_is_queued_first_and_itself_at_once(logged):
    log, stream = logged
    log.info("first")
    log.warning("second")
    assert stream.getvalue() == "INFO first\nWARNING second\n"
    await asyncio.sleep(0)
    assert stream.getvalue() == "INFO first\nWARNING second\n"  # nothing written twice


def test_lines_outside_a_loop_and_from_other_threads_are_written_at_once(logged):
    log, stream = logged
    log.info("no loop")
    assert stream.getvalue() == "INFO no loop\n"
    worker = threading.Thread(target=log.info, args=("from a thread",))
    worker.start()
    worker.join()
    assert stream.getvalue().endswith("INFO from a thread\n")


async def test_flush_writes_the_queue_and_a_full_queue_writes_itself(logged):
    log, stream = logged
    log.info("queued")
    log.handlers[0].flush()
    assert stream.getvalue() == "INFO queued\n"
    for i in range(LoopBatchedHandler.MAX_QUEUED):
        log.debug("n%d", i)
    assert stream.getvalue().count("\n") == LoopBatchedHandler.MAX_QUEUED + 1


def test_text_time_stamp_is_cached_per_second_but_milliseconds_are_exact():
    fmt = TextFormatter()
    a = logging.makeLogRecord({"msg": "a", "created": 1_700_000_000.123, "msecs": 123.0, "levelname": "INFO"})
    b = logging.makeLogRecord({"msg": "b", "created": 1_700_000_000.987, "msecs": 987.0, "levelname": "INFO"})
    c = logging.makeLogRecord({"msg": "c", "created": 1_700_000_001.004, "msecs": 4.0, "levelname": "INFO"})
    stamps = [fmt.formatTime(r) for r in (a, b, c)]
    assert stamps[0].endswith(",123") and stamps[1].endswith(",987") and stamps[2].endswith(",004")
    assert stamps[0][:19] == stamps[1][:19] != stamps[2][:19]
    assert stamps[0] == logging.Formatter().formatTime(a)


def test_json_lines_keep_their_context():
    record = logging.makeLogRecord({"msg": "x %s", "args": ("y",), "levelname": "INFO", "name": "n",
                                    "created": 1.5, "request_id": "r-1", "account": None})
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "x y" and line["request_id"] == "r-1" and "account" not in line


EXTRA = {"request_id": "r-1", "operation": "GetSignalingChannelEndpoint", "status": 200, "account": None,
         "duration_ms": 0.42, "remote": "127.0.0.1"}


@pytest.mark.parametrize("formatter", [TextFormatter, JsonFormatter])
def test_a_direct_line_is_exactly_what_the_formatter_makes_of_the_record(formatter):
    fmt = formatter()
    for created in (1_700_000_000.0, 1_700_000_000.0009, 1_700_000_000.9996, 1_700_000_001.5):
        record = logging.LogRecord("signalite.access", logging.INFO, "", 0, "%s", ("POST Op 200 1.0 ms",), None)
        record.created, record.msecs = created, int((created - int(created)) * 1000) + 0.0
        record.__dict__.update(EXTRA)
        assert fmt.direct(created, "INFO", "signalite.access", "POST Op 200 1.0 ms", EXTRA) == fmt.format(record)


@pytest.fixture
def server_logging():
    """The server's configuration (logs.configure) on a captured stream; restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = CountingStream()
    handler = LoopBatchedHandler(stream)
    handler.setFormatter(TextFormatter())
    root.setLevel(logging.INFO)

    def only_ours() -> CountingStream:  # in the test's body: pytest adds its own capture handlers per phase
        root.handlers[:] = [handler]
        return stream

    yield only_ours
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_the_access_log_takes_the_direct_path_only_when_no_one_else_would_see_the_record(server_logging,
                                                                                         monkeypatch):
    from signalite.logs import DirectLog

    server_logging = server_logging()
    access = DirectLog(logging.getLogger("signalite.access"))
    made: list[logging.LogRecord] = []
    real = logging.Logger.makeRecord
    monkeypatch.setattr(logging.Logger, "makeRecord", lambda self, *a, **k: made.append(real(self, *a, **k)) or made[-1])
    access.info("POST Op 200 1.0 ms", EXTRA)
    assert made == [] and server_logging.getvalue().endswith(" INFO signalite.access: POST Op 200 1.0 ms\n")

    seen: list[logging.LogRecord] = []
    other = logging.Handler()
    other.emit = seen.append  # type: ignore[method-assign]
    for attach in (logging.getLogger(), logging.getLogger("signalite"), logging.getLogger("signalite.access")):
        attach.addHandler(other)
        try:
            access.info("POST Op 200 2.0 ms", EXTRA)
        finally:
            attach.removeHandler(other)
        assert seen[-1].getMessage() == "POST Op 200 2.0 ms" and seen[-1].request_id == "r-1"  # type: ignore[attr-defined]
    assert len(made) == 3
    assert server_logging.getvalue().count("POST Op 200 2.0 ms") == 3  # the server's handler still writes it

    logging.getLogger("signalite.access").setLevel(logging.WARNING)
    try:
        access.info("POST Op 200 3.0 ms", EXTRA)
    finally:
        logging.getLogger("signalite.access").setLevel(logging.NOTSET)
    assert "3.0 ms" not in server_logging.getvalue()

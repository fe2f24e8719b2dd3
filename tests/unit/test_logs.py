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

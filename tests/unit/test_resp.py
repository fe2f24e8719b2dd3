"""The bus's lean Redis connection (signalite/bus/resp.py) without a socket: what it writes, and
how it matches what comes back. The same connection against the real Redis is exercised by the
bus and mailbox contract tests and the cluster end-to-end tests."""

from __future__ import annotations

import asyncio

import hiredis
import pytest

from signalite.bus.resp import RespConnection, RespError, pack


class _Transport:
    """Records what is written; ``abort`` marks it closed."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        self.aborted = True


def test_pack_writes_resp_bulk_strings_as_redis_py_encodes_them():
    assert pack(("EVALSHA", b"ab", 0, 1.5, "é")) == (
        b"*5\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n0\r\n$3\r\n1.5\r\n$2\r\n\xc3\xa9\r\n")
    assert pack([]) == b"*0\r\n"
    assert hiredis.Reader().feed(pack(("a",))) is None  # well-formed: the parser takes it
    with pytest.raises(TypeError):
        pack((None,))


async def _connection(on_push=None) -> tuple[RespConnection, _Transport]:
    conn = RespConnection(on_push)
    transport = _Transport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    return conn, transport


async def test_replies_answer_calls_in_order_even_when_split_across_reads():
    conn, transport = await _connection()
    first, second = conn.call(pack(("GET", "a"))), conn.call(pack(("GET", "b")))
    assert transport.written == [pack(("GET", "a")), pack(("GET", "b"))]
    conn.data_received(b"$3\r\non")
    assert not first.done()
    conn.data_received(b"e\r\n*2\r\n:1\r\n$1\r\nx\r\n")
    assert first.result() == b"one" and second.result() == [1, b"x"]


async def test_an_error_reply_is_a_value_not_a_broken_connection():
    conn, _ = await _connection()
    answer = conn.call(pack(("EVALSHA", "nope", 0)))
    conn.data_received(b"-NOSCRIPT No matching script.\r\n")
    assert isinstance(answer.result(), hiredis.ReplyError) and str(answer.result()).startswith("NOSCRIPT")
    assert conn.open


async def test_a_subscription_hands_every_burst_of_pushes_to_its_callback_at_once():
    pushes: list[object] = []
    conn, _ = await _connection(pushes.append)
    conn.data_received(b"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"
                       b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\n")
    assert pushes == [[b"subscribe", b"c", 1], [b"message", b"c", b"hi"]]  # the third is incomplete
    conn.data_received(b"2\r\n")
    assert pushes[-1] == [b"message", b"c", b"2"]


async def test_a_lost_connection_fails_every_waiting_call_and_says_it_closed():
    conn, _ = await _connection()
    waiting = conn.call(pack(("PING",)))
    conn.connection_lost(ConnectionResetError("reset"))
    with pytest.raises(RespError):
        waiting.result()
    assert conn.closed.done() and isinstance(conn.closed.result(), ConnectionResetError)
    assert not conn.open
    with pytest.raises(RespError):
        conn.call(pack(("PING",)))


async def test_garbage_from_the_server_closes_the_connection_instead_of_answering_wrongly():
    conn, transport = await _connection()
    waiting = conn.call(pack(("PING",)))
    conn.data_received(b"!!not resp\r\n")
    assert transport.aborted and conn.closed.done()
    with pytest.raises(RespError):
        waiting.result()
    unasked, t2 = await _connection()
    unasked.data_received(b"+OK\r\n")  # a reply to nothing: the order is lost, so is the connection
    assert t2.aborted


async def test_a_cancelled_call_still_consumes_its_reply():
    conn, _ = await _connection()
    gave_up, next_one = conn.call(pack(("GET", "a"))), conn.call(pack(("GET", "b")))
    gave_up.cancel()
    conn.data_received(b"$1\r\na\r\n$1\r\nb\r\n")
    assert next_one.result() == b"b"  # not the reply meant for the cancelled call
    await asyncio.sleep(0)

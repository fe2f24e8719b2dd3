"""The Bus contract (signalite/bus/base.py), run against every backend in ``BUS_URLS``.

The in-process bus delivers inline; a network bus (Redis, the cluster issue) delivers from a
reader task, so the assertions wait for deliveries (with a timeout as a safety net only). A cluster
backend joins by adding its URL (e.g. from an environment variable) to ``BUS_URLS``.
"""

from __future__ import annotations

import asyncio
import os
from typing import AsyncIterator

import pytest

from signalite.bus import open_bus
from signalite.bus.base import CTL, MSG, Bus, Envelope, decode, encode

BUS_URLS = ["local://"] + ([os.environ["SIGNALITE_TEST_REDIS_URL"]] if os.environ.get("SIGNALITE_TEST_REDIS_URL") else [])


@pytest.fixture(params=BUS_URLS)
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    b = open_bus(request.param)
    await b.open()
    yield b
    await b.close()


def env(n: int, recipient: str = "") -> Envelope:
    return Envelope(MSG, recipient, "ICE_CANDIDATE", "v1", f'{{"n":{n}}}', 1e12)


async def until(predicate, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_ping(bus):
    assert await bus.ping()


async def test_publish_reaches_the_topic_subscriber_in_order(bus):
    got: list[tuple[str, Envelope]] = []
    bus.subscribe("arn:a", lambda topic, e: got.append((topic, e)))
    for i in range(200):
        assert bus.publish("arn:a", env(i)) is None  # non-blocking, returns nothing
    await until(lambda: len(got) == 200)
    assert [e.frame for _, e in got] == [f'{{"n":{i}}}' for i in range(200)]
    assert {t for t, _ in got} == {"arn:a"}


async def test_topics_are_separate_and_unsubscribe_stops_delivery(bus):
    a: list[Envelope] = []
    b: list[Envelope] = []
    bus.subscribe("arn:a", lambda t, e: a.append(e))
    bus.subscribe("arn:b", lambda t, e: b.append(e))
    bus.publish("arn:b", env(1))
    await until(lambda: len(b) == 1)
    bus.unsubscribe("arn:a")
    bus.publish("arn:a", env(2))
    bus.publish("arn:b", env(3))  # a marker: once it arrives, arn:a's would have too
    await until(lambda: len(b) == 2)
    assert a == []


async def test_publishing_without_subscribers_is_harmless(bus):
    bus.publish("arn:nobody", env(1))
    assert await bus.ping()


async def test_a_failing_handler_does_not_reach_the_publisher(bus):
    seen: list[Envelope] = []

    def bad(topic: str, e: Envelope) -> None:
        seen.append(e)
        raise RuntimeError("subscriber bug")

    bus.subscribe("arn:x", bad)
    bus.publish("arn:x", env(1))
    bus.publish("arn:x", env(2))
    await until(lambda: len(seen) == 2)


def test_envelope_wire_form_round_trips():
    for e in (env(1, "viewer-1"), Envelope(CTL, "ttl", "5", "", "", 0.0),
              Envelope(MSG, "", "SDP_OFFER", "v", '{"messagePayload":"é\\u2028"}', 1700000000.25)):
        assert decode(encode(e)) == e
        assert isinstance(decode(encode(e)), Envelope)


def test_open_bus_urls():
    assert type(open_bus(None)).__name__ == "LocalBus"
    with pytest.raises(ValueError):
        open_bus("kafka://x")

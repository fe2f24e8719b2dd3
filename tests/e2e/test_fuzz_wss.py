"""Fuzzing the WSS signaling plane against the real server: frames in both key casings, known and
unknown actions, wrong types, oversized, binary, fragmented and not UTF-8.

A viewer sends each fuzzed frame to a channel whose master is connected; after each one it sends
a marker (an unknown action with a correlationId, answered by a STATUS_RESPONSE), so every frame
is known to be handled, or the socket known to be closed, before the next (never a hang: a safety
net per frame). Properties: the server closes a socket only with the code that says why (1003
binary, 1007 not JSON / not an object / not UTF-8, 1009 too big), never an internal error; every
answer is a well-formed STATUS_RESPONSE; what reaches the master is a relayed SDP_OFFER,
SDP_ANSWER or ICE_CANDIDATE from that viewer with the fields the SDKs read; and afterwards the
server is healthy and the channel still relays (valid state unchanged). Bounded for CI;
``SIGNALITE_FUZZ_EXAMPLES=N`` for more. Frames that once failed live in tests/fuzz_corpus/wss/.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import json
import uuid
from typing import Any, Iterator

import pytest
import websockets
from hypothesis import given
from hypothesis import strategies as st

from tests.support.fuzz import JSON_ANY, JSON_LEAF, corpus_bytes, fuzz_settings, load_corpus
from tests.support.server import Server, running_server
from tests.support.signaling import Peer, b64, connect

CI_EXAMPLES = 300
CLOSE_CODES = {1003, 1007, 1009}
"""Why the server may close a fuzzing socket: binary frame, invalid data, frame too big."""
RELAYED = {"SDP_OFFER", "SDP_ANSWER", "ICE_CANDIDATE"}

KEYS = {"action": ("action", "Action"), "payload": ("messagePayload", "MessagePayload"),
        "recipient": ("recipientClientId", "RecipientClientId"), "cid": ("correlationId", "CorrelationId")}
ACTIONS = st.one_of(st.sampled_from(sorted(RELAYED)), st.sampled_from(["GO_AWAY", "STATUS_RESPONSE", "sdp_offer",
                                                                       "", "PING"]), JSON_LEAF)
IDS = st.one_of(st.from_regex(r"[a-zA-Z0-9_.-]{1,20}", fullmatch=True), st.just("a" * 257), st.just("bad id!"),
                st.just(""), JSON_LEAF)
PAYLOADS = st.one_of(st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()), st.just("not base64!"),
                     st.just("A" * 14_000), st.just("A" * 60_000), st.just(""), JSON_ANY)


@st.composite
def message(draw: Any) -> str | bytes | list[str]:
    """One frame's content: mostly KVS-shaped JSON objects (either casing, or both), else junk."""
    kind = draw(st.sampled_from(["shaped"] * 6 + ["json", "text", "binary", "bad-utf8", "fragmented", "huge"]))
    if kind == "shaped":
        obj: dict[str, Any] = {}
        for field, values in (("action", ACTIONS), ("payload", PAYLOADS), ("recipient", IDS), ("cid", IDS)):
            casing = draw(st.sampled_from(["lower", "upper", "both", "absent"]))
            lower, upper = KEYS[field]
            if casing in ("lower", "both"):
                obj[lower] = draw(values)
            if casing in ("upper", "both"):
                obj[upper] = draw(values)
        if draw(st.booleans()):
            obj["IceServerList"] = draw(JSON_ANY)  # what the C SDK adds to its offers
        text = json.dumps(obj, indent=draw(st.sampled_from([None, "\t"])))
        return text
    if kind == "json":
        return json.dumps(draw(JSON_ANY))
    if kind == "text":
        return draw(st.text(max_size=200))
    if kind == "binary":
        return draw(st.binary(max_size=200))
    if kind == "bad-utf8":
        return b'{"action":"SDP_OFFER","messagePayload":"' + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"])) + b'"}'
    if kind == "fragmented":
        text = json.dumps({"action": "ICE_CANDIDATE", "messagePayload": "eA==", "correlationId": "frag"})
        cut = draw(st.integers(min_value=1, max_value=len(text) - 1))
        return [text[:cut], text[cut:]]
    return "x" * draw(st.sampled_from([70_000, 200_000]))  # beyond the largest frame the server takes


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("fuzz-wss"), "--quotas", "relaxed") as s:
        yield s


class Harness:
    """A channel with a master that checks what it receives, and a fuzzing viewer (reconnected
    whenever the server closes it)."""

    def __init__(self, server: Server, arn: str) -> None:
        self.server = server
        self.arn = arn
        self.master: Peer | None = None
        self.viewer: Peer | None = None
        self.closes: list[int | None] = []
        self.relayed = 0
        self.sent = 0
        self.answers = 0

    async def start(self) -> None:
        self.master = await connect(self.server, self.arn)
        self.viewer = await connect(self.server, self.arn, "fuzzer")

    async def send(self, content: str | bytes | list[str], *, text_bytes: bool = False) -> None:
        assert self.viewer is not None
        ws = self.viewer.ws
        self.sent += 1
        try:
            if text_bytes:
                await ws.send(content, text=True)  # bytes sent as a text frame, unchecked
            else:
                await ws.send(content)
            tag = f"m{uuid.uuid4().hex}"
            await ws.send(json.dumps({"action": "MARKER", "messagePayload": "eA==", "correlationId": tag}))
            while True:  # every frame before the marker's answer is an answer to the fuzzed frame
                frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
                assert frame.get("messageType") == "STATUS_RESPONSE", frame
                status = frame["statusResponse"]
                assert status["errorType"] in ("InvalidArgumentException", "ClientLimitExceededException"), frame
                assert status["statusCode"] == "400" and isinstance(status.get("correlationId"), str), frame
                if status["correlationId"] == tag:
                    return
                self.answers += 1
        except websockets.ConnectionClosed:
            rcvd = ws.protocol.close_rcvd
            code = rcvd.code if rcvd else None
            assert code in CLOSE_CODES, f"closed with {code} ({rcvd}) after {content!r:.200}"
            self.closes.append(code)
            self.viewer = await connect(self.server, self.arn, "fuzzer")

    async def drain_master(self) -> None:
        """Everything the master got so far is a well-formed relayed message from the fuzzer."""
        assert self.master is not None and self.viewer is not None
        payload = b64({"drain": uuid.uuid4().hex})
        await self.viewer.send("ICE_CANDIDATE", payload)
        while True:
            frame = await self.master.recv(30)
            assert frame.get("messageType") in RELAYED, frame
            assert frame.get("senderClientId") == "fuzzer" and isinstance(frame.get("messagePayload"), str), frame
            assert set(frame) == {"messageType", "messagePayload", "senderClientId"}, frame
            if frame["messagePayload"] == payload:
                return
            self.relayed += 1

    async def close(self) -> None:
        for p in (self.master, self.viewer):
            if p is not None:
                await p.close()


@pytest.fixture
async def harness(fuzzed: Server, name: str):
    arn = fuzzed.boto().create_signaling_channel(ChannelName=name)["ChannelARN"]
    h = Harness(fuzzed, arn)
    await h.start()
    yield h
    await h.close()


CORPUS = load_corpus("wss")


@pytest.mark.parametrize("entry", CORPUS, ids=[e.get("why", str(i))[:60] for i, e in enumerate(CORPUS)])
async def test_corpus(harness, fuzzed, entry):
    data = corpus_bytes(entry)
    if entry.get("binary"):
        await harness.send(data)
    else:
        await harness.send(data, text_bytes=True)
    await harness.drain_master()
    assert "Traceback" not in fuzzed.log(), fuzzed.log()[-3000:]


async def test_fuzz_frames(harness, fuzzed):
    # Hypothesis drives a synchronous function, in a worker thread; each example is sent on this
    # test's event loop (so a failing example is shrunk like any other).
    loop = asyncio.get_running_loop()

    @fuzz_settings(CI_EXAMPLES)
    @given(content=message())
    def run(content: str | bytes | list[str]) -> None:
        bad_utf8 = isinstance(content, bytes) and content.startswith(b'{"action"')
        asyncio.run_coroutine_threadsafe(harness.send(content, text_bytes=bad_utf8), loop).result(60)

    await asyncio.to_thread(run)
    await harness.drain_master()
    print(f"fuzzed frames: {harness.sent}, closes by code {dict(collections.Counter(harness.closes))}, "
          f"relayed {harness.relayed}, status responses {harness.answers}")  # shown with pytest -s
    # The channel still relays both ways, and the server is healthy.
    assert harness.master is not None and harness.viewer is not None
    await harness.master.send("SDP_ANSWER", "b2s=", recipient="fuzzer")
    while (await harness.viewer.recv())["messageType"] != "SDP_ANSWER":
        pass
    assert fuzzed.ready()[0] == 200
    log = fuzzed.log()
    assert "Traceback" not in log, log[-3000:]

"""Fuzzing every operation of every served model (kinesisvideo, kinesis-video-signaling,
kinesis-video-webrtc-storage, the admin API) against the real server process.

Bodies come from the botocore models (tests/support/fuzz.py): valid, boundary and wrong-typed
values, any JSON, deep nesting, huge strings, bytes that are not JSON or not UTF-8. Every request
is signed (so it gets past authentication into decoding and the operation). Properties: never a
5xx, never a hang (a 30 s safety net per request), every error one the service's model knows
(botocore parses the answer), and afterwards the server healthy, its log free of tracebacks,
and a channel created before the fuzzing unchanged. Bounded for CI (a few hundred requests in
all); ``SIGNALITE_FUZZ_EXAMPLES=N`` for N examples per operation. Inputs that once failed live in
tests/fuzz_corpus/rest/ and are replayed first.
"""

from __future__ import annotations

import http.client
import json
from typing import Any, Iterator

import pytest
from botocore.model import OperationModel
from botocore.parsers import create_parser
from hypothesis import given

from signalite import operator
from signalite.aws.wire import ServiceWire, Wire
from tests.support.fuzz import body_strategy, corpus_bytes, fuzz_settings, load_corpus
from tests.support.server import Server, running_server
from tests.support.signed import sign

WIRE = Wire(extra=(operator.service_model(),))
PATHS = sorted(WIRE.routes)
CI_EXAMPLES = 20
_PARSER = create_parser("rest-json")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own, so that its log speaks only of the fuzzing."""
    with running_server(tmp_path_factory.mktemp("fuzz-rest")) as s:
        yield s


class Client:
    """One keep-alive connection to the plain listener; every request signed by botocore."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        headers = sign("POST", self.server.http_url + path, body)
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.server.http_port, timeout=30)
            try:
                self.conn.request("POST", path, body=body, headers=headers)
                reply = self.conn.getresponse()
                data = reply.read()
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self.conn.close()
                self.conn = None  # the server may close after an error answer: once more, fresh
                if attempt == 2:
                    raise
                continue
            if reply.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            return reply.status, {k.lower(): v for k, v in reply.getheaders()}, data
        raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def client(fuzzed: Server) -> Client:
    return Client(fuzzed)


@pytest.fixture(scope="module")
def guarded_channel(fuzzed: Server) -> Iterator[dict[str, Any]]:
    """A channel made before the fuzzing; no fuzzed request may change it."""
    kv = fuzzed.boto()
    arn = kv.create_signaling_channel(ChannelName="fuzz-guarded", Tags=[{"Key": "k", "Value": "v"}])["ChannelARN"]
    yield {"arn": arn, "info": kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"],
           "tags": kv.list_tags_for_resource(ResourceARN=arn)["Tags"]}


def check(svc: ServiceWire, op: OperationModel, status: int, headers: dict[str, str], body: bytes) -> None:
    assert status < 500, (status, body[:300])
    parsed = _PARSER.parse({"status_code": status, "headers": headers, "body": body}, op.output_shape)
    if status >= 300:
        code = parsed["Error"]["Code"]
        assert svc.knows_error(code), f"{op.name} answered an error its model does not know: {code} {body[:200]!r}"
        assert json.loads(body)["__type"] == code
    else:
        assert "Error" not in parsed


def exercise(client: Client, path: str, body: bytes) -> None:
    svc, op = WIRE.routes[path]
    status, headers, data = client.post(path, body)
    check(svc, op, status, headers, data)


CORPUS = load_corpus("rest")


@pytest.mark.parametrize("entry", CORPUS, ids=[e.get("why", str(i))[:60] for i, e in enumerate(CORPUS)])
def test_corpus(client, guarded_channel, entry):
    exercise(client, entry["path"], corpus_bytes(entry))


@pytest.mark.parametrize("path", PATHS)
def test_fuzz_operation(client, guarded_channel, path):
    _, op = WIRE.routes[path]

    @fuzz_settings(CI_EXAMPLES)
    @given(body=body_strategy(op.input_shape))
    def run(body: bytes) -> None:
        exercise(client, path, body)

    run()


def test_fuzzing_left_the_server_healthy_and_the_guarded_channel_unchanged(fuzzed, guarded_channel):
    kv = fuzzed.boto()
    arn = guarded_channel["arn"]
    assert kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"] == guarded_channel["info"]
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == guarded_channel["tags"]
    assert fuzzed.ready()[0] == 200
    log = fuzzed.log()
    assert "Traceback" not in log and "unhandled error" not in log, log[-3000:]

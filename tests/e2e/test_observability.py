"""Metrics and logs after real traffic: Prometheus text parsed with prometheus-client's own
parser (the counts match what was sent), JSON log lines parsed one by one, and a secret scan."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import SECRET_KEY, Server
from tests.support.signaling import b64, connect


def scrape(server: Server, token: str | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    request = urllib.request.Request(server.url + "/metrics",
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=server.ca), timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[s.name, tuple(sorted(s.labels.items()))] = s.value
    return samples


def status_of(server: Server, path: str, token: str | None = None) -> int:
    request = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=server.ca), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


async def traffic(server: Server, name: str) -> str:
    """A known exchange: 2 offers and 3 candidates delivered, 1 buffered, 1 replaced, 2 rejected."""
    kv = server.boto()
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    master = await connect(server, arn)
    viewer = await connect(server, arn, "v1")
    for i in range(2):
        await viewer.send("SDP_OFFER", b64({"type": "offer", "sdp": f"o{i}"}))
    for i in range(3):
        await viewer.send("ICE_CANDIDATE", b64({"candidate": f"c{i}"}))
    for _ in range(5):
        await master.recv()
    await master.send("SDP_ANSWER", b64({"type": "answer", "sdp": "old"}), recipient="offline")  # buffered
    await master.send("SDP_ANSWER", b64({"type": "answer", "sdp": "new"}), recipient="offline")  # replaces it
    await master.send("NOT_AN_ACTION", "eA==", recipient="v1", correlation_id="bad-1")  # rejected, answered
    await master.recv()
    await viewer.send("SDP_OFFER", "", correlation_id="bad-2")  # rejected: empty payload
    await viewer.recv()
    await master.close()
    await viewer.close()
    return arn


async def test_metrics_count_what_was_sent(make_server, name):
    server = make_server()
    await traffic(server, name)
    m = scrape(server)

    def msgs(kind: str, outcome: str) -> float:
        return m.get(("signalite_messages_total", (("outcome", outcome), ("type", kind))), 0)

    assert msgs("SDP_OFFER", "delivered") == 2 and msgs("ICE_CANDIDATE", "delivered") == 3
    assert msgs("SDP_ANSWER", "buffered") == 2 and msgs("SDP_ANSWER", "replaced") == 1
    assert msgs("other", "rejected") == 1 and msgs("SDP_OFFER", "rejected") == 1
    assert m["signalite_handshakes_total", (("outcome", "accepted"),)] == 2
    assert m["signalite_api_requests_total", (("code", "200"), ("operation", "CreateSignalingChannel"))] == 1
    assert m["signalite_message_delivery_seconds_count", ()] == 5
    assert m["signalite_message_delivery_seconds_bucket", (("le", "+Inf"),)] == 5
    assert m["signalite_retained_messages", ()] == 1  # the replacing answer, kept for its TTL
    assert not any(name in str(labels) for _, labels in m)  # no channel names (or client ids) as labels
    # the sockets are gone: the gauges say so once the server has seen the closes
    for _ in range(100):
        m = scrape(server)
        if m["signalite_connections", (("role", "master"),)] == 0 and m["signalite_connections", (("role", "viewer"),)] == 0:
            break
    assert m["signalite_connections", (("role", "viewer"),)] == 0


async def test_a_refused_handshake_is_counted_by_its_error(make_server, name):
    from tests.support.signaling import handshake_status, presign

    server = make_server()
    arn = server.boto().create_signaling_channel(ChannelName=name)["ChannelARN"]
    assert await handshake_status(server, presign(server, arn, secret_key="wrong" * 8)) == 403
    assert await handshake_status(server, presign(server, arn + "0")) == 404
    m = scrape(server)
    assert m["signalite_handshakes_total", (("outcome", "AccessDeniedException"),)] == 1
    assert m["signalite_handshakes_total", (("outcome", "ResourceNotFoundException"),)] == 1


def test_metrics_token_and_no_metrics(make_server):
    guarded = make_server("--metrics-token", "s3cret-token")
    assert status_of(guarded, "/metrics") == 401
    assert status_of(guarded, "/metrics", "wrong") == 401
    assert "signalite_connections" in {n for n, _ in scrape(guarded, "s3cret-token")}
    off = make_server("--no-metrics")
    assert status_of(off, "/metrics") == 404
    assert "s3cret-token" not in guarded.log()


async def test_json_logs_one_object_per_line_with_context_and_no_secrets(make_server, name):
    server = make_server("--log-format", "json")
    arn = await traffic(server, name)
    server.stop()
    lines = [line for line in server.log().splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    assert records and all({"ts", "level", "msg"} <= r.keys() for r in records)
    access = [r for r in records if r.get("logger") == "signalite.access"]
    create = next(r for r in access if r["operation"] == "CreateSignalingChannel")
    assert create["status"] == 200 and create["account"] == "111122223333" and len(create["request_id"]) == 36
    connects = [r for r in records if r.get("event") == "connect"]
    assert {(r["role"], r.get("client_id")) for r in connects} == {("master", None), ("viewer", "v1")}
    assert all(r["channel"] == arn for r in connects)
    closes = [r for r in records if r.get("event") == "disconnect"]
    assert len(closes) == 2 and all(r["reason"] for r in closes)
    text = server.log()
    assert SECRET_KEY not in text and "X-Amz-Signature=" not in text and "Signature=" not in text
    assert "o0" not in text and "payload" not in text  # SDP and ICE payloads only with --log-payloads


async def test_log_payloads_shows_decoded_messages(make_server, name):
    server = make_server("--log-format", "json", "--log-payloads")
    await traffic(server, name)
    server.stop()
    records = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    payloads = [r["payload"] for r in records if r.get("event") == "message" and r.get("payload")]
    assert json.dumps({"type": "offer", "sdp": "o0"}) in payloads
    assert SECRET_KEY not in server.log()

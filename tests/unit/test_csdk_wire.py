"""The pure parts of the C SDK model (tests/support/csdk.py): its SigV4 against independent
references, its templates against the server's parser, its URL rules and its framing."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any
from unittest import mock

import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from signalite.signaling import frames
from tests.support import csdk
from tests.support.signed import ExactHeadersSigV4Auth


def test_presign_matches_the_js_sdk_test_vectors():
    # SigV4RequestSigner.spec.ts of the KVS JS SDK (X-Amz-Expires 299 there; same algorithm).
    common: dict[str, Any] = {"host": "kvs.awsamazon.com", "path": "/", "params": {"X-Amz-TestParam": "test-param-value"},
                              "date": "20191201T000000Z", "region": "us-west-2", "access_key": "AKIA4F7WJQR7FMMWMNXI",
                              "secret_key": "FakeSecretKey", "expires": 299}
    with_token = csdk.presigned_query(token="FakeSessionToken", **common)
    without = csdk.presigned_query(**common)
    assert with_token.endswith("&X-Amz-Signature=fc268038be276315822b4f73eafd28ee3a5632a2a35fdb0a88db9a42b13d6c92")
    assert without.endswith("&X-Amz-Signature=be1e78950d956a8a9a1997417099ddbd7455619f3d08c4ad20e1e272179ca695")


def test_presign_is_sorted_rfc3986_with_the_signature_last_and_seven_days():
    q = csdk.presigned_query(host="h", path="/", params={"X-Amz-ChannelARN": "arn:aws:kinesisvideo:us-west-2:1:channel/c/1",
                                                         "X-Amz-ClientId": "ConsumerViewer"},
                             date="20261201T000000Z", region="us-west-2", access_key="AK", secret_key="S")
    names = [p.split("=", 1)[0] for p in q.split("&")]
    assert names[-1] == "X-Amz-Signature" and names[:-1] == sorted(names[:-1])
    assert "X-Amz-Expires=604800" in q.split("&")
    assert "X-Amz-ChannelARN=arn%3Aaws%3Akinesisvideo%3Aus-west-2%3A1%3Achannel%2Fc%2F1" in q.split("&")


def test_rest_authorization_matches_botocore_signing_the_same_three_headers():
    body = csdk.describe_body("cam-1")
    date = "20261201T101010Z"
    ours = csdk.rest_authorization(host="127.0.0.1", path="/describeSignalingChannel", body=body,
                                   user_agent=csdk.USER_AGENT, date=date, region="us-west-2",
                                   access_key="AK", secret_key="SECRET")
    req = AWSRequest(method="POST", url="https://127.0.0.1/describeSignalingChannel", data=body,
                     headers={"user-agent": csdk.USER_AGENT, "X-Amz-Date": date, "content-type": "application/json"})
    signer = ExactHeadersSigV4Auth(Credentials("AK", "SECRET"), "kinesisvideo", "us-west-2",
                                   {"host", "user-agent", "x-amz-date"})
    with mock.patch("botocore.auth.get_current_datetime", lambda: datetime(2026, 12, 1, 10, 10, 10)):
        signer.add_auth(req)
    assert req.headers["X-Amz-Date"] == date
    assert ours == req.headers["Authorization"]


def test_bodies_are_the_sdks_tab_indented_templates():
    assert csdk.describe_body("c") == b'{\n\t"ChannelName": "c"\n}'
    assert json.loads(csdk.create_body("c")) == {"ChannelName": "c", "ChannelType": "SINGLE_MASTER",
                                                 "SingleMasterConfiguration": {"MessageTtlSeconds": 60}}
    assert json.loads(csdk.endpoint_body("arn", "MASTER")) == {
        "ChannelARN": "arn", "SingleMasterChannelEndpointConfiguration": {"Protocols": ["WSS", "HTTPS"], "Role": "MASTER"}}
    assert csdk.ice_config_body("arn", "ProducerMaster") == (
        b'{\n\t"ChannelARN": "arn",\n\t"ClientId": "ProducerMaster",\n\t"Service": "TURN"\n}')


def test_message_templates_parse_on_the_server_with_the_ice_server_list_ignored():
    ice = [{"Password": "p", "Ttl": 300, "Uris": ["turn:h:3478?transport=udp", "turns:h:443"], "Username": "u"}]
    text = csdk.message_frame("SDP_OFFER", "ProducerMaster", "eyJ9", "123_1", ice)
    assert text.startswith('{\n\t"action": "SDP_OFFER",\n\t"RecipientClientId": "ProducerMaster",')
    doc = json.loads(text)
    assert doc["IceServerList"] == ice and doc["CorrelationId"] == "123_1"
    m = frames.parse(text)
    assert (m.action, m.recipient, m.payload, m.correlation_id) == ("SDP_OFFER", "ProducerMaster", "eyJ9", "123_1")
    plain = json.loads(csdk.message_frame("ICE_CANDIDATE", "", "eyJ9", None, ice))
    assert plain == {"action": "ICE_CANDIDATE", "RecipientClientId": "", "MessagePayload": "eyJ9"}


@pytest.mark.parametrize("url", ["https://127.0.0.1:443", "https://127.0.0.1:8443/x", "wss://h:443"])
def test_strict_mode_refuses_any_port_like_the_sdk(url):
    with pytest.raises(csdk.PortInUrl):
        csdk._split(url, strict=True)
    host, port, _ = csdk._split(url, strict=False)
    assert host in ("127.0.0.1", "h") and port in (443, 8443)


def test_urls_without_a_port_go_to_443():
    assert csdk._split("https://kinesisvideo.us-west-2.amazonaws.com", strict=True) == (
        "kinesisvideo.us-west-2.amazonaws.com", 443, "")
    with pytest.raises(csdk.UnsupportedUrl):
        csdk._split("http://127.0.0.1", strict=True)


def test_frames_are_masked_and_round_trip():
    payload = "x" * 300
    raw = csdk.client_frame(csdk.OP_TEXT, payload.encode())
    assert raw[0] == 0x81 and raw[1] & 0x80 and payload.encode() not in raw  # final, masked

    async def read() -> tuple[int, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await csdk.read_frame(reader)

    assert asyncio.run(read()) == (csdk.OP_TEXT, payload.encode())
    assert csdk.client_frame(csdk.OP_PING)[1] == 0x80  # the SDK's empty ping: masked, no payload
    assert csdk.parse_close(b"\x03\xe9idle timeout") == (1001, "idle timeout")


def test_correlation_ids_look_like_the_sdks():
    c = csdk.CSdkClient(csdk.CSdkConfig("https://h", "c"))
    first, second = c.correlation_id(), c.correlation_id()
    assert first.split("_")[1] == "1" and second.split("_")[1] == "2"
    assert first.split("_")[0].isdigit() and frames.valid_id(first)

"""The one-pass split of a presigned query (``split_presigned_query``) against the two passes it
replaces: ``dict(parse_qsl(...))`` for the parameters and ``canonical_query`` over ``parse_qsl``
(``X-Amz-Signature`` left out) for the canonical query string. They must agree byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from signalite.aws.sigv4 import AuthError, SigningKey, SigV4Verifier, canonical_query, split_presigned_query
from signalite.clock import ManualClock

ACCOUNT = "123456789012"
KEYS = {"AKIDUNITTEST": SigningKey("unit-test-secret", ACCOUNT)}
ARN = "arn:aws:kinesisvideo:us-west-2:123456789012:channel/my-channel/1700000000000"


def two_pass(query: str) -> tuple[dict[str, str], str]:
    pairs = parse_qsl(query, keep_blank_values=True)
    return dict(pairs), canonical_query((k, v) for k, v in pairs if k != "X-Amz-Signature")


def botocore_query(arn: str, client_id: str | None, token: str | None = None, expires: int = 300) -> str:
    url = f"wss://127.0.0.1:4443/?X-Amz-ChannelARN={quote(arn, safe='')}"
    if client_id is not None:
        url += f"&X-Amz-ClientId={quote(client_id, safe='')}"
    req = AWSRequest(method="GET", url=url)
    SigV4QueryAuth(Credentials("AKIDUNITTEST", "unit-test-secret", token), "kinesisvideo", "us-west-2",
                   expires=expires).add_auth(req)
    return urlsplit(req.url).query


def kvs_js_query(arn: str, client_id: str | None) -> str:
    """As SigV4RequestSigner.getSignedURL builds it: sorted by name, encodeURIComponent."""
    params = {"X-Amz-ChannelARN": arn, "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
              "X-Amz-Credential": "AKIDUNITTEST/20191201/us-west-2/kinesisvideo/aws4_request",
              "X-Amz-Date": "20191201T000000Z", "X-Amz-Expires": "299", "X-Amz-SignedHeaders": "host",
              "X-Amz-Security-Token": "Fake/Session+Token==", "X-Amz-Signature": "ab" * 32}
    if client_id is not None:
        params["X-Amz-ClientId"] = client_id
    return "&".join(f"{k}={quote(v, safe='-_.!~*()' + chr(39))}" for k, v in sorted(params.items()))


ODD = [
    "",
    "&",
    "&&a=1&&",
    "a",
    "a=",
    "=",
    "=x",
    "a=1&a=2&a=0",  # repeated keys: the last wins in params, all are signed, sorted by value
    "b=2&a=1&b=1&a=",
    "a=b=c",
    "a+b=c+d",
    "a%2Bb=c%2bd",
    "%2B=%2B&+=+",
    "x=%20&x=+&x=%2520",
    "k=~&k=%7E&k=*&k=%2A&k=!&k=(&k=)&k='",
    "u=%C3%BC%E2%82%AC&%C3%A9=1",
    "u=ü&ü=€",  # raw non-ASCII
    "bad=%ZZ&bad2=%&bad3=%4",
    "invalid=%FF%FE&half=%C3",
    "X-Amz-Signature=abc&X-Amz-Signature=def&x-amz-signature=kept",
    "X-Amz-Signature&y=1",
    "x=%0A%00%7F&y=%2F%3A%3F%23%5B%5D%40",
    "a=1;b=2",
]


@pytest.mark.parametrize("query", ODD)
def test_odd_queries_split_exactly_as_the_two_passes(query):
    for _ in range(2):  # the second time from the memoised components
        assert split_presigned_query(query) == two_pass(query)


def test_botocore_presigned_queries_split_exactly_as_the_two_passes():
    arns = [ARN, "arn:aws:kinesisvideo:eu-west-1:123456789012:channel/a.b_c-d/1", ARN.replace("my-channel", "x+y")]
    for arn in arns:
        for client_id in (None, "viewer-1", "v.2_x-y", "a" * 256):
            for token in (None, "FakeSessionToken/with+chars="):
                query = botocore_query(arn, client_id, token)
                assert split_presigned_query(query) == two_pass(query)


def test_kvs_js_sdk_style_queries_split_exactly_as_the_two_passes():
    for client_id in (None, "ConsoleViewer-1"):
        query = kvs_js_query(ARN, client_id)
        assert "%3A" in query and "%2F" in query
        assert split_presigned_query(query) == two_pass(query)


def test_a_component_that_cannot_be_encoded_fails_where_it_always_did():
    # A lone surrogate: parse_qsl keeps it, quote() cannot encode it.
    params, canonical = split_presigned_query("X-Amz-ChannelARN=\ud800")
    assert params == {"X-Amz-ChannelARN": "\ud800"} and canonical is None
    v = SigV4Verifier(KEYS.get)
    with pytest.raises(AuthError) as exc:  # refused before the canonical query is needed
        v.verify_presigned("GET", "/", "X-Amz-ChannelARN=\ud800", "h")
    assert exc.value.code == "IncompleteSignatureException"
    query = botocore_query(ARN, "viewer-1") + "&z=\ud800"
    for split in (None, split_presigned_query(query)):
        with pytest.raises(UnicodeEncodeError):  # where canonical_query raised it before
            v.verify_presigned("GET", "/", query, "127.0.0.1:4443", split)


def test_verify_presigned_gives_the_same_answer_with_a_pre_split_query():
    now = datetime.now(UTC)
    v = SigV4Verifier(KEYS.get, clock=ManualClock(now.timestamp()))
    query = botocore_query(ARN, "viewer-1", "FakeSessionToken/with+chars=")
    host = "127.0.0.1:4443"
    assert v.verify_presigned("GET", "/", query, host, split_presigned_query(query)) == \
        v.verify_presigned("GET", "/", query, host)
    tampered = query.replace("viewer-1", "viewer-2")
    for split in (None, split_presigned_query(tampered)):
        with pytest.raises(AuthError) as exc:
            v.verify_presigned("GET", "/", tampered, host, split)
        assert exc.value.code == "InvalidSignatureException"

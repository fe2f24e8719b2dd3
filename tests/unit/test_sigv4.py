"""The SigV4 verifier on its own: published test vectors, requests signed by botocore in the
header sets of each real client, presigned URLs, and the clock-skew limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict

from signalite.aws.sigv4 import AuthError, SigningKey, SigV4Verifier
from signalite.clock import ManualClock
from tests.support.signed import ExactHeadersSigV4Auth

ACCOUNT = "123456789012"
KEYS = {
    "AKIA4F7WJQR7FMMWMNXI": SigningKey("FakeSecretKey", ACCOUNT),
    "AKIDUNITTEST": SigningKey("unit-test-secret", ACCOUNT, "alice"),
}
VECTOR_TIME = datetime(2019, 12, 1, tzinfo=UTC)


def verifier(now: datetime) -> SigV4Verifier:
    return SigV4Verifier(KEYS.get, clock=ManualClock(now.timestamp()))


# --- the KVS WebRTC JS SDK presign vector (spec §5.1) -------------------------------------------

def _encode_uri_component(value: str) -> str:
    return quote(value, safe="-_.!~*'()")


def kvs_js_presigned_query(signature: str, token: str | None) -> str:
    """The query string exactly as SigV4RequestSigner.getSignedURL builds it: every parameter,
    the signature included, sorted by name and joined with encodeURIComponent."""
    params = {
        "X-Amz-TestParam": "test-param-value",
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": "AKIA4F7WJQR7FMMWMNXI/20191201/us-west-2/kinesisvideo/aws4_request",
        "X-Amz-Date": "20191201T000000Z",
        "X-Amz-Expires": "299",
        "X-Amz-SignedHeaders": "host",
        "X-Amz-Signature": signature,
    }
    if token is not None:
        params["X-Amz-Security-Token"] = token
    return "&".join(f"{k}={_encode_uri_component(v)}" for k, v in sorted(params.items()))


@pytest.mark.parametrize("token, signature", [
    ("FakeSessionToken", "fc268038be276315822b4f73eafd28ee3a5632a2a35fdb0a88db9a42b13d6c92"),
    (None, "be1e78950d956a8a9a1997417099ddbd7455619f3d08c4ad20e1e272179ca695"),
])
def test_kvs_js_sdk_presign_vector_is_accepted(token, signature):
    query = kvs_js_presigned_query(signature, token)
    url = f"wss://kvs.awsamazon.com/?{query}"
    parts = urlsplit(url)
    principal = verifier(VECTOR_TIME).verify_presigned("GET", parts.path, parts.query, parts.netloc)
    assert principal.access_key_id == "AKIA4F7WJQR7FMMWMNXI"
    assert principal.account_id == ACCOUNT
    assert principal.region == "us-west-2"
    assert principal.service == "kinesisvideo"
    assert principal.session_token == token


def test_kvs_js_sdk_presign_vector_tampered_is_refused():
    good = kvs_js_presigned_query("fc268038be276315822b4f73eafd28ee3a5632a2a35fdb0a88db9a42b13d6c92", "FakeSessionToken")
    v = verifier(VECTOR_TIME)
    for query, host in [
        (good.replace("test-param-value", "test-param-valuf"), "kvs.awsamazon.com"),
        (good.replace("FakeSessionToken", "OtherToken"), "kvs.awsamazon.com"),
        (good, "kvs.awsamazon.com:443"),
    ]:
        with pytest.raises(AuthError) as exc:
            v.verify_presigned("GET", "/", query, host)
        assert exc.value.code == "InvalidSignatureException"


def test_presign_expiry_is_honoured():
    query = kvs_js_presigned_query("be1e78950d956a8a9a1997417099ddbd7455619f3d08c4ad20e1e272179ca695", None)
    verifier(VECTOR_TIME + timedelta(seconds=299)).verify_presigned("GET", "/", query, "kvs.awsamazon.com")
    with pytest.raises(AuthError) as exc:
        verifier(VECTOR_TIME + timedelta(seconds=300)).verify_presigned("GET", "/", query, "kvs.awsamazon.com")
    assert exc.value.code == "InvalidSignatureException"
    assert "Signature expired" in exc.value.message
    with pytest.raises(AuthError) as exc:
        verifier(VECTOR_TIME - timedelta(minutes=6)).verify_presigned("GET", "/", query, "kvs.awsamazon.com")
    assert "Signature not yet current" in exc.value.message


# --- presigned URLs from botocore ---------------------------------------------------------------

def botocore_presign(url: str, expires: int, when: datetime, token: str | None = None) -> str:
    req = AWSRequest(method="GET", url=url)
    auth = SigV4QueryAuth(Credentials("AKIDUNITTEST", "unit-test-secret", token), "kinesisvideo", "eu-west-1",
                          expires=expires)
    from unittest import mock
    with mock.patch("botocore.auth.get_current_datetime", lambda remove_tzinfo=True: when.replace(tzinfo=None)):
        auth.add_auth(req)
    return req.url


def test_botocore_presigned_url_with_long_c_sdk_expiry():
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    url = botocore_presign("https://signal.example:8443/?X-Amz-ChannelARN=arn%3Aaws%3Akinesisvideo%3Aeu-west-1%3A"
                           "123456789012%3Achannel%2Fc%2F1700000000000&X-Amz-ClientId=viewer-1", 604800, now, "tok")
    parts = urlsplit(url)
    p = verifier(now + timedelta(days=6)).verify_presigned("GET", parts.path, parts.query, parts.netloc)
    assert (p.region, p.user, p.session_token) == ("eu-west-1", "alice", "tok")
    with pytest.raises(AuthError):
        verifier(now + timedelta(days=7, seconds=1)).verify_presigned("GET", parts.path, parts.query, parts.netloc)


def test_presign_expires_over_a_week_is_refused():
    now = datetime(2026, 1, 2, tzinfo=UTC)
    parts = urlsplit(botocore_presign("https://h/?a=b", 604801, now))
    with pytest.raises(AuthError) as exc:
        verifier(now).verify_presigned("GET", parts.path, parts.query, parts.netloc)
    assert exc.value.code == "AuthorizationQueryParametersError"


# --- header-signed requests in each client's style ---------------------------------------------

URL = "https://127.0.0.1:8443/describeSignalingChannel"
BODY = json.dumps({"ChannelName": "demo"}).encode()
JSV3_SIGNED = {"amz-sdk-invocation-id", "amz-sdk-request", "content-length", "content-type", "host",
               "x-amz-content-sha256", "x-amz-date", "x-amz-user-agent"}


def signed_request(headers: dict[str, str], *, signed: set[str] | None = None, token: str | None = None,
                   body: bytes = BODY, token_after_signing: str | None = None) -> CIMultiDict:
    req = AWSRequest(method="POST", url=URL, data=body, headers=headers)
    creds = Credentials("AKIDUNITTEST", "unit-test-secret", token)
    auth = SigV4Auth(creds, "kinesisvideo", "us-west-2") if signed is None else \
        ExactHeadersSigV4Auth(creds, "kinesisvideo", "us-west-2", signed)
    auth.add_auth(req)
    out = CIMultiDict(req.headers.items())
    out["Host"] = "127.0.0.1:8443"
    if token_after_signing:
        out["x-amz-security-token"] = token_after_signing
    return out


def now_verifier(offset: timedelta = timedelta()) -> SigV4Verifier:
    return SigV4Verifier(KEYS.get, clock=ManualClock((datetime.now(UTC) + offset).timestamp()))


def verify(headers: CIMultiDict, body: bytes = BODY, offset: timedelta = timedelta()):
    return now_verifier(offset).verify_headers("POST", "/describeSignalingChannel", "", headers, body,
                                               get_all=headers.getall)


def test_boto3_header_set():
    h = signed_request({"Content-Type": "application/json"})
    assert "SignedHeaders=content-type;host;x-amz-date," in h["Authorization"]
    p = verify(h)
    assert (p.access_key_id, p.region, p.user, p.session_token) == ("AKIDUNITTEST", "us-west-2", "alice", None)


def test_boto3_with_session_token_signs_the_token():
    h = signed_request({"Content-Type": "application/json"}, token="sess")
    assert "x-amz-security-token" in h["Authorization"]
    assert verify(h).session_token == "sess"


def test_jsv3_header_set_with_content_sha256():
    import hashlib
    h = signed_request({
        "content-type": "application/json", "content-length": str(len(BODY)),
        "x-amz-user-agent": "aws-sdk-js/3.1116.0", "amz-sdk-invocation-id": "id-1",
        "amz-sdk-request": "attempt=1; max=3", "x-amz-content-sha256": hashlib.sha256(BODY).hexdigest(),
    }, signed=JSV3_SIGNED)
    assert verify(h).access_key_id == "AKIDUNITTEST"
    with pytest.raises(AuthError) as exc:
        verify(h, body=BODY + b" ")
    assert "x-amz-content-sha256" in exc.value.message


def test_c_sdk_header_set_with_unsigned_token():
    h = signed_request({"user-agent": "AWS-SDK-KVS/1.10", "content-type": "application/json"},
                       signed={"host", "user-agent", "x-amz-date"}, token_after_signing="csdk-token")
    assert "SignedHeaders=host;user-agent;x-amz-date," in h["Authorization"]
    p = verify(h)
    assert p.session_token == "csdk-token"
    h["user-agent"] = "changed"
    with pytest.raises(AuthError):
        verify(h)


def test_header_values_are_trimmed_and_inner_spaces_collapsed():
    h = signed_request({"Content-Type": "application/json", "X-Custom": "a   b"})
    h["X-Custom"] = "  a b  "
    assert verify(h).access_key_id == "AKIDUNITTEST"


@pytest.mark.parametrize("value", ["a   b", "  x  ", "a\tb", "a \t\n b", "a\x1cb", "a\u00a0b", "a\u2003 b", " \n ", "",
                                   "Boto3/1.35 md/x#1", "T" * 1400])
def test_trim_is_the_canonical_whitespace_rule(value):
    """SigV4's canonical header value: the ends trimmed and every whitespace run one space (the
    regex rule the fast split/join must equal, for any whitespace Python's ``\\s`` knows)."""
    import re

    from signalite.aws.sigv4 import _trim

    assert _trim(value) == re.sub(r"\s+", " ", value.strip())


def test_repeated_header_values_are_joined_with_commas():
    h = signed_request({"Content-Type": "application/json", "X-Multi": "one,two"})
    del h["X-Multi"]
    h.add("X-Multi", "one")
    h.add("X-Multi", "two")
    assert verify(h).access_key_id == "AKIDUNITTEST"


@pytest.mark.parametrize("mutate, code", [
    (lambda h: h.__setitem__("Authorization", h["Authorization"].replace("AKIDUNITTEST", "AKIDNOBODY")),
     "UnrecognizedClientException"),
    (lambda h: h.__setitem__("Authorization", h["Authorization"][:-4] + "0000"), "InvalidSignatureException"),
    (lambda h: h.__delitem__("Authorization"), "MissingAuthenticationTokenException"),
    (lambda h: h.__setitem__("X-Amz-Date", "yesterday"), "IncompleteSignatureException"),
    (lambda h: h.__delitem__("X-Amz-Date"), "IncompleteSignatureException"),
    (lambda h: h.__delitem__("Content-Type"), "InvalidSignatureException"),
    (lambda h: h.__setitem__("Authorization", h["Authorization"].replace("/us-west-2/", "/us-west-2/x/")),
     "IncompleteSignatureException"),
])
def test_refusals(mutate, code):
    h = signed_request({"Content-Type": "application/json"})
    mutate(h)
    with pytest.raises(AuthError) as exc:
        verify(h)
    assert exc.value.code == code


def test_scope_date_must_match_x_amz_date():
    h = signed_request({"Content-Type": "application/json"})
    h["Authorization"] = h["Authorization"].replace(h["X-Amz-Date"][:8], "20000101")
    with pytest.raises(AuthError) as exc:
        verify(h)
    assert exc.value.code == "InvalidSignatureException"


# --- clock skew ---------------------------------------------------------------------------------

@pytest.mark.parametrize("offset", [timedelta(minutes=-4, seconds=-50), timedelta(minutes=4, seconds=50)])
def test_skew_under_five_minutes_either_way_is_accepted(offset):
    assert verify(signed_request({"Content-Type": "application/json"}), offset=offset)


@pytest.mark.parametrize("offset, phrase", [
    (timedelta(minutes=5, seconds=10), "Signature expired"),          # server ahead: request is old
    (timedelta(minutes=-5, seconds=-10), "Signature not yet current"),  # server behind: request from the future
])
def test_skew_over_five_minutes_either_way_is_refused(offset, phrase):
    with pytest.raises(AuthError) as exc:
        verify(signed_request({"Content-Type": "application/json"}), offset=offset)
    assert exc.value.code == "InvalidSignatureException"
    assert exc.value.status == 403
    assert exc.value.message.startswith(phrase)


@pytest.mark.parametrize("sent", ["a\tb", " a \t  b ", "é  ü"])
def test_any_whitespace_run_in_a_signed_value_canonicalizes_to_one_space(sent):
    h = signed_request({"Content-Type": "application/json", "X-Custom": sent})
    assert verify(h).access_key_id == "AKIDUNITTEST"
    h["X-Custom"] = "".join(sent.split())  # removing the whitespace changes the value
    with pytest.raises(AuthError):
        verify(h)


def test_authorization_split_agrees_with_the_whole_header_pattern():
    """verify_headers splits the Authorization header at its last ``Signature=`` (memoising the
    part before it); on valid, malformed and mutated headers that gives exactly what the one
    whole-header regex gives."""
    import random

    from signalite.aws.sigv4 import _AUTH_HEADER, _split_authorization

    base = [
        ("AWS4-HMAC-SHA256 Credential=AKID/20261126/us-west-2/kinesisvideo/aws4_request, "
         "SignedHeaders=content-type;host;x-amz-date, Signature=abcdef0123456789"),
        "AWS4-HMAC-SHA256  Credential=Signature=x/1/2/3/aws4_request ,SignedHeaders=host,Signature=ABCDEF  ",
        "AWS4-HMAC-SHA256 Credential=a, SignedHeaders=b, Signature=",
        "AWS4-HMAC-SHA256 Credential=a, SignedHeaders=b, Signature=abc Signature=def",
        "AWS4-HMAC-SHA256 Credential=a,\nSignedHeaders=b,\n Signature=abc\n",
        "AWS4-HMAC-SHA256\tCredential=a , SignedHeaders=b , Signature=0g",
        "AWS4-HMAC-SHA256 Credential=a, Signature=abc, SignedHeaders=b",
        " AWS4-HMAC-SHA256 Credential=a,SignedHeaders=b,Signature=abc", "", "Signature=abc",
    ]
    pieces = ["AWS4-HMAC-SHA256", " ", "\t", "\n", "Credential=", "SignedHeaders=", "Signature=", ",", "a", "F",
              "0", "g", "/", "=", "\u00a0"]
    rnd = random.Random(2)
    cases = list(base)
    for _ in range(20000):
        case = rnd.choice(base)
        i = rnd.randrange(len(case) + 1)
        j = min(len(case), i + rnd.randrange(4))
        cases.append(case[:i] + "".join(rnd.choice(pieces) for _ in range(rnd.randrange(3))) + case[j:])
    matched = 0
    for case in cases:
        m = _AUTH_HEADER.match(case.strip())
        assert _split_authorization(case) == (None if m is None else m.group("cred", "signed", "sig")), case
        matched += m is not None
    assert 1000 < matched < len(cases) - 1000  # both outcomes are exercised


# --- the clock checks, message for message ------------------------------------------------------

MISMATCH = "The request signature we calculated does not match"


def presigned_at(date: str = "20191201T000000Z", expires: str | None = None) -> str:
    """A presigned query whose signature is wrong: it gets past the clock checks only to fail there."""
    params = {"X-Amz-Algorithm": "AWS4-HMAC-SHA256",
              "X-Amz-Credential": "AKIA4F7WJQR7FMMWMNXI/20191201/us-west-2/kinesisvideo/aws4_request",
              "X-Amz-Date": date, "X-Amz-SignedHeaders": "host", "X-Amz-Signature": "00"}
    if expires is not None:
        params["X-Amz-Expires"] = expires
    return "&".join(f"{k}={v}" for k, v in params.items())


def presigned_refusal(offset: timedelta, expires: str | None = None) -> AuthError:
    with pytest.raises(AuthError) as exc:
        verifier(VECTOR_TIME + offset).verify_presigned("GET", "/", presigned_at(expires=expires), "h")
    return exc.value


@pytest.mark.parametrize("offset, expires, message", [
    # without X-Amz-Expires: the header rule, five minutes either way
    (timedelta(minutes=5, seconds=1), None,
     "Signature expired: 20191201T000000Z is now earlier than 20191201T000001Z (20191201T000501Z - 5 min.)"),
    (timedelta(minutes=-5, seconds=-1), None,
     "Signature not yet current: 20191201T000000Z is still later than 20191130T235959Z (20191130T235459Z + 5 min.)"),
    # with it: not yet current by the same skew, expired after X-Amz-Expires seconds
    (timedelta(seconds=300), "299",
     "Signature expired: 20191201T000000Z is now earlier than 20191201T000001Z (20191201T000500Z - 299 sec.)"),
    (timedelta(minutes=-5, seconds=-1), "299",
     "Signature not yet current: 20191201T000000Z is still later than 20191130T235959Z (20191130T235459Z + 5 min.)"),
    # a date too far ahead is refused before X-Amz-Expires is even read
    (timedelta(minutes=-5, seconds=-1), "soon",
     "Signature not yet current: 20191201T000000Z is still later than 20191130T235959Z (20191130T235459Z + 5 min.)"),
])
def test_presigned_clock_refusals(offset, expires, message):
    error = presigned_refusal(offset, expires)
    assert (error.code, error.status, error.message) == ("InvalidSignatureException", 403, message)


@pytest.mark.parametrize("offset, expires", [
    (timedelta(minutes=5), None), (timedelta(minutes=-5), None),        # the skew itself is allowed
    (timedelta(seconds=299), "299"), (timedelta(minutes=-5), "299"),
    (timedelta(days=6), "604800"),                                      # X-Amz-Expires replaces the skew
])
def test_presigned_clock_limits_are_inclusive(offset, expires):
    assert presigned_refusal(offset, expires).message.startswith(MISMATCH)


@pytest.mark.parametrize("expires", ["0", "604801", "-1", "1.5", "soon", "%C2%B9", "1%C2%B2"])  # ¹ is a digit int() cannot read
def test_presigned_expires_out_of_range(expires):
    error = presigned_refusal(timedelta(), expires)
    assert (error.code, error.status, error.message) == (
        "AuthorizationQueryParametersError", 400, "X-Amz-Expires must be a number between 1 and 604800 seconds.")


@pytest.mark.parametrize("offset, message", [
    (timedelta(minutes=5, seconds=1),
     "Signature expired: 20191201T000000Z is now earlier than 20191201T000001Z (20191201T000501Z - 5 min.)"),
    (timedelta(minutes=-5, seconds=-1),
     "Signature not yet current: 20191201T000000Z is still later than 20191130T235959Z (20191130T235459Z + 5 min.)"),
])
def test_header_clock_refusals(offset, message):
    headers = CIMultiDict({"Host": "h", "X-Amz-Date": "20191201T000000Z", "Authorization": (
        "AWS4-HMAC-SHA256 Credential=AKIA4F7WJQR7FMMWMNXI/20191201/us-west-2/kinesisvideo/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=00")})
    with pytest.raises(AuthError) as exc:
        verifier(VECTOR_TIME + offset).verify_headers("POST", "/", "", headers, b"")
    assert (exc.value.code, exc.value.status, exc.value.message) == ("InvalidSignatureException", 403, message)
    for inside in (timedelta(minutes=5), timedelta(minutes=-5)):
        with pytest.raises(AuthError) as exc:
            verifier(VECTOR_TIME + inside).verify_headers("POST", "/", "", headers, b"")
        assert exc.value.message.startswith(MISMATCH)

"""Repeated headers and presigned parameters that SigV4 reads once are refused before anything is
verified (``refuse_repeated`` at the top of ``verify_headers`` and ``verify_presigned``): a
second value would otherwise ride along unchecked (the server read only the first)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict

from signalite.aws.sigv4 import AuthError, SigningKey, SigV4Verifier, refuse_repeated
from signalite.clock import ManualClock
from tests.unit.test_sigv4 import signed_request, verify

KEYS = {"AKIDUNITTEST": SigningKey("unit-test-secret", "123456789012", "alice")}


@pytest.mark.parametrize("name, code, status", [
    ("Authorization", "IncompleteSignatureException", 400),
    ("X-Amz-Date", "IncompleteSignatureException", 400),
    ("X-Amz-Security-Token", "UnrecognizedClientException", 403),
    ("Host", "IncompleteSignatureException", 400),
])
@pytest.mark.parametrize("where", ["after", "before"])
def test_a_repeated_header_is_refused_whichever_copy_is_valid(name, code, status, where):
    h = signed_request({"Content-Type": "application/json"}, token="sess")
    assert verify(h).session_token == "sess"  # valid as signed
    value = h[name]
    bogus = "bogus-" + value[:20]
    repeated: CIMultiDict[str] = CIMultiDict()
    for k, v in h.items():
        if k.lower() == name.lower():
            pair = [(k, v), (k, bogus)] if where == "after" else [(k, bogus), (k, v)]
            for kk, vv in pair:
                repeated.add(kk, vv)
        else:
            repeated.add(k, v)
    with pytest.raises(AuthError) as exc:
        verify(repeated)
    assert (exc.value.code, exc.value.status) == (code, status)
    assert name in exc.value.message


def test_a_plain_mapping_cannot_repeat_and_is_not_checked():
    refuse_repeated({"Authorization": "x"}, None, "")


def _presigned(extra: str = "") -> tuple[str, str]:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    req = AWSRequest(method="GET", url="https://h.example/?X-Amz-ChannelARN=arn" + extra)
    from unittest import mock
    with mock.patch("botocore.auth.get_current_datetime", lambda: at.replace(tzinfo=None)):
        SigV4QueryAuth(Credentials("AKIDUNITTEST", "unit-test-secret", "tok"), "kinesisvideo", "us-west-2",
                       expires=299).add_auth(req)
    return req.url.split("?", 1)[1], str(at.timestamp())


@pytest.mark.parametrize("param", ["X-Amz-Security-Token", "X-Amz-Date", "X-Amz-Credential", "X-Amz-Signature",
                                   "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Algorithm"])
@pytest.mark.parametrize("encode", [False, True])
def test_a_repeated_presigned_parameter_is_refused(param, encode):
    query, when = _presigned()
    v = SigV4Verifier(KEYS.get, clock=ManualClock(float(when)))
    assert v.verify_presigned("GET", "/", query, "h.example").session_token == "tok"
    name = param.replace("-", "%2D") if encode else param
    with pytest.raises(AuthError) as exc:
        v.verify_presigned("GET", "/", f"{query}&{name}=again", "h.example")
    assert (exc.value.code, exc.value.status) == ("IncompleteSignatureException", 400)
    assert param in exc.value.message


def test_other_repeated_query_parameters_are_left_to_the_signature():
    refuse_repeated({}, None, "X-Amz-ChannelARN=a&X-Amz-ChannelARN=b&x=1&x=2")

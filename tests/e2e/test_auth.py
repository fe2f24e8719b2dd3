"""SigV4 on the real server: who is refused, with which code and status, and which real signing
styles (boto3, JS v3, the KVS C SDK, session tokens) are accepted. Clocks are only ever shifted
in the client that signs."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from unittest import mock

import pytest
from botocore.compat import get_current_datetime
from botocore.exceptions import ClientError

from tests.support.server import ACCOUNT
from tests.support.signed import send, sign

JSV3_SIGNED = {"amz-sdk-invocation-id", "amz-sdk-request", "content-length", "content-type", "host",
               "x-amz-content-sha256", "x-amz-date", "x-amz-user-agent"}
CSDK_SIGNED = {"host", "user-agent", "x-amz-date"}


def err(exc: pytest.ExceptionInfo) -> tuple[str, int, str]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def describe_body(name: str) -> bytes:
    return json.dumps({"ChannelName": name}).encode()


@pytest.fixture
def channel(kv, name) -> str:
    kv.create_signaling_channel(ChannelName=name)
    return name


# --- refused ------------------------------------------------------------------------------------

def test_unknown_access_key(server, channel):
    kv = server.boto(access_key="AKIDNOBODYKNOWS00000")
    with pytest.raises(ClientError) as exc:
        kv.describe_signaling_channel(ChannelName=channel)
    code, status, message = err(exc)
    assert (code, status) == ("UnrecognizedClientException", 403)
    assert message == "The security token included in the request is invalid."


def test_wrong_secret(server, channel):
    kv = server.boto(secret_key="not-the-secret")
    with pytest.raises(ClientError) as exc:
        kv.describe_signaling_channel(ChannelName=channel)
    code, status, message = err(exc)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert "signature we calculated does not match" in message


@pytest.mark.parametrize("shift, phrase", [(-10, "Signature expired"), (+10, "Signature not yet current")])
def test_clock_skew_beyond_five_minutes(server, channel, shift, phrase):
    kv = server.boto()
    skewed = lambda remove_tzinfo=True: get_current_datetime(remove_tzinfo) + timedelta(minutes=shift)  # noqa: E731
    with mock.patch("botocore.auth.get_current_datetime", skewed):
        with pytest.raises(ClientError) as exc:
            kv.describe_signaling_channel(ChannelName=channel)
    code, status, message = err(exc)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert phrase in message  # the C SDK searches the body for these words to re-sign


def test_clock_skew_within_five_minutes_is_accepted(server, channel):
    kv = server.boto()
    skewed = lambda remove_tzinfo=True: get_current_datetime(remove_tzinfo) - timedelta(minutes=4)  # noqa: E731
    with mock.patch("botocore.auth.get_current_datetime", skewed):
        assert kv.describe_signaling_channel(ChannelName=channel)["ChannelInfo"]["ChannelName"] == channel


def test_body_tampered_after_signing(server, channel):
    url = server.http_url + "/describeSignalingChannel"
    headers = sign("POST", url, describe_body(channel))
    r = send("POST", url, describe_body(channel + "x"), headers)
    assert r.status == 403
    assert r.error_type == "InvalidSignatureException"


def test_path_changed_after_signing(server, channel):
    headers = sign("POST", server.http_url + "/describeSignalingChannel", describe_body(channel))
    r = send("POST", server.http_url + "/deleteSignalingChannel", describe_body(channel), headers)
    assert (r.status, r.error_type) == (403, "InvalidSignatureException")


def test_missing_authorization(server, channel):
    r = send("POST", server.http_url + "/describeSignalingChannel", describe_body(channel),
             {"Content-Type": "application/json"})
    assert r.status == 403
    assert r.error_type == "MissingAuthenticationTokenException"
    assert r.headers["x-amzn-RequestId"]


def test_malformed_authorization(server, channel):
    url = server.http_url + "/describeSignalingChannel"
    headers = sign("POST", url, describe_body(channel))
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=garbage"
    r = send("POST", url, describe_body(channel), headers)
    assert (r.status, r.error_type) == (400, "IncompleteSignatureException")


def test_scope_for_another_service(server, channel):
    url = server.http_url + "/describeSignalingChannel"
    r = send("POST", url, describe_body(channel), sign("POST", url, describe_body(channel), service="s3"))
    assert (r.status, r.error_type) == (403, "InvalidSignatureException")
    assert "kinesisvideo" in r.json()["Message"]


def test_host_not_signed(server, channel):
    url = server.http_url + "/describeSignalingChannel"
    headers = sign("POST", url, describe_body(channel), signed_headers={"content-type", "x-amz-date"})
    r = send("POST", url, describe_body(channel), headers)
    assert (r.status, r.error_type) == (403, "InvalidSignatureException")


def test_refusals_change_nothing(server, kv, name):
    url = server.http_url + "/createSignalingChannel"
    body = json.dumps({"ChannelName": name}).encode()
    r = send("POST", url, body, sign("POST", url, body, secret_key="wrong"))
    assert r.status == 403
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.describe_signaling_channel(ChannelName=name)


# --- accepted signing styles ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def temporary(server) -> dict[str, str]:
    """Real temporary credentials (GetSessionToken with the root key)."""
    return server.boto("sts").get_session_token(DurationSeconds=900)["Credentials"]


def test_session_token_signed_by_botocore_is_accepted(server, channel, temporary):
    kv = server.boto(access_key=temporary["AccessKeyId"], secret_key=temporary["SecretAccessKey"],
                     session_token=temporary["SessionToken"])
    resp = kv.describe_signaling_channel(ChannelName=channel)
    assert resp["ChannelInfo"]["ChannelName"] == channel


@pytest.mark.parametrize("token", ["FwoGZXIvYXdzEXAMPLETOKEN", "SLT1" + "A" * 80])
def test_a_long_term_key_with_a_made_up_session_token_is_refused(server, channel, token):
    kv = server.boto(session_token=token)
    with pytest.raises(ClientError) as exc:
        kv.describe_signaling_channel(ChannelName=channel)
    code, status, message = err(exc)
    assert (code, status) == ("UnrecognizedClientException", 403)
    assert message == "The security token included in the request is invalid."


def test_session_token_header_is_signed_and_checked(server, channel, temporary):
    url = server.http_url + "/describeSignalingChannel"
    key = {"access_key": temporary["AccessKeyId"], "secret_key": temporary["SecretAccessKey"]}
    headers = sign("POST", url, describe_body(channel), token=temporary["SessionToken"], **key)
    assert "x-amz-security-token" in headers["Authorization"]
    assert send("POST", url, describe_body(channel), headers).status == 200
    other = server.boto("sts").get_session_token(DurationSeconds=900)["Credentials"]["SessionToken"]
    headers["X-Amz-Security-Token"] = other  # another session's token, swapped in after signing
    r = send("POST", url, describe_body(channel), headers)
    assert (r.status, r.error_type) == (403, "UnrecognizedClientException")
    headers["X-Amz-Security-Token"] = temporary["SessionToken"][:-4] + "AAAA"  # tampered
    r = send("POST", url, describe_body(channel), headers)
    assert (r.status, r.error_type) == (403, "UnrecognizedClientException")


def _jsv3_headers(body: bytes, declared: bytes | None = None) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "content-length": str(len(body)),
        "x-amz-user-agent": "aws-sdk-js/3.1116.0",
        "amz-sdk-invocation-id": "6a642e57-0000-4000-8000-000000000000",
        "amz-sdk-request": "attempt=1; max=3",
        "x-amz-content-sha256": hashlib.sha256(body if declared is None else declared).hexdigest(),
    }


def test_jsv3_signed_header_set_is_accepted(server, channel):
    url = server.http_url + "/describeSignalingChannel"
    body = describe_body(channel).replace(b" ", b"")
    headers = sign("POST", url, body, _jsv3_headers(body), signed_headers=JSV3_SIGNED)
    assert "SignedHeaders=amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;" \
           "x-amz-content-sha256;x-amz-date;x-amz-user-agent," in headers["Authorization"]
    r = send("POST", url, body, headers)
    assert r.status == 200
    assert r.json()["ChannelInfo"]["ChannelName"] == channel


def test_jsv3_content_sha256_mismatch_is_rejected(server, channel):
    url = server.http_url + "/describeSignalingChannel"
    body = describe_body(channel)
    other = describe_body(channel + "-other")
    # Signed consistently over the declared hash, but the declared hash is not the body's.
    headers = sign("POST", url, other, _jsv3_headers(other), signed_headers=JSV3_SIGNED)
    r = send("POST", url, body, {k: v for k, v in headers.items() if k.lower() != "content-length"})
    assert r.status == 400
    assert r.error_type == "InvalidSignatureException"
    assert "x-amz-content-sha256" in r.json()["Message"]


def test_c_sdk_style_request_with_unsigned_token_is_accepted(server, channel, temporary):
    url = server.http_url + "/describeSignalingChannel"
    body = ("{\n\t\"ChannelName\":\t\"%s\"\n}" % channel).encode()  # printf-template JSON
    headers = sign("POST", url, body, {"user-agent": "AWS-SDK-KVS/1.10.0 GCC/12 Linux/6"},
                   signed_headers=CSDK_SIGNED, access_key=temporary["AccessKeyId"],
                   secret_key=temporary["SecretAccessKey"])
    assert "SignedHeaders=host;user-agent;x-amz-date," in headers["Authorization"]
    headers["x-amz-security-token"] = temporary["SessionToken"]  # added after signing, as the C SDK does
    r = send("POST", url, body, headers)
    assert r.status == 200, r.body
    assert r.json()["ChannelInfo"]["ChannelName"] == channel
    # The user agent is signed in this style, so changing it breaks the signature.
    headers["user-agent"] = "something-else"
    assert send("POST", url, body, headers).status == 403


# --- namespacing ---------------------------------------------------------------------------------

def test_region_comes_from_the_credential_scope(server, name):
    url = server.http_url + "/createSignalingChannel"
    body = json.dumps({"ChannelName": name}).encode()
    r = send("POST", url, body, sign("POST", url, body, region="ap-southeast-2"))
    assert r.status == 200
    assert r.json()["ChannelARN"].startswith(f"arn:aws:kinesisvideo:ap-southeast-2:{ACCOUNT}:channel/{name}/")
    assert server.boto(region="ap-southeast-2").describe_signaling_channel(ChannelName=name)
    with pytest.raises(ClientError):
        server.boto(region="us-east-1").describe_signaling_channel(ChannelName=name)


def test_arn_of_another_region_is_not_found_even_with_valid_credentials(server, kv, name):
    arn = server.boto(region="eu-central-1").create_signaling_channel(ChannelName=name)["ChannelARN"]
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.update_signaling_channel(ChannelARN=arn, CurrentVersion="v1")
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.delete_signaling_channel(ChannelARN=arn)
    assert server.boto(region="eu-central-1").describe_signaling_channel(ChannelARN=arn)

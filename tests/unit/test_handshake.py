"""The WSS handshake decision as a pure function: query, principal and channel in, a decision out."""

from __future__ import annotations

from signalite.aws.sigv4 import AuthError, Principal
from signalite.signaling.handshake import Accept, Refuse, admit, channel_arn, refuse_auth
from signalite.store import Resource

ACCOUNT, REGION = "111122223333", "us-west-2"
ARN = f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:channel/c/1700000000000"
ME = Principal("AKIDX", ACCOUNT, "root", REGION, "kinesisvideo")
NOW = 1_800_000_000.0


def channel(**changes: object) -> Resource:
    r = Resource(account=ACCOUNT, region=REGION, kind="channel", name="c", arn=ARN, created=1.7e9,
                 version="v", attrs={"MessageTtlSeconds": 42})
    return r.evolve(**changes)


def test_master_and_viewer_are_accepted_with_the_channel_ttl():
    assert admit({"X-Amz-ChannelARN": ARN}, ME, channel(), NOW) == Accept(ARN, None, 42)
    accepted = admit({"X-Amz-ChannelARN": ARN, "X-Amz-ClientId": "v-1"}, ME, channel(), NOW)
    assert accepted == Accept(ARN, "v-1", 42) and not accepted.is_master


def test_missing_arn_and_bad_client_ids_are_400():
    assert admit({}, ME, None, NOW) == Refuse(400, "InvalidArgumentException", "X-Amz-ChannelARN is required.")
    assert channel_arn({"X-Amz-ChannelARN": ""}) is None
    for bad in ("", "bad id", "AWS_x", "x" * 257):
        decision = admit({"X-Amz-ChannelARN": ARN, "X-Amz-ClientId": bad}, ME, channel(), NOW)
        assert isinstance(decision, Refuse) and (decision.status, decision.code) == (400, "InvalidArgumentException")


def test_unknown_other_account_other_region_or_not_a_channel_is_404():
    other_region = Principal("AKIDX", ACCOUNT, "root", "eu-west-1", "kinesisvideo")
    other_account = Principal("AKIDY", "999988887777", "root", REGION, "kinesisvideo")
    cases = [(ME, None), (other_region, channel()), (other_account, channel()), (ME, channel(kind="stream")),
             (ME, channel(status="DELETING"))]
    for principal, resource in cases:
        decision = admit({"X-Amz-ChannelARN": ARN}, principal, resource, NOW)
        assert decision == Refuse(404, "ResourceNotFoundException", "The requested channel is not found or not active.")


def test_signature_failures_are_403_access_denied_and_malformed_queries_400():
    assert refuse_auth(AuthError("InvalidSignatureException", "bad")) == Refuse(403, "AccessDeniedException", "bad")
    assert refuse_auth(AuthError("IncompleteSignatureException", "x", 400)) == Refuse(400, "InvalidArgumentException", "x")

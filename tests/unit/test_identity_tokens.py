"""The pure parts of identity: the server key's sealing, session tokens, the interim trust
reading, document checks, names and ARNs."""

from __future__ import annotations

import json

import pytest

from signalite.aws.errors import ServiceError
from signalite.aws.principal import ASSUME_ROLE, ASSUMED_ROLE, USER, Caller, Principal
from signalite.identity import documents, names, tokens
from signalite.identity.crypto import SECRETS, TOKENS, ServerKey, Unsealed

KEY = ServerKey.from_settings(None, "root-secret-of-the-test-server")
OTHER = ServerKey.from_settings("a-configured-server-key-0001", "root-secret-of-the-test-server")


def test_sealed_values_open_only_with_the_same_key_purpose_and_binding():
    sealed = KEY.seal(SECRETS, b"the secret", "AKIAONE")
    assert b"the secret" not in sealed.encode()
    assert KEY.open(SECRETS, sealed, "AKIAONE") == b"the secret"
    for key, purpose, bound in ((OTHER, SECRETS, "AKIAONE"), (KEY, TOKENS, "AKIAONE"), (KEY, SECRETS, "AKIATWO")):
        with pytest.raises(Unsealed):
            key.open(purpose, sealed, bound)
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    for bad in (tampered, "", "not base64 !", sealed[:20]):
        with pytest.raises(Unsealed):
            KEY.open(SECRETS, bad, "AKIAONE")
    assert KEY.seal(SECRETS, b"x", "k") != KEY.seal(SECRETS, b"x", "k")  # a fresh nonce each time


def test_the_server_key_comes_from_the_setting_or_the_root_secret():
    assert KEY.fingerprint == ServerKey.from_settings(None, "root-secret-of-the-test-server").fingerprint
    assert KEY.fingerprint != ServerKey.from_settings(None, "another-root-secret").fingerprint
    assert OTHER.fingerprint == ServerKey.from_settings("a-configured-server-key-0001", "anything").fingerprint
    assert OTHER.fingerprint != KEY.fingerprint
    with pytest.raises(ValueError):
        ServerKey(b"short")


ROLE_SESSION = Caller("111122223333", ASSUMED_ROLE, "viewer", "arn:aws:sts::111122223333:assumed-role/viewer/s1",
                      "AROAEXAMPLE:s1", ASSUME_ROLE, "arn:aws:iam::111122223333:role/viewer", "AROAEXAMPLE", "s1",
                      '{"Version":"2012-10-17","Statement":[]}', ("arn:aws:iam::111122223333:policy/p",),
                      1_900_000_000.0)


def test_a_token_carries_its_key_secret_and_caller():
    minted = tokens.mint(KEY, ROLE_SESSION)
    assert minted.access_key_id.startswith("ASIA") and len(minted.access_key_id) == 20
    assert minted.session_token.startswith(tokens.PREFIX)
    assert minted.secret_access_key not in minted.session_token
    opened = tokens.open_token(KEY, minted.session_token)
    assert opened == minted
    assert opened.caller == ROLE_SESSION and opened.expires == 1_900_000_000.0


def test_a_token_that_was_altered_or_sealed_elsewhere_does_not_open():
    token = tokens.mint(KEY, ROLE_SESSION).session_token
    for bad in (token[:-3] + "AAA", token.replace(tokens.PREFIX, "XXXX", 1), "FwoGZXIvYXdzEXAMPLE", tokens.PREFIX):
        with pytest.raises(tokens.InvalidToken):
            tokens.open_token(KEY, bad)
    with pytest.raises(tokens.InvalidToken):
        tokens.open_token(OTHER, token)
    with pytest.raises(ValueError):
        tokens.mint(KEY, Caller("111122223333"))  # temporary credentials need an expiry


def _principal(caller: Caller) -> Principal:
    return Principal("ASIAX", caller.account_id, caller.name, "us-west-2", "sts", "t", caller)


ALICE = Caller("111122223333", USER, "alice", "arn:aws:iam::111122223333:user/alice", "AIDAALICE", "long-term",
               "arn:aws:iam::111122223333:user/alice", "AIDAALICE")


def _trust(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(principal: object, action: object = "sts:AssumeRole", **extra: object) -> dict:
    return {"Effect": "Allow", "Principal": principal, "Action": action, **extra}


@pytest.mark.parametrize("text, reason", [
    ("{", "Syntax errors in policy."),
    ("[]", "Syntax errors in policy."),
    ('{"Version": "2012-10-17"}', "Missing required field Statement"),
])
def test_documents_that_are_refused_when_put(text, reason):
    with pytest.raises(ServiceError) as exc:
        documents.validate_document(text)
    assert exc.value.code == "MalformedPolicyDocument" and exc.value.message
    with pytest.raises(ServiceError) as exc:  # the check used while the policy language is absent
        documents._check_json(text)
    assert (exc.value.code, exc.value.message) == ("MalformedPolicyDocument", reason)


def test_document_sizes_and_encoding_as_iam_counts_and_sends_them():
    assert documents.size('{ "a" :\n\t"b c" }') == len('{"a":"bc"}')
    assert documents.encoded('{"a": "b/c"}') == "%7B%22a%22%3A%20%22b%2Fc%22%7D"


def test_ids_and_arns():
    assert names.unique_id(names.USER_ID).startswith("AIDA") and len(names.unique_id(names.ROLE_ID)) == 21
    assert len(names.secret_access_key()) == 40
    assert names.iam_arn("111122223333", "user", "/a/b/", "x") == "arn:aws:iam::111122223333:user/a/b/x"
    parsed = names.parse_iam_arn("arn:aws:iam::111122223333:policy/team/read", "policy")
    assert parsed == names.IamArn("111122223333", "policy", "/team/", "read")
    assert names.parse_iam_arn("arn:aws:iam::111122223333:role/r", "policy") is None
    assert names.parse_iam_arn("arn:aws:iam::aws:policy/AdministratorAccess", "policy").account == "aws"
    assert names.parse_iam_arn("arn:aws:iam::1:user/x", "user") is None

"""STS on the real server, driven by boto3: the four calls, the temporary credentials they mint
(used on the kinesisvideo REST API and on a WSS connect presigned with the token), their
durations and AWS's rules on who may call what.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import websockets
from botocore.exceptions import ClientError
from websockets.exceptions import InvalidStatus

from tests.support.server import ACCOUNT, Server
from tests.support.signaling import presign, ssl_ctx

READ = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "kinesisvideo:*", "Resource": "*"}]})
USER_RIGHTS = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["kinesisvideo:*", "sts:GetFederationToken", "sts:AssumeRole"], "Resource": "*"}]})
"""What the test users may do (policies decide, as on AWS; GetSessionToken needs no permission)."""


def err(exc: pytest.ExceptionInfo) -> tuple[str, int, str]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def trust(*principals: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": list(principals)}, "Action": "sts:AssumeRole"}]})


def client(server: Server, service: str, creds: dict[str, str], **kw):
    return server.boto(service, access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],
                       session_token=creds.get("SessionToken"), **kw)


def remaining(creds: dict[str, str]) -> float:
    return (creds["Expiration"] - datetime.now(UTC)).total_seconds()


@pytest.fixture
def iam(server):
    return server.boto("iam", region="us-east-1")


@pytest.fixture
def sts(server):
    return server.boto("sts")


@pytest.fixture
def user(server, iam, name):
    """An IAM user and its long-term key (as an STS response's Credentials)."""
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    iam.put_user_policy(UserName=name, PolicyName="rights", PolicyDocument=USER_RIGHTS)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    yield {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"], "Arn": arn, "Name": name}
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user_policy(UserName=name, PolicyName="rights")
    iam.delete_user(UserName=name)


@pytest.fixture
def role(iam, name, user):
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(user["Arn"]),
                          MaxSessionDuration=7200)["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="read", PolicyDocument=READ)
    yield arn
    iam.delete_role_policy(RoleName=name, PolicyName="read")
    iam.delete_role(RoleName=name)


async def connects(server: Server, arn: str, creds: dict[str, str], client_id: str | None = None) -> int:
    url = presign(server, arn, client_id, access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],
                  token=creds.get("SessionToken"))
    try:
        ws = await websockets.connect(url, ssl=ssl_ctx(server), open_timeout=10)
    except InvalidStatus as exc:
        return exc.response.status_code
    await ws.close()
    return 101


def test_caller_identity_of_the_root(sts):
    assert {k: v for k, v in sts.get_caller_identity().items() if k != "ResponseMetadata"} == {
        "UserId": ACCOUNT, "Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:root"}


async def test_session_token_of_a_user_signs_rest_and_wss(server, user, kv, name):
    creds = client(server, "sts", user).get_session_token()["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert 43200 - 120 < remaining(creds) <= 43200
    me = client(server, "sts", creds).get_caller_identity()
    assert (me["Arn"], me["Account"]) == (user["Arn"], ACCOUNT)
    arn = client(server, "kinesisvideo", creds).create_signaling_channel(ChannelName=name)["ChannelARN"]
    assert arn.startswith(f"arn:aws:kinesisvideo:us-west-2:{ACCOUNT}:channel/{name}/")
    assert await connects(server, arn, creds) == 101
    assert await connects(server, arn, {**creds, "SessionToken": None}) == 403  # the key alone is nothing
    kv.delete_signaling_channel(ChannelARN=arn)


def test_a_temporary_key_needs_its_own_token(server, sts):
    one = sts.get_session_token(DurationSeconds=900)["Credentials"]
    two = sts.get_session_token(DurationSeconds=900)["Credentials"]
    with pytest.raises(ClientError) as exc:
        client(server, "kinesisvideo", {**one, "SessionToken": two["SessionToken"]}).list_signaling_channels()
    assert err(exc)[:2] == ("UnrecognizedClientException", 403)
    with pytest.raises(ClientError) as exc:
        client(server, "sts", {**one, "SessionToken": None}).get_caller_identity()
    assert err(exc)[:2] == ("InvalidClientTokenId", 403)
    with pytest.raises(ClientError) as exc:
        server.boto("sts", session_token=one["SessionToken"]).get_caller_identity()  # root key + a real token
    assert err(exc)[:2] == ("InvalidClientTokenId", 403)


def test_durations_of_session_tokens(server, sts, user):
    assert remaining(sts.get_session_token(DurationSeconds=7200)["Credentials"]) <= 3600  # a root: one hour
    assert remaining(sts.get_session_token()["Credentials"]) <= 3600
    as_user = client(server, "sts", user)
    assert 129600 - 120 < remaining(as_user.get_session_token(DurationSeconds=129600)["Credentials"]) <= 129600
    with pytest.raises(ClientError) as exc:
        as_user.get_session_token(DurationSeconds=129601)
    assert err(exc)[:2] == ("ValidationError", 400)


def test_session_credentials_cannot_mint_more(server, sts, user):
    creds = sts.get_session_token(DurationSeconds=900)["Credentials"]
    with pytest.raises(ClientError) as exc:
        client(server, "sts", creds).get_session_token()
    assert err(exc) == ("AccessDenied", 403, "Cannot call GetSessionToken with session credentials")
    with pytest.raises(ClientError) as exc:
        client(server, "sts", creds).get_federation_token(Name="bob")
    assert err(exc)[:2] == ("AccessDenied", 403)


def test_federation_token(server, iam, user, name):
    policy_arn = iam.create_policy(PolicyName=name, PolicyDocument=READ)["Policy"]["Arn"]
    got = client(server, "sts", user).get_federation_token(
        Name="browser-1", Policy=READ, PolicyArns=[{"arn": policy_arn}], DurationSeconds=1800)
    assert got["FederatedUser"] == {"FederatedUserId": f"{ACCOUNT}:browser-1",
                                    "Arn": f"arn:aws:sts::{ACCOUNT}:federated-user/browser-1"}
    assert 0 < got["PackedPolicySize"] <= 100
    creds = got["Credentials"]
    assert 1800 - 120 < remaining(creds) <= 1800
    me = client(server, "sts", creds).get_caller_identity()
    assert (me["Arn"], me["UserId"]) == (got["FederatedUser"]["Arn"], f"{ACCOUNT}:browser-1")
    with pytest.raises(ClientError) as exc:
        client(server, "sts", creds).get_federation_token(Name="again")
    assert err(exc)[:2] == ("AccessDenied", 403)
    with pytest.raises(server.boto("sts").exceptions.MalformedPolicyDocumentException):
        client(server, "sts", user).get_federation_token(Name="bad", Policy="{nope")
    with pytest.raises(ClientError) as exc:
        client(server, "sts", user).get_federation_token(Name="not a name", Policy=READ)
    assert err(exc)[:2] == ("ValidationError", 400)  # Name is [\w+=,.@-]*
    assert remaining(server.boto("sts").get_federation_token(Name="root-fed", DurationSeconds=7200)["Credentials"]) <= 3600
    iam.delete_policy(PolicyArn=policy_arn)


async def test_assume_role(server, iam, user, role, kv, name):
    got = client(server, "sts", user).assume_role(RoleArn=role, RoleSessionName="viewer-1")
    role_id = iam.get_role(RoleName=name)["Role"]["RoleId"]
    assert got["AssumedRoleUser"] == {"AssumedRoleId": f"{role_id}:viewer-1",
                                      "Arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/viewer-1"}
    creds = got["Credentials"]
    assert 3600 - 120 < remaining(creds) <= 3600
    me = client(server, "sts", creds).get_caller_identity()
    assert (me["Arn"], me["UserId"], me["Account"]) == (got["AssumedRoleUser"]["Arn"], f"{role_id}:viewer-1", ACCOUNT)
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    assert client(server, "kinesisvideo", creds).describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]
    assert await connects(server, arn, creds, "viewer-1") == 101
    kv.delete_signaling_channel(ChannelARN=arn)

    longer = client(server, "sts", user).assume_role(RoleArn=role, RoleSessionName="s1", DurationSeconds=7200)
    assert 7200 - 120 < remaining(longer["Credentials"]) <= 7200
    with pytest.raises(ClientError) as exc:
        client(server, "sts", user).assume_role(RoleArn=role, RoleSessionName="s1", DurationSeconds=7201)
    assert err(exc) == ("ValidationError", 400,
                        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
    with_policy = client(server, "sts", user).assume_role(RoleArn=role, RoleSessionName="s1", Policy=READ)
    assert 0 < with_policy["PackedPolicySize"] <= 100


def test_assume_role_is_refused_unless_the_trust_policy_allows(server, iam, user, name):
    other = iam.create_role(RoleName=name + "-other", AssumeRolePolicyDocument=trust(
        f"arn:aws:iam::{ACCOUNT}:user/somebody-else"))["Role"]["Arn"]
    missing = f"arn:aws:iam::{ACCOUNT}:role/{name}-missing"
    for arn in (other, missing):
        with pytest.raises(ClientError) as exc:
            client(server, "sts", user).assume_role(RoleArn=arn, RoleSessionName="s1")
        assert err(exc) == ("AccessDenied", 403, f"User: {user['Arn']} is not authorized to perform: "
                                                 f"sts:AssumeRole on resource: {arn}")
    with pytest.raises(ClientError) as exc:
        server.boto("sts").assume_role(RoleArn=other, RoleSessionName="s1")
    assert err(exc) == ("AccessDenied", 403, "Roles may not be assumed by root accounts.")
    iam.delete_role(RoleName=name + "-other")


def test_account_trust_and_role_chaining(server, iam, user, name):
    account_wide = iam.create_role(RoleName=name + "-acct", AssumeRolePolicyDocument=trust(ACCOUNT),
                                   MaxSessionDuration=7200)["Role"]["Arn"]
    first = client(server, "sts", user).assume_role(RoleArn=account_wide, RoleSessionName="one")["Credentials"]
    chained = iam.create_role(RoleName=name + "-next", AssumeRolePolicyDocument=trust(account_wide),
                              MaxSessionDuration=7200)["Role"]["Arn"]
    second = client(server, "sts", first).assume_role(RoleArn=chained, RoleSessionName="two")
    assert second["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}-next/two"
    with pytest.raises(ClientError) as exc:
        client(server, "sts", first).assume_role(RoleArn=chained, RoleSessionName="two", DurationSeconds=3601)
    assert err(exc)[:2] == ("ValidationError", 400)
    federated = server.boto("sts").get_federation_token(Name="fed-user", Policy=READ)["Credentials"]
    with pytest.raises(ClientError) as exc:
        client(server, "sts", federated).assume_role(RoleArn=account_wide, RoleSessionName="x1")
    assert err(exc)[:2] == ("AccessDenied", 403)
    iam.delete_role(RoleName=name + "-acct")
    iam.delete_role(RoleName=name + "-next")


def test_temporary_credentials_of_a_deactivated_user_key_keep_their_identity(server, iam, user):
    """As on AWS, temporary credentials are not tied to the key that minted them (what they may
    do is their identity's policies' to say, at request time)."""
    creds = client(server, "sts", user).get_session_token(DurationSeconds=900)["Credentials"]
    iam.update_access_key(UserName=user["Name"], AccessKeyId=user["AccessKeyId"], Status="Inactive")
    assert client(server, "sts", creds).get_caller_identity()["Arn"] == user["Arn"]
    iam.update_access_key(UserName=user["Name"], AccessKeyId=user["AccessKeyId"], Status="Active")


def test_expiration_is_iso8601_in_the_answer(server, sts):
    creds = sts.get_session_token(DurationSeconds=900)["Credentials"]
    assert isinstance(creds["Expiration"], datetime)
    assert timedelta(seconds=0) < creds["Expiration"] - datetime.now(UTC) <= timedelta(seconds=900)

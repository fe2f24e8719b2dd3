"""Accounts: ``signalite admin create-account`` on the real server, and strict isolation between
accounts for every kind of key (root keys, IAM users' keys, temporary credentials).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest
import websockets
from botocore.exceptions import ClientError
from websockets.exceptions import InvalidStatus

from tests.support.server import ACCESS_KEY, ACCOUNT, SECRET_KEY, Server
from tests.support.signaling import presign, ssl_ctx

EVERYTHING = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})

def create_account(server: Server, *args: str, key: str = ACCESS_KEY,
                   secret: str = SECRET_KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIGNALITE_"))}
    env.update({"SIGNALITE_ACCESS_KEY_ID": key, "SIGNALITE_SECRET_ACCESS_KEY": secret})
    return subprocess.run([sys.executable, "-m", "signalite", "admin", "create-account", "--data-dir",
                           str(server.data_dir), *args], env=env, capture_output=True, text=True, timeout=60)


def new_account(server: Server, *args: str) -> dict[str, str]:
    done = create_account(server, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class Account:
    """Clients signed with one account's root key."""

    def __init__(self, server: Server, key: str, secret: str, token: str | None = None) -> None:
        self.server, self.key, self.secret, self.token = server, key, secret, token

    def __call__(self, service: str = "kinesisvideo", **kw):
        if service == "iam":
            kw.setdefault("region", "us-east-1")
        return self.server.boto(service, access_key=self.key, secret_key=self.secret, session_token=self.token, **kw)


def err(exc: pytest.ExceptionInfo) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_create_account_prints_a_root_key_that_works(server):
    made = new_account(server)
    assert set(made) == {"AccountId", "AccessKeyId", "SecretAccessKey"}
    assert len(made["AccountId"]) == 12 and made["AccountId"].isdigit() and made["AccountId"] != ACCOUNT
    assert made["AccessKeyId"].startswith("AKIA")
    b = Account(server, made["AccessKeyId"], made["SecretAccessKey"])
    assert b("sts").get_caller_identity()["Arn"] == f"arn:aws:iam::{made['AccountId']}:root"
    arn = b().create_signaling_channel(ChannelName="in-b")["ChannelARN"]
    assert f":{made['AccountId']}:channel/in-b/" in arn
    assert [k["AccessKeyId"] for k in b("iam").list_access_keys()["AccessKeyMetadata"]] == [made["AccessKeyId"]]
    assert made["SecretAccessKey"] not in server.log()


def test_create_account_with_an_id_once(server):
    wanted = "9" + "".join(secrets.choice("0123456789") for _ in range(11))
    assert new_account(server, "--account-id", wanted)["AccountId"] == wanted
    again = create_account(server, "--account-id", wanted)
    assert again.returncode == 1 and "409" in again.stderr and "ResourceInUseException" in again.stderr
    root = create_account(server, "--account-id", ACCOUNT)
    assert root.returncode == 1 and "ResourceInUseException" in root.stderr
    bad = create_account(server, "--account-id", "123")
    assert bad.returncode == 1 and "12 digits" in bad.stderr


@pytest.mark.parametrize("user", ["", "root"])
def test_only_the_servers_root_key_creates_accounts(server, name, user):
    """Not another account's root, not an IAM user of the root account (one named ``root`` included)."""
    made = new_account(server)
    refused = create_account(server, key=made["AccessKeyId"], secret=made["SecretAccessKey"])
    assert refused.returncode == 1 and "AccessDeniedException" in refused.stderr
    iam = server.boto("iam", region="us-east-1")
    user = user or name
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    refused = create_account(server, key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    assert refused.returncode == 1 and "AccessDeniedException" in refused.stderr
    iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=user)


async def test_accounts_see_nothing_of_each_other(server, name):
    a = Account(server, ACCESS_KEY, SECRET_KEY)
    made = new_account(server)
    b_id = made["AccountId"]
    b = Account(server, made["AccessKeyId"], made["SecretAccessKey"])

    # Account A: a channel, a user with a key, a managed policy, a role that trusts only A's user.
    channel = a().create_signaling_channel(ChannelName=name)["ChannelARN"]
    user_arn = a("iam").create_user(UserName=name)["User"]["Arn"]
    a_key = a("iam").create_access_key(UserName=name)["AccessKey"]
    policy = a("iam").create_policy(PolicyName=name, PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))["Policy"]["Arn"]
    role = a("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]

    # Account B, with its root key, an IAM user's key and temporary credentials of both.
    b("iam").create_user(UserName=name)  # the same name is free in another account
    b("iam").put_user_policy(UserName=name, PolicyName="all", PolicyDocument=EVERYTHING)  # isolation, not policy
    b_key = b("iam").create_access_key(UserName=name)["AccessKey"]
    b_user = Account(server, b_key["AccessKeyId"], b_key["SecretAccessKey"])
    session = b("sts").get_session_token(DurationSeconds=900)["Credentials"]
    user_session = b_user("sts").get_session_token(DurationSeconds=900)["Credentials"]
    callers = [b, b_user, Account(server, session["AccessKeyId"], session["SecretAccessKey"], session["SessionToken"]),
               Account(server, user_session["AccessKeyId"], user_session["SecretAccessKey"],
                       user_session["SessionToken"])]
    for caller in callers:
        assert caller("sts").get_caller_identity()["Account"] == b_id
        kv = caller()
        assert channel not in [c["ChannelARN"] for c in kv.list_signaling_channels()["ChannelInfoList"]]
        with pytest.raises(kv.exceptions.ResourceNotFoundException):
            kv.describe_signaling_channel(ChannelARN=channel)
        with pytest.raises(kv.exceptions.ResourceNotFoundException):
            kv.describe_signaling_channel(ChannelName=name)
        with pytest.raises(kv.exceptions.ResourceNotFoundException):
            kv.delete_signaling_channel(ChannelARN=channel)
        url = presign(server, channel, "intruder", access_key=caller.key, secret_key=caller.secret, token=caller.token)
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(url, ssl=ssl_ctx(server), open_timeout=10)
        assert refused.value.response.status_code == 404

        iam = caller("iam")
        if caller.token is not None:  # GetSessionToken's credentials (without MFA) never reach IAM, as on AWS
            with pytest.raises(ClientError) as exc:
                iam.list_users()
            assert err(exc) == ("AccessDenied", 403)
            continue
        assert iam.get_user(UserName=name)["User"]["Arn"] == f"arn:aws:iam::{b_id}:user/{name}"  # B's own
        assert user_arn not in [u["Arn"] for u in iam.list_users()["Users"]]
        assert a_key["AccessKeyId"] not in [k["AccessKeyId"] for k in
                                            iam.list_access_keys(UserName=name)["AccessKeyMetadata"]]
        with pytest.raises(iam.exceptions.NoSuchEntityException):
            iam.get_policy(PolicyArn=policy)
        with pytest.raises(iam.exceptions.NoSuchEntityException):
            iam.attach_user_policy(UserName=name, PolicyArn=policy)
        with pytest.raises(iam.exceptions.NoSuchEntityException):
            iam.get_role(RoleName=name)
        assert policy not in [p["Arn"] for p in iam.list_policies()["Policies"]]
        assert role not in [r["Arn"] for r in iam.list_roles()["Roles"]]

    with pytest.raises(ClientError) as exc:
        b_user("sts").assume_role(RoleArn=role, RoleSessionName="intruder")
    assert err(exc) == ("AccessDenied", 403)

    # A sees none of B's either, and its own records are untouched.
    assert a("iam").get_user(UserName=name)["User"]["Arn"] == user_arn
    assert b_key["AccessKeyId"] not in [k["AccessKeyId"] for k in
                                        a("iam").list_access_keys(UserName=name)["AccessKeyMetadata"]]
    assert a().describe_signaling_channel(ChannelARN=channel)["ChannelInfo"]["ChannelARN"] == channel

    b("iam").delete_user_policy(UserName=name, PolicyName="all")
    for account, key in ((a, a_key), (b, b_key)):
        account("iam").delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        account("iam").delete_user(UserName=name)
    a("iam").delete_role(RoleName=name)
    a("iam").delete_policy(PolicyArn=policy)
    a().delete_signaling_channel(ChannelARN=channel)


def test_a_role_that_trusts_another_account_by_name_lets_it_in(server, name):
    """The one way across, as on AWS: the role's owner names the other account in its trust
    policy. The session then acts in the role's account."""
    made = new_account(server)
    b = Account(server, made["AccessKeyId"], made["SecretAccessKey"])
    b("iam").create_user(UserName=name)
    b("iam").put_user_policy(UserName=name, PolicyName="assume", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))
    b_key = b("iam").create_access_key(UserName=name)["AccessKey"]
    a_iam = server.boto("iam", region="us-east-1")
    role = a_iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{made['AccountId']}:root"},
         "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    creds = Account(server, b_key["AccessKeyId"], b_key["SecretAccessKey"])("sts").assume_role(
        RoleArn=role, RoleSessionName="guest")["Credentials"]
    guest = Account(server, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    assert guest("sts").get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/guest"
    a_iam.delete_role(RoleName=name)
    b("iam").delete_access_key(UserName=name, AccessKeyId=b_key["AccessKeyId"])
    b("iam").delete_user_policy(UserName=name, PolicyName="assume")
    b("iam").delete_user(UserName=name)

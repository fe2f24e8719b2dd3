"""The real AWS CLI v1 (its own bundled botocore) managing IAM and minting STS credentials,
configured only through the environment ``signalite env`` prints (``AWS_ENDPOINT_URL_IAM`` and
``AWS_ENDPOINT_URL_STS`` included)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.server import ACCOUNT

AWS = str(Path(sys.executable).with_name("aws"))
READ = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kinesisvideo:*", "Resource": "*"}]}


def aws(server, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AWS, *args, "--output", "json"], env={**server.client_env, **(env or {})},
                          capture_output=True, text=True, timeout=60)


def out(server, *args: str, env: dict[str, str] | None = None) -> dict:
    proc = aws(server, *args, env=env)
    assert proc.returncode == 0, f"aws {' '.join(args)} failed ({proc.returncode}): {proc.stderr}"
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


def test_cli_users_keys_and_policies(server, name, tmp_path):
    """The CLI for what is tested; boto3 (quicker to start) for setting up and cleaning up."""
    iam = server.boto("iam", region="us-east-1")
    path = f"/{name}/"
    assert out(server, "iam", "create-user", "--user-name", name, "--path", path)["User"]["Arn"] == \
        f"arn:aws:iam::{ACCOUNT}:user{path}{name}"
    for i in range(2):
        iam.create_user(UserName=f"{name}-{i}", Path=path)
    # The CLI follows IsTruncated/Marker itself; --page-size makes it take several pages.
    listed = out(server, "iam", "list-users", "--path-prefix", path, "--page-size", "2")["Users"]
    assert [u["UserName"] for u in listed] == [name, f"{name}-0", f"{name}-1"]

    document = tmp_path / "policy.json"
    document.write_text(json.dumps(READ))
    out(server, "iam", "put-user-policy", "--user-name", name, "--policy-name", "read",
        "--policy-document", f"file://{document}")
    assert out(server, "iam", "get-user-policy", "--user-name", name, "--policy-name", "read")["PolicyDocument"] == READ
    arn = out(server, "iam", "create-policy", "--policy-name", name, "--policy-document",
              f"file://{document}")["Policy"]["Arn"]
    out(server, "iam", "attach-user-policy", "--user-name", name, "--policy-arn", arn)
    assert out(server, "iam", "list-attached-user-policies", "--user-name", name)["AttachedPolicies"] == [
        {"PolicyName": name, "PolicyArn": arn}]

    key = out(server, "iam", "create-access-key", "--user-name", name)["AccessKey"]
    as_user = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    assert out(server, "sts", "get-caller-identity", env=as_user)["Arn"] == f"arn:aws:iam::{ACCOUNT}:user{path}{name}"
    out(server, "iam", "update-access-key", "--user-name", name, "--access-key-id", key["AccessKeyId"],
        "--status", "Inactive")
    refused = aws(server, "sts", "get-caller-identity", env=as_user)
    assert refused.returncode != 0 and "InvalidClientTokenId" in refused.stderr

    failed = aws(server, "iam", "delete-user", "--user-name", name)
    assert failed.returncode != 0 and "DeleteConflict" in failed.stderr
    missing = aws(server, "iam", "get-user", "--user-name", name + "-nobody")
    assert missing.returncode != 0 and "NoSuchEntity" in missing.stderr

    out(server, "iam", "delete-access-key", "--user-name", name, "--access-key-id", key["AccessKeyId"])
    iam.detach_user_policy(UserName=name, PolicyArn=arn)
    iam.delete_user_policy(UserName=name, PolicyName="read")
    iam.delete_policy(PolicyArn=arn)
    for user in (name, f"{name}-0", f"{name}-1"):
        iam.delete_user(UserName=user)


def test_cli_sts_calls_and_a_role(server, name):
    iam = server.boto("iam", region="us-east-1")
    user_arn = iam.create_user(UserName=name)["User"]["Arn"]
    iam.put_user_policy(UserName=name, PolicyName="federate", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sts:GetFederationToken", "kinesisvideo:*"], "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    as_user = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    trust = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}]})
    role_arn = out(server, "iam", "create-role", "--role-name", name, "--assume-role-policy-document",
                   trust)["Role"]["Arn"]
    assert out(server, "iam", "get-role", "--role-name", name)["Role"]["AssumeRolePolicyDocument"] == json.loads(trust)
    assert out(server, "sts", "get-caller-identity")["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"

    session = out(server, "sts", "get-session-token", "--duration-seconds", "900", env=as_user)["Credentials"]
    federated = out(server, "sts", "get-federation-token", "--name", "cli-user", "--policy", json.dumps(READ),
                    env=as_user)
    assumed = out(server, "sts", "assume-role", "--role-arn", role_arn, "--role-session-name", "cli", env=as_user)
    assert federated["FederatedUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:federated-user/cli-user"
    assert assumed["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/cli"
    for creds, arn in ((session, user_arn), (federated["Credentials"], federated["FederatedUser"]["Arn"]),
                       (assumed["Credentials"], assumed["AssumedRoleUser"]["Arn"])):
        env = {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
               "AWS_SESSION_TOKEN": creds["SessionToken"]}
        assert out(server, "sts", "get-caller-identity", env=env)["Arn"] == arn
    assert "ChannelInfoList" in out(server, "kinesisvideo", "list-signaling-channels", env={
        "AWS_ACCESS_KEY_ID": session["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": session["SecretAccessKey"],
        "AWS_SESSION_TOKEN": session["SessionToken"]})

    iam.delete_role(RoleName=name)
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user_policy(UserName=name, PolicyName="federate")
    iam.delete_user(UserName=name)

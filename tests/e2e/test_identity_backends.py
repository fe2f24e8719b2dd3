"""Identity across restarts, on both store backends, and across the nodes of a cluster.

Users, keys, policies, roles and accounts persist in the store (SQLite or PostgreSQL) with their
secrets sealed, never in clear; session tokens need no store at all, so one minted by a node
works on another and after a restart; a key deactivated, or a policy put, attached, detached or
made default on one node, holds on the others as soon as the bus tells them (the cluster tests
trust caches for 600 s, so that only the bus's invalidation can explain what they see); and a
node whose server key differs from the one the store's secrets were sealed under refuses to start.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys

import pytest
import websockets
from botocore.exceptions import ClientError
from websockets.exceptions import InvalidStatus

from signalite.store.postgres import parse_url
from tests.integration.pg import POSTGRES_URL, execute, postgres_proxy, postgres_schemas, postgres_url  # noqa: F401
from tests.integration.redis_support import redis_prefixes, redis_proxy, redis_url  # noqa: F401 - fixtures
from tests.support.server import ACCESS_KEY, SECRET_KEY, Server
from tests.support.signaling import presign, ssl_ctx
from tests.support.wait import eventually

POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
TRUSTING = ("--identity-cache-seconds", "600")
"""Caches that would serve a stale key or policy for ten minutes: only the bus can make a change
visible on another node within a test."""


def err_code(exc: pytest.ExceptionInfo) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def as_key(server: Server, service: str, creds: dict[str, str]):
    return server.boto(service, access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],
                       session_token=creds.get("SessionToken"), **({"region": "us-east-1"} if service == "iam" else {}))


def create_account(server: Server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SIGNALITE_"))}
    env.update({"SIGNALITE_ACCESS_KEY_ID": ACCESS_KEY, "SIGNALITE_SECRET_ACCESS_KEY": SECRET_KEY})
    done = subprocess.run([sys.executable, "-m", "signalite", "admin", "create-account", "--data-dir",
                           str(server.data_dir)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def populate(server: Server, name: str) -> dict[str, dict[str, str]]:
    iam = server.boto("iam", region="us-east-1")
    iam.create_user(UserName=name, Path="/kept/")
    key = iam.create_access_key(UserName=name)["AccessKey"]
    iam.put_user_policy(UserName=name, PolicyName="inline", PolicyDocument=POLICY)
    arn = iam.create_policy(PolicyName=name, PolicyDocument=POLICY)["Policy"]["Arn"]
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": iam.get_user(UserName=name)["User"]["Arn"]},
         "Action": "sts:AssumeRole"}]}))
    token = as_key(server, "sts", key).get_session_token(DurationSeconds=900)["Credentials"]
    return {"key": key, "token": token, "account": create_account(server)}


def check_populated(server: Server, name: str, made: dict[str, dict[str, str]]) -> None:
    iam = server.boto("iam", region="us-east-1")
    assert iam.get_user(UserName=name)["User"]["Path"] == "/kept/"
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]] == \
        [made["key"]["AccessKeyId"]]
    assert iam.get_user_policy(UserName=name, PolicyName="inline")["PolicyDocument"] == json.loads(POLICY)
    assert [p["PolicyName"] for p in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]] == [name]
    user_arn = as_key(server, "sts", made["key"]).get_caller_identity()["Arn"]
    assert user_arn.endswith(f":user/kept/{name}")
    assert as_key(server, "sts", made["token"]).get_caller_identity()["Arn"] == user_arn
    account = made["account"]
    assert as_key(server, "sts", account).get_caller_identity()["Account"] == account["AccountId"]
    role_arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    assert as_key(server, "sts", made["key"]).assume_role(RoleArn=role_arn, RoleSessionName="after")


def cleanup(server: Server, name: str, made: dict[str, dict[str, str]]) -> None:
    iam = server.boto("iam", region="us-east-1")
    arn = iam.list_attached_user_policies(UserName=name)["AttachedPolicies"][0]["PolicyArn"]
    iam.detach_user_policy(UserName=name, PolicyArn=arn)
    iam.delete_policy(PolicyArn=arn)
    iam.delete_user_policy(UserName=name, PolicyName="inline")
    iam.delete_access_key(UserName=name, AccessKeyId=made["key"]["AccessKeyId"])
    iam.delete_user(UserName=name)
    iam.delete_role(RoleName=name)


def test_identity_survives_a_restart_and_secrets_are_sealed_on_sqlite(make_server, name):
    server = make_server()
    made = populate(server, name)
    server.restart()
    check_populated(server, name, made)
    with sqlite3.connect(server.data_dir / "signalite.db") as db:
        dump = "\n".join(db.iterdump())
    assert made["key"]["AccessKeyId"] in dump  # the record is there ...
    assert made["key"]["SecretAccessKey"] not in dump  # ... its secret only sealed
    assert made["account"]["SecretAccessKey"] not in dump
    cleanup(server, name, made)


def test_identity_on_postgresql_survives_a_restart(make_server, postgres_url, name):
    server = make_server("--store", postgres_url)
    made = populate(server, name)
    server.restart()
    check_populated(server, name, made)
    schema = parse_url(postgres_url)[1]
    rows = execute(POSTGRES_URL, f'SELECT kind, name, data::text AS data FROM "{schema}".signalite_entities')[0]
    assert {(r["kind"], r["name"]) for r in rows} >= {("user", name), ("role", name), ("policy", name),  # type: ignore[index]
                                                      ("access-key", made["key"]["AccessKeyId"])}
    stored = "\n".join(str(r["data"]) for r in rows)  # type: ignore[index]
    assert made["key"]["SecretAccessKey"] not in stored and made["account"]["SecretAccessKey"] not in stored
    assert not (server.data_dir / "signalite.db").exists()
    cleanup(server, name, made)


def test_a_cluster_shares_keys_tokens_and_deactivations(make_server, postgres_url, redis_url, name):
    a = make_server("--store", postgres_url, "--bus", redis_url, *TRUSTING)
    b = make_server("--store", postgres_url, "--bus", redis_url, *TRUSTING)
    iam_a = a.boto("iam", region="us-east-1")
    iam_a.create_user(UserName=name)
    key = iam_a.create_access_key(UserName=name)["AccessKey"]
    token = as_key(a, "sts", key).get_session_token(DurationSeconds=900)["Credentials"]
    arn = as_key(b, "sts", key).get_caller_identity()["Arn"]  # B now holds the key in its cache
    assert as_key(b, "sts", token).get_caller_identity()["Arn"] == arn  # a token minted by A

    iam_a.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")

    eventually(lambda: refused(b, key), what="B refusing the key A deactivated")
    with pytest.raises(ClientError) as exc:
        as_key(a, "kinesisvideo", key).list_signaling_channels()  # on A, at once
    assert err_code(exc) == ("InvalidClientTokenId", 403)
    b.boto("iam", region="us-east-1").update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Active")
    assert as_key(b, "sts", key).get_caller_identity()["Arn"] == arn
    eventually(lambda: not refused(a, key), what="A accepting the key B reactivated")
    iam_a.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam_a.delete_user(UserName=name)


def refused(node: Server, key: dict[str, str]) -> bool:
    """Whether ``node`` answers InvalidClientTokenId to ``key`` (a cache that has not heard of a
    change yet answers with the old state: the callers poll until the bus has told it)."""
    try:
        as_key(node, "sts", key).get_caller_identity()
    except ClientError as exc:
        return bool(exc.response["Error"]["Code"] == "InvalidClientTokenId")
    return False


def statement(effect: str, action: str | list[str]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": effect, "Action": action, "Resource": "*"}]})


def denied(node: Server, creds: dict[str, str], arn: str) -> bool:
    """Whether ``node`` refuses ``creds`` DescribeSignalingChannel (AccessDeniedException)."""
    try:
        as_key(node, "kinesisvideo", creds).describe_signaling_channel(ChannelARN=arn)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "AccessDeniedException", exc.response
        return True
    return False


def handshake(node: Server, creds: dict[str, str], arn: str) -> int:
    """The status of a presigned ConnectAsViewer handshake on ``node`` (101: connected)."""
    async def connect() -> int:
        url = presign(node, arn, "viewer-1", access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],
                      token=creds.get("SessionToken"))
        try:
            ws = await websockets.connect(url, ssl=ssl_ctx(node), open_timeout=10)
        except InvalidStatus as exc:
            return exc.response.status_code
        await ws.close()
        return 101
    return asyncio.run(connect())


def test_a_policy_change_on_one_node_holds_on_the_other_at_once(make_server, postgres_url, redis_url, name):
    a = make_server("--store", postgres_url, "--bus", redis_url, *TRUSTING)
    b = make_server("--store", postgres_url, "--bus", redis_url, *TRUSTING)
    arn = a.boto().create_signaling_channel(ChannelName=name)["ChannelARN"]
    iam_a, iam_b = a.boto("iam", region="us-east-1"), b.boto("iam", region="us-east-1")
    iam_a.create_user(UserName=name)
    key = iam_a.create_access_key(UserName=name)["AccessKey"]
    iam_a.put_user_policy(UserName=name, PolicyName="allow", PolicyDocument=statement("Allow", "*"))
    token = as_key(a, "sts", key).get_federation_token(
        Name="fed", DurationSeconds=900, Policy=statement("Allow", "kinesisvideo:*"))["Credentials"]
    # B compiles and caches the user's policies (for the key and for the token) before the change.
    assert not denied(b, key, arn) and not denied(b, token, arn)
    assert handshake(b, token, arn) == 101

    # An inline Deny put on A: refused on A before the call returns, on B once the bus told it.
    iam_a.put_user_policy(UserName=name, PolicyName="deny", PolicyDocument=statement(
        "Deny", ["kinesisvideo:DescribeSignalingChannel", "kinesisvideo:ConnectAsViewer"]))
    assert denied(a, key, arn)
    eventually(lambda: denied(b, key, arn), what="B refusing what A's new Deny forbids")
    assert denied(b, token, arn)  # the federated user's rights are its user's, intersected
    assert handshake(b, token, arn) == 403

    # Deleted on B: A, which cached the Deny, allows again.
    iam_b.delete_user_policy(UserName=name, PolicyName="deny")
    eventually(lambda: not denied(a, key, arn), what="A allowing once B deleted the Deny")

    # A managed Deny attached on A, then replaced by an allowing default version on B.
    managed = iam_a.create_policy(PolicyName=name, PolicyDocument=statement(
        "Allow", "kinesisvideo:ListSignalingChannels"))["Policy"]["Arn"]
    iam_a.attach_user_policy(UserName=name, PolicyArn=managed)
    assert not denied(b, token, arn)  # B caches the policy set that includes the managed policy
    iam_a.create_policy_version(PolicyArn=managed, PolicyDocument=statement("Deny", "kinesisvideo:*"),
                                SetAsDefault=True)
    eventually(lambda: denied(b, token, arn), what="B refusing under the managed policy's new default version")
    iam_b.detach_user_policy(UserName=name, PolicyArn=managed)
    eventually(lambda: not denied(a, token, arn), what="A allowing once B detached the managed Deny")
    assert handshake(a, token, arn) == 101

    iam_a.delete_policy_version(PolicyArn=managed, VersionId="v1")
    iam_a.delete_policy(PolicyArn=managed)
    iam_a.delete_user_policy(UserName=name, PolicyName="allow")
    iam_a.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam_a.delete_user(UserName=name)


def test_a_node_with_another_server_key_refuses_to_start(make_server, name):
    server = make_server(env={"SIGNALITE_SERVER_KEY": "first-server-key-0123456789"})
    iam = server.boto("iam", region="us-east-1")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    server.stop()
    server.env["SIGNALITE_SERVER_KEY"] = "another-server-key-0123456789"
    with pytest.raises(RuntimeError) as exc:
        server.start()
    assert "sealed under another server key" in str(exc.value)
    server.env["SIGNALITE_SERVER_KEY"] = "first-server-key-0123456789"
    server.start()
    assert as_key(server, "sts", key).get_caller_identity()["Arn"].endswith(f":user/{name}")
    server.env["SIGNALITE_SERVER_KEY"] = "short"
    server.stop()
    with pytest.raises(RuntimeError) as exc:
        server.start()
    assert "SIGNALITE_SERVER_KEY" in str(exc.value) and "16 characters" in str(exc.value)

"""IAM on the real server, driven by boto3: users, access keys, inline and managed policies,
versions, attachments, roles, pagination, and AWS's errors and statuses.

Each test works under its own IAM path (``/<test name>/``) on the shared server, so lists see
only what the test made.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from botocore.exceptions import ClientError

from tests.support.server import ACCOUNT
from tests.support.signed import send, sign

ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
KV_READ = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Sid": "Read", "Effect": "Allow", "Action": ["kinesisvideo:Describe*", "kinesisvideo:List*"], "Resource": "*"}]})


def trust(*arns: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": list(arns)}, "Action": "sts:AssumeRole"}]})


def err(exc: pytest.ExceptionInfo) -> tuple[str, int]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


@pytest.fixture
def iam(server):
    return server.boto("iam", region="us-east-1")


@pytest.fixture
def path(name) -> str:
    return f"/{name}/"


# --- users -------------------------------------------------------------------------------------

def test_user_lifecycle(iam, name, path):
    created = iam.create_user(UserName=name, Path=path, Tags=[{"Key": "team", "Value": "video"}])["User"]
    assert created["UserName"] == name
    assert created["Path"] == path
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT}:user{path}{name}"
    assert created["UserId"].startswith("AIDA") and len(created["UserId"]) == 21
    assert created["Tags"] == [{"Key": "team", "Value": "video"}]
    got = iam.get_user(UserName=name)["User"]
    assert got == created
    assert [u["UserName"] for u in iam.list_users(PathPrefix=path)["Users"]] == [name]
    iam.delete_user(UserName=name)
    with pytest.raises(iam.exceptions.NoSuchEntityException) as exc:
        iam.get_user(UserName=name)
    assert err(exc) == ("NoSuchEntity", 404)
    assert exc.value.response["Error"]["Message"] == f"The user with name {name} cannot be found."
    assert iam.list_users(PathPrefix=path)["Users"] == []


def test_user_names_are_unique_without_case(iam, name):
    iam.create_user(UserName=name)
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException) as exc:
        iam.create_user(UserName=name.upper())
    assert err(exc) == ("EntityAlreadyExists", 409)
    assert iam.get_user(UserName=name.upper())["User"]["UserName"] == name
    iam.delete_user(UserName=name)


def test_users_page_with_marker_and_max_items(iam, name, path):
    made = sorted((f"{name}-{i}" for i in range(5)), key=str.lower)
    for user in reversed(made):
        iam.create_user(UserName=user, Path=path)
    first = iam.list_users(PathPrefix=path, MaxItems=2)
    assert first["IsTruncated"] is True
    second = iam.list_users(PathPrefix=path, MaxItems=2, Marker=first["Marker"])
    third = iam.list_users(PathPrefix=path, MaxItems=2, Marker=second["Marker"])
    assert third["IsTruncated"] is False and "Marker" not in third
    pages = first["Users"] + second["Users"] + third["Users"]
    assert [u["UserName"] for u in pages] == made
    # boto3's paginator reads IsTruncated/Marker the same way
    paged = iam.get_paginator("list_users").paginate(PathPrefix=path, PaginationConfig={"PageSize": 3})
    assert [u["UserName"] for page in paged for u in page["Users"]] == made
    for user in made:
        iam.delete_user(UserName=user)


def test_get_user_without_a_name_is_the_caller(iam, server):
    assert iam.get_user()["User"]["Arn"] == f"arn:aws:iam::{ACCOUNT}:root"


def test_validation_errors_name_the_member(iam):
    with pytest.raises(ClientError) as exc:
        iam.create_user(UserName="bad name!")
    assert err(exc) == ("ValidationError", 400)
    assert "at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern" \
        in exc.value.response["Error"]["Message"]


def test_unsupported_actions_answer_a_modeled_error(iam):
    with pytest.raises(iam.exceptions.InvalidInputException) as exc:
        iam.list_groups()
    assert err(exc) == ("InvalidInput", 400)
    assert "Signalite does not support ListGroups" in exc.value.response["Error"]["Message"]


# --- access keys -----------------------------------------------------------------------------------

def test_access_keys_sign_until_deactivated_or_deleted(server, iam, name, kv):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="channels", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kinesisvideo:List*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["AccessKeyId"]) == 20
    assert len(key["SecretAccessKey"]) == 40 and key["Status"] == "Active" and key["UserName"] == name
    creds = {"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"]}
    sts = server.boto("sts", **creds)
    user_kv = server.boto(**creds)
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/{name}"
    user_kv.list_signaling_channels()

    listed = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"], k["UserName"]) for k in listed] == [(key["AccessKeyId"], "Active", name)]
    assert "SecretAccessKey" not in listed[0]

    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Inactive")
    for call in (sts.get_caller_identity, user_kv.list_signaling_channels):
        with pytest.raises(ClientError) as exc:
            call()
        assert err(exc) == ("InvalidClientTokenId", 403)
    assert iam.list_access_keys(UserName=name)["AccessKeyMetadata"][0]["Status"] == "Inactive"

    iam.update_access_key(UserName=name, AccessKeyId=key["AccessKeyId"], Status="Active")
    assert sts.get_caller_identity()["Account"] == ACCOUNT

    with pytest.raises(iam.exceptions.DeleteConflictException) as exc:
        iam.delete_user(UserName=name)
    assert err(exc) == ("DeleteConflict", 409)
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    for call in (sts.get_caller_identity, user_kv.list_signaling_channels):
        with pytest.raises(ClientError) as exc:
            call()
        assert err(exc) == ("InvalidClientTokenId", 403)
    assert iam.list_access_keys(UserName=name)["AccessKeyMetadata"] == []
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user_policy(UserName=name, PolicyName="channels")
    iam.delete_user(UserName=name)


OWN_KEYS = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Action": ["iam:*AccessKey*", "iam:GetUser"],
    "Resource": "arn:aws:iam::*:user/${aws:username}"}]})
"""AWS's documented policy for users who manage their own keys (a policy variable)."""


def test_two_keys_per_user_and_a_user_manages_its_own(server, iam, name):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="own-keys", PolicyDocument=OWN_KEYS)
    first = iam.create_access_key(UserName=name)["AccessKey"]
    as_user = server.boto("iam", region="us-east-1", access_key=first["AccessKeyId"],
                          secret_key=first["SecretAccessKey"])
    second = as_user.create_access_key()["AccessKey"]  # no UserName: the caller's own
    assert second["UserName"] == name
    with pytest.raises(iam.exceptions.LimitExceededException) as exc:
        iam.create_access_key(UserName=name)
    assert err(exc) == ("LimitExceeded", 409)
    assert exc.value.response["Error"]["Message"] == "Cannot exceed quota for AccessKeysPerUser: 2"
    assert {k["AccessKeyId"] for k in as_user.list_access_keys()["AccessKeyMetadata"]} == \
        {first["AccessKeyId"], second["AccessKeyId"]}
    assert as_user.get_user()["User"]["UserName"] == name
    with pytest.raises(ClientError) as exc:
        as_user.create_access_key(UserName="someone-else")  # ${aws:username} is the caller's own name only
    assert err(exc) == ("AccessDenied", 403)
    for key in (first, second):
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user_policy(UserName=name, PolicyName="own-keys")
    iam.delete_user(UserName=name)


def test_a_key_of_another_user_is_not_found(iam, name):
    iam.create_user(UserName=name)
    iam.create_user(UserName=name + "-b")
    key = iam.create_access_key(UserName=name)["AccessKey"]
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.update_access_key(UserName=name + "-b", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.delete_access_key(UserName=name + "-b", AccessKeyId=key["AccessKeyId"])
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=name)
    iam.delete_user(UserName=name + "-b")


def test_the_configured_root_key_is_listed_and_cannot_be_changed_through_iam(iam):
    listed = iam.list_access_keys()["AccessKeyMetadata"]
    assert "AKIDSIGNALITETEST001" in [k["AccessKeyId"] for k in listed]
    with pytest.raises(iam.exceptions.InvalidInputException):
        iam.update_access_key(AccessKeyId="AKIDSIGNALITETEST001", Status="Inactive")


# --- inline policies ---------------------------------------------------------------------------------

def test_inline_user_policies(iam, name):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=KV_READ)
    iam.put_user_policy(UserName=name, PolicyName="all", PolicyDocument=ALLOW_ALL)
    got = iam.get_user_policy(UserName=name, PolicyName="read")
    assert (got["UserName"], got["PolicyName"], got["PolicyDocument"]) == (name, "read", json.loads(KV_READ))
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == ["all", "read"]
    page = iam.list_user_policies(UserName=name, MaxItems=1)
    assert page["PolicyNames"] == ["all"] and page["IsTruncated"]
    assert iam.list_user_policies(UserName=name, Marker=page["Marker"])["PolicyNames"] == ["read"]
    iam.put_user_policy(UserName=name, PolicyName="read", PolicyDocument=ALLOW_ALL)  # replaces
    assert iam.get_user_policy(UserName=name, PolicyName="read")["PolicyDocument"] == json.loads(ALLOW_ALL)
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_user(UserName=name)
    iam.delete_user_policy(UserName=name, PolicyName="read")
    iam.delete_user_policy(UserName=name, PolicyName="all")
    with pytest.raises(iam.exceptions.NoSuchEntityException) as exc:
        iam.get_user_policy(UserName=name, PolicyName="read")
    assert exc.value.response["Error"]["Message"] == "The user policy with name read cannot be found."
    iam.delete_user(UserName=name)


@pytest.mark.parametrize("document", ["{not json", "[]", json.dumps({"Version": "2012-10-17"})])
def test_malformed_documents_are_refused_when_put(iam, name, document):
    iam.create_user(UserName=name)
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException) as exc:
        iam.put_user_policy(UserName=name, PolicyName="bad", PolicyDocument=document)
    assert err(exc) == ("MalformedPolicyDocument", 400)
    assert exc.value.response["Error"]["Message"]
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.create_policy(PolicyName=name, PolicyDocument=document)
    with pytest.raises(iam.exceptions.MalformedPolicyDocumentException):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=document)
    assert iam.list_user_policies(UserName=name)["PolicyNames"] == []
    iam.delete_user(UserName=name)


def test_inline_policies_of_a_user_are_limited_in_size(iam, name):
    iam.create_user(UserName=name)
    big = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kinesisvideo:DescribeSignalingChannel",
         "Resource": f"arn:aws:kinesisvideo:us-west-2:{ACCOUNT}:channel/c{i:04d}/1"} for i in range(40)]})
    with pytest.raises(iam.exceptions.LimitExceededException) as exc:
        iam.put_user_policy(UserName=name, PolicyName="big", PolicyDocument=big)
    assert exc.value.response["Error"]["Message"] == f"Maximum policy size of 2048 bytes exceeded for user {name}"
    iam.delete_user(UserName=name)


def test_inline_role_policies(iam, name):
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:root"))["Role"]
    iam.put_role_policy(RoleName=name, PolicyName="read", PolicyDocument=KV_READ)
    got = iam.get_role_policy(RoleName=name, PolicyName="read")
    assert (got["RoleName"], got["PolicyDocument"]) == (role["RoleName"], json.loads(KV_READ))
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["read"]
    with pytest.raises(iam.exceptions.DeleteConflictException) as exc:
        iam.delete_role(RoleName=name)
    assert exc.value.response["Error"]["Message"] == "Cannot delete entity, must delete policies first."
    iam.delete_role_policy(RoleName=name, PolicyName="read")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.delete_role_policy(RoleName=name, PolicyName="read")
    iam.delete_role(RoleName=name)


# --- managed policies ------------------------------------------------------------------------------------

def test_managed_policy_versions(iam, name, path):
    policy = iam.create_policy(PolicyName=name, Path=path, PolicyDocument=KV_READ, Description="read only")["Policy"]
    arn = policy["Arn"]
    assert arn == f"arn:aws:iam::{ACCOUNT}:policy{path}{name}"
    assert policy["PolicyId"].startswith("ANPA")
    assert (policy["DefaultVersionId"], policy["AttachmentCount"], policy["IsAttachable"]) == ("v1", 0, True)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["Description"] == "read only"
    v1 = iam.get_policy_version(PolicyArn=arn, VersionId="v1")["PolicyVersion"]
    assert (v1["Document"], v1["IsDefaultVersion"]) == (json.loads(KV_READ), True)

    v2 = iam.create_policy_version(PolicyArn=arn, PolicyDocument=ALLOW_ALL)["PolicyVersion"]
    assert (v2["VersionId"], v2["IsDefaultVersion"]) == ("v2", False)
    v3 = iam.create_policy_version(PolicyArn=arn, PolicyDocument=ALLOW_ALL, SetAsDefault=True)["PolicyVersion"]
    assert (v3["VersionId"], v3["IsDefaultVersion"]) == ("v3", True)
    assert iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"] == "v3"
    iam.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    listed = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    assert [(v["VersionId"], v["IsDefaultVersion"]) for v in listed] == [("v3", False), ("v2", False), ("v1", True)]
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=ALLOW_ALL)
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=ALLOW_ALL)
    with pytest.raises(iam.exceptions.LimitExceededException):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=ALLOW_ALL)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_policy_version(PolicyArn=arn, VersionId="v9")
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_policy_version(PolicyArn=arn, VersionId="v1")  # the default
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_policy(PolicyArn=arn)  # versions left
    for version in ("v2", "v3", "v4", "v5"):
        iam.delete_policy_version(PolicyArn=arn, VersionId=version)
    iam.delete_policy(PolicyArn=arn)
    with pytest.raises(iam.exceptions.NoSuchEntityException) as exc:
        iam.get_policy(PolicyArn=arn)
    assert exc.value.response["Error"]["Message"] == f"Policy {arn} does not exist or is not attachable."


def test_policies_list_by_scope_path_and_attachment(iam, name, path):
    arns = [iam.create_policy(PolicyName=f"{name}-{i}", Path=path, PolicyDocument=KV_READ)["Policy"]["Arn"]
            for i in range(3)]
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
        iam.create_policy(PolicyName=f"{name}-0".upper(), PolicyDocument=KV_READ)
    assert [p["Arn"] for p in iam.list_policies(Scope="Local", PathPrefix=path)["Policies"]] == arns
    assert iam.list_policies(Scope="AWS", PathPrefix=path)["Policies"] == []
    page = iam.list_policies(PathPrefix=path, MaxItems=2)
    rest = iam.list_policies(PathPrefix=path, MaxItems=2, Marker=page["Marker"])
    assert [p["Arn"] for p in page["Policies"] + rest["Policies"]] == arns
    iam.create_user(UserName=name)
    iam.attach_user_policy(UserName=name, PolicyArn=arns[1])
    assert [p["Arn"] for p in iam.list_policies(PathPrefix=path, OnlyAttached=True)["Policies"]] == [arns[1]]
    iam.detach_user_policy(UserName=name, PolicyArn=arns[1])
    iam.delete_user(UserName=name)
    for arn in arns:
        iam.delete_policy(PolicyArn=arn)


def test_attach_and_detach_on_users_and_roles(iam, name):
    policy_arn = iam.create_policy(PolicyName=name, PolicyDocument=KV_READ)["Policy"]["Arn"]
    iam.create_user(UserName=name)
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT}:root"))
    iam.attach_user_policy(UserName=name, PolicyArn=policy_arn)
    iam.attach_user_policy(UserName=name, PolicyArn=policy_arn)  # again: no change
    iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
    assert iam.list_attached_user_policies(UserName=name)["AttachedPolicies"] == [
        {"PolicyName": name, "PolicyArn": policy_arn}]
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == [
        {"PolicyName": name, "PolicyArn": policy_arn}]
    assert iam.get_policy(PolicyArn=policy_arn)["Policy"]["AttachmentCount"] == 2

    with pytest.raises(iam.exceptions.DeleteConflictException) as exc:
        iam.delete_policy(PolicyArn=policy_arn)
    assert exc.value.response["Error"]["Message"] == "Cannot delete a policy attached to entities."
    with pytest.raises(iam.exceptions.DeleteConflictException) as exc:
        iam.delete_user(UserName=name)
    assert exc.value.response["Error"]["Message"] == "Cannot delete entity, must detach all policies first."
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_role(RoleName=name)

    missing = f"arn:aws:iam::{ACCOUNT}:policy/{name}-nowhere"
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.attach_user_policy(UserName=name, PolicyArn=missing)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.attach_role_policy(RoleName=name + "-nobody", PolicyArn=policy_arn)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.attach_user_policy(UserName=name, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")

    iam.detach_user_policy(UserName=name, PolicyArn=policy_arn)
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.detach_user_policy(UserName=name, PolicyArn=policy_arn)
    iam.detach_role_policy(RoleName=name, PolicyArn=policy_arn)
    assert iam.get_policy(PolicyArn=policy_arn)["Policy"]["AttachmentCount"] == 0
    iam.delete_policy(PolicyArn=policy_arn)
    iam.delete_user(UserName=name)
    iam.delete_role(RoleName=name)


def test_ten_managed_policies_per_user(iam, name):
    iam.create_user(UserName=name)
    arns = [iam.create_policy(PolicyName=f"{name}-{i}", PolicyDocument=KV_READ)["Policy"]["Arn"] for i in range(11)]
    for arn in arns[:10]:
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    with pytest.raises(iam.exceptions.LimitExceededException) as exc:
        iam.attach_user_policy(UserName=name, PolicyArn=arns[10])
    assert exc.value.response["Error"]["Message"] == "Cannot exceed quota for PoliciesPerUser: 10"
    page = iam.list_attached_user_policies(UserName=name, MaxItems=4)
    assert len(page["AttachedPolicies"]) == 4 and page["IsTruncated"]
    for arn in arns[:10]:
        iam.detach_user_policy(UserName=name, PolicyArn=arn)
    for arn in arns:
        iam.delete_policy(PolicyArn=arn)
    iam.delete_user(UserName=name)


# --- roles --------------------------------------------------------------------------------------------

def test_role_lifecycle(iam, name, path):
    document = trust(f"arn:aws:iam::{ACCOUNT}:root")
    role = iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=document, Description="viewers",
                           MaxSessionDuration=7200, Tags=[{"Key": "k", "Value": "v"}])["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role{path}{name}"
    assert role["RoleId"].startswith("AROA")
    assert (role["MaxSessionDuration"], role["Description"]) == (7200, "viewers")
    assert role["AssumeRolePolicyDocument"] == json.loads(document)
    assert iam.get_role(RoleName=name)["Role"] == role
    listed = iam.list_roles(PathPrefix=path)["Roles"]
    assert [r["RoleName"] for r in listed] == [name] and "Tags" not in listed[0]
    with pytest.raises(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=document)
    with pytest.raises(ClientError) as exc:
        iam.create_role(RoleName=name + "x", AssumeRolePolicyDocument=document, MaxSessionDuration=43201)
    assert err(exc) == ("ValidationError", 400)
    iam.delete_role(RoleName=name)
    with pytest.raises(iam.exceptions.NoSuchEntityException) as exc:
        iam.get_role(RoleName=name)
    assert exc.value.response["Error"]["Message"] == f"The role with name {name} cannot be found."


# --- the wire, raw -------------------------------------------------------------------------------------

def _query(server, body: str, **sign_args) -> tuple[int, str]:
    url = server.http_url + "/"
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    if sign_args.pop("signed", True):
        headers = sign("POST", url, body.encode(), headers, **{"service": "iam", "region": "us-east-1", **sign_args})
    r = send("POST", url, body.encode(), headers)
    return r.status, r.body.decode()


def test_query_errors_are_xml_error_responses(server):
    status, body = _query(server, "Action=GetUser&Version=2010-05-08&UserName=nobody-at-all")
    assert status == 404
    assert body.startswith('<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender'
                           "</Type><Code>NoSuchEntity</Code>")
    assert "<RequestId>" in body
    assert _query(server, "Action=NoSuchAction&Version=2010-05-08")[0] == 400
    status, body = _query(server, "Version=2010-05-08")
    assert (status, "<Code>MissingAction</Code>" in body) == (400, True)
    status, body = _query(server, "Action=ListUsers&Version=2010-05-08", signed=False)
    assert (status, "<Code>MissingAuthenticationToken" in body) == (403, True)
    status, body = _query(server, "Action=ListUsers&Version=2010-05-08", secret_key="wrong")
    assert (status, "<Code>InvalidSignatureException</Code>" in body) == (403, True)
    status, body = _query(server, "Action=ListUsers&Version=2010-05-08", access_key="AKIANOBODY0000000000")
    assert (status, "<Code>InvalidClientTokenId</Code>" in body) == (403, True)


def test_iam_takes_any_region_in_the_scope(server):
    for region in ("us-east-1", "eu-west-3"):
        status, body = _query(server, "Action=ListUsers&Version=2010-05-08&MaxItems=1", region=region)
        assert status == 200 and body.startswith('<ListUsersResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">')


def test_a_post_to_the_root_signed_for_kinesisvideo_is_not_a_query_request(server):
    url = server.http_url + "/"
    r = send("POST", url, b"{}", sign("POST", url, b"{}"))
    assert (r.status, r.error_type) == (404, "UnknownOperationException")


def test_policy_documents_come_back_url_encoded_as_iam_sends_them(server, iam, name):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=KV_READ)
    status, body = _query(server, f"Action=GetUserPolicy&Version=2010-05-08&UserName={name}&PolicyName=p")
    assert status == 200
    assert f"<PolicyDocument>{quote(KV_READ, safe='-_.~')}</PolicyDocument>" in body
    iam.delete_user_policy(UserName=name, PolicyName="p")
    iam.delete_user(UserName=name)


def test_secrets_never_reach_the_log(server, iam, name):
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    token = server.boto("sts").get_session_token(DurationSeconds=900)["Credentials"]
    log = server.log()
    assert key["SecretAccessKey"] not in log
    assert token["SecretAccessKey"] not in log and token["SessionToken"] not in log
    iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
    iam.delete_user(UserName=name)

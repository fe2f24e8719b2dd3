"""The policy evaluator against AWS's documented evaluation semantics: the examples of the IAM
User Guide (policy evaluation logic, NotAction, NotResource, condition operators, set
operators, policy variables), session-policy intersection, trust policies and AWS's
AccessDenied wording. Table-driven: each row is a policy, a request and the outcome AWS gives.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from signalite.identity.policy import (
    Decision,
    Outcome,
    Policy,
    RequestContext,
    decide,
    decide_assume_role,
    decide_trust,
    parse_policy,
)

ACCOUNT = "123456789012"
OTHER = "210987654321"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"
CHANNEL = f"arn:aws:kinesisvideo:us-west-2:{ACCOUNT}:channel/demo/1700000000000"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC).timestamp()

ALLOW = Outcome.ALLOW
DENY = Outcome.EXPLICIT_DENY
IMPLICIT = Outcome.IMPLICIT_DENY


def ctx(action: str = "kinesisvideo:ConnectAsMaster", resource: str = CHANNEL, **changes: Any) -> RequestContext:
    """A request by IAM user alice over TLS from 203.0.113.7, changed by ``changes``."""
    base = RequestContext(action=action, resource=resource, principal_arn=ALICE, account=ACCOUNT, username="alice",
                          userid="AIDAALICE0000000000", source_ip="203.0.113.7", secure_transport=True,
                          current_time=NOW)
    return dataclasses.replace(base, **changes)


def policy(*statements: dict[str, Any], version: str | None = "2012-10-17", kind: str = "identity",
           name: str = "test") -> Policy:
    document: dict[str, Any] = {"Statement": list(statements)}
    if version is not None:
        document["Version"] = version
    return parse_policy(json.dumps(document), kind=kind, name=name)  # type: ignore[arg-type]


def allow(action: Any = "kinesisvideo:*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "kinesisvideo:*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


# --- AWS's "Policy evaluation logic" examples ----------------------------------------------

CARLOS = policy(
    {"Sid": "AllowS3ListRead", "Effect": "Allow",
     "Action": ["s3:GetBucketLocation", "s3:GetAccountPublicAccessBlock", "s3:ListAccessPoints",
                "s3:ListAllMyBuckets"],
     "Resource": "arn:aws:s3:::*"},
    {"Sid": "AllowS3Self", "Effect": "Allow", "Action": "s3:*",
     "Resource": ["arn:aws:s3:::carlossalazar/*", "arn:aws:s3:::carlossalazar"]},
    {"Sid": "DenyS3Logs", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::*log*"},
    name="carlos")

GET_LIST_NOT_REPORTS = policy(
    {"Sid": "AllowGetList", "Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"},
    {"Sid": "DenyReports", "Effect": "Deny", "Action": "iam:*Report", "Resource": "*"})


@pytest.mark.parametrize("pol, action, resource, outcome, sid", [
    # Carlos saves a file to carlossalazar-logs: the DenyS3Logs statement applies
    (CARLOS, "s3:PutObject", "arn:aws:s3:::carlossalazar-logs/file.txt", DENY, "DenyS3Logs"),
    # ... then to his own bucket: allowed by AllowS3Self
    (CARLOS, "s3:PutObject", "arn:aws:s3:::carlossalazar/file.txt", ALLOW, "AllowS3Self"),
    (CARLOS, "s3:ListAllMyBuckets", "arn:aws:s3:::anything", ALLOW, "AllowS3ListRead"),
    (CARLOS, "s3:PutObject", "arn:aws:s3:::someone-else/file.txt", IMPLICIT, None),
    # AllowGetList / DenyReports: Get and List allowed, other IAM actions implicitly denied,
    # *Report actions explicitly denied even though Get* also matches them
    (GET_LIST_NOT_REPORTS, "iam:GetUser", "*", ALLOW, "AllowGetList"),
    (GET_LIST_NOT_REPORTS, "iam:ListUsers", "*", ALLOW, "AllowGetList"),
    (GET_LIST_NOT_REPORTS, "iam:CreatePolicy", "*", IMPLICIT, None),
    (GET_LIST_NOT_REPORTS, "iam:GetOrganizationsAccessReport", "*", DENY, "DenyReports"),
    (GET_LIST_NOT_REPORTS, "iam:GenerateCredentialReport", "*", DENY, "DenyReports"),
])
def test_evaluation_logic_examples(pol, action, resource, outcome, sid):
    decision = decide(ctx(action, resource), [pol])
    assert decision.outcome is outcome
    assert (decision.statement.sid if decision.statement else None) == sid


def test_explicit_deny_in_any_policy_overrides_allows_in_others():
    allows = policy(allow(), name="allows")
    denies = policy(deny("kinesisvideo:ConnectAsMaster"), name="denies")
    decision = decide(ctx(), [allows, denies])
    assert decision.outcome is DENY and decision.statement is not None
    assert decision.statement.policy_name == "denies"
    assert decide(ctx("kinesisvideo:ConnectAsViewer"), [allows, denies]).outcome is ALLOW


def test_no_policies_is_an_implicit_deny():
    assert decide(ctx(), []) == Decision(IMPLICIT, None, "identity")


# --- Action / NotAction / Resource / NotResource and wildcards -----------------------------

@pytest.mark.parametrize("statement, action, resource, outcome", [
    # NotAction with Allow: every S3 action on S3 resources except DeleteBucket
    (allow(None, "arn:aws:s3:::*") | {"NotAction": "s3:DeleteBucket"},
     "s3:GetObject", "arn:aws:s3:::bucket/key", ALLOW),
    (allow(None, "arn:aws:s3:::*") | {"NotAction": "s3:DeleteBucket"},
     "s3:DeleteBucket", "arn:aws:s3:::bucket", IMPLICIT),
    # ... and ListAllMyBuckets needs "*", which arn:aws:s3:::* does not cover
    (allow(None, "arn:aws:s3:::*") | {"NotAction": "s3:DeleteBucket"},
     "s3:ListAllMyBuckets", "*", IMPLICIT),
    # NotAction iam:* on *: everything but IAM
    (allow(action=None) | {"NotAction": "iam:*"}, "kinesisvideo:ConnectAsMaster", CHANNEL, ALLOW),
    (allow(action=None) | {"NotAction": "iam:*"}, "iam:CreateUser", "*", IMPLICIT),
    # NotAction with Deny: denies what is not listed
    (deny(action=None) | {"NotAction": "kinesisvideo:Describe*"}, "kinesisvideo:DeleteSignalingChannel", CHANNEL,
     DENY),
    (deny(action=None) | {"NotAction": "kinesisvideo:Describe*"}, "kinesisvideo:DescribeSignalingChannel",
     CHANNEL, IMPLICIT),
    # NotResource with Deny: everything outside the payroll folder is denied
    (deny("s3:*", None) | {"NotResource": ["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"]},
     "s3:GetObject", "arn:aws:s3:::HRBucket/Other/x", DENY),
    (deny("s3:*", None) | {"NotResource": ["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"]},
     "s3:GetObject", "arn:aws:s3:::HRBucket/Payroll/x", IMPLICIT),
    # NotResource with Allow
    (allow("kinesisvideo:*", None) | {"NotResource": CHANNEL}, "kinesisvideo:ConnectAsMaster",
     CHANNEL.replace("demo", "other"), ALLOW),
    (allow("kinesisvideo:*", None) | {"NotResource": CHANNEL}, "kinesisvideo:ConnectAsMaster", CHANNEL, IMPLICIT),
    # actions compare without case, wildcards * and ?
    (allow("KinesisVideo:connectasmaster"), "kinesisvideo:ConnectAsMaster", CHANNEL, ALLOW),
    (allow("kinesisvideo:ConnectAs*"), "kinesisvideo:ConnectAsViewer", CHANNEL, ALLOW),
    (allow("kinesisvideo:*Channel*"), "kinesisvideo:DescribeSignalingChannel", CHANNEL, ALLOW),
    (allow("kinesisvideo:Connect?sMaster"), "kinesisvideo:ConnectAsMaster", CHANNEL, ALLOW),
    (allow("kinesisvideo:Connect?Master"), "kinesisvideo:ConnectAsMaster", CHANNEL, IMPLICIT),
    (allow("*"), "iam:CreateUser", "*", ALLOW),
    (allow("kinesisvideo:*"), "kinesisvideoX:Get", "*", IMPLICIT),
    (allow(["iam:GetUser", "kinesisvideo:Connect*"]), "kinesisvideo:ConnectAsViewer", CHANNEL, ALLOW),
    # resources compare with case; * within a component, ? exactly one character
    (allow(resource=CHANNEL.replace("demo", "Demo")), "kinesisvideo:ConnectAsMaster", CHANNEL, IMPLICIT),
    (allow(resource=f"arn:aws:kinesisvideo:*:{ACCOUNT}:channel/*"), "kinesisvideo:ConnectAsMaster", CHANNEL, ALLOW),
    (allow(resource=f"arn:aws:kinesisvideo:*:{OTHER}:channel/*"), "kinesisvideo:ConnectAsMaster", CHANNEL,
     IMPLICIT),
    (allow(resource=f"arn:aws:kinesisvideo:us-west-?:{ACCOUNT}:channel/demo/*"), "kinesisvideo:ConnectAsMaster",
     CHANNEL, ALLOW),
    (allow(resource=f"arn:aws:kinesisvideo:us-west-2:{ACCOUNT}:channel/demo/?"), "kinesisvideo:ConnectAsMaster",
     CHANNEL, IMPLICIT),
    (allow(resource="arn:aws:kinesisvideo:*"), "kinesisvideo:ConnectAsMaster", CHANNEL, ALLOW),
    (allow(resource=f"arn:aws:kinesisvideo:us-west-2:{ACCOUNT}:stream/*"), "kinesisvideo:ConnectAsMaster",
     CHANNEL, IMPLICIT),
    (allow(resource=f"arn:aws:kinesisvideo:us-west-2:{ACCOUNT}:channel/*"), "kinesisvideo:ListSignalingChannels",
     "*", IMPLICIT),
    (allow(resource=["arn:aws:s3:::a", CHANNEL]), "kinesisvideo:ConnectAsMaster", CHANNEL, ALLOW),
    # the resource part may hold "/" and ":" — a * there spans both (AWS's S3 */test/* example)
    (allow("s3:*", "arn:aws:s3:::bucket/*/test/*"), "s3:GetObject", "arn:aws:s3:::bucket/1/2/test/3/o.jpg", ALLOW),
    (allow("s3:*", "arn:aws:s3:::bucket/*/test/*"), "s3:GetObject", "arn:aws:s3:::bucket//test/", ALLOW),
    (allow("s3:*", "arn:aws:s3:::bucket/*/test/*"), "s3:GetObject", "arn:aws:s3:::bucket/1-test/o.jpg", IMPLICIT),
    (allow("logs:*", "arn:aws:logs:us-east-1:1:log-group:g:*"), "logs:PutLogEvents",
     "arn:aws:logs:us-east-1:1:log-group:g:log-stream:s", ALLOW),
])
def test_action_and_resource_matching(statement, action, resource, outcome):
    statement = {k: v for k, v in statement.items() if v is not None}
    assert decide(ctx(action, resource), [policy(statement)]).outcome is outcome


# --- Condition operators ------------------------------------------------------------------

def cond(block: dict[str, Any], **context: Any) -> Outcome:
    """The outcome of an Allow-everything statement guarded by ``block``."""
    return decide(ctx(**context), [policy(allow(Condition=block))]).outcome


@pytest.mark.parametrize("block, context, outcome", [
    # string operators; several values are OR'ed
    ({"StringEquals": {"aws:username": "alice"}}, {}, ALLOW),
    ({"StringEquals": {"aws:username": "Alice"}}, {}, IMPLICIT),
    ({"StringEquals": {"aws:username": ["bob", "alice"]}}, {}, ALLOW),
    ({"StringNotEquals": {"aws:username": ["bob", "carol"]}}, {}, ALLOW),
    ({"StringNotEquals": {"aws:username": ["bob", "alice"]}}, {}, IMPLICIT),
    ({"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}, {}, ALLOW),
    ({"StringNotEqualsIgnoreCase": {"aws:username": "ALICE"}}, {}, IMPLICIT),
    ({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/a*"}}, {}, ALLOW),
    ({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/?lice"}}, {}, ALLOW),
    ({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/A*"}}, {}, IMPLICIT),
    ({"StringNotLike": {"aws:PrincipalArn": "*:user/b*"}}, {}, ALLOW),
    # condition key names compare without case, operator names too
    ({"StringEquals": {"AWS:USERNAME": "alice"}}, {}, ALLOW),
    ({"stringequals": {"aws:username": "alice"}}, {}, ALLOW),
    # several keys, several operators: all must hold
    ({"StringEquals": {"aws:username": "alice", "aws:PrincipalAccount": ACCOUNT}}, {}, ALLOW),
    ({"StringEquals": {"aws:username": "alice", "aws:PrincipalAccount": OTHER}}, {}, IMPLICIT),
    ({"StringEquals": {"aws:username": "alice"}, "Bool": {"aws:SecureTransport": "false"}}, {}, IMPLICIT),
    ({"StringEquals": {"aws:userid": "AIDAALICE0000000000"}}, {}, ALLOW),
    ({"StringEquals": {"aws:PrincipalType": "User"}}, {}, ALLOW),
    # Bool (a JSON boolean is the same as its string)
    ({"Bool": {"aws:SecureTransport": "true"}}, {}, ALLOW),
    ({"Bool": {"aws:SecureTransport": True}}, {}, ALLOW),
    ({"Bool": {"aws:SecureTransport": "false"}}, {"secure_transport": False}, ALLOW),
    ({"Bool": {"aws:SecureTransport": "TRUE"}}, {"secure_transport": False}, IMPLICIT),
    # IpAddress / NotIpAddress, IPv4 and IPv6, a bare address is /32
    ({"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}, {}, ALLOW),
    ({"IpAddress": {"aws:SourceIp": "203.0.113.7"}}, {}, ALLOW),
    ({"IpAddress": {"aws:SourceIp": "203.0.113.8"}}, {}, IMPLICIT),
    ({"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:DB8:1234:5678::/64"]}},
     {"source_ip": "2001:db8:1234:5678::9"}, ALLOW),
    ({"IpAddress": {"aws:SourceIp": "2001:DB8::/32"}}, {}, IMPLICIT),
    ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {}, ALLOW),
    ({"NotIpAddress": {"aws:SourceIp": "203.0.0.0/8"}}, {}, IMPLICIT),
    # Date, ISO 8601 or epoch, against aws:CurrentTime / aws:EpochTime
    ({"DateGreaterThan": {"aws:CurrentTime": "2024-01-01T00:00:00Z"}}, {}, ALLOW),
    ({"DateLessThan": {"aws:CurrentTime": "2024-01-01T00:00:00Z"}}, {}, IMPLICIT),
    ({"DateGreaterThan": {"aws:CurrentTime": "2024-06-01T11:59:59Z"},
      "DateLessThan": {"aws:CurrentTime": "2024-06-01T12:00:01Z"}}, {}, ALLOW),
    ({"DateLessThanEquals": {"aws:CurrentTime": "2024-06-01T14:00:00+02:00"}}, {}, ALLOW),
    ({"DateLessThan": {"aws:CurrentTime": "2024-06-01T14:00:00+02:00"}}, {}, IMPLICIT),
    ({"DateEquals": {"aws:CurrentTime": "2024-06-01T12:00:00Z"}}, {}, ALLOW),
    ({"DateNotEquals": {"aws:CurrentTime": "2024-06-01T12:00:00Z"}}, {}, IMPLICIT),
    ({"DateGreaterThanEquals": {"aws:CurrentTime": str(int(NOW))}}, {}, ALLOW),
    ({"DateGreaterThan": {"aws:EpochTime": "2024-05"}}, {}, ALLOW),
    ({"DateLessThan": {"aws:CurrentTime": "2025-01"}}, {}, ALLOW),
    ({"DateLessThan": {"aws:TokenIssueTime": "2024-06-01"}}, {"extra": {"aws:tokenissuetime": "2024-05-31T09:00:00Z"}},
     ALLOW),
    # Numeric
    ({"NumericLessThanEquals": {"aws:EpochTime": int(NOW)}}, {}, ALLOW),
    ({"NumericLessThan": {"aws:EpochTime": int(NOW)}}, {}, IMPLICIT),
    ({"NumericGreaterThan": {"s3:max-keys": "10"}}, {"extra": {"s3:max-keys": "11"}}, ALLOW),
    ({"NumericGreaterThanEquals": {"s3:max-keys": "10.5"}}, {"extra": {"s3:max-keys": "10"}}, IMPLICIT),
    ({"NumericEquals": {"s3:max-keys": ["1", "2"]}}, {"extra": {"s3:max-keys": "2.0"}}, ALLOW),
    ({"NumericNotEquals": {"s3:max-keys": "2"}}, {"extra": {"s3:max-keys": "3"}}, ALLOW),
    ({"NumericEquals": {"s3:max-keys": "2"}}, {"extra": {"s3:max-keys": "two"}}, IMPLICIT),
    # ARN operators check the six components one by one (AWS's someservice example):
    # StringLike's * crosses colons, ArnLike's does not
    ({"StringLike": {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}},
     {"extra": {"aws:sourcearn": "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/doc"}},
     ALLOW),
    ({"ArnLike": {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}},
     {"extra": {"aws:sourcearn": "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/doc"}},
     IMPLICIT),
    ({"ArnLike": {"aws:SourceArn": "arn:aws:someservice:*:111122223333:finance/*"}},
     {"extra": {"aws:sourcearn": "arn:aws:someservice:us-east-2:111122223333:finance/a:b"}}, ALLOW),
    ({"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/*"}}, {}, ALLOW),
    ({"ArnNotEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/*"}}, {}, IMPLICIT),
    ({"ArnNotLike": {"aws:PrincipalArn": f"arn:aws:iam::{OTHER}:*"}}, {}, ALLOW),
    ({"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}"}}, {}, IMPLICIT),
    # BinaryEquals compares the key's bytes with the base-64 value
    ({"BinaryEquals": {"custom:blob": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}},
     {"extra": {"custom:blob": "BinaryValueInBase64"}}, ALLOW),
    # tags
    ({"StringEquals": {"aws:ResourceTag/team": "blue"}}, {"resource_tags": {"team": "blue"}}, ALLOW),
    ({"StringEquals": {"aws:ResourceTag/Team": "blue"}}, {"resource_tags": {"team": "blue"}}, ALLOW),
    ({"StringEquals": {"aws:ResourceTag/team": "blue"}}, {"resource_tags": {"team": "red"}}, IMPLICIT),
    ({"StringEquals": {"aws:RequestTag/env": "dev"}}, {"request_tags": {"env": "dev"}}, ALLOW),
    ({"StringEquals": {"aws:RequestTag/env": "dev"}}, {"resource_tags": {"env": "dev"}}, IMPLICIT),
    # extra keys (looked up by lower-cased name)
    ({"StringEquals": {"aws:RequestedRegion": "us-west-2"}}, {"extra": {"aws:requestedregion": "us-west-2"}}, ALLOW),
    ({"StringEquals": {"kinesisvideo:Role": ["MASTER"]}}, {"extra": {"kinesisvideo:role": ["VIEWER"]}}, IMPLICIT),
    # an empty operator block constrains nothing
    ({"StringEquals": {}}, {}, ALLOW),
])
def test_condition_operators(block, context, outcome):
    assert cond(block, **context) is outcome


@pytest.mark.parametrize("operator, outcome", [
    # a missing key: false, except negated operators, ...IfExists and Null
    ("StringEquals", IMPLICIT), ("StringNotEquals", ALLOW),
    ("StringEqualsIgnoreCase", IMPLICIT), ("StringNotEqualsIgnoreCase", ALLOW),
    ("StringLike", IMPLICIT), ("StringNotLike", ALLOW),
    ("ArnLike", IMPLICIT), ("ArnNotLike", ALLOW), ("ArnEquals", IMPLICIT), ("ArnNotEquals", ALLOW),
    ("NumericEquals", IMPLICIT), ("NumericNotEquals", ALLOW), ("NumericLessThan", IMPLICIT),
    ("DateEquals", IMPLICIT), ("DateNotEquals", ALLOW), ("DateGreaterThan", IMPLICIT),
    ("IpAddress", IMPLICIT), ("NotIpAddress", ALLOW),
    ("Bool", IMPLICIT), ("BinaryEquals", IMPLICIT),
    ("StringEqualsIfExists", ALLOW), ("StringNotEqualsIfExists", ALLOW), ("IpAddressIfExists", ALLOW),
    ("DateLessThanIfExists", ALLOW), ("BoolIfExists", ALLOW), ("ArnLikeIfExists", ALLOW),
    ("NumericGreaterThanIfExists", ALLOW),
])
def test_missing_key_follows_each_operators_documented_rule(operator, outcome):
    base = operator.removesuffix("IfExists")
    value = ("1" if base.startswith("Numeric") else "2024-01-01" if base.startswith("Date")
             else "10.0.0.0/8" if "IpAddress" in base else "true" if base == "Bool"
             else "YQ==" if base == "BinaryEquals" else "x")
    assert cond({operator: {"custom:absent": value}}) is outcome
    # the same for a key the context models but this request lacks
    key = "aws:SourceIp" if "IpAddress" in base else "aws:username"
    assert cond({operator: {key: value}}, source_ip=None, username=None) is outcome


def test_if_exists_example_instance_type():
    # AWS's RunInstances example: StringLikeIfExists only tests the key where it exists
    pol = policy(allow("ec2:RunInstances", Condition={"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*"]}}))
    assert decide(ctx("ec2:RunInstances", "*"), [pol]).outcome is ALLOW  # an image: no instance type
    assert decide(ctx("ec2:RunInstances", "*", extra={"ec2:instancetype": "t2.micro"}), [pol]).outcome is ALLOW
    assert decide(ctx("ec2:RunInstances", "*", extra={"ec2:instancetype": "m5.large"}), [pol]).outcome is IMPLICIT


def test_deny_with_negated_if_exists_still_denies_when_the_key_is_missing():
    pol = policy(allow(), deny(Condition={"StringNotEqualsIfExists": {"aws:ResourceTag/team": "blue"}}))
    assert decide(ctx(), [pol]).outcome is DENY
    assert decide(ctx(resource_tags={"team": "red"}), [pol]).outcome is DENY
    assert decide(ctx(resource_tags={"team": "blue"}), [pol]).outcome is ALLOW


def test_deny_without_mfa_example():
    # DenyAllUsersNotUsingMFA: BoolIfExists false -> a request without the key is denied too
    pol = policy(allow("*"), {"Sid": "DenyAllUsersNotUsingMFA", "Effect": "Deny", "NotAction": "iam:*",
                              "Resource": "*", "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}})
    assert decide(ctx(), [pol]).outcome is DENY
    assert decide(ctx(extra={"aws:multifactorauthpresent": "false"}), [pol]).outcome is DENY
    assert decide(ctx(extra={"aws:multifactorauthpresent": "true"}), [pol]).outcome is ALLOW
    assert decide(ctx("iam:ListUsers", "*"), [pol]).outcome is ALLOW


@pytest.mark.parametrize("values, context, outcome", [
    ("true", {"source_ip": None}, ALLOW),   # Null true: the key is absent
    ("true", {}, IMPLICIT),
    ("false", {}, ALLOW),                   # Null false: the key is present
    ("false", {"source_ip": None}, IMPLICIT),
    (["true", "false"], {}, ALLOW),
])
def test_null(values, context, outcome):
    assert cond({"Null": {"aws:SourceIp": values}}, **context) is outcome


def test_null_token_issue_time_example():
    # "the user must not be using temporary credentials"
    block = {"Null": {"aws:TokenIssueTime": "true"}}
    assert cond(block) is ALLOW
    assert cond(block, extra={"aws:tokenissuetime": "2024-06-01T11:00:00Z"}) is IMPLICIT


# --- set operators: ForAllValues / ForAnyValue -------------------------------------------

TAGS = ["DataClass", "Owner"]


@pytest.mark.parametrize("operator, tag_keys, outcome", [
    # ForAllValues: every request value must match; no value at all is true
    ("ForAllValues:StringEquals", (), ALLOW),
    ("ForAllValues:StringEquals", ("DataClass",), ALLOW),
    ("ForAllValues:StringEquals", ("DataClass", "Owner"), ALLOW),
    ("ForAllValues:StringEquals", ("DataClass", "Dept"), IMPLICIT),
    # ForAnyValue: at least one must match; no value at all is false
    ("ForAnyValue:StringEquals", (), IMPLICIT),
    ("ForAnyValue:StringEquals", ("Dept", "SIC"), IMPLICIT),
    ("ForAnyValue:StringEquals", ("DataClass", "Dept"), ALLOW),
    # negated: each request value is tested with the negated operator
    ("ForAllValues:StringNotEquals", (), ALLOW),
    ("ForAllValues:StringNotEquals", ("DataClass", "Owner"), IMPLICIT),
    ("ForAllValues:StringNotEquals", ("DataClass", "Dept"), IMPLICIT),
    ("ForAllValues:StringNotEquals", ("Dept",), ALLOW),
    ("ForAllValues:StringNotEquals", ("Dept", "SIC"), ALLOW),
    ("ForAnyValue:StringNotEquals", (), IMPLICIT),
    ("ForAnyValue:StringNotEquals", ("DataClass", "Owner"), IMPLICIT),
    ("ForAnyValue:StringNotEquals", ("Dept", "DataClass"), ALLOW),
    ("ForAnyValue:StringNotEquals", ("Dept", "SIC"), ALLOW),
    # wildcards and case with set operators
    ("ForAllValues:StringLike", ("DataClass", "Owner"), ALLOW),
    ("ForAnyValue:StringEqualsIgnoreCase", ("dataclass",), ALLOW),
    ("ForAllValues:StringEqualsIfExists", (), ALLOW),
    ("ForAnyValue:StringEqualsIfExists", (), ALLOW),
    # no set operator on a multivalued key: any value matches / none matches
    ("StringEquals", ("Dept", "Owner"), ALLOW),
    ("StringNotEquals", ("Dept", "Owner"), IMPLICIT),
    ("StringNotEquals", ("Dept", "SIC"), ALLOW),
])
def test_set_operators_over_tag_keys(operator, tag_keys, outcome):
    assert cond({operator: {"aws:TagKeys": TAGS}}, tag_keys=tag_keys) is outcome


def test_for_all_values_example_requested_attributes():
    # AWS's DynamoDB example: only PostDateTime, Message and Tags may be requested
    block = {"ForAllValues:StringLike": {"dynamodb:requestedAttributes": ["PostDateTime", "Message", "Tags"]}}
    assert cond(block, extra={"dynamodb:requestedattributes": ["PostDateTime", "Message"]}) is ALLOW
    assert cond(block, extra={"dynamodb:requestedattributes": ["PostDateTime", "UserName"]}) is IMPLICIT
    assert cond(block, extra={"dynamodb:requestedattributes": []}) is ALLOW
    deny_block = {"ForAnyValue:StringLike": {"dynamodb:requestedAttributes": ["ID", "PostDateTime"]}}
    pol = policy(allow("*"), deny("*", Condition=deny_block))
    assert decide(ctx(extra={"dynamodb:requestedattributes": ["UserName", "Message", "PostDateTime"]}),
                  [pol]).outcome is DENY
    assert decide(ctx(extra={"dynamodb:requestedattributes": ["UserName"]}), [pol]).outcome is ALLOW


def test_for_all_values_with_null_false_requires_the_key():
    block = {"ForAllValues:StringLike": {"aws:TagKeys": "key1*"}, "Null": {"aws:TagKeys": "false"}}
    assert cond(block) is IMPLICIT
    assert cond(block, tag_keys=("key1a", "key1b")) is ALLOW
    assert cond(block, tag_keys=("key1a", "key2")) is IMPLICIT


# --- policy variables ---------------------------------------------------------------------

@pytest.mark.parametrize("statement, context, outcome", [
    # ${aws:username} in the resource part of the ARN
    (allow(resource=f"arn:aws:kinesisvideo:*:{ACCOUNT}:channel/${{aws:username}}-*"), {"resource":
     f"arn:aws:kinesisvideo:us-west-2:{ACCOUNT}:channel/alice-cam/1"}, ALLOW),
    (allow(resource=f"arn:aws:kinesisvideo:*:{ACCOUNT}:channel/${{aws:username}}-*"), {"resource":
     f"arn:aws:kinesisvideo:us-west-2:{ACCOUNT}:channel/bob-cam/1"}, IMPLICIT),
    # AWS's access-key example: iam:*AccessKey* on the caller's own user
    (allow("iam:*AccessKey*", f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}"),
     {"action": "iam:CreateAccessKey", "resource": ALICE}, ALLOW),
    (allow("iam:*AccessKey*", f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}"),
     {"action": "iam:CreateAccessKey", "resource": f"arn:aws:iam::{ACCOUNT}:user/bob"}, IMPLICIT),
    # a substituted value is literal: a * in it is no wildcard
    (allow("s3:*", "arn:aws:s3:::bucket/${aws:username}/x"),
     {"action": "s3:GetObject", "resource": "arn:aws:s3:::bucket/al*/x", "username": "al*"}, ALLOW),
    (allow("s3:*", "arn:aws:s3:::bucket/${aws:username}/x"),
     {"action": "s3:GetObject", "resource": "arn:aws:s3:::bucket/alice/x", "username": "al*"}, IMPLICIT),
    # in condition values: string and ARN operators
    (allow(Condition={"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}}),
     {"resource_tags": {"owner": "alice"}}, ALLOW),
    (allow(Condition={"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}}),
     {"resource_tags": {"owner": "bob"}}, IMPLICIT),
    (allow(Condition={"StringLike": {"s3:prefix": ["", "home/", "home/${aws:username}/*"]}}),
     {"extra": {"s3:prefix": "home/alice/docs"}}, ALLOW),
    (allow(Condition={"StringLike": {"s3:prefix": ["", "home/", "home/${aws:username}/*"]}}),
     {"extra": {"s3:prefix": "home/bob/docs"}}, IMPLICIT),
    (allow(Condition={"StringEquals": {"aws:ResourceTag/acct": "${aws:PrincipalAccount}"}}),
     {"resource_tags": {"acct": ACCOUNT}}, ALLOW),
    (allow(Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:user/*"}}), {}, ALLOW),
    (allow(Condition={"StringEquals": {"aws:ResourceTag/id": "${aws:userid}"}}),
     {"resource_tags": {"id": "AIDAALICE0000000000"}}, ALLOW),
    (allow(Condition={"StringEquals": {"aws:ResourceTag/ip": "${aws:SourceIp}"}}),
     {"resource_tags": {"ip": "203.0.113.7"}}, ALLOW),
    (allow(Condition={"StringEqualsIgnoreCase": {"aws:ResourceTag/owner": "${aws:username}"}}),
     {"resource_tags": {"owner": "ALICE"}}, ALLOW),
    (allow(Condition={"Bool": {"custom:flag": "${aws:SecureTransport}"}}), {"extra": {"custom:flag": "true"}}, ALLOW),
    # a variable without a value makes the statement not apply; a default fills in
    (allow("s3:*", "arn:aws:s3:::b/${aws:username}"), {"action": "s3:GetObject", "resource": "arn:aws:s3:::b/",
                                                        "username": None}, IMPLICIT),
    (allow("s3:*", "arn:aws:s3:::b/${aws:username, 'anon'}"),
     {"action": "s3:GetObject", "resource": "arn:aws:s3:::b/anon", "username": None}, ALLOW),
    (allow("s3:*", "arn:aws:s3:::b/${aws:username, 'anon'}"),
     {"action": "s3:GetObject", "resource": "arn:aws:s3:::b/alice"}, ALLOW),
    (allow(Condition={"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}}),
     {"resource_tags": {"owner": ""}, "username": None}, IMPLICIT),
    # a multivalued key is never a variable
    (allow(Condition={"StringEquals": {"aws:ResourceTag/k": "${aws:TagKeys}"}}),
     {"resource_tags": {"k": "a"}, "tag_keys": ("a",)}, IMPLICIT),
    # ${*}, ${?} and ${$} stand for the characters themselves
    (allow("s3:*", "arn:aws:s3:::b/${*}"), {"action": "s3:GetObject", "resource": "arn:aws:s3:::b/*"}, ALLOW),
    (allow("s3:*", "arn:aws:s3:::b/${*}"), {"action": "s3:GetObject", "resource": "arn:aws:s3:::b/x"}, IMPLICIT),
    (allow("s3:*", "arn:aws:s3:::b/${?}${$}"), {"action": "s3:GetObject", "resource": "arn:aws:s3:::b/?$"}, ALLOW),
    (allow(Condition={"StringLike": {"custom:k": "a${*}b*"}}), {"extra": {"custom:k": "a*bc"}}, ALLOW),
    (allow(Condition={"StringLike": {"custom:k": "a${*}b*"}}), {"extra": {"custom:k": "axbc"}}, IMPLICIT),
    # the typed operators take no variables: the text stays as written
    (allow(Condition={"NumericEquals": {"custom:n": "1"}}), {"extra": {"custom:n": "1"}}, ALLOW),
])
def test_policy_variables(statement, context, outcome):
    assert decide(ctx(**context), [policy(statement)]).outcome is outcome


def test_variables_are_text_before_version_2012_10_17():
    for version in ("2008-10-17", None):
        literal = policy(allow("s3:*", "arn:aws:s3:::b/${aws:username}"), version=version)
        assert decide(ctx("s3:GetObject", "arn:aws:s3:::b/alice"), [literal]).outcome is IMPLICIT
        assert decide(ctx("s3:GetObject", "arn:aws:s3:::b/${aws:username}"), [literal]).outcome is ALLOW
        in_condition = policy(allow(Condition={"StringEquals": {"aws:ResourceTag/o": "${aws:username}"}}),
                              version=version)
        assert decide(ctx(resource_tags={"o": "${aws:username}"}), [in_condition]).outcome is ALLOW


def test_current_time_variable():
    pol = policy(allow(Condition={"StringEquals": {"custom:at": "${aws:CurrentTime}"}}))
    assert decide(ctx(extra={"custom:at": "2024-06-01T12:00:00Z"}), [pol]).outcome is ALLOW


# --- session policies -----------------------------------------------------------------------

IDENTITY_ALL = policy(allow("kinesisvideo:*"), name="identity")
SESSION_VIEWER = policy(allow("kinesisvideo:ConnectAsViewer", CHANNEL), kind="session", name="session")


@pytest.mark.parametrize("identity, session, action, outcome, source", [
    # the intersection: both must allow
    ([IDENTITY_ALL], [SESSION_VIEWER], "kinesisvideo:ConnectAsViewer", ALLOW, "identity"),
    ([IDENTITY_ALL], [SESSION_VIEWER], "kinesisvideo:ConnectAsMaster", IMPLICIT, "session"),
    ([policy(allow("kinesisvideo:ConnectAsMaster"))], [SESSION_VIEWER], "kinesisvideo:ConnectAsViewer", IMPLICIT,
     "identity"),
    # several session policies (Policy and PolicyArns): any of them may allow
    ([IDENTITY_ALL], [SESSION_VIEWER, policy(allow("kinesisvideo:ConnectAsMaster"), kind="session")],
     "kinesisvideo:ConnectAsMaster", ALLOW, "identity"),
    # session policies present but empty: nothing is allowed (GetFederationToken without Policy)
    ([IDENTITY_ALL], [], "kinesisvideo:ConnectAsViewer", IMPLICIT, "session"),
    # no session policies: identity alone
    ([IDENTITY_ALL], None, "kinesisvideo:ConnectAsMaster", ALLOW, "identity"),
    # an explicit deny in a session policy wins
    ([IDENTITY_ALL], [policy(allow("*"), deny("kinesisvideo:ConnectAsViewer"), kind="session")],
     "kinesisvideo:ConnectAsViewer", DENY, "session"),
    # a session policy cannot grant what identity policies do not
    ([policy(allow("iam:*"))], [policy(allow("*"), kind="session")], "kinesisvideo:ConnectAsViewer", IMPLICIT,
     "identity"),
])
def test_session_policies_intersect(identity, session, action, outcome, source):
    decision = decide(ctx(action), identity, session)
    assert (decision.outcome, decision.source) == (outcome, source)


# --- messages ------------------------------------------------------------------------------

@pytest.mark.parametrize("decision, suffix", [
    (Decision(IMPLICIT, None, "identity"),
     " because no identity-based policy allows the kinesisvideo:ConnectAsMaster action"),
    (Decision(IMPLICIT, None, "session"), " because no session policy allows the kinesisvideo:ConnectAsMaster action"),
    (Decision(DENY, None, "identity"), " with an explicit deny in an identity-based policy"),
    (Decision(DENY, None, "session"), " with an explicit deny in a session policy"),
    (Decision(DENY, None, "trust"), " with an explicit deny in a resource-based policy"),
    (Decision(IMPLICIT, None, "trust"), ""),
])
def test_messages_use_aws_wording(decision, suffix):
    assert decision.message(ALICE, "kinesisvideo:ConnectAsMaster", CHANNEL) == (
        f"User: {ALICE} is not authorized to perform: kinesisvideo:ConnectAsMaster on resource: {CHANNEL}" + suffix)


def test_message_of_a_real_decision():
    decision = decide(ctx(), [policy(allow("kinesisvideo:ConnectAsViewer"))])
    assert decision.message(ALICE, "kinesisvideo:ConnectAsMaster", CHANNEL) == (
        f"User: {ALICE} is not authorized to perform: kinesisvideo:ConnectAsMaster on resource: {CHANNEL} "
        "because no identity-based policy allows the kinesisvideo:ConnectAsMaster action")
    assert not decision.allowed


# --- trust policies -----------------------------------------------------------------------

ROLE = f"arn:aws:iam::{ACCOUNT}:role/service/camera"
BOB = f"arn:aws:iam::{ACCOUNT}:user/bob"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/camera/device-1"
FEDERATED = f"arn:aws:sts::{ACCOUNT}:federated-user/browser"
FOREIGN = f"arn:aws:iam::{OTHER}:user/mallory"


def trust(principal: Any, *, effect: str = "Allow", key: str = "Principal", action: Any = "sts:AssumeRole",
          **extra: Any) -> Policy:
    return policy({"Effect": effect, key: principal, "Action": action, **extra}, kind="trust", name="trust")


def assume(principal_arn: str = ALICE, account: str = ACCOUNT, **changes: Any) -> RequestContext:
    return ctx("sts:AssumeRole", ROLE, principal_arn=principal_arn, account=account, **changes)


@pytest.mark.parametrize("pol, caller, outcome", [
    (trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}), assume(), ALLOW),
    (trust({"AWS": ACCOUNT}), assume(BOB), ALLOW),
    (trust({"AWS": ACCOUNT}), assume(FOREIGN, OTHER), IMPLICIT),
    (trust({"AWS": ALICE}), assume(), ALLOW),
    (trust({"AWS": ALICE}), assume(BOB), IMPLICIT),
    (trust({"AWS": [BOB, ALICE]}), assume(), ALLOW),
    (trust({"AWS": "*"}), assume(FOREIGN, OTHER), ALLOW),
    (trust("*"), assume(FOREIGN, OTHER), ALLOW),
    # a role ARN covers every session of that role (role chaining), whatever its path
    (trust({"AWS": f"arn:aws:iam::{ACCOUNT}:role/other/path/camera"}), assume(SESSION), ALLOW),
    (trust({"AWS": f"arn:aws:iam::{ACCOUNT}:role/display"}), assume(SESSION), IMPLICIT),
    (trust({"AWS": SESSION}), assume(SESSION), ALLOW),
    (trust({"AWS": FEDERATED}), assume(FEDERATED), ALLOW),
    # Service and Federated principals are never Signalite's callers
    (trust({"Service": "ec2.amazonaws.com"}), assume(), IMPLICIT),
    (trust({"Federated": "cognito-identity.amazonaws.com"}), assume(), IMPLICIT),
    (trust({"AWS": ALICE, "Service": "ec2.amazonaws.com"}), assume(), ALLOW),
    # the action must match, and conditions apply
    (trust({"AWS": ALICE}, action="sts:TagSession"), assume(), IMPLICIT),
    (trust({"AWS": ALICE}, action="sts:AssumeRole*"), assume(), ALLOW),
    (trust({"AWS": ALICE}, Condition={"IpAddress": {"aws:SourceIp": "198.51.100.0/24"}}), assume(), IMPLICIT),
    (trust({"AWS": ALICE}, Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}}), assume(), ALLOW),
    (trust({"AWS": ACCOUNT}, Condition={"StringEquals": {"aws:username": "alice"}}), assume(BOB, username="bob"),
     IMPLICIT),
    # explicit deny
    (policy({"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "Principal": {"AWS": BOB}, "Action": "sts:AssumeRole"}, kind="trust"), assume(BOB),
     DENY),
    (policy({"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "Principal": {"AWS": BOB}, "Action": "sts:AssumeRole"}, kind="trust"), assume(), ALLOW),
    # NotPrincipal with Deny: everyone is denied unless every level of the caller is named
    (policy({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "NotPrincipal": {"AWS": [ALICE, f"arn:aws:iam::{ACCOUNT}:root"]},
             "Action": "sts:AssumeRole"}, kind="trust"), assume(), ALLOW),
    (policy({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "NotPrincipal": {"AWS": [ALICE, f"arn:aws:iam::{ACCOUNT}:root"]},
             "Action": "sts:AssumeRole"}, kind="trust"), assume(BOB), DENY),
    (policy({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "NotPrincipal": {"AWS": ALICE}, "Action": "sts:AssumeRole"}, kind="trust"), assume(),
     DENY),  # the account is not named, so Alice's account level is denied
    (policy({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "NotPrincipal": {"AWS": [SESSION, f"arn:aws:iam::{ACCOUNT}:role/camera", ACCOUNT]},
             "Action": "sts:AssumeRole"}, kind="trust"), assume(SESSION), ALLOW),
    (policy({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "NotPrincipal": {"AWS": [SESSION, ACCOUNT]},
             "Action": "sts:AssumeRole"}, kind="trust"), assume(SESSION), DENY),
])
def test_trust_policies(pol, caller, outcome):
    decision = decide_trust(caller, pol)
    assert decision.outcome is outcome
    assert decision.source == "trust"


@pytest.mark.parametrize("trust_policy, caller, identity, session, outcome, source", [
    # the trust policy names Alice: no identity policy needed in the role's account
    (trust({"AWS": ALICE}), assume(), [], None, ALLOW, "trust"),
    # it only names the account: Alice's identity policy must allow sts:AssumeRole on the role
    (trust({"AWS": ACCOUNT}), assume(), [], None, IMPLICIT, "identity"),
    (trust({"AWS": ACCOUNT}), assume(), [policy(allow("sts:AssumeRole", ROLE))], None, ALLOW, "identity"),
    (trust({"AWS": ACCOUNT}), assume(), [policy(allow("sts:AssumeRole", ROLE.replace("camera", "x")))], None,
     IMPLICIT, "identity"),
    # cross-account: both sides must allow, even when the trust policy names the caller
    (trust({"AWS": FOREIGN}), assume(FOREIGN, OTHER), [], None, IMPLICIT, "identity"),
    (trust({"AWS": FOREIGN}), assume(FOREIGN, OTHER), [policy(allow("sts:AssumeRole", ROLE))], None, ALLOW,
     "identity"),
    # the trust policy must allow whatever the identity policies say
    (trust({"AWS": BOB}), assume(), [policy(allow("sts:*"))], None, IMPLICIT, "trust"),
    # an explicit deny in the caller's policies wins over a trust policy naming it
    (trust({"AWS": ALICE}), assume(), [policy(deny("sts:AssumeRole"))], None, DENY, "identity"),
    # a role named by its role ARN is still limited by the session's policies
    (trust({"AWS": f"arn:aws:iam::{ACCOUNT}:role/camera"}), assume(SESSION), [], [], IMPLICIT, "session"),
    (trust({"AWS": f"arn:aws:iam::{ACCOUNT}:role/camera"}), assume(SESSION), [], None, ALLOW, "trust"),
    # ... a session named by its own ARN is not
    (trust({"AWS": SESSION}), assume(SESSION), [], [], ALLOW, "trust"),
])
def test_assume_role_combines_trust_and_identity(trust_policy, caller, identity, session, outcome, source):
    decision = decide_assume_role(caller, identity, trust_policy, session)
    assert (decision.outcome, decision.source) == (outcome, source)


def test_trust_denial_message_is_aws_plain_form():
    decision = decide_trust(assume(BOB), trust({"AWS": ALICE}))
    assert decision.message(BOB, "sts:AssumeRole", ROLE) == (
        f"User: {BOB} is not authorized to perform: sts:AssumeRole on resource: {ROLE}")


# --- the parsed objects ---------------------------------------------------------------------

def test_policy_keeps_name_kind_version_and_canonical_document():
    text = '{ "Version": "2012-10-17", "Statement": {"Sid": "A1", "Effect": "Allow", "Resource": "*",' \
           ' "Action": "kinesisvideo:*", "Condition": {"NumericLessThan": {"s3:max-keys": 10.50}}}}'
    pol = parse_policy(text, name="inline")
    assert (pol.name, pol.kind, pol.version) == ("inline", "identity", "2012-10-17")
    assert pol.document == ('{"Statement":{"Action":"kinesisvideo:*","Condition":{"NumericLessThan":'
                            '{"s3:max-keys":10.5}},"Effect":"Allow","Resource":"*","Sid":"A1"},"Version":"2012-10-17"}')
    assert parse_policy(pol.document, name="inline") == pol
    (statement,) = pol.statements
    assert (statement.sid, statement.effect, statement.policy_name) == ("A1", "Allow", "inline")
    assert statement.actions == ("kinesisvideo:*",) and statement.resources == ("*",)


def test_decision_names_the_deciding_statement():
    pol = policy({"Sid": "First", **allow("iam:*")}, {"Sid": "Second", **allow("kinesisvideo:Connect*")})
    decision = decide(ctx(), [pol])
    assert decision.allowed and decision.statement is pol.statements[1]
    assert decision.statement.index == 1 and decision.statement.sid == "Second"

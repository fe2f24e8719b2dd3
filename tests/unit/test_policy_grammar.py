"""Which documents IAM refuses as MalformedPolicyDocument, with the reason it gives, and which it
accepts: identity policies (PutUserPolicy/CreatePolicy), trust policies (CreateRole) and session
policies (AssumeRole/GetFederationToken)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from signalite.identity.policy import MalformedPolicy, parse_policy

V = "2012-10-17"
OK_STATEMENT = {"Effect": "Allow", "Action": "kinesisvideo:ConnectAsMaster", "Resource": "*"}
TRUST_STATEMENT = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                   "Action": "sts:AssumeRole"}


def doc(*statements: Any, **top: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"Version": V, "Statement": list(statements) if len(statements) != 1 else statements[0]}
    body.update(top)
    return {k: v for k, v in body.items() if v is not None}


def st(**changes: Any) -> dict[str, Any]:
    """OK_STATEMENT with ``changes``; a value of None removes the element."""
    out = {**OK_STATEMENT, **changes}
    return {k: v for k, v in out.items() if v is not None}


def reason_of(document: Any, kind: str = "identity", **options: Any) -> str:
    text = document if isinstance(document, str) else json.dumps(document)
    with pytest.raises(MalformedPolicy) as caught:
        parse_policy(text, kind=kind, **options)  # type: ignore[arg-type]
    assert str(caught.value) == caught.value.reason
    assert isinstance(caught.value, ValueError)
    return caught.value.reason


SYNTAX = "Syntax errors in policy."
LEGACY = "The policy failed legacy parsing"


@pytest.mark.parametrize("document, reason", [
    # JSON and shapes
    ("This is not a json document", SYNTAX),
    ("", SYNTAX),
    ('{"Version": "2012-10-17", "Statement": [', SYNTAX),
    ("[]", SYNTAX),
    ('"just a string"', SYNTAX),
    ({"Version": V}, SYNTAX),
    ({"Version": V, "Statement": []}, SYNTAX),
    ({"Version": V, "Statement": ["afd"]}, SYNTAX),
    ({"Version": V, "Statement": "afd"}, SYNTAX),
    ({"Version": "2013-10-17", "Statement": OK_STATEMENT}, SYNTAX),
    ({"Version": 2012, "Statement": OK_STATEMENT}, SYNTAX),
    (doc(OK_STATEMENT, Extra="value"), SYNTAX),
    (doc(OK_STATEMENT, Id=["x"]), SYNTAX),
    (doc(OK_STATEMENT, Id={}), SYNTAX),
    (doc(st(Extra="value")), SYNTAX),
    (doc(st(Sid={})), SYNTAX),
    (doc(st(Sid=[])), SYNTAX),
    (doc(st(Effect="invalid")), SYNTAX),
    (doc(st(Effect=True)), SYNTAX),
    (doc(st(Resource={"a": "arn:aws:s3:::b"})), SYNTAX),
    (doc(st(Resource=["arn:aws:s3:::b", {}])), SYNTAX),
    (doc(st(Resource=5)), SYNTAX),
    (doc(st(Action=[[]])), SYNTAX),
    (doc(st(Action={})), SYNTAX),
    (doc(st(Action=None, NotAction="s3:ListBucket", Resource="arn:aws:s3:::b", NotResource=[])), SYNTAX),
    (doc(st(NotAction="s3:ListBucket")), SYNTAX),           # both Action and NotAction
    (doc(st(NotAction=[])), SYNTAX),
    (doc(st(NotResource="*")), SYNTAX),                     # both Resource and NotResource
    (doc(st(Condition=[])), SYNTAX),
    (doc(st(Condition="a")), SYNTAX),
    (doc(st(Condition={"a": "b"})), SYNTAX),
    (doc(st(Condition={"DateGreaterThan": "b"})), SYNTAX),
    (doc(st(Condition={"DateGreaterThan": []})), SYNTAX),
    (doc(st(Condition={"DateGreaterThan": {"a": {}}})), SYNTAX),
    (doc(st(Condition={"StringEquals": {"a": [{"b": 1}]}})), SYNTAX),
    (doc(st(Condition={"StringEquals": {"a": None}})), SYNTAX),
    (doc(st(Condition=[{"ForAllValues:StringEquals": {"aws:TagKeys": "Department"}}])), SYNTAX),
    # unknown condition operators
    (doc(st(Condition={"x": {"a": "1"}})), SYNTAX),
    (doc(st(Condition={"StringEqualz": {"aws:username": "a"}})), SYNTAX),
    (doc(st(Condition={"ForAnyValue::StringEqualsIfExists": {"a": "asf"}})), SYNTAX),
    (doc(st(Condition={"ForSomeValues:StringEquals": {"a": "asf"}})), SYNTAX),
    (doc(st(Condition={"NullIfExists": {"aws:username": "true"}})), SYNTAX),
    (doc(st(Condition={"StringEqualsIfExistsIfExists": {"a": "b"}})), SYNTAX),
    (doc(st(Condition={"StringEquals": {"": "b"}})), SYNTAX),
    # Effect
    (doc(st(Effect=None)), "Missing required field Effect"),
    (doc(st(Effect="denY")), LEGACY),
    (doc(st(Effect="allow", Action=None, Resource="arn:aws:s3:us-east-1::b")), LEGACY),
    (doc({"Sid": "sdf", **st(Effect="aLLow")}, {"Sid": "sdf", "Effect": "Allow"}), LEGACY),
    # legacy parsing of typed condition values and of ARN shapes
    (doc(st(Condition={"DateGreaterThan": {"a": "sdfdsf"}})), LEGACY),
    (doc(st(Condition={"DateLessThanEquals": {"a": "234-13"}})), LEGACY),
    (doc(st(Condition={"DateLessThanEquals": {"a": "2016-12-13t2:00:00.593194+1"}})), LEGACY),
    (doc(st(Condition={"DateLessThanEquals": {"a": "2016-13-13"}})), LEGACY),
    (doc(st(Condition={"DateLessThan": {"a": "9223372036854775808"}})), LEGACY),
    (doc(st(Condition={"NumericLessThan": {"a": "ten"}})), LEGACY),
    (doc(st(Condition={"NumericLessThan": {"a": "1_000"}})), LEGACY),
    (doc(st(Condition={"IpAddress": {"aws:SourceIp": "300.1.2.3/8"}})), LEGACY),
    (doc(st(Condition={"BinaryEquals": {"a": "not base64!"}})), LEGACY),
    (doc({"Effect": "Allow", "Condition": {"DateGreaterThan": {"a": "sdfdsf"}}}), LEGACY),
    (doc(st(Resource="arn:aws:s3::example_bucket")), LEGACY),
    (doc(st(Action=None, NotAction="s3:ListBucket", Resource="arn:aws::::example_bucket")), LEGACY),
    (doc(st(Resource="arn:aws::fdsasf")), LEGACY),
    (doc(st(Resource=None, NotResource="arn:aws:s3::example_bucket")), LEGACY),
    (doc(st(Resource="arn:aws:kinesisvideo:us-west-2:${aws:PrincipalAccount}:channel/*")), LEGACY),
    (doc(st(Resource="arn:aws:${aws:username}:us-west-2:1:channel/*")), LEGACY),
    # statement ids
    (doc({"Sid": "sdf", **OK_STATEMENT}, {"Sid": "sdf", "Effect": "Allow"}),
     "Statement IDs (SID) in a single policy must be unique."),
    (doc(st(Sid="has-dash")), "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the "
                              "regular expression [0-9A-Za-z]*"),
    # required elements
    (doc(st(Resource=None)), "Policy statement must contain resources."),
    (doc(st(Resource=[])), "Policy statement must contain resources."),
    (doc(st(Action="invalid", Resource=None)), "Policy statement must contain resources."),
    (doc(st(Action=None)), "Policy statement must contain actions."),
    (doc(st(Action=[])), "Policy statement must contain actions."),
    (doc({"Effect": "Allow"}), "Policy statement must contain actions."),
    (doc({"Effect": "Deny"}, OK_STATEMENT), "Policy statement must contain actions."),
    # resources
    (doc(st(Resource="invalid resource")), 'Resource invalid resource must be in ARN format or "*".'),
    (doc(st(Resource="")), 'Resource  must be in ARN format or "*".'),
    (doc(st(Resource=["adf"])), 'Resource adf must be in ARN format or "*".'),
    (doc(st(Action="s:3:ListBucket", Resource="sdfsadf")), 'Resource sdfsadf must be in ARN format or "*".'),
    (doc(st(Action=None, NotAction="s3s:ListBucket", Resource="a:bsdfdsafsad")),
     'Partition "bsdfdsafsad" is not valid for resource "arn:bsdfdsafsad:*:*:*:*".'),
    (doc(st(Resource="a:b:cadfsdf")), 'Partition "b" is not valid for resource "arn:b:cadfsdf:*:*:*".'),
    (doc(st(Resource="a:b:c:d:e:f:g:h")), 'Partition "b" is not valid for resource "arn:b:c:d:e:f:g:h".'),
    (doc(st(Resource="aws:s3:::example_bucket")),
     'Partition "s3" is not valid for resource "arn:s3:::example_bucket:*".'),
    (doc(st(Resource=["arn:error:s3:::example_bucket", "arn:error:s3::example_bucket"])),
     'Partition "error" is not valid for resource "arn:error:s3:::example_bucket".'),
    (doc(st(Resource="arn:aws")), "Resource vendor must be fully qualified and cannot contain regexes."),
    (doc(st(Resource="arn:aws:kinesis*:us-west-2:1:stream/x")),
     "Resource vendor must be fully qualified and cannot contain regexes."),
    (doc(st(Resource="arn:aws:iam:us-east-1::user/x")),
     "IAM resource arn:aws:iam:us-east-1::user/x cannot contain region information."),
    (doc(st(Resource="arn:aws:iam:::example_bucket")),
     'IAM resource path must either be "*" or start with user/, federated-user/, role/, group/, instance-profile/, '
     'mfa/, server-certificate/, policy/, sms-mfa/, saml-provider/, oidc-provider/, report/, access-report/.'),
    (doc(st(Resource="arn:aws:s3:us-east-1::example_bucket")),
     "Resource arn:aws:s3:us-east-1::example_bucket can not contain region information."),
    # actions
    (doc(st(Action="invalid")), "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."),
    (doc(st(Action=None, NotAction="")), "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."),
    (doc(st(Action="a a:ListBucket")), "Vendor a a is not valid"),
    (doc(st(Action="s3:List:Bucket")), "Actions/Condition can contain only one colon."),
    (doc(st(Action="s3s:ListBucket"), st(Action="s:3s:ListBucket")), "Actions/Condition can contain only one colon."),
])
def test_identity_policy_refused_with_reason(document, reason):
    assert reason_of(document) == reason
    assert reason_of(document, "session") == reason


@pytest.mark.parametrize("statement", [
    st(Principal={"AWS": "arn:aws:iam::123456789012:root"}),
    st(Principal="*"),
    st(NotPrincipal={"AWS": "*"}),
    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"},
    st(Principal="alice"),
    st(Principal={"Person": ["x"]}),
])
def test_identity_and_session_policies_name_no_principal(statement):
    assert reason_of(doc(statement)) == "Policy document should not specify a principal."
    assert reason_of(doc(statement), "session") == "Policy document should not specify a principal."


@pytest.mark.parametrize("document", [
    {"Statement": OK_STATEMENT},
    {"Version": "2008-10-17", "Statement": OK_STATEMENT},
    {"Statement": [{"Sid": "sdf", **OK_STATEMENT}, {"Sid": "sdf", "Effect": "Allow"}]},
    {"Statement": {"Effect": "denY", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b"}},
])
def test_managed_policies_need_version_2012_10_17_first(document):
    assert reason_of(document, managed=True) == "Policy document must be version 2012-10-17 or greater."


@pytest.mark.parametrize("document", [
    doc(st(Resource=["arn:aws:s3:::example_bucket"])),
    doc(st(Action="iam: asdf safdsf af ")),
    doc(st(Resource=["arn:aws:s3:::example_bucket", "*"])),
    doc(st(Action="*")),
    doc([OK_STATEMENT]),
    doc(st(Action="service-prefix:action-name",
           Condition={"DateGreaterThan": {"aws:CurrentTime": "2017-07-01T00:00:00Z"},
                      "DateLessThan": {"aws:CurrentTime": "2017-12-31T23:59:59Z"}})),
    doc(st(Resource="arn:aws:iam:::user/example")),
    doc(st(Resource="arn:aws:iam::123456789012:root")),
    doc(st(Resource="arn:aws:iam::*:user/*")),
    doc(st(Resource="arn:aws:iam::123456789012:us*")),
    doc(st(Resource="arn:aws:s33:::example_bucket")),
    doc(st(Resource="arn:aws:fdsasf")),
    doc(st(Resource="arn:aws:kinesisvideo:*")),
    doc(st(Resource="arn:aws:cloudwatch:us-east-1::example_bucket")),
    doc(st(Resource="arn:aws-cn:kinesisvideo:cn-north-1:123456789012:channel/x/1")),
    doc(st(Resource="arn:aws:s3:::bucket/${aws:username}/*")),
    doc(st(Resource="arn:aws:kinesisvideo:*:123456789012:channel/${aws:username}-${aws:userid, 'x'}/*")),
    doc(st(Condition={})),
    doc(st(Condition={"ForAllValues:StringEquals": {"aws:TagKeys": "Department"}})),
    doc(st(Condition={"DateGreaterThan": {}})),
    doc(st(Condition={"DateGreaterThan": {"a": []}})),
    doc(st(Condition={"a": {}})),
    doc(st(Condition={"Bool": {"aws:SecureTransport": False}})),
    doc(st(Condition={"NumericLessThan": {"s3:max-keys": 10}})),
    doc(st(Condition={"DateGreaterThan": {"aws:CurrentTime": 1700000000}})),
    doc(st(Condition={"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64", "10.1.2.3"]}})),
    doc(st(Condition={"StringEqualsIgnoreCaseIfExists": {"aws:username": "a"},
                      "ForAnyValue:ArnNotLikeIfExists": {"aws:PrincipalArn": "arn:aws:iam::*:user/*"}})),
    doc(st(Sid="dsfsdfsdfsdfsdfsadfsd")),
    doc(st(Sid="")),
    doc(st(Sid=""), st(Sid="")),
    doc(st(Action=["kinesisvideo:ConnectAsMaster", "kinesisvideo:ConnectAsViewer"])),
    doc(st(Action=None, NotAction="iam:*")),
    doc(st(Resource=None, NotResource="arn:aws:s3:::HRBucket/Payroll/*")),
    {"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/${aws:username}"}},
    {"Version": "2008-10-17", "Statement": OK_STATEMENT},
    doc(OK_STATEMENT, Id="cd3a324d2343d942772346"),
])
def test_valid_identity_policies_parse(document):
    text = json.dumps(document)
    assert parse_policy(text).statements
    assert parse_policy(text, kind="session").statements


@pytest.mark.parametrize("statement, reason", [
    ({"Effect": "Allow", "Action": "sts:AssumeRole"}, "Missing required field Principal"),
    ({"Effect": "Allow", "Principal": {}, "Action": "sts:AssumeRole"}, "Missing required field Principal"),
    ({**TRUST_STATEMENT, "Resource": "*"}, "Has prohibited field Resource"),
    ({**TRUST_STATEMENT, "NotResource": "*"}, "Has prohibited field NotResource"),
    ({"Effect": "Allow", "Principal": {"AWS": "*"}}, "Missing required field Action"),
    ({**TRUST_STATEMENT, "Action": "*"}, None),
    ({**TRUST_STATEMENT, "Action": "s3:GetObject"}, "AssumeRole policy may only specify STS AssumeRole actions."),
    ({**TRUST_STATEMENT, "Action": ["sts:AssumeRole", "sts:GetCallerIdentity"]},
     "AssumeRole policy may only specify STS AssumeRole actions."),
    ({**TRUST_STATEMENT, "Action": "sts:*"}, None),
    ({**TRUST_STATEMENT, "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]}, None),
    ({**TRUST_STATEMENT, "Principal": {"AWS": "arn:aws:iam::123456789012:user/*"}},
     'Invalid principal in policy: "AWS":"arn:aws:iam::123456789012:user/*"'),
    ({**TRUST_STATEMENT, "Principal": {"AWS": "alice"}}, 'Invalid principal in policy: "AWS":"alice"'),
    ({**TRUST_STATEMENT, "Principal": {"AWS": "12345"}}, 'Invalid principal in policy: "AWS":"12345"'),
    ({**TRUST_STATEMENT, "Principal": {"Person": "alice"}}, 'Invalid principal in policy: "Person"'),
    ({**TRUST_STATEMENT, "Principal": "alice"}, SYNTAX),
    ({**TRUST_STATEMENT, "Principal": {"AWS": "*"}, "NotPrincipal": {"AWS": "*"}}, SYNTAX),
    ({**TRUST_STATEMENT, "Principal": {"AWS": ["123456789012", "arn:aws:iam::123456789012:role/path/r",
                                               "arn:aws:sts::123456789012:assumed-role/r/s",
                                               "arn:aws:sts::123456789012:federated-user/f"]}}, None),
    ({**TRUST_STATEMENT, "Principal": {"Service": "ec2.amazonaws.com", "Federated": "cognito-identity.amazonaws.com"}},
     None),
    ({"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::123456789012:user/bob"}, "Action": "sts:AssumeRole"},
     None),
    ({**TRUST_STATEMENT, "Effect": "Allowed"}, SYNTAX),
    ({**TRUST_STATEMENT, "Sid": "a-b"},
     "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*"),
])
def test_trust_policies(statement, reason):
    text = json.dumps({"Version": V, "Statement": [statement]})
    if reason is None:
        assert parse_policy(text, kind="trust").kind == "trust"
    else:
        assert reason_of(text, "trust") == reason


def test_trust_policy_without_version_is_accepted():
    assert parse_policy(json.dumps({"Statement": TRUST_STATEMENT}), kind="trust").version is None


def test_deeply_nested_json_is_a_syntax_error_not_a_crash():
    text = '{"Version": "2012-10-17", "Statement": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert reason_of(text) == SYNTAX


def test_json_constants_are_refused():
    assert reason_of('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "a:b", "Resource": "*",'
                     ' "Condition": {"NumericLessThan": {"a": NaN}}}}') == SYNTAX


@pytest.mark.parametrize("number", ["1e999", "-1e999", "1" * 100])
def test_numbers_json_cannot_carry_back_are_refused(number):
    text = ('{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "a:b", "Resource": "*",'
            ' "Condition": {"StringEquals": {"a": %s}}}}' % number)
    assert reason_of(text) == SYNTAX

"""The query protocol (IAM, STS) against botocore's own serializer and parser.

For every operation Signalite serves, a value of every member of its input shape is written by
botocore's ``QuerySerializer`` and read back by :func:`signalite.aws.query.decode`; a value of
every member of its output shape is written by :func:`signalite.aws.query.encode` and read back
by botocore's ``QueryParser``. Both must give back what went in. Errors must parse into the code,
message and request id botocore hands to clients.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from botocore.parsers import QueryParser
from botocore.serialize import QuerySerializer

from signalite.aws import query
from signalite.aws.errors import ServiceError
from signalite.aws.wire import Wire
from signalite.identity import iam, sts

WHEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
ODD = "a&b<c>\"d'e é \u4e2d\r\nz"


@pytest.fixture(scope="module")
def wire() -> Wire:
    return Wire()


def _value(shape: Shape, depth: int = 0, text: str = "v") -> Any:
    """A value of ``shape`` with every member set (strings carry XML-hostile characters)."""
    if isinstance(shape, StructureShape):
        if depth > 4:
            return {}
        return {name: _value(member, depth + 1, f"{text}.{name}") for name, member in shape.members.items()}
    if isinstance(shape, ListShape):
        return [_value(shape.member, depth + 1, f"{text}.1"), _value(shape.member, depth + 1, f"{text}.2")]
    if isinstance(shape, MapShape):
        return {f"{text}-k1": _value(shape.value, depth + 1, text), f"{text}-k2": _value(shape.value, depth + 1, text)}
    kind = shape.type_name
    if kind == "string":
        return shape.enum[0] if shape.enum else f"{text}-{ODD}"
    if kind in ("integer", "long"):
        return 7 + depth
    if kind in ("float", "double"):
        return 2.5
    if kind == "boolean":
        return depth % 2 == 0
    if kind == "timestamp":
        return WHEN
    if kind == "blob":
        return b"\x00blob\xff"
    raise AssertionError(kind)


def _as_decoded(shape: Shape, value: Any) -> Any:
    """``value`` as :func:`query.decode` gives it: timestamps as the ISO text botocore wrote,
    blobs as their base64 text (the JSON services get both as text too)."""
    if isinstance(shape, StructureShape):
        return {k: _as_decoded(shape.members[k], v) for k, v in value.items()}
    if isinstance(shape, ListShape):
        return [_as_decoded(shape.member, v) for v in value]
    if isinstance(shape, MapShape):
        return {k: _as_decoded(shape.value, v) for k, v in value.items()}
    if shape.type_name == "timestamp":
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    if shape.type_name == "blob":
        return base64.b64encode(value).decode()
    return value


def _served() -> list[tuple[str, str]]:
    return [("iam", name) for name in iam.OPERATIONS] + [("sts", name) for name in sts.OPERATIONS]


def _op(wire: Wire, service: str, name: str) -> OperationModel:
    return wire.query[service].operations[name]


def _form(op: OperationModel, params: dict[str, Any]) -> dict[str, str]:
    """The form parameters botocore sends for ``params``."""
    serialized = QuerySerializer().serialize_to_request(params, op)
    body = serialized["body"]
    assert isinstance(body, dict)
    return {k: str(v) for k, v in body.items()}


@pytest.mark.parametrize("service, name", _served())
def test_every_input_shape_reads_back_what_botocore_wrote(wire, service, name):
    op = _op(wire, service, name)
    if op.input_shape is None:
        assert query.decode(None, {"Action": name}) == {}
        return
    value = _value(op.input_shape)
    form = _form(op, value)
    assert form["Action"] == name and form["Version"] == op.metadata["apiVersion"]
    assert query.decode(op.input_shape, form) == _as_decoded(op.input_shape, value)


@pytest.mark.parametrize("service, name", _served())
def test_every_output_shape_is_read_by_botocore_as_written(wire, service, name):
    op = _op(wire, service, name)
    value = _value(op.output_shape) if op.output_shape is not None else {}
    body = wire.query[service].serialize(op, value, "req-1")
    parsed = QueryParser().parse({"body": body, "headers": {}, "status_code": 200}, op.output_shape)
    metadata = parsed.pop("ResponseMetadata")
    assert metadata["RequestId"] == "req-1"
    assert parsed == value


def test_form_bodies_as_sent_over_http(wire):
    """The body botocore puts on the wire (url-encoded, ``+`` for spaces) decodes and validates."""
    op = _op(wire, "iam", "CreateUser")
    params = {"UserName": "alice+bob@x", "Path": "/team/", "Tags": [{"Key": "k 1", "Value": "v=1+2 @x"}]}
    body = urlencode(_form(op, params)).encode()
    assert wire.query["iam"].parse(op, body) == params


def test_empty_lists_and_absent_members(wire):
    op = _op(wire, "sts", "GetFederationToken")
    form = _form(op, {"Name": "bob", "PolicyArns": []})
    assert form["PolicyArns"] == ""
    assert query.decode(op.input_shape, form) == {"Name": "bob", "PolicyArns": []}
    assert query.decode(op.input_shape, {"Action": "GetFederationToken"}) == {}


def test_values_that_are_not_their_type_are_reported_by_the_checker(wire):
    op = _op(wire, "iam", "ListUsers")
    with pytest.raises(ServiceError) as exc:
        wire.query["iam"].parse_params(op, {"MaxItems": "lots"})
    assert exc.value.code == "ValidationError"
    assert exc.value.message == ("1 validation error detected: Value 'lots' at 'maxItems' failed to satisfy "
                                 "constraint: Member must be of type integer")


def test_constraints_of_the_model_are_enforced_with_coral_messages(wire):
    op = _op(wire, "iam", "CreateUser")
    with pytest.raises(ServiceError) as exc:
        wire.query["iam"].parse_params(op, {"UserName": "bad name!", "Path": "no-slash"})
    assert exc.value.code == "ValidationError"
    assert "Value 'bad name!' at 'userName' failed to satisfy constraint: Member must satisfy regular " \
           "expression pattern" in exc.value.message
    assert "at 'path'" in exc.value.message
    with pytest.raises(ServiceError) as exc:
        wire.query["iam"].parse_params(op, {})
    assert exc.value.message == ("1 validation error detected: Value null at 'userName' failed to satisfy "
                                 "constraint: Member must not be null")
    nested = _op(wire, "iam", "CreateRole")
    with pytest.raises(ServiceError) as exc:
        wire.query["iam"].parse_params(nested, {"RoleName": "r", "AssumeRolePolicyDocument": "{}",
                                                "Tags.member.1.Value": "v"})
    assert "Value null at 'tags.1.member.key'" in exc.value.message


@pytest.mark.parametrize("params, code", [
    ({}, "MissingAction"),
    ({"Action": "NoSuchThing", "Version": "2010-05-08"}, "InvalidAction"),
    ({"Action": "ListUsers", "Version": "1999-01-01"}, "NoSuchVersion"),
])
def test_requests_that_name_no_operation(wire, params, code):
    with pytest.raises(ServiceError) as exc:
        wire.query["iam"].operation(params)
    assert exc.value.code == code


def test_a_body_that_is_not_form_data():
    with pytest.raises(ServiceError) as exc:
        query.form_params(b"\xff\xfe")
    assert exc.value.code == "MalformedQueryString"


@pytest.mark.parametrize("service, code, status", [
    ("iam", "NoSuchEntity", 404), ("iam", "EntityAlreadyExists", 409), ("iam", "DeleteConflict", 409),
    ("iam", "LimitExceeded", 409), ("iam", "MalformedPolicyDocument", 400), ("sts", "PackedPolicyTooLarge", 400),
])
def test_errors_parse_as_botocore_clients_see_them(wire, service, code, status):
    svc = wire.query[service]
    assert svc.error_status(code) == status
    body = svc.error_body(code, ODD, "req-9", status)
    parsed = QueryParser().parse({"body": body, "headers": {}, "status_code": status}, None)
    assert parsed["Error"] == {"Type": "Sender", "Code": code, "Message": ODD}
    assert parsed["ResponseMetadata"]["RequestId"] == "req-9"


def test_the_model_codes_map_to_the_client_exceptions(wire):
    import boto3

    client = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    assert client.exceptions.from_code("NoSuchEntity") is client.exceptions.NoSuchEntityException
    assert wire.query["iam"].knows_error("NoSuchEntity")


def test_unserved_operations_answer_a_modeled_error(wire):
    iam_wire, sts_wire = wire.query["iam"], wire.query["sts"]
    assert iam_wire.unsupported_code(iam_wire.operations["ListGroups"]) == "InvalidInput"
    assert iam_wire.error_status("InvalidInput") == 400
    assert sts_wire.unsupported_code(sts_wire.operations["AssumeRoleWithSAML"]) == "InvalidAction"

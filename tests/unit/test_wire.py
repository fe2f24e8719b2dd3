"""The model-driven wire layer on its own: validation messages for every kind of constraint the
models state, and serialization that writes only the output shape, timestamps as numbers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from signalite.aws.errors import ServiceError
from signalite.aws.wire import Wire


@pytest.fixture(scope="module")
def wire() -> Wire:
    return Wire()


def op(wire: Wire, path: str):
    svc, model = wire.route(path)
    return svc, model


def problems(wire: Wire, path: str, body: dict) -> str:
    svc, model = op(wire, path)
    with pytest.raises(ServiceError) as exc:
        svc.parse(model, json.dumps(body).encode())
    assert exc.value.code == "InvalidArgumentException"
    return exc.value.message


def parse(wire: Wire, path: str, body: dict | bytes):
    svc, model = op(wire, path)
    return svc.parse(model, body if isinstance(body, bytes) else json.dumps(body).encode())


def test_routes_cover_the_three_services(wire):
    assert wire.route("/createSignalingChannel")[1].name == "CreateSignalingChannel"
    assert wire.route("/TagResource")[1].name == "TagResource"
    assert wire.route("/v1/get-ice-server-config")[0].name == "kinesis-video-signaling"
    assert wire.route("/joinStorageSession")[0].name == "kinesis-video-webrtc-storage"
    assert wire.route("/nope") is None


def test_required(wire):
    assert problems(wire, "/updateSignalingChannel", {"ChannelARN": "arn:aws:kinesisvideo:us-west-2:1:channel/a/1"}) == (
        "1 validation error detected: Value null at 'currentVersion' failed to satisfy constraint: "
        "Member must not be null")


def test_min_and_max_length(wire):
    assert "Value '' at 'channelName' failed to satisfy constraint: Member must have length greater than or equal to 1" \
        in problems(wire, "/createSignalingChannel", {"ChannelName": ""})
    msg = problems(wire, "/createSignalingChannel", {"ChannelName": "a" * 257})
    assert "at 'channelName' failed to satisfy constraint: Member must have length less than or equal to 256" in msg


def test_integer_range(wire):
    msg = problems(wire, "/createSignalingChannel", {"ChannelName": "a", "SingleMasterConfiguration": {"MessageTtlSeconds": 4}})
    assert "Value '4' at 'singleMasterConfiguration.messageTtlSeconds' failed to satisfy constraint: " \
           "Member must have value greater than or equal to 5" in msg
    msg = problems(wire, "/createSignalingChannel", {"ChannelName": "a", "SingleMasterConfiguration": {"MessageTtlSeconds": 121}})
    assert "Member must have value less than or equal to 120" in msg


def test_pattern(wire):
    msg = problems(wire, "/createSignalingChannel", {"ChannelName": "bad name"})
    assert msg == ("1 validation error detected: Value 'bad name' at 'channelName' failed to satisfy constraint: "
                   "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")


def test_enum(wire):
    msg = problems(wire, "/createSignalingChannel", {"ChannelName": "a", "ChannelType": "X"})
    assert "Value 'X' at 'channelType' failed to satisfy constraint: Member must satisfy enum value set: " \
           "[SINGLE_MASTER, FULL_MESH]" in msg


@pytest.mark.parametrize("body, path, expected", [
    ({"ChannelName": 5}, "channelName", "Member must be of type string"),
    ({"ChannelName": "a", "SingleMasterConfiguration": {"MessageTtlSeconds": "60"}},
     "singleMasterConfiguration.messageTtlSeconds", "Member must be of type integer"),
    ({"ChannelName": "a", "SingleMasterConfiguration": {"MessageTtlSeconds": True}},
     "singleMasterConfiguration.messageTtlSeconds", "Member must be of type integer"),
    ({"ChannelName": "a", "SingleMasterConfiguration": {"MessageTtlSeconds": 60.5}},
     "singleMasterConfiguration.messageTtlSeconds", "Member must be of type integer"),
    ({"ChannelName": "a", "Tags": {"k": "v"}}, "tags", "Member must be of type list"),
    ({"ChannelName": "a", "SingleMasterConfiguration": [60]}, "singleMasterConfiguration",
     "Member must be of type structure"),
])
def test_types(wire, body, path, expected):
    msg = problems(wire, "/createSignalingChannel", body)
    assert f"at '{path}' failed to satisfy constraint: {expected}" in msg


def test_nested_list_members_are_numbered_from_one(wire):
    msg = problems(wire, "/createSignalingChannel", {"ChannelName": "a", "Tags": [
        {"Key": "ok", "Value": "v"}, {"Key": "k" * 129, "Value": "v"}, {"Value": "v"}]})
    assert msg.startswith("2 validation errors detected: ")
    assert "at 'tags.2.member.key' failed to satisfy constraint: Member must have length less than or equal to 128" in msg
    assert "Value null at 'tags.3.member.key' failed to satisfy constraint: Member must not be null" in msg


def test_list_length_and_null_items(wire):
    arn = "arn:aws:kinesisvideo:us-west-2:111122223333:channel/a/1700000000000"
    assert "at 'tagKeyList' failed to satisfy constraint: Member must have length less than or equal to 50" in \
        problems(wire, "/UntagResource", {"ResourceARN": arn, "TagKeyList": [f"k{i}" for i in range(51)]})
    assert "Value null at 'tagKeyList.2.member' failed to satisfy constraint: Member must not be null" in \
        problems(wire, "/UntagResource", {"ResourceARN": arn, "TagKeyList": ["a", None]})


def test_map_keys_and_values(wire):
    msg = problems(wire, "/tagStream", {"StreamName": "s", "Tags": {"k" * 129: "v", "ok": "v" * 257}})
    assert f"at 'tags.{'k' * 129}.key' failed to satisfy constraint: Member must have length less than or equal to 128" in msg
    assert "at 'tags.ok.value' failed to satisfy constraint: Member must have length less than or equal to 256" in msg
    assert "Member must have length greater than or equal to 1" in problems(wire, "/tagStream", {"StreamName": "s", "Tags": {}})


def test_unicode_tag_pattern(wire):
    # The tag pattern uses \p{L}/\p{Z}/\p{N}, so letters of any script and spaces are fine.
    parsed = parse(wire, "/tagStream", {"StreamName": "s", "Tags": {"équipe vidéo": "東京 1"}})
    assert parsed["Tags"] == {"équipe vidéo": "東京 1"}
    assert "tags.a!b.key" in problems(wire, "/tagStream", {"StreamName": "s", "Tags": {"a!b": "v"}})


def test_unknown_members_are_ignored_at_every_depth(wire):
    parsed = parse(wire, "/createSignalingChannel", {
        "ChannelName": "a", "Extra": {"x": 1}, "SingleMasterConfiguration": {"MessageTtlSeconds": 30, "Junk": True},
        "Tags": [{"Key": "k", "Value": "v", "Other": 1}]})
    assert parsed == {"ChannelName": "a", "SingleMasterConfiguration": {"MessageTtlSeconds": 30},
                      "Tags": [{"Key": "k", "Value": "v"}]}


def test_nulls_are_treated_as_absent(wire):
    assert parse(wire, "/describeSignalingChannel", {"ChannelName": "a", "ChannelARN": None}) == {"ChannelName": "a"}


def test_integral_floats_become_ints(wire):
    parsed = parse(wire, "/createSignalingChannel", {"ChannelName": "a", "SingleMasterConfiguration": {"MessageTtlSeconds": 30.0}})
    ttl = parsed["SingleMasterConfiguration"]["MessageTtlSeconds"]
    assert ttl == 30 and isinstance(ttl, int)


@pytest.mark.parametrize("body, fragment", [
    (b"{", "not valid JSON"),
    (b"[]", "must be a JSON object"),
    (b'"text"', "must be a JSON object"),
    (b'{"MaxResults": Infinity}', "not valid JSON"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    (b'{"ChannelName": "\xc3"}', "not valid JSON"),
])
def test_bodies_that_are_not_a_json_object(wire, body, fragment):
    svc, model = op(wire, "/listSignalingChannels")
    with pytest.raises(ServiceError) as exc:
        svc.parse(model, body)
    assert exc.value.code == "InvalidArgumentException"
    assert fragment in exc.value.message


def test_empty_body_is_an_empty_object(wire):
    assert parse(wire, "/listSignalingChannels", b"") == {}
    assert parse(wire, "/listSignalingChannels", b"  \n") == {}


def test_serialize_drops_members_outside_the_output_shape(wire):
    svc, model = op(wire, "/describeSignalingChannel")
    out = json.loads(svc.serialize(model, {
        "ChannelInfo": {"ChannelName": "a", "Secret": "x", "SingleMasterConfiguration": {"MessageTtlSeconds": 60, "X": 1},
                        "Version": None},
        "Internal": {"attrs": 1},
    }))
    assert out == {"ChannelInfo": {"ChannelName": "a", "SingleMasterConfiguration": {"MessageTtlSeconds": 60}}}


def test_serialize_writes_timestamps_as_epoch_numbers(wire):
    svc, model = op(wire, "/listSignalingChannels")
    when = datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)
    raw = svc.serialize(model, {"ChannelInfoList": [{"ChannelName": "a", "CreationTime": when},
                                                   {"ChannelName": "b", "CreationTime": 1700000000.123}]})
    items = json.loads(raw)["ChannelInfoList"]
    assert items[0]["CreationTime"] == 1700000000.5
    assert items[1]["CreationTime"] == 1700000000.123
    assert b'"CreationTime":1700000000.5' in raw


def test_serialize_maps_and_empty_output(wire):
    svc, model = op(wire, "/ListTagsForResource")
    assert json.loads(svc.serialize(model, {"Tags": {"a": "1"}, "NextToken": None})) == {"Tags": {"a": "1"}}
    svc, model = op(wire, "/deleteSignalingChannel")
    assert svc.serialize(model, None) == b"{}"


def test_errors_follow_the_model(wire):
    cp = wire.control_plane
    assert cp.error_status("ResourceNotFoundException") == 404
    assert cp.error_status("AccessDeniedException") == 401
    assert cp.error_status("VersionMismatchException") == 400
    assert cp.error_type_header("ResourceNotFoundException").startswith("ResourceNotFoundException:")
    assert json.loads(cp.error_body("ResourceNotFoundException", "m")) == {"__type": "ResourceNotFoundException", "Message": "m"}
    storage = wire.services["kinesis-video-webrtc-storage"]
    body = json.loads(storage.error_body("AccessDeniedException", "m"))
    assert body == {"__type": "AccessDeniedException", "message": "m"}


def test_enum_values_are_still_held_to_length_and_pattern():
    """A string in the enum set skips the other checks only if it meets them too (the models'
    enums all do; this shape's does not)."""
    from botocore.model import StringShape

    from signalite.aws.wire import _checker, _Problems

    shape = StringShape("Odd", {"type": "string", "enum": ["OK", "TOOLONG", "lower"], "max": 5, "pattern": "[A-Z]+"})
    check = _checker(shape)
    for value, expected in [
        ("OK", []),
        ("TOOLONG", ["Member must have length less than or equal to 5"]),
        ("lower", ["Member must satisfy regular expression pattern: [A-Z]+"]),
        ("NOPE", ["Member must satisfy enum value set: [OK, TOOLONG, lower]"]),
    ]:
        problems = _Problems([])
        assert check(value, None, problems) == value
        assert [item.split("failed to satisfy constraint: ")[1] for item in problems.items] == expected, value


# --- per-type checkers on shapes the three models do not use (built from model-like specs) -------

def _shapes(**specs: dict):
    from botocore.model import ShapeResolver

    resolver = ShapeResolver(specs)
    return {name: resolver.get_shape_by_name(name) for name in specs}


def _constraints(shape, value):
    """(cleaned value, the broken constraints) of one value."""
    from signalite.aws.wire import _checker, _Problems

    problems = _Problems([])
    cleaned = _checker(shape)(value, None, problems)
    return cleaned, [item.split("failed to satisfy constraint: ")[1] for item in problems.items]


@pytest.mark.parametrize("type_name", ["long", "float", "double"])
def test_numbers_of_every_type_are_held_to_their_bounds(type_name):
    shape = _shapes(N={"type": type_name, "min": 2, "max": 9})["N"]
    assert _constraints(shape, 2) == (2, [])
    assert _constraints(shape, 9) == (9, [])
    assert _constraints(shape, 1) == (1, ["Member must have value greater than or equal to 2"])
    assert _constraints(shape, 10) == (10, ["Member must have value less than or equal to 9"])
    for wrong in (True, "5", None, [5]):
        assert _constraints(shape, wrong) == (wrong, [f"Member must be of type {type_name}"])


def test_floats_must_be_finite_and_longs_whole():
    shapes = _shapes(F={"type": "double"}, L={"type": "long"})
    assert _constraints(shapes["F"], 2.5) == (2.5, [])
    assert _constraints(shapes["F"], 7) == (7, [])
    assert _constraints(shapes["F"], float("inf"))[1] == ["Member must be of type double"]
    assert _constraints(shapes["F"], float("nan"))[1] == ["Member must be of type double"]
    cleaned, broken = _constraints(shapes["L"], 3.0)
    assert (cleaned, type(cleaned), broken) == (3, int, [])
    assert _constraints(shapes["L"], 3.5) == (3.5, ["Member must be of type long"])


def test_blobs_are_base64_text_of_a_bounded_length():
    shape = _shapes(B={"type": "blob", "min": 4, "max": 8})["B"]
    assert _constraints(shape, "QUJD") == ("QUJD", [])
    assert _constraints(shape, "QUJ") == ("QUJ", ["Member must have length greater than or equal to 4",
                                                  "Member must be valid base64"])
    assert _constraints(shape, "QUJDRA==A") == ("QUJDRA==A", ["Member must have length less than or equal to 8",
                                                              "Member must be valid base64"])
    assert _constraints(shape, b"QUJD") == (b"QUJD", ["Member must be of type blob"])


def test_timestamps_booleans_and_unmodeled_types():
    shapes = _shapes(T={"type": "timestamp"}, B={"type": "boolean"}, C={"type": "character"})
    for ok in (1700000000, 1700000000.5, "2023-11-14T22:13:20Z"):
        assert _constraints(shapes["T"], ok) == (ok, [])
    assert _constraints(shapes["T"], True) == (True, ["Member must be of type timestamp"])
    assert _constraints(shapes["B"], False) == (False, [])
    assert _constraints(shapes["B"], "true") == ("true", ["Member must be of type boolean"])
    assert _constraints(shapes["C"], {"any": ["thing"]}) == ({"any": ["thing"]}, [])


def test_recursive_structures_are_checked_at_every_depth():
    shape = _shapes(
        Node={"type": "structure", "required": ["Name"],
              "members": {"Name": {"shape": "Name"}, "Children": {"shape": "Nodes"}}},
        Nodes={"type": "list", "member": {"shape": "Node"}, "max": 2},
        Name={"type": "string", "min": 1},
    )["Node"]
    tree = {"Name": "a", "Children": [{"Name": "b", "Children": [{"Name": "", "X": 1}, {}]}], "Y": 2}
    cleaned, broken = _constraints(shape, tree)
    assert cleaned == {"Name": "a", "Children": [{"Name": "b", "Children": [{"Name": ""}, {}]}]}
    from signalite.aws.wire import _checker, _Problems

    problems = _Problems([])
    _checker(shape)(tree, None, problems)
    assert problems.items == [
        "Value '' at 'children.1.member.children.1.member.name' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1",
        "Value null at 'children.1.member.children.2.member.name' failed to satisfy constraint: "
        "Member must not be null",
    ]


def test_a_checker_is_built_once_per_shape(wire):
    from signalite.aws.wire import _checker, _cleaner

    _, model = op(wire, "/getSignalingChannelEndpoint")
    assert _checker(model.input_shape) is _checker(model.input_shape)
    assert _cleaner(model.output_shape) is _cleaner(model.output_shape)


def test_get_signaling_channel_endpoint_round_trip(wire):
    """The hot path: the body boto3 sends, and the answer, exactly."""
    arn = "arn:aws:kinesisvideo:us-west-2:123412341234:channel/demo/1700000000000"
    assert parse(wire, "/getSignalingChannelEndpoint", {
        "ChannelARN": arn, "SingleMasterChannelEndpointConfiguration": {"Protocols": ["WSS", "HTTPS"], "Role": "MASTER"},
    }) == {"ChannelARN": arn, "SingleMasterChannelEndpointConfiguration": {"Protocols": ["WSS", "HTTPS"], "Role": "MASTER"}}
    assert problems(wire, "/getSignalingChannelEndpoint", {
        "ChannelARN": arn, "SingleMasterChannelEndpointConfiguration": {"Protocols": [], "Role": "BOSS"},
    }) == ("2 validation errors detected: Value '[]' at 'singleMasterChannelEndpointConfiguration.protocols' "
           "failed to satisfy constraint: Member must have length greater than or equal to 1; "
           "Value 'BOSS' at 'singleMasterChannelEndpointConfiguration.role' failed to satisfy constraint: "
           "Member must satisfy enum value set: [MASTER, VIEWER]")
    svc, model = op(wire, "/getSignalingChannelEndpoint")
    assert svc.serialize(model, {"ResourceEndpointList": [{"Protocol": "WSS", "ResourceEndpoint": "wss://h", "X": 1}]}) \
        == b'{"ResourceEndpointList":[{"Protocol":"WSS","ResourceEndpoint":"wss://h"}]}'

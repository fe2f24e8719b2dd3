"""Signaling-channel operations through boto3 against the real server, plus the HTTP edge:
headers, CORS, persistence, region isolation and hostile input sent as raw signed requests."""

from __future__ import annotations

import email.utils
import json
import re

import pytest
from botocore.exceptions import ClientError

from tests.support.server import ACCOUNT, REGION
from tests.support.signed import send, sign, signed

ARN_RE = re.compile(r"^arn:aws:kinesisvideo:us-west-2:111122223333:channel/(?P<name>[a-zA-Z0-9_.-]+)/(?P<ms>\d{13})$")


def error(exc: pytest.ExceptionInfo) -> tuple[str, int, str]:
    resp = exc.value.response
    return resp["Error"]["Code"], resp["ResponseMetadata"]["HTTPStatusCode"], resp["Error"]["Message"]


# --- create / describe ------------------------------------------------------------------------

def test_create_returns_aws_shaped_arn_and_describe_by_name_and_arn_agree(kv, name):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    m = ARN_RE.match(arn)
    assert m and m["name"] == name
    by_name = kv.describe_signaling_channel(ChannelName=name)["ChannelInfo"]
    by_arn = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]
    assert by_name == by_arn
    assert by_arn["ChannelARN"] == arn
    assert by_arn["ChannelType"] == "SINGLE_MASTER"
    assert by_arn["ChannelStatus"] == "ACTIVE"
    assert re.fullmatch(r"[a-zA-Z0-9]{1,64}", by_arn["Version"])
    # The ARN's 13-digit suffix is the creation instant in milliseconds.
    assert round(by_arn["CreationTime"].timestamp() * 1000) == int(m["ms"])


def test_create_with_type_ttl_and_tags(kv, name):
    arn = kv.create_signaling_channel(
        ChannelName=name, ChannelType="SINGLE_MASTER", SingleMasterConfiguration={"MessageTtlSeconds": 5},
        Tags=[{"Key": "team", "Value": "video"}, {"Key": "env", "Value": ""}],
    )["ChannelARN"]
    info = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]
    assert info["SingleMasterConfiguration"] == {"MessageTtlSeconds": 5}
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"team": "video", "env": ""}


def test_duplicate_name_is_resource_in_use(kv, name):
    kv.create_signaling_channel(ChannelName=name)
    with pytest.raises(kv.exceptions.ResourceInUseException) as exc:
        kv.create_signaling_channel(ChannelName=name)
    assert error(exc)[1] == 400


def test_full_mesh_is_refused_with_invalid_argument(kv, name):
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.create_signaling_channel(ChannelName=name, ChannelType="FULL_MESH")
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.describe_signaling_channel(ChannelName=name)


def test_create_with_51_tags_is_refused_by_the_model_limit(kv, name):
    tags = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    with pytest.raises(ClientError) as exc:
        kv.create_signaling_channel(ChannelName=name, Tags=tags)
    # The model caps the list at 50, so the wire layer answers before the operation does.
    code, status, message = error(exc)
    assert (code, status) == ("InvalidArgumentException", 400)
    assert "tags" in message


def test_create_with_repeated_tag_key_is_invalid(kv, name):
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.create_signaling_channel(ChannelName=name, Tags=[{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}])


def test_describe_missing_is_404_with_aws_message(kv, name):
    with pytest.raises(kv.exceptions.ResourceNotFoundException) as exc:
        kv.describe_signaling_channel(ChannelName=name)
    code, status, message = error(exc)
    assert status == 404
    assert message == "The requested channel is not found or not active."
    assert exc.value.response["ResponseMetadata"]["RequestId"]


def test_describe_needs_name_or_arn(kv):
    with pytest.raises(kv.exceptions.InvalidArgumentException) as exc:
        kv.describe_signaling_channel()
    assert "ChannelName" in error(exc)[2]


def test_describe_arn_of_another_account_is_not_found(kv, name):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    foreign = arn.replace(ACCOUNT, "999988887777")
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.describe_signaling_channel(ChannelARN=foreign)


def test_describe_with_name_and_mismatched_arn_is_not_found(kv, name):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.describe_signaling_channel(ChannelName=name + "x", ChannelARN=arn)


def test_describe_with_a_stream_arn_is_invalid(kv, name):
    arn = kv.create_stream(StreamName=name)["StreamARN"]
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.describe_signaling_channel(ChannelARN=arn)


# --- values botocore does not check -------------------------------------------------------------

@pytest.mark.parametrize("kwargs, member", [
    ({"ChannelName": "bad name"}, "channelName"),
    ({"ChannelName": "a" * 300}, "channelName"),
    ({"ChannelName": "ok-name", "SingleMasterConfiguration": {"MessageTtlSeconds": 200}},
     "singleMasterConfiguration.messageTtlSeconds"),
    ({"ChannelName": "ok-name", "ChannelType": "X"}, "channelType"),
    ({"ChannelName": "ok-name", "Tags": [{"Key": "k" * 129, "Value": "v"}]}, "tags.1.member.key"),
])
def test_unchecked_values_are_invalid_argument_naming_the_member(kv, kwargs, member):
    with pytest.raises(kv.exceptions.InvalidArgumentException) as exc:
        kv.create_signaling_channel(**kwargs)
    code, status, message = error(exc)
    assert status == 400
    assert f"at '{member}'" in message
    assert message.startswith("1 validation error detected: ")


def test_several_violations_are_reported_together(kv):
    with pytest.raises(kv.exceptions.InvalidArgumentException) as exc:
        kv.create_signaling_channel(ChannelName="bad name", ChannelType="X")
    message = error(exc)[2]
    assert message.startswith("2 validation errors detected: ")
    assert "'channelName'" in message and "'channelType'" in message


# --- list ---------------------------------------------------------------------------------------

def _make(kv, prefix: str, n: int) -> list[str]:
    names = [f"{prefix}-{i:02d}" for i in range(n)]
    for n_ in reversed(names):  # created out of order: listing sorts by name
        kv.create_signaling_channel(ChannelName=n_)
    return names


def test_list_pages_with_name_condition(kv, name):
    names = _make(kv, name, 5)
    cond = {"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": name}
    seen, pages, token = [], [], None
    while True:
        kwargs = {"MaxResults": 2, "ChannelNameCondition": cond}
        if token:
            kwargs["NextToken"] = token
        resp = kv.list_signaling_channels(**kwargs)
        pages.append(len(resp["ChannelInfoList"]))
        seen += [c["ChannelName"] for c in resp["ChannelInfoList"]]
        token = resp.get("NextToken")
        if not token:
            break
        assert re.fullmatch(r"[a-zA-Z0-9+/=]*", token)
    assert pages == [2, 2, 1]
    assert seen == names


def test_list_pages_without_condition_cover_everything_once(kv, name):
    names = _make(kv, name, 3)
    seen, token, pages = [], None, 0
    while True:
        resp = kv.list_signaling_channels(MaxResults=2, **({"NextToken": token} if token else {}))
        pages += 1
        assert len(resp["ChannelInfoList"]) <= 2
        seen += [c["ChannelName"] for c in resp["ChannelInfoList"]]
        token = resp.get("NextToken")
        if not token:
            break
    assert pages >= 2
    assert len(seen) == len(set(seen))
    assert seen == sorted(seen)
    assert [n for n in seen if n.startswith(name)] == names


def test_paginator_reaches_every_channel(kv, name):
    names = _make(kv, name, 5)
    paginator = kv.get_paginator("list_signaling_channels")
    pages = list(paginator.paginate(ChannelNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": name},
                                    PaginationConfig={"PageSize": 2}))
    assert len(pages) == 3
    assert [c["ChannelName"] for p in pages for c in p["ChannelInfoList"]] == names


def test_list_items_are_full_channel_info(kv, name):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    resp = kv.list_signaling_channels(ChannelNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": name})
    assert "NextToken" not in resp
    [item] = resp["ChannelInfoList"]
    assert item == kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]


def test_next_token_for_another_condition_or_garbage_is_invalid(kv, name):
    _make(kv, name, 3)
    first = kv.list_signaling_channels(MaxResults=1, ChannelNameCondition={"ComparisonOperator": "BEGINS_WITH",
                                                                            "ComparisonValue": name})
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.list_signaling_channels(NextToken=first["NextToken"], ChannelNameCondition={
            "ComparisonOperator": "BEGINS_WITH", "ComparisonValue": name + "-01"})
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.list_signaling_channels(NextToken="bm90LWpzb24=")


def test_list_max_results_over_model_maximum_is_invalid(kv):
    with pytest.raises(kv.exceptions.InvalidArgumentException) as exc:
        kv.list_signaling_channels(MaxResults=10001)
    assert "'maxResults'" in error(exc)[2]


def test_list_operator_outside_enum_is_invalid(kv):
    with pytest.raises(kv.exceptions.InvalidArgumentException) as exc:
        kv.list_signaling_channels(ChannelNameCondition={"ComparisonOperator": "CONTAINS", "ComparisonValue": "x"})
    assert "channelNameCondition.comparisonOperator" in error(exc)[2]


# --- update / delete ----------------------------------------------------------------------------

def test_update_changes_ttl_and_version(kv, name):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    v1 = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["Version"]
    kv.update_signaling_channel(ChannelARN=arn, CurrentVersion=v1, SingleMasterConfiguration={"MessageTtlSeconds": 120})
    info = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]
    assert info["SingleMasterConfiguration"] == {"MessageTtlSeconds": 120}
    assert info["Version"] != v1
    with pytest.raises(kv.exceptions.VersionMismatchException) as exc:
        kv.update_signaling_channel(ChannelARN=arn, CurrentVersion=v1, SingleMasterConfiguration={"MessageTtlSeconds": 30})
    assert error(exc)[1] == 400
    assert kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["SingleMasterConfiguration"] == {
        "MessageTtlSeconds": 120}


def test_update_missing_channel_is_not_found(kv, name):
    arn = f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:channel/{name}/1700000000000"
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.update_signaling_channel(ChannelARN=arn, CurrentVersion="abc", SingleMasterConfiguration={"MessageTtlSeconds": 30})


def test_update_ttl_out_of_range_is_invalid(kv, name):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    v = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["Version"]
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.update_signaling_channel(ChannelARN=arn, CurrentVersion=v, SingleMasterConfiguration={"MessageTtlSeconds": 121})


def test_delete_with_wrong_version_then_right_version(kv, name):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    v = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["Version"]
    with pytest.raises(kv.exceptions.VersionMismatchException):
        kv.delete_signaling_channel(ChannelARN=arn, CurrentVersion="stale0")
    kv.describe_signaling_channel(ChannelARN=arn)  # still there
    kv.delete_signaling_channel(ChannelARN=arn, CurrentVersion=v)
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.describe_signaling_channel(ChannelARN=arn)
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.delete_signaling_channel(ChannelARN=arn)


def test_delete_without_version_and_name_reuse(kv, name):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    kv.delete_signaling_channel(ChannelARN=arn)
    again = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    assert kv.describe_signaling_channel(ChannelName=name)["ChannelInfo"]["ChannelARN"] == again


# --- endpoint -----------------------------------------------------------------------------------

def test_endpoint_returns_requested_protocols(server, kv, name):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    eps = kv.get_signaling_channel_endpoint(ChannelARN=arn, SingleMasterChannelEndpointConfiguration={
        "Protocols": ["WSS", "HTTPS"], "Role": "MASTER"})["ResourceEndpointList"]
    by_proto = {e["Protocol"]: e["ResourceEndpoint"] for e in eps}
    assert set(by_proto) == {"WSS", "HTTPS"}
    assert by_proto["HTTPS"] == server.url
    assert by_proto["WSS"].startswith("wss://") and "?" not in by_proto["WSS"]


def test_endpoint_webrtc_without_media_storage_is_invalid(kv, name):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.get_signaling_channel_endpoint(ChannelARN=arn, SingleMasterChannelEndpointConfiguration={
            "Protocols": ["WEBRTC"], "Role": "MASTER"})


def test_endpoint_missing_channel_and_bad_role(kv, name):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.get_signaling_channel_endpoint(ChannelARN=arn.replace(name, name + "-gone"))
    with pytest.raises(kv.exceptions.InvalidArgumentException) as exc:
        kv.get_signaling_channel_endpoint(ChannelARN=arn, SingleMasterChannelEndpointConfiguration={
            "Protocols": ["WSS"], "Role": "OWNER"})
    assert "singleMasterChannelEndpointConfiguration.role" in error(exc)[2]


# --- account limit, persistence, regions ---------------------------------------------------------

def test_account_channel_limit(make_server):
    srv = make_server("--channels-per-account", "3")
    kv = srv.boto()
    for i in range(3):
        kv.create_signaling_channel(ChannelName=f"c{i}")
    with pytest.raises(kv.exceptions.AccountChannelLimitExceededException) as exc:
        kv.create_signaling_channel(ChannelName="c3")
    assert error(exc)[1] == 400
    # The limit is per region, and deleting frees a slot.
    srv.boto(region="eu-west-1").create_signaling_channel(ChannelName="c3")
    kv.delete_signaling_channel(ChannelARN=kv.describe_signaling_channel(ChannelName="c0")["ChannelInfo"]["ChannelARN"])
    kv.create_signaling_channel(ChannelName="c3")


def test_state_survives_restart(make_server):
    srv = make_server()
    kv = srv.boto()
    arn = kv.create_signaling_channel(ChannelName="keep", SingleMasterConfiguration={"MessageTtlSeconds": 33},
                                      Tags=[{"Key": "k", "Value": "v"}])["ChannelARN"]
    before = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]
    srv.restart()
    kv = srv.boto()
    assert kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"] == before
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"k": "v"}
    with pytest.raises(kv.exceptions.ResourceInUseException):
        kv.create_signaling_channel(ChannelName="keep")


def test_regions_are_separate_namespaces(server, name):
    west, eu = server.boto(region="us-west-2"), server.boto(region="eu-west-1")
    west_arn = west.create_signaling_channel(ChannelName=name)["ChannelARN"]
    with pytest.raises(eu.exceptions.ResourceNotFoundException):
        eu.describe_signaling_channel(ChannelName=name)
    with pytest.raises(eu.exceptions.ResourceNotFoundException):
        eu.describe_signaling_channel(ChannelARN=west_arn)
    cond = {"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": name}
    assert eu.list_signaling_channels(ChannelNameCondition=cond)["ChannelInfoList"] == []
    eu_arn = eu.create_signaling_channel(ChannelName=name)["ChannelARN"]
    assert ":eu-west-1:" in eu_arn and eu_arn != west_arn
    assert west.describe_signaling_channel(ChannelName=name)["ChannelInfo"]["ChannelARN"] == west_arn


# --- the HTTP edge ------------------------------------------------------------------------------

def test_response_headers_and_raw_epoch_creation_time(server, kv, name):
    kv.create_signaling_channel(ChannelName=name)
    r = signed("POST", server.http_url + "/describeSignalingChannel", json.dumps({"ChannelName": name}).encode())
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert re.fullmatch(r"[0-9a-f-]{36}", r.headers["x-amzn-RequestId"])
    assert email.utils.parsedate_to_datetime(r.headers["Date"]) is not None
    raw = r.json()["ChannelInfo"]["CreationTime"]
    assert isinstance(raw, (int, float)) and not isinstance(raw, bool)
    resp = kv.describe_signaling_channel(ChannelName=name)
    assert resp["ResponseMetadata"]["RequestId"] == resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]


def test_error_response_wire_form(server, name):
    r = signed("POST", server.http_url + "/describeSignalingChannel", json.dumps({"ChannelName": name}).encode())
    assert r.status == 404
    assert r.error_type == "ResourceNotFoundException"
    assert r.headers["x-amzn-RequestId"]
    assert r.headers["Date"]
    assert r.json() == {"__type": "ResourceNotFoundException",
                        "Message": "The requested channel is not found or not active."}


def test_cors_preflight(server):
    r = send("OPTIONS", server.url + "/createSignalingChannel", headers={
        "Origin": "http://localhost:3000",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,x-amz-date,x-amz-content-sha256",
    }, ca=server.ca)
    assert r.status == 200
    assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    assert "authorization" in r.headers["Access-Control-Allow-Headers"].lower()
    assert "x-amzn-requestid" in r.headers["Access-Control-Expose-Headers"].lower()


def test_actual_cors_request_exposes_headers(server, name):
    body = json.dumps({"ChannelName": name}).encode()
    r = signed("POST", server.http_url + "/describeSignalingChannel", body, {"Origin": "http://app.example"})
    assert r.status == 404
    assert r.headers["Access-Control-Allow-Origin"] == "http://app.example"
    assert "x-amzn-errortype" in r.headers["Access-Control-Expose-Headers"].lower()


HOSTILE = [
    pytest.param("POST", "/describeSignalingChannel", b'{"ChannelName": "x"', {}, 400, "InvalidArgumentException",
                 id="malformed-json"),
    pytest.param("POST", "/describeSignalingChannel", b'["ChannelName"]', {}, 400, "InvalidArgumentException",
                 id="json-array"),
    pytest.param("POST", "/describeSignalingChannel", b'null', {}, 400, "InvalidArgumentException", id="json-null"),
    pytest.param("POST", "/describeSignalingChannel", b"[" * 50000 + b"]" * 50000, {}, 400,
                 "InvalidArgumentException", id="deeply-nested"),
    pytest.param("POST", "/listSignalingChannels", b'{"MaxResults": NaN}', {}, 400, "InvalidArgumentException",
                 id="nan"),
    pytest.param("POST", "/describeSignalingChannel", b'{"ChannelName": "\xff"}', {}, 400,
                 "InvalidArgumentException", id="not-utf8"),
    pytest.param("POST", "/describeSignalingChannel", b'{"ChannelName": "x"}', {"Content-Type": "text/html"}, 400,
                 "InvalidArgumentException", id="wrong-content-type"),
    pytest.param("POST", "/describeSignalingChannel", b'{"ChannelName": 7}', {}, 400, "InvalidArgumentException",
                 id="wrong-type"),
    pytest.param("POST", "/no/such/operation", b"{}", {}, 404, "UnknownOperationException", id="unknown-path"),
    pytest.param("PUT", "/describeSignalingChannel", b"{}", {}, 405, "UnknownOperationException", id="wrong-method"),
    pytest.param("DELETE", "/createSignalingChannel", b"", {}, 405, "UnknownOperationException", id="delete-method"),
    pytest.param("POST", "/describeSignalingChannel", b'{"ChannelName": "' + b"a" * (1024 * 1024 + 10) + b'"}', {},
                 413, "InvalidArgumentException", id="body-over-1MiB"),
]


@pytest.mark.parametrize("method, path, body, headers, status, code", HOSTILE)
def test_hostile_input_gets_a_json_error_and_harms_nothing(server, kv, name, method, path, body, headers, status, code):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    before = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]
    r = signed(method, server.http_url + path, body, headers)
    assert r.status == status
    assert r.error_type == code
    assert r.headers["Content-Type"].startswith("application/json")
    assert set(r.json()) == {"__type", "Message"}
    assert r.headers["x-amzn-RequestId"]
    # The server is still healthy and the valid channel is untouched.
    assert send("GET", server.http_url + "/health").status == 200
    assert kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"] == before


def test_signed_header_missing_from_request_is_403_not_500(server, name):
    url = server.http_url + "/describeSignalingChannel"
    body = json.dumps({"ChannelName": name}).encode()
    headers = sign("POST", url, body, {"X-Extra": "1"})
    del headers["X-Extra"]
    r = send("POST", url, body, headers)
    assert r.status == 403
    assert r.error_type == "InvalidSignatureException"
    assert "x-extra" in r.json()["Message"]


def test_unsupported_kinesisvideo_operation_is_modeled_invalid_argument(kv, name):
    with pytest.raises(kv.exceptions.InvalidArgumentException) as exc:
        kv.get_data_endpoint(StreamName=name, APIName="PUT_MEDIA")
    assert "Signalite does not support GetDataEndpoint" in error(exc)[2]

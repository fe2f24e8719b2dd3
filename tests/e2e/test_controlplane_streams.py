"""Stream operations through boto3 against the real server."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.server import ACCOUNT, REGION
from tests.support.signed import signed

STREAM_ARN_RE = re.compile(r"^arn:aws:kinesisvideo:us-west-2:111122223333:stream/(?P<name>[a-zA-Z0-9_.-]+)/(?P<ms>\d{13})$")


def code_of(exc: pytest.ExceptionInfo) -> tuple[str, int, str]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def version(kv, arn: str) -> str:
    return kv.describe_stream(StreamARN=arn)["StreamInfo"]["Version"]


def test_create_stream_with_aws_defaults(kv, name):
    arn = kv.create_stream(StreamName=name)["StreamARN"]
    m = STREAM_ARN_RE.match(arn)
    assert m and m["name"] == name
    info = kv.describe_stream(StreamName=name)["StreamInfo"]
    assert info["StreamARN"] == arn
    assert info["Status"] == "ACTIVE"
    assert info["DataRetentionInHours"] == 0
    assert info["KmsKeyId"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/aws/kinesisvideo"
    assert round(info["CreationTime"].timestamp() * 1000) == int(m["ms"])
    assert "DeviceName" not in info and "MediaType" not in info
    assert kv.describe_stream(StreamARN=arn)["StreamInfo"] == info


def test_create_stream_with_every_member(kv, name):
    arn = kv.create_stream(StreamName=name, DeviceName="cam-1", MediaType="video/h264", KmsKeyId="my-key",
                           DataRetentionInHours=24, Tags={"a": "1", "b": "2"},
                           StreamStorageConfiguration={"DefaultStorageTier": "HOT"})["StreamARN"]
    info = kv.describe_stream(StreamARN=arn)["StreamInfo"]
    assert (info["DeviceName"], info["MediaType"], info["KmsKeyId"], info["DataRetentionInHours"]) == (
        "cam-1", "video/h264", "my-key", 24)
    assert kv.list_tags_for_stream(StreamARN=arn)["Tags"] == {"a": "1", "b": "2"}


def test_stream_creation_time_is_an_epoch_number_on_the_wire(server, kv, name):
    kv.create_stream(StreamName=name)
    r = signed("POST", server.http_url + "/describeStream", json.dumps({"StreamName": name}).encode())
    assert r.status == 200
    assert isinstance(r.json()["StreamInfo"]["CreationTime"], (int, float))


def test_duplicate_stream_is_resource_in_use_but_channel_of_same_name_is_fine(kv, name):
    kv.create_stream(StreamName=name)
    with pytest.raises(kv.exceptions.ResourceInUseException):
        kv.create_stream(StreamName=name)
    kv.create_signaling_channel(ChannelName=name)  # separate namespace per kind


@pytest.mark.parametrize("kwargs, member", [
    ({"MediaType": "not a mime"}, "mediaType"),
    ({"DeviceName": "x" * 129}, "deviceName"),
    ({"StreamStorageConfiguration": {"DefaultStorageTier": "COLD"}}, "streamStorageConfiguration.defaultStorageTier"),
])
def test_create_stream_unchecked_values(kv, name, kwargs, member):
    with pytest.raises(kv.exceptions.InvalidArgumentException) as exc:
        kv.create_stream(StreamName=name, **kwargs)
    assert f"'{member}'" in code_of(exc)[2]


def test_describe_missing_stream(kv, name):
    with pytest.raises(kv.exceptions.ResourceNotFoundException) as exc:
        kv.describe_stream(StreamName=name)
    assert code_of(exc)[1:] == (404, "The requested stream is not found or not active.")
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.describe_stream()


def test_list_streams_pages_and_condition(kv, name):
    names = [f"{name}-{i}" for i in range(5)]
    for n in names:
        kv.create_stream(StreamName=n)
    cond = {"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": name}
    got, token, sizes = [], None, []
    while True:
        resp = kv.list_streams(MaxResults=2, StreamNameCondition=cond, **({"NextToken": token} if token else {}))
        sizes.append(len(resp["StreamInfoList"]))
        got += [s["StreamName"] for s in resp["StreamInfoList"]]
        token = resp.get("NextToken")
        if not token:
            break
    assert sizes == [2, 2, 1]
    assert got == names
    pages = list(kv.get_paginator("list_streams").paginate(StreamNameCondition=cond, PaginationConfig={"PageSize": 3}))
    assert [len(p["StreamInfoList"]) for p in pages] == [3, 2]
    # Without a condition the pages still walk every stream once.
    everything, token = [], None
    while True:
        resp = kv.list_streams(MaxResults=3, **({"NextToken": token} if token else {}))
        everything += [s["StreamName"] for s in resp["StreamInfoList"]]
        token = resp.get("NextToken")
        if not token:
            break
    assert len(everything) == len(set(everything))
    assert [n for n in everything if n.startswith(name)] == names


def test_list_streams_does_not_show_channels(kv, name):
    kv.create_signaling_channel(ChannelName=name)
    resp = kv.list_streams(StreamNameCondition={"ComparisonOperator": "BEGINS_WITH", "ComparisonValue": name})
    assert resp["StreamInfoList"] == []


def test_update_stream_by_name_and_by_arn(kv, name):
    arn = kv.create_stream(StreamName=name, DeviceName="old")["StreamARN"]
    v1 = version(kv, arn)
    kv.update_stream(StreamName=name, CurrentVersion=v1, DeviceName="new", MediaType="video/h265")
    info = kv.describe_stream(StreamARN=arn)["StreamInfo"]
    assert (info["DeviceName"], info["MediaType"]) == ("new", "video/h265")
    assert info["Version"] != v1
    with pytest.raises(kv.exceptions.VersionMismatchException):
        kv.update_stream(StreamARN=arn, CurrentVersion=v1, DeviceName="stale")
    assert kv.describe_stream(StreamARN=arn)["StreamInfo"]["DeviceName"] == "new"
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.update_stream(StreamName=name + "-nope", CurrentVersion=v1)


def test_update_data_retention_up_and_down(kv, name):
    arn = kv.create_stream(StreamName=name)["StreamARN"]
    kv.update_data_retention(StreamARN=arn, CurrentVersion=version(kv, arn), Operation="INCREASE_DATA_RETENTION",
                             DataRetentionChangeInHours=10)
    assert kv.describe_stream(StreamARN=arn)["StreamInfo"]["DataRetentionInHours"] == 10
    kv.update_data_retention(StreamName=name, CurrentVersion=version(kv, arn), Operation="DECREASE_DATA_RETENTION",
                             DataRetentionChangeInHours=4)
    assert kv.describe_stream(StreamARN=arn)["StreamInfo"]["DataRetentionInHours"] == 6
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.update_data_retention(StreamARN=arn, CurrentVersion=version(kv, arn), Operation="DECREASE_DATA_RETENTION",
                                 DataRetentionChangeInHours=7)
    assert kv.describe_stream(StreamARN=arn)["StreamInfo"]["DataRetentionInHours"] == 6
    with pytest.raises(kv.exceptions.VersionMismatchException):
        kv.update_data_retention(StreamARN=arn, CurrentVersion="old1", Operation="INCREASE_DATA_RETENTION",
                                 DataRetentionChangeInHours=1)
    with pytest.raises(kv.exceptions.InvalidArgumentException) as exc:
        kv.update_data_retention(StreamARN=arn, CurrentVersion=version(kv, arn), Operation="DOUBLE",
                                 DataRetentionChangeInHours=1)
    assert "'operation'" in code_of(exc)[2]


def test_delete_stream(kv, name):
    arn = kv.create_stream(StreamName=name)["StreamARN"]
    with pytest.raises(kv.exceptions.VersionMismatchException):
        kv.delete_stream(StreamARN=arn, CurrentVersion="nope1")
    kv.delete_stream(StreamARN=arn, CurrentVersion=version(kv, arn))
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.describe_stream(StreamARN=arn)
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.delete_stream(StreamARN=arn)
    arn2 = kv.create_stream(StreamName=name)["StreamARN"]
    kv.delete_stream(StreamARN=arn2)
    assert kv.list_streams(StreamNameCondition={"ComparisonOperator": "BEGINS_WITH",
                                                "ComparisonValue": name})["StreamInfoList"] == []


def test_stream_tags_by_name_and_arn(kv, name):
    arn = kv.create_stream(StreamName=name, Tags={"keep": "1", "old": "x"})["StreamARN"]
    kv.tag_stream(StreamName=name, Tags={"old": "y", "new": "z"})
    assert kv.list_tags_for_stream(StreamARN=arn)["Tags"] == {"keep": "1", "old": "y", "new": "z"}
    kv.untag_stream(StreamARN=arn, TagKeyList=["old", "never-there"])
    assert kv.list_tags_for_stream(StreamName=name)["Tags"] == {"keep": "1", "new": "z"}
    # Tagging does not change the stream's version (it is not configuration).
    v = version(kv, arn)
    kv.tag_stream(StreamARN=arn, Tags={"more": "1"})
    assert version(kv, arn) == v


def test_stream_tags_limit(kv, name):
    arn = kv.create_stream(StreamName=name, Tags={f"k{i}": "v" for i in range(30)})["StreamARN"]
    with pytest.raises(kv.exceptions.TagsPerResourceExceededLimitException) as exc:
        kv.tag_stream(StreamARN=arn, Tags={f"n{i}": "v" for i in range(21)})
    assert code_of(exc)[1] == 400
    assert len(kv.list_tags_for_stream(StreamARN=arn)["Tags"]) == 30
    kv.tag_stream(StreamARN=arn, Tags={f"n{i}": "v" for i in range(20)})  # exactly 50 is allowed
    assert len(kv.list_tags_for_stream(StreamARN=arn)["Tags"]) == 50
    kv.tag_stream(StreamARN=arn, Tags={"k0": "overwrite"})  # overwriting does not add
    assert kv.list_tags_for_stream(StreamARN=arn)["Tags"]["k0"] == "overwrite"


def test_stream_tag_ops_on_missing_stream(kv, name):
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.tag_stream(StreamName=name, Tags={"a": "b"})
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.untag_stream(StreamName=name, TagKeyList=["a"])
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.list_tags_for_stream(StreamName=name)
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.list_tags_for_stream()


def test_streams_are_regional(server, name):
    west, eu = server.boto(region=REGION), server.boto(region="eu-west-1")
    arn = west.create_stream(StreamName=name)["StreamARN"]
    with pytest.raises(eu.exceptions.ResourceNotFoundException):
        eu.describe_stream(StreamARN=arn)
    eu.create_stream(StreamName=name)
    assert eu.describe_stream(StreamName=name)["StreamInfo"]["StreamARN"] != arn


def test_streams_survive_restart(make_server):
    srv = make_server()
    kv = srv.boto()
    arn = kv.create_stream(StreamName="s", DataRetentionInHours=5, Tags={"t": "1"})["StreamARN"]
    before = kv.describe_stream(StreamARN=arn)["StreamInfo"]
    srv.restart()
    kv = srv.boto()
    assert kv.describe_stream(StreamARN=arn)["StreamInfo"] == before
    assert kv.list_tags_for_stream(StreamARN=arn)["Tags"] == {"t": "1"}

"""Tagging by ARN and media storage configuration through boto3 against the real server."""

from __future__ import annotations

import pytest

from tests.support.server import ACCOUNT, REGION


def err(exc: pytest.ExceptionInfo) -> tuple[str, int, str]:
    r = exc.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"]["Message"]


def tags(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in pairs]


# --- TagResource / UntagResource / ListTagsForResource -----------------------------------------

def test_tag_untag_list_channel(kv, name):
    arn = kv.create_signaling_channel(ChannelName=name, Tags=tags(("a", "1")))["ChannelARN"]
    version = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["Version"]
    kv.tag_resource(ResourceARN=arn, Tags=tags(("a", "2"), ("b", "3")))
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"a": "2", "b": "3"}
    kv.untag_resource(ResourceARN=arn, TagKeyList=["a", "unknown"])
    resp = kv.list_tags_for_resource(ResourceARN=arn)
    assert resp["Tags"] == {"b": "3"}
    assert "NextToken" not in resp
    # Tags are not channel configuration: a client holding the Version can still update.
    assert kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]["Version"] == version
    kv.update_signaling_channel(ChannelARN=arn, CurrentVersion=version,
                                SingleMasterConfiguration={"MessageTtlSeconds": 10})


def test_tag_resource_works_on_streams_too(kv, name):
    arn = kv.create_stream(StreamName=name, Tags={"s": "1"})["StreamARN"]
    kv.tag_resource(ResourceARN=arn, Tags=tags(("r", "2")))
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"s": "1", "r": "2"}
    assert kv.list_tags_for_stream(StreamARN=arn)["Tags"] == {"s": "1", "r": "2"}
    kv.untag_resource(ResourceARN=arn, TagKeyList=["s"])
    assert kv.list_tags_for_stream(StreamARN=arn)["Tags"] == {"r": "2"}


def test_list_tags_of_untagged_channel_is_empty_map(kv, name):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {}


def test_tags_per_resource_limit(kv, name):
    arn = kv.create_signaling_channel(ChannelName=name, Tags=tags(*[(f"k{i}", "v") for i in range(40)]))["ChannelARN"]
    with pytest.raises(kv.exceptions.TagsPerResourceExceededLimitException) as exc:
        kv.tag_resource(ResourceARN=arn, Tags=tags(*[(f"n{i}", "v") for i in range(11)]))
    assert err(exc)[1] == 400
    assert len(kv.list_tags_for_resource(ResourceARN=arn)["Tags"]) == 40
    kv.tag_resource(ResourceARN=arn, Tags=tags(*[(f"k{i}", "w") for i in range(40)], *[(f"n{i}", "v") for i in range(10)]))
    after = kv.list_tags_for_resource(ResourceARN=arn)["Tags"]
    assert len(after) == 50 and after["k0"] == "w"


def test_tag_ops_on_missing_or_foreign_resources(kv, name):
    missing = f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:channel/{name}/1700000000000"
    foreign = kv.create_signaling_channel(ChannelName=name)["ChannelARN"].replace(ACCOUNT, "444455556666")
    for arn in (missing, foreign):
        with pytest.raises(kv.exceptions.ResourceNotFoundException):
            kv.tag_resource(ResourceARN=arn, Tags=tags(("a", "b")))
        with pytest.raises(kv.exceptions.ResourceNotFoundException):
            kv.untag_resource(ResourceARN=arn, TagKeyList=["a"])
        with pytest.raises(kv.exceptions.ResourceNotFoundException):
            kv.list_tags_for_resource(ResourceARN=arn)


@pytest.mark.parametrize("call, member", [
    (lambda kv, arn: kv.tag_resource(ResourceARN=arn, Tags=tags(("bad\u0000key", "v"))), "tags.1.member.key"),
    (lambda kv, arn: kv.tag_resource(ResourceARN=arn, Tags=tags(("k", "v" * 257))), "tags.1.member.value"),
    (lambda kv, arn: kv.untag_resource(ResourceARN=arn, TagKeyList=["k" * 129]), "tagKeyList.1.member"),
    (lambda kv, arn: kv.tag_resource(ResourceARN="arn:aws:s3:::bucket", Tags=tags(("k", "v"))), "resourceARN"),
])
def test_tag_values_outside_the_model_are_invalid(kv, name, call, member):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    with pytest.raises(kv.exceptions.InvalidArgumentException) as exc:
        call(kv, arn)
    assert f"'{member}'" in err(exc)[2]
    assert kv.list_tags_for_resource(ResourceARN=arn)["Tags"] == {}


def test_tag_resource_with_an_unknown_resource_kind_is_invalid(kv):
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.tag_resource(ResourceARN=f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:bucket/x/1700000000000",
                        Tags=tags(("k", "v")))


def test_list_tags_with_garbage_token_is_invalid(kv, name):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.list_tags_for_resource(ResourceARN=arn, NextToken="abc")


# --- media storage ----------------------------------------------------------------------------

def _stream(kv, name: str, hours: int = 24) -> str:
    return kv.create_stream(StreamName=name, DataRetentionInHours=hours)["StreamARN"]


def test_never_configured_channel_reports_disabled(kv, name):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    for kwargs in ({"ChannelARN": arn}, {"ChannelName": name}):
        assert kv.describe_media_storage_configuration(**kwargs)["MediaStorageConfiguration"] == {"Status": "DISABLED"}


def test_enable_describe_map_endpoint_disable(kv, name):
    channel = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    stream = _stream(kv, name)
    assert kv.describe_mapped_resource_configuration(StreamARN=stream)["MappedResourceConfigurationList"] == []
    kv.update_media_storage_configuration(ChannelARN=channel, MediaStorageConfiguration={
        "Status": "ENABLED", "StreamARN": stream})
    assert kv.describe_media_storage_configuration(ChannelARN=channel)["MediaStorageConfiguration"] == {
        "Status": "ENABLED", "StreamARN": stream}
    mapped = kv.describe_mapped_resource_configuration(StreamName=name, MaxResults=1)["MappedResourceConfigurationList"]
    assert mapped == [{"Type": "SIGNALING_CHANNEL", "ARN": channel}]
    eps = kv.get_signaling_channel_endpoint(ChannelARN=channel, SingleMasterChannelEndpointConfiguration={
        "Protocols": ["WEBRTC", "WSS", "HTTPS"], "Role": "MASTER"})["ResourceEndpointList"]
    assert [e["Protocol"] for e in eps] == ["WEBRTC", "WSS", "HTTPS"]
    # Enabling again with the same stream is idempotent.
    kv.update_media_storage_configuration(ChannelARN=channel, MediaStorageConfiguration={
        "Status": "ENABLED", "StreamARN": stream})
    kv.update_media_storage_configuration(ChannelARN=channel, MediaStorageConfiguration={"Status": "DISABLED"})
    assert kv.describe_media_storage_configuration(ChannelARN=channel)["MediaStorageConfiguration"] == {"Status": "DISABLED"}
    assert kv.describe_mapped_resource_configuration(StreamARN=stream)["MappedResourceConfigurationList"] == []
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.get_signaling_channel_endpoint(ChannelARN=channel, SingleMasterChannelEndpointConfiguration={
            "Protocols": ["WEBRTC"], "Role": "MASTER"})


def test_channel_settings_survive_media_storage_changes(kv, name):
    channel = kv.create_signaling_channel(ChannelName=name, SingleMasterConfiguration={"MessageTtlSeconds": 15},
                                          Tags=tags(("t", "1")))["ChannelARN"]
    before = kv.describe_signaling_channel(ChannelARN=channel)["ChannelInfo"]
    kv.update_media_storage_configuration(ChannelARN=channel, MediaStorageConfiguration={
        "Status": "ENABLED", "StreamARN": _stream(kv, name)})
    info = kv.describe_signaling_channel(ChannelARN=channel)["ChannelInfo"]
    # The storage mapping is not signaling configuration: the Version a client holds stays valid.
    assert info == before
    kv.update_signaling_channel(ChannelARN=channel, CurrentVersion=info["Version"],
                                SingleMasterConfiguration={"MessageTtlSeconds": 20})
    assert kv.describe_media_storage_configuration(ChannelARN=channel)["MediaStorageConfiguration"]["Status"] == "ENABLED"
    assert kv.list_tags_for_resource(ResourceARN=channel)["Tags"] == {"t": "1"}


def test_stream_without_retention_is_no_data_retention(kv, name):
    channel = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    stream = _stream(kv, name, hours=0)
    with pytest.raises(kv.exceptions.NoDataRetentionException) as exc:
        kv.update_media_storage_configuration(ChannelARN=channel, MediaStorageConfiguration={
            "Status": "ENABLED", "StreamARN": stream})
    assert err(exc)[1] == 400
    assert kv.describe_media_storage_configuration(ChannelARN=channel)["MediaStorageConfiguration"] == {"Status": "DISABLED"}


def test_stream_mapped_to_another_channel_is_in_use(kv, name):
    first = kv.create_signaling_channel(ChannelName=name + "-a")["ChannelARN"]
    second = kv.create_signaling_channel(ChannelName=name + "-b")["ChannelARN"]
    stream = _stream(kv, name)
    kv.update_media_storage_configuration(ChannelARN=first, MediaStorageConfiguration={"Status": "ENABLED", "StreamARN": stream})
    with pytest.raises(kv.exceptions.ResourceInUseException):
        kv.update_media_storage_configuration(ChannelARN=second, MediaStorageConfiguration={
            "Status": "ENABLED", "StreamARN": stream})
    assert kv.describe_mapped_resource_configuration(StreamARN=stream)["MappedResourceConfigurationList"][0]["ARN"] == first
    # Moving the first channel to another stream frees this one.
    kv.update_media_storage_configuration(ChannelARN=first, MediaStorageConfiguration={
        "Status": "ENABLED", "StreamARN": _stream(kv, name + "-2")})
    kv.update_media_storage_configuration(ChannelARN=second, MediaStorageConfiguration={
        "Status": "ENABLED", "StreamARN": stream})
    assert kv.describe_mapped_resource_configuration(StreamARN=stream)["MappedResourceConfigurationList"][0]["ARN"] == second


def test_mapped_stream_cannot_be_deleted_until_disabled(kv, name):
    channel = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    stream = _stream(kv, name)
    kv.update_media_storage_configuration(ChannelARN=channel, MediaStorageConfiguration={"Status": "ENABLED", "StreamARN": stream})
    with pytest.raises(kv.exceptions.ResourceInUseException):
        kv.delete_stream(StreamARN=stream)
    kv.update_media_storage_configuration(ChannelARN=channel, MediaStorageConfiguration={"Status": "DISABLED"})
    kv.delete_stream(StreamARN=stream)


def test_deleting_the_channel_frees_the_stream(kv, name):
    channel = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    stream = _stream(kv, name)
    kv.update_media_storage_configuration(ChannelARN=channel, MediaStorageConfiguration={"Status": "ENABLED", "StreamARN": stream})
    kv.delete_signaling_channel(ChannelARN=channel)
    assert kv.describe_mapped_resource_configuration(StreamARN=stream)["MappedResourceConfigurationList"] == []


def test_enable_with_missing_foreign_or_absent_stream(server, kv, name):
    channel = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    missing = f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:stream/{name}/1700000000000"
    eu_stream = server.boto(region="eu-west-1").create_stream(StreamName=name, DataRetentionInHours=1)["StreamARN"]
    for stream in (missing, eu_stream):
        with pytest.raises(kv.exceptions.ResourceNotFoundException):
            kv.update_media_storage_configuration(ChannelARN=channel, MediaStorageConfiguration={
                "Status": "ENABLED", "StreamARN": stream})
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.update_media_storage_configuration(ChannelARN=channel, MediaStorageConfiguration={"Status": "ENABLED"})
    with pytest.raises(kv.exceptions.InvalidArgumentException):  # a channel ARN is not a stream
        kv.update_media_storage_configuration(ChannelARN=channel, MediaStorageConfiguration={
            "Status": "ENABLED", "StreamARN": channel})
    with pytest.raises(kv.exceptions.InvalidArgumentException) as exc:
        kv.update_media_storage_configuration(ChannelARN=channel, MediaStorageConfiguration={"Status": "ON"})
    assert "mediaStorageConfiguration.status" in err(exc)[2]
    assert kv.describe_media_storage_configuration(ChannelARN=channel)["MediaStorageConfiguration"] == {"Status": "DISABLED"}


def test_storage_operations_on_missing_resources(kv, name):
    missing_channel = f"arn:aws:kinesisvideo:{REGION}:{ACCOUNT}:channel/{name}/1700000000000"
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.describe_media_storage_configuration(ChannelName=name)
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.update_media_storage_configuration(ChannelARN=missing_channel, MediaStorageConfiguration={"Status": "DISABLED"})
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.describe_mapped_resource_configuration(StreamName=name)
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.describe_media_storage_configuration()
    with pytest.raises(kv.exceptions.InvalidArgumentException):
        kv.describe_mapped_resource_configuration()
    with pytest.raises(kv.exceptions.InvalidArgumentException) as exc:
        kv.describe_mapped_resource_configuration(StreamName=name, MaxResults=2)
    assert "'maxResults'" in err(exc)[2]


def test_media_storage_survives_restart(make_server):
    srv = make_server()
    kv = srv.boto()
    channel = kv.create_signaling_channel(ChannelName="c")["ChannelARN"]
    stream = kv.create_stream(StreamName="s", DataRetentionInHours=1)["StreamARN"]
    kv.update_media_storage_configuration(ChannelARN=channel, MediaStorageConfiguration={"Status": "ENABLED", "StreamARN": stream})
    srv.restart()
    kv = srv.boto()
    assert kv.describe_media_storage_configuration(ChannelName="c")["MediaStorageConfiguration"] == {
        "Status": "ENABLED", "StreamARN": stream}
    assert kv.describe_mapped_resource_configuration(StreamName="s")["MappedResourceConfigurationList"] == [
        {"Type": "SIGNALING_CHANNEL", "ARN": channel}]

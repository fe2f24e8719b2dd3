"""The foundation end to end: the real process, boto3 over TLS with the generated CA."""

from __future__ import annotations

import pytest


def test_health_and_create_describe_roundtrip(server, kv, name):
    arn = kv.create_signaling_channel(ChannelName=name)["ChannelARN"]
    info = kv.describe_signaling_channel(ChannelARN=arn)["ChannelInfo"]
    assert info["ChannelName"] == name
    assert info["ChannelStatus"] == "ACTIVE"
    assert info["SingleMasterConfiguration"] == {"MessageTtlSeconds": 60}
    with pytest.raises(kv.exceptions.ResourceNotFoundException):
        kv.describe_signaling_channel(ChannelName=name + "-missing")

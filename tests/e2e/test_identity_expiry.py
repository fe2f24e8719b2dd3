"""Temporary credentials expire on the server's clock, not on a sleep.

The real process only mints tokens of 900 seconds or more, so this test builds the server the
same way ``signalite serve`` does (``build_app``) but on a :class:`ManualClock`, runs it on
aiohttp's test server in a thread of its own (boto3 and websockets call it from the test's
thread, as clients over loopback), and moves the clock past the expiry. The clients sign on
that clock too (botocore's signing time is patched to read it), so their signatures stay
current while the credentials age.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Iterator
from unittest import mock

import boto3
import pytest
import websockets
from aiohttp.test_utils import TestServer
from botocore.config import Config
from botocore.exceptions import ClientError
from websockets.exceptions import InvalidStatus

from signalite.app import build_app
from signalite.aws.keys import RootCredentials
from signalite.clock import ManualClock
from signalite.config import Settings
from tests.support.signaling import presign

ROOT = RootCredentials("AKIDEXPIRYTEST000001", "expiry-test-secret-0000000000000000000000", "123456789012")


class InProcess:
    """``build_app`` on a ManualClock, served by aiohttp's TestServer on its own event loop."""

    def __init__(self, data_dir: Path) -> None:
        self.clock = ManualClock(time.time())
        self.app = build_app(Settings(data_dir=data_dir, stun_port=0), ROOT, clock=self.clock)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: TestServer | None = None

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    def __enter__(self) -> "InProcess":
        self.thread.start()
        self.server = TestServer(self.app, host="127.0.0.1")
        self.run(self.server.start_server())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.run(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    def advance(self, seconds: float) -> None:
        async def move() -> None:
            self.clock.advance(seconds)

        self.run(move())

    def client(self, service: str, key: str = ROOT.access_key_id, secret: str = ROOT.secret_access_key,
               token: str | None = None) -> Any:
        return boto3.client(service, region_name="us-west-2", endpoint_url=self.url, aws_access_key_id=key,
                            aws_secret_access_key=secret, aws_session_token=token,
                            config=Config(retries={"max_attempts": 1}))


@pytest.fixture
def node(tmp_path: Path) -> Iterator[InProcess]:
    with InProcess(tmp_path) as n:
        def signing_time(remove_tzinfo: bool = True) -> datetime:
            now = datetime.fromtimestamp(n.clock.now(), UTC)
            return now.replace(tzinfo=None) if remove_tzinfo else now

        with mock.patch("botocore.auth.get_current_datetime", signing_time):
            yield n


def as_client(node: InProcess, service: str, creds: dict[str, Any]) -> Any:
    return node.client(service, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


async def handshake(node: InProcess, arn: str, creds: dict[str, Any]) -> int:
    url = presign(None, arn, "viewer", access_key=creds["AccessKeyId"], secret_key=creds["SecretAccessKey"],  # type: ignore[arg-type]
                  token=creds["SessionToken"], at=datetime.fromtimestamp(node.clock.now(), UTC), base=node.url)
    try:
        ws = await websockets.connect(url, open_timeout=10)
    except InvalidStatus as exc:
        return exc.response.status_code
    await ws.close()
    return 101


def expect_expired(call: Any) -> None:
    with pytest.raises(ClientError) as exc:
        call()
    error = exc.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("ExpiredTokenException", 403)
    assert error["Error"]["Message"] == "The security token included in the request is expired"


async def test_session_and_role_credentials_stop_at_their_expiration(node: InProcess) -> None:
    iam, sts = node.client("iam"), node.client("sts")
    arn = node.client("kinesisvideo").create_signaling_channel(ChannelName="expiry")["ChannelARN"]
    iam.create_user(UserName="alice")
    iam.put_user_policy(UserName="alice", PolicyName="rights", PolicyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kinesisvideo:*",'
        '"sts:GetFederationToken"],"Resource":"*"}]}'))
    key = iam.create_access_key(UserName="alice")["AccessKey"]
    user_sts = node.client("sts", key["AccessKeyId"], key["SecretAccessKey"])
    iam.create_role(RoleName="viewer", AssumeRolePolicyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",'
        '"Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"}}]}'))
    iam.put_role_policy(RoleName="viewer", PolicyName="connect", PolicyDocument=(
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesisvideo:*","Resource":"*"}]}'))

    session = sts.get_session_token(DurationSeconds=900)["Credentials"]
    role = user_sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/viewer", RoleSessionName="v1",
                                DurationSeconds=1800)["Credentials"]
    federated = user_sts.get_federation_token(Name="browser", DurationSeconds=3600)["Credentials"]
    for creds in (session, role, federated):
        assert as_client(node, "sts", creds).get_caller_identity()["Account"] == "123456789012"
        assert await handshake(node, arn, creds) == 101

    node.advance(899)
    assert as_client(node, "kinesisvideo", session).describe_signaling_channel(ChannelARN=arn)
    node.advance(1)  # 900 seconds: the session token's Expiration
    expect_expired(lambda: as_client(node, "kinesisvideo", session).describe_signaling_channel(ChannelARN=arn))
    expect_expired(lambda: as_client(node, "sts", session).get_caller_identity())
    assert await handshake(node, arn, session) == 403
    assert await handshake(node, arn, role) == 101

    node.advance(900)  # 1800: the role session's
    expect_expired(lambda: as_client(node, "kinesisvideo", role).list_signaling_channels())
    assert await handshake(node, arn, role) == 403
    assert as_client(node, "sts", federated).get_caller_identity()

    node.advance(1800)  # 3600: the federation token's
    expect_expired(lambda: as_client(node, "sts", federated).get_caller_identity())
    assert await handshake(node, arn, federated) == 403
    # Long-term keys do not expire.
    assert user_sts.get_caller_identity()["Arn"] == "arn:aws:iam::123456789012:user/alice"

"""One storage session per channel across a cluster (``media.sessions``): where a
JoinStorageSessionAsViewer goes, and the reserved key the sessions' seats claim."""

from __future__ import annotations

from signalite.media.sessions import (
    ASK_CLUSTER,
    CLAIM_KEY,
    JOIN_HERE,
    START_HERE,
    VIEWER_REQUEST,
    _Session,
    viewer_route,
)
from signalite.media.signaling import REQUEST_PREFIX
from signalite.signaling.frames import ACTIONS, valid_id
from signalite.store import Resource

STREAM = "arn:aws:kinesisvideo:us-west-2:111122223333:stream/cam-stream/1700000000000"
OTHER_STREAM = "arn:aws:kinesisvideo:us-west-2:111122223333:stream/other/1700000000001"


def _session(stream: str = STREAM) -> _Session:
    arn = "arn:aws:kinesisvideo:us-west-2:111122223333:channel/cam/1700000000002"
    channel = Resource("111122223333", "us-west-2", "channel", "cam", arn, 1700000000.002, "v1")
    return _Session(channel, stream)


def test_a_viewer_joins_this_nodes_running_session():
    assert viewer_route(_session(), STREAM) == JOIN_HERE


def test_without_a_session_here_the_cluster_is_asked():
    # Another node may run it; only when none holds the channel's claim does this node start one.
    assert viewer_route(None, STREAM) == ASK_CLUSTER


def test_an_ending_session_here_or_one_of_another_stream_is_replaced_here():
    # This node's session holds (or just held) the claim: any other node's is older and stops.
    ending = _session()
    ending.stop("the master left")
    assert viewer_route(ending, STREAM) == START_HERE
    assert viewer_route(_session(OTHER_STREAM), STREAM) == START_HERE


def test_the_claim_key_and_its_requests_cannot_come_from_a_client():
    # No client id is the claim's key, so no client can register it or address a message to it;
    # and no client can send a request's messageType.
    assert not valid_id(CLAIM_KEY)
    assert "|" not in CLAIM_KEY and "\t" not in CLAIM_KEY  # the Redis script's separators
    assert VIEWER_REQUEST.startswith(REQUEST_PREFIX)
    assert not any(action.startswith(REQUEST_PREFIX) for action in ACTIONS)

"""The router's storage-session override (JoinStorageSessionAsViewer), without sockets: a storage
peer's seat takes a viewer into its session; the viewer's messages to the master go to the seat,
the seat writes to the viewer as the master does; the override ends with the viewer's connection,
the seat's leave, or the seat's close; it applies on whichever node holds the viewer."""

from __future__ import annotations

import dataclasses

from signalite.bus.base import Envelope
from signalite.config import Quotas
from signalite.signaling.router import MASTER, ControlVerb, Post, Publish, Router, control
from tests.unit.test_signaling_router import ARN, Sock, World

STORAGE = "signalite-storage-0123456789abcdef"


def _seated(w: World):  # type: ignore[no-untyped-def]
    master, viewer, other = w.connect(), w.connect("v1"), w.connect("v2")
    storage = w.connect(STORAGE, virtual=True)
    return master, viewer, other, storage


def test_a_joined_viewer_reaches_the_storage_peer_and_the_storage_peer_speaks_as_the_master():
    w = World()
    master, viewer, other, storage = _seated(w)
    actions = w.router.join_storage(storage, "v1")
    assert [type(a) for a in actions] == [Publish]
    w.run(actions)
    assert viewer.upstream == STORAGE and other.upstream == MASTER
    w.send(viewer, "SDP_ANSWER", "YW5z", recipient="anyone")
    w.send(viewer, "ICE_CANDIDATE", "Y2FuZA==")
    assert storage.handle.frames() == [
        {"messagePayload": "YW5z", "messageType": "SDP_ANSWER", "senderClientId": "v1"},
        {"messagePayload": "Y2FuZA==", "messageType": "ICE_CANDIDATE", "senderClientId": "v1"}]
    assert master.handle.sent == []
    # Another viewer still talks to the master.
    w.send(other, "SDP_OFFER", "b2Zm")
    assert master.handle.frames() == [{"messagePayload": "b2Zm", "messageType": "SDP_OFFER", "senderClientId": "v2"}]
    # The storage peer's offer reaches the viewer exactly as a master's message would look.
    w.run(w.router.message_as_master(storage, "v1", "SDP_OFFER", "b2ZmZXI=", w.now))
    assert viewer.handle.frames() == [{"messagePayload": "b2ZmZXI=", "messageType": "SDP_OFFER"}]
    # The master still reaches the storage peer as before (no senderClientId).
    w.send(master, "SDP_ANSWER", "bWFzdGVy", recipient=STORAGE)
    assert storage.handle.frames()[-1] == {"messagePayload": "bWFzdGVy", "messageType": "SDP_ANSWER"}


def test_the_storage_peer_addresses_only_viewers_it_took_in():
    w = World()
    master, viewer, other, storage = _seated(w)
    w.run(w.router.join_storage(storage, "v1"))
    assert w.router.message_as_master(storage, "v2", "SDP_OFFER", "b2Zm", w.now) == []
    assert w.router.message_as_master(storage, "v1", "GO_AWAY", "b2Zm", w.now) == []
    assert w.router.message_as_master(storage, "v1", "SDP_OFFER", "", w.now) == []
    # Only a server-side seat can take viewers in: a socket viewer cannot redirect another.
    assert w.router.join_storage(other, "v1") == []
    assert w.router.join_storage(master, "v1") == []
    assert w.router.message_as_master(other, "v1", "SDP_OFFER", "b2Zm", w.now) == []
    assert w.router.join_storage(storage, "not valid!") == []
    assert w.router.join_storage(storage, STORAGE) == []
    assert w.router.storage_viewers(storage) == {"v1"}
    assert other.handle.sent == [] and viewer.handle.sent == []


def test_the_override_ends_when_the_viewer_reconnects():
    w = World()
    master, viewer, _, storage = _seated(w)
    w.run(w.router.join_storage(storage, "v1"))
    w.run(w.router.disconnect(viewer, w.now))
    again = w.connect("v1")
    assert again.upstream == MASTER
    w.send(again, "SDP_OFFER", "b2Zm")
    assert master.handle.frames() == [{"messagePayload": "b2Zm", "messageType": "SDP_OFFER", "senderClientId": "v1"}]
    assert storage.handle.sent == []


def test_the_override_ends_when_the_storage_peer_leaves_or_its_seat_closes():
    w = World()
    master, viewer, other, storage = _seated(w)
    w.run(w.router.join_storage(storage, "v1"))
    w.run(w.router.join_storage(storage, "v2"))
    w.run(w.router.leave_storage(storage, "v1"))
    assert viewer.upstream == MASTER and other.upstream == STORAGE
    assert w.router.leave_storage(storage, "v1") == []  # once is enough
    closing = w.router.disconnect(storage, w.now)
    assert [a for a in closing if isinstance(a, Publish)] == [
        Publish(ARN, control(ControlVerb.STORAGE_LEAVE, f"v2 {STORAGE}"))]
    w.run(closing)
    assert other.upstream == MASTER
    w.send(other, "ICE_CANDIDATE", "Y2FuZA==")
    assert master.handle.frames()[-1]["senderClientId"] == "v2"
    assert w.router.storage_viewers(storage) == frozenset()


def test_a_leave_from_another_storage_peer_does_not_undo_the_join():
    w = World()
    _, viewer, _, storage = _seated(w)
    w.run(w.router.join_storage(storage, "v1"))
    w.run(w.router.deliver(ARN, control(ControlVerb.STORAGE_LEAVE, "v1 signalite-storage-someoneelse"), w.now))
    assert viewer.upstream == STORAGE


def test_the_join_applies_on_the_node_that_holds_the_viewer():
    # Node B holds the viewer; the storage peer's seat is on node A. The join reaches B as the
    # channel event A published; B's router then posts the viewer's messages to the seat's key,
    # which the bus's mailboxes carry to A.
    b = Router(dataclasses.replace(Quotas()))
    viewer, _ = b.connect(ARN, "v1", 60, 1000.0, Sock("v1"), token=1)
    b.deliver(ARN, control(ControlVerb.STORAGE_JOIN, f"v1 {STORAGE}"), 1000.0)
    [post] = b.message(viewer, '{"action":"SDP_ANSWER","messagePayload":"YW5z"}', 1000.0)
    assert isinstance(post, Post) and isinstance(post.envelope, Envelope)
    assert post.envelope.recipient == STORAGE and post.envelope.sender == "v1"
    b.deliver(ARN, control(ControlVerb.STORAGE_LEAVE, f"v1 {STORAGE}"), 1000.0)
    [post] = b.message(viewer, '{"action":"SDP_ANSWER","messagePayload":"YW5z"}', 1000.0)
    assert isinstance(post, Post) and post.envelope.recipient == MASTER
    # A join for a viewer this node does not hold changes nothing here.
    assert b.deliver(ARN, control(ControlVerb.STORAGE_JOIN, f"v9 {STORAGE}"), 1000.0) == []


def test_a_message_from_the_storage_peer_to_an_offline_viewer_is_retained_for_it():
    w = World()
    _, viewer, _, storage = _seated(w)
    w.run(w.router.join_storage(storage, "v1"))
    w.run(w.router.disconnect(viewer, w.now))
    w.run(w.router.message_as_master(storage, "v1", "SDP_OFFER", "b2Zm", w.now))
    [kept] = w.retained("v1")
    assert kept.sender == STORAGE and "senderClientId" not in kept.frame

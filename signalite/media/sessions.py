"""One storage session per channel (across a cluster), each in its own task, and the periodic upkeep.

:meth:`StorageSessions.start` is synchronous: JoinStorageSession answers as soon as the task
exists. The task loads aiortc and PyAV (in a thread, the first time), reads the stream, takes its
seat in the channel and runs the peer; whatever goes wrong in it is logged, never raised into
the caller or the signaling plane. A newer session for the same channel stops the running one
("the most recent client request takes precedence"); the viewers of the replaced session are taken
into the new one, which offers to each of them again. Sessions also stop when their peer connection
fails or closes (the master left), their seat is closed (GO_AWAY, the channel deleted, the server
stopping), the channel's media storage is disabled or re-mapped, or the server shuts down.

Viewers (JoinStorageSessionAsViewer): :meth:`StorageSessions.join_viewer` takes a viewer into the
channel's running session, or starts one that offers to the master and waits for it ("both a
video producing device and viewers can join a session first and wait for other participants", as
AWS puts it); at most :data:`MAX_VIEWERS` per session, a newer join of the same client id
replacing its earlier one. A viewer that joins while the session is still starting (loading
aiortc, reading the stream) is taken in as soon as the peer exists.

One session per channel across a cluster, the newest request winning wherever it arrives: the
session's seat claims the channel's reserved key :data:`CLAIM_KEY` in the bus's presence registry
(``SignalingLink.claim``) before it offers to the master. The registry's takeover rule is
atomic; a node whose seat's claim was taken over by a newer one elsewhere closes that seat, the
session ends, and its viewers are sent to the new session (:meth:`StorageSessions._hand_over`).
On one node, :meth:`StorageSessions.start` stops the older session itself (the embedded bus tells
nobody of a takeover on its own node), exactly as before. A JoinStorageSessionAsViewer on a node
that runs no session of the channel (:func:`viewer_route`) asks the bus whether anyone holds the
claim and, if so, posts the join to it (:data:`VIEWER_REQUEST`, delivered once to the node that
holds it, which takes the viewer in as if it had been asked itself); only when nobody holds it
does it start a session here. The viewer's WebSocket may be on any node: the join is a channel
event that every node applies to the viewer's connection, and the messages travel through the
bus's mailboxes. Limits (docs/cluster.md): the claim is taken when the seat joins, so calls
racing a session's start-up are ordered by their claims; a viewer sent to another node's session
is refused there only in its log when that session is full.

Upkeep, once a minute and when a session starts: the retention sweep, and stopping sessions
whose channel lost its media storage.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import channel as channels
from ..context import CLAIM_TAKEN_OVER
from ..store import Resource, Store
from . import retention
from .signaling import REQUEST_PREFIX, SignalingLink, accepting, open_link, post_request

if TYPE_CHECKING:  # pragma: no cover
    from ..clock import Clock
    from ..context import SignalingPlane
    from .peer import StoragePeer

log = logging.getLogger("signalite.storage")

CLIENT_ID_PREFIX = "signalite-storage-"
"""Storage peers' client ids: this prefix and 16 hex digits (valid client ids, never ``AWS_``)."""
UPKEEP_SECONDS = 60.0
ANSWER_MARGIN = 15.0
"""The offer waits the channel's MessageTtlSeconds for an offline master; the answer, this longer."""
STOP_WAIT = 10.0
MAX_VIEWERS = 3
"""Viewers per storage session, as on AWS."""
CLAIM_KEY = "#storage"
"""The reserved recipient key each session's seat claims in its channel (no client id can be it:
client ids are ``[a-zA-Z0-9_.-]``); the registry's takeover rule keeps one session per channel."""
VIEWER_REQUEST = REQUEST_PREFIX + "STORAGE_VIEWER"
"""A JoinStorageSessionAsViewer answered by another node: take the sender into the session. Its
payload, when not empty, is the claim key (:data:`ASK_PREFIX`…) to post the verdict to."""
VIEWER_VERDICT = REQUEST_PREFIX + "STORAGE_VERDICT"
"""The session's answer to a :data:`VIEWER_REQUEST`, posted to the asking node's claim key; its
sender field is the verdict: :data:`JOINED`, :data:`FULL` or :data:`STOPPING`."""
JOINED, FULL, STOPPING = "joined", "full", "stopping"
ASK_PREFIX = "#ask-"
"""Reserved keys (no client id can start with ``#``) that a node claims for one question."""
ASKER_PREFIX = "signalite-ask-"
"""The client id of the seat that asks (this prefix and 16 hex digits), for its life of one
question; not a storage peer's (:data:`CLIENT_ID_PREFIX`)."""
ASK_TIMEOUT = 3.0
"""Seconds a JoinStorageSessionAsViewer on a node without the session waits for the verdict of
the node that runs it; without one in time it answers as if the viewer joined (the session
applies the limit anyway, and the viewer gets no offer when it is refused)."""

JOIN_HERE, START_HERE, ASK_CLUSTER = "join here", "start here", "ask the cluster"


def viewer_route(local: "_Session | None", stream_arn: str) -> str:
    """Where a JoinStorageSessionAsViewer goes: into this node's running session of the channel
    (:data:`JOIN_HERE`), to a new one here when this node's is ending or records another stream
    (:data:`START_HERE`: this node claimed the channel last, so a session elsewhere is older and
    must stop anyway), or, when this node has none, to whichever node holds the channel's claim
    (:data:`ASK_CLUSTER`; a new session here if none does)."""
    if local is None:
        return ASK_CLUSTER
    if local.ending or local.stream_arn != stream_arn:
        return START_HERE
    return JOIN_HERE


class TooManyViewers(Exception):
    """The session already has :data:`MAX_VIEWERS` other viewers."""


def _import_peer() -> Any:
    return importlib.import_module("signalite.media.peer")


class _Session:
    def __init__(self, channel: Resource, stream_arn: str) -> None:
        self.id = secrets.token_hex(8)
        self.client_id = CLIENT_ID_PREFIX + self.id
        self.channel = channel
        self.channel_arn = channel.arn
        self.stream_arn = stream_arn
        self.peer: "StoragePeer | None" = None
        self.stop_reason: str | None = None
        self.task: asyncio.Task[None] | None = None
        self.waiting_viewers: list[str] = []
        """Viewers that joined before the peer existed."""

    @property
    def ending(self) -> bool:
        """Stopped, or its peer ended (the master left) and the task is finishing."""
        return self.stop_reason is not None or (self.peer is not None and self.peer.ended)

    def viewers(self) -> set[str]:
        return (self.peer.viewers if self.peer is not None else set()) | set(self.waiting_viewers)

    def add_viewer(self, client_id: str) -> None:
        if client_id not in self.viewers() and len(self.viewers()) >= MAX_VIEWERS:
            raise TooManyViewers(client_id)
        if self.peer is not None:
            self.peer.add_viewer(client_id)
        elif client_id not in self.waiting_viewers:
            self.waiting_viewers.append(client_id)

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
        if self.peer is not None:
            self.peer.end(reason)


class StorageSessions:
    """This node's storage sessions, by channel ARN."""

    def __init__(self, store: Store, hub: "SignalingPlane", clock: "Clock", media_root: Path,
                 ice_servers: list[dict[str, Any]] | None = None) -> None:
        self.store = store
        self.hub = hub
        self.clock = clock
        self.media_root = media_root
        self.ice_servers = list(ice_servers or [])
        self._sessions: dict[str, _Session] = {}
        self._all: set[_Session] = set()
        self._sweeping = False
        self._sweep: asyncio.Task[None] | None = None
        self._peer_import: asyncio.Future[Any] | None = None
        self._answers: set[asyncio.Task[bool]] = set()
        """Verdicts on their way to the nodes that asked (kept referenced until sent)."""
        self._closing = False

    # --- sessions -------------------------------------------------------------------------------
    def start(self, channel: Resource, stream_arn: str) -> str:
        """Start a storage session for ``channel`` (replacing its running one); returns its id."""
        if self._closing or not accepting(self.hub):
            raise RuntimeError("the server is shutting down")
        old = self._sessions.get(channel.arn)
        if old is not None:
            old.stop("replaced by a newer JoinStorageSession")
        session = _Session(channel, stream_arn)
        if old is not None:  # the master's side is replaced; its viewers stay (each gets a new offer)
            session.waiting_viewers = sorted(old.viewers())
        self._sessions[channel.arn] = session
        self._all.add(session)
        session.task = asyncio.get_running_loop().create_task(self._run(session, channels.message_ttl(channel)))
        self._sweep_soon()
        return session.id

    async def join_viewer(self, channel: Resource, stream_arn: str, client_id: str) -> str | None:
        """JoinStorageSessionAsViewer: take ``client_id`` into the channel's session wherever it
        runs in the cluster (:func:`viewer_route`), starting one here if there is none; returns
        the session's id, or None when the join went to another node's session (that node
        applies the viewer limit; a refusal there is only logged). Raises
        :class:`TooManyViewers`, or RuntimeError while the server shuts down."""
        if self._closing or not accepting(self.hub):
            raise RuntimeError("the server is shutting down")
        if viewer_route(self._sessions.get(channel.arn), stream_arn) == ASK_CLUSTER:
            posted, verdict = await self._ask_cluster(channel, client_id)
            if posted:
                if verdict == FULL:
                    raise TooManyViewers(client_id)
                log.info("storage: viewer %s of channel %s sent to the node that runs its session (%s)", client_id,
                         channel.arn, verdict or "no verdict in time")
                return None
        return self._join_here(channel, stream_arn, client_id)

    async def _ask_cluster(self, channel: Resource, client_id: str) -> tuple[bool, str | None]:
        """Post ``client_id``'s join to the node whose session holds the channel's claim and wait
        for its verdict: whether it was posted (a session holds the claim), and the verdict
        (None: none came within ASK_TIMEOUT, or this node could not ask for one)."""
        ask = secrets.token_hex(8)
        key = ASK_PREFIX + ask
        try:
            link = await open_link(self.hub, channel, ASKER_PREFIX + ask, self.clock)
        except LookupError:
            return await post_request(self.hub, channel, CLAIM_KEY, VIEWER_REQUEST, client_id), None
        verdict: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def answered(kind: str, sender: str, payload: str) -> None:
            if kind == VIEWER_VERDICT and not verdict.done():
                verdict.set_result(sender)

        link.on_request = answered
        listening = asyncio.get_running_loop().create_task(link.receive())  # requests reach on_request
        try:
            if not await link.claim(key):  # the bus is away: no verdict can come back
                return await post_request(self.hub, channel, CLAIM_KEY, VIEWER_REQUEST, client_id), None
            if not await post_request(self.hub, channel, CLAIM_KEY, VIEWER_REQUEST, client_id, key):
                return False, None
            try:
                return True, await asyncio.wait_for(verdict, ASK_TIMEOUT)
            except TimeoutError:
                return True, None
        finally:
            listening.cancel()
            await link.close()

    def _join_here(self, channel: Resource, stream_arn: str, client_id: str) -> str:
        session = self._sessions.get(channel.arn)
        if session is None or viewer_route(session, stream_arn) == START_HERE:
            self.start(channel, stream_arn)
            session = self._sessions[channel.arn]
        session.add_viewer(client_id)
        return session.id

    def _on_request(self, session: _Session, kind: str, sender: str, payload: str) -> None:
        """A request another node posted to this session's claim: a viewer that called
        JoinStorageSessionAsViewer there. The verdict goes back to the key in the payload (none
        for a viewer handed over from a replaced session)."""
        if kind != VIEWER_REQUEST:
            return
        try:
            joined = self._join_here(session.channel, session.stream_arn, sender)
        except TooManyViewers:
            log.warning("storage session %s: viewer %s (sent by another node) refused: the session already has "
                        "%d viewers", session.id, sender, MAX_VIEWERS)
            verdict = FULL
        except RuntimeError:
            log.info("storage session %s: viewer %s (sent by another node) not taken: the server is stopping",
                     session.id, sender)
            verdict = STOPPING
        else:
            log.info("storage session %s: viewer %s joins (sent by another node)", joined, sender)
            verdict = JOINED
        if payload.startswith(ASK_PREFIX):
            answer = post_request(self.hub, session.channel, payload, VIEWER_VERDICT, verdict)
            self._answers.add(task := asyncio.get_running_loop().create_task(answer))
            task.add_done_callback(self._answers.discard)

    def stop(self, channel_arn: str, reason: str) -> bool:
        session = self._sessions.get(channel_arn)
        if session is None:
            return False
        session.stop(reason)
        return True

    def running(self) -> dict[str, str]:
        """Channel ARN → id of its current session."""
        return {arn: s.id for arn, s in self._sessions.items()}

    def active_paths(self) -> set[Path]:
        """Recordings being written (the retention sweep keeps them)."""
        paths: set[Path] = set()
        for session in self._all:
            if session.peer is not None:
                paths |= session.peer.recording_paths
        return paths

    async def _run(self, session: _Session, ttl: int) -> None:
        try:
            await self._serve(session, ttl)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("storage session %s of channel %s failed", session.id, session.channel_arn)
        finally:
            self._all.discard(session)
            if self._sessions.get(session.channel_arn) is session:
                del self._sessions[session.channel_arn]

    async def _peer_module(self) -> Any:
        """``signalite.media.peer`` (aiortc, PyAV), imported in a thread the first time, once for
        all sessions: the import takes about half a second, which must not stall the event loop."""
        if self._peer_import is None:
            self._peer_import = asyncio.ensure_future(asyncio.to_thread(_import_peer))
        return await asyncio.shield(self._peer_import)

    async def _serve(self, session: _Session, ttl: int) -> None:
        # The seat joins and claims the channel first, then loads aiortc (half a second the first
        # time) and reads the stream: a JoinStorageSessionAsViewer on another node finds the
        # session's claim from the start, instead of starting a second session meanwhile.
        if session.stop_reason is not None:
            return
        try:
            link = await open_link(self.hub, session.channel, session.client_id, self.clock)
        except LookupError as exc:
            log.info("storage session %s: cannot join channel %s: %s", session.id, session.channel_arn, exc)
            return
        link.on_request = lambda kind, sender, payload: self._on_request(session, kind, sender, payload)
        # No await between this check and the claim's registration being queued: a session
        # stopped here (replaced on this node) never claims after the one that replaced it.
        if session.stop_reason is None and not await link.claim(CLAIM_KEY):
            log.warning("storage session %s: runs without its cluster-wide claim (the bus is away): another node "
                        "may run a session of channel %s too", session.id, session.channel_arn)
        try:
            peer_module = await self._peer_module()
            stream = await self.store.get_by_arn(session.stream_arn)
            if stream is None or stream.kind != "stream":
                log.warning("storage session %s: the stream %s of channel %s does not exist; nothing recorded",
                            session.id, session.stream_arn, session.channel_arn)
                await link.close()
                return
            plan = peer_module.Plan(
                channel_arn=session.channel_arn, stream_arn=stream.arn, stream_name=stream.name, session=session.id,
                client_id=session.client_id, media_root=self.media_root, answer_timeout=ttl + ANSWER_MARGIN,
                ice_servers=self.ice_servers)
            peer = session.peer = peer_module.StoragePeer(plan, link, self.clock)
        except BaseException:  # a failure, or the session cancelled while it loaded: the seat goes too
            await link.close()
            raise
        if session.stop_reason is not None:
            peer.end(session.stop_reason)
        waiting, session.waiting_viewers = session.waiting_viewers, []
        for client_id in waiting:
            peer.add_viewer(client_id)
        log.info("storage session %s: %s joins channel %s to record stream %s", session.id, session.client_id,
                 session.channel_arn, stream.name)
        reason = await peer.run()
        if link.ended_by == CLAIM_TAKEN_OVER:
            await self._hand_over(session, link, peer.viewers_at_end | set(session.waiting_viewers))
        rec = peer.recording
        for viewer_rec in peer.viewer_recordings:
            log.info("storage session %s: recorded a viewer's audio in %s (%s)", session.id, viewer_rec.path,
                     ", ".join(f"{n} {k} frames" for k, n in viewer_rec.frames.items()))
        if rec is not None:
            log.info("storage session %s ended (%s); recorded %s (%s)", session.id, reason, rec.path,
                     ", ".join(f"{n} {k} frames" for k, n in rec.frames.items()))
        else:
            log.info("storage session %s ended (%s); nothing recorded", session.id, reason)

    async def _hand_over(self, session: _Session, link: SignalingLink, viewers: set[str]) -> None:
        """A newer JoinStorageSession on another node replaced this session: its viewers join the
        new session there (as they do when the replacement is on this node)."""
        log.info("storage session %s: replaced by a newer JoinStorageSession on another node; %d viewer(s) "
                 "handed over", session.id, len(viewers))
        for viewer in sorted(viewers):
            await post_request(self.hub, session.channel, CLAIM_KEY, VIEWER_REQUEST, viewer)

    # --- upkeep ---------------------------------------------------------------------------------
    def _sweep_soon(self) -> None:
        if self._sweep is None or self._sweep.done():
            self._sweep = asyncio.get_running_loop().create_task(self.upkeep())

    async def upkeep(self) -> None:
        """Stop sessions whose channel lost its media storage; delete expired recordings."""
        if self._sweeping:
            return
        self._sweeping = True
        try:
            store = self.store
            for arn, session in list(self._sessions.items()):
                attrs = await store.get_attrs_by_arn(arn)
                if attrs is None:
                    session.stop("the channel was deleted")
                elif channels.media_storage(attrs) != {"Status": "ENABLED", "StreamARN": session.stream_arn}:
                    session.stop("the channel's media storage was disabled or re-mapped")
            await retention.sweep(self.media_root, store, self.clock.now(), self.active_paths())
        except Exception:
            log.exception("storage upkeep failed")
        finally:
            self._sweeping = False

    async def run_upkeep(self, interval: float = UPKEEP_SECONDS) -> None:
        while True:
            await self.clock.sleep(interval)
            await self.upkeep()

    async def close(self) -> None:
        """Server stopping: stop every session and let it finish its recording."""
        self._closing = True
        for session in list(self._all):
            session.stop("the server is shutting down")
        if self._sweep is not None:
            self._sweep.cancel()
        tasks = [s.task for s in self._all if s.task is not None]
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=STOP_WAIT)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("%d storage session(s) did not stop within %g s", len(pending), STOP_WAIT)

"""The in-process bus of the embedded server: publishing is a direct call to the subscriber, and
presence and retention are plain dictionaries (``presence``, ``retention``) with the same rules
as the Redis bus's Lua scripts, so one node behaves exactly as a cluster of one."""

from __future__ import annotations

from ..clock import Clock, SystemClock
from .base import (
    BUFFERED,
    EXPIRED,
    Bus,
    Envelope,
    Handler,
    Limits,
    MailHandler,
    Message,
    NoMail,
    Registration,
    dispatch,
)
from .presence import Presence
from .retention import Retention


class LocalBus(Bus):
    """One process, one handler per topic; ``publish`` calls it inline (order trivially kept).

    Mailboxes are synchronous: :meth:`post` to a started holder calls
    :meth:`MailHandler.deliver` before it returns, so a relayed message costs a dictionary lookup
    more than a direct send.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._handlers: dict[str, Handler] = {}
        self._clock = clock or SystemClock()
        self._mail: MailHandler = NoMail()
        self.presence = Presence()
        self.retention = Retention()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        self._handlers.clear()

    async def ping(self) -> bool:
        return True

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic] = handler

    def unsubscribe(self, topic: str) -> None:
        self._handlers.pop(topic, None)

    def publish(self, topic: str, envelope: Message) -> None:
        dispatch(self._handlers, topic, envelope)

    # --- mailboxes ---------------------------------------------------------------------------
    def set_mail_handler(self, handler: MailHandler) -> None:
        self._mail = handler

    async def register(self, arn: str, key: str, token: int, *, virtual: bool, limits: Limits) -> Registration:
        refused = self.presence.admit(arn, key, virtual, limits, self._clock.now())
        if refused is not None:
            return Registration(refused)
        old = self.presence.hold(arn, key, token, virtual)
        return Registration(None, old is not None)  # the old holder is on this node: the router ends it

    def start(self, arn: str, key: str, token: int) -> None:
        h = self.presence.holders.get((arn, key))
        if h is None or h.token != token:
            return
        h.started = True
        kept, expired = self.retention.take((arn, key), self._clock.now())
        for e in expired:
            self._mail.outcome(arn, e.msg_type, EXPIRED, e.sender, key)
        if kept:
            written = self._mail.deliver(token, kept)
            if written < len(kept):
                self.retention.put_back((arn, key), kept[written:])

    def unregister(self, arn: str, key: str, token: int) -> None:
        self.presence.release(arn, key, token)

    def post(self, arn: str, envelope: Envelope) -> None:
        key = (arn, envelope.recipient)
        h = self.presence.holders.get(key)
        if h is not None and h.started and self._mail.deliver(h.token, (envelope,)):
            return
        mail = self._mail
        if envelope.expires <= self._clock.now():
            mail.outcome(arn, envelope.msg_type, EXPIRED, envelope.sender, envelope.recipient)
            return
        for old, outcome in self.retention.add(key, envelope, replace=h is None):
            mail.outcome(arn, old.msg_type, outcome, old.sender, old.recipient)
        if h is None:
            mail.outcome(arn, envelope.msg_type, BUFFERED, envelope.sender, envelope.recipient)

    async def holds(self, arn: str, key: str) -> bool:
        return (arn, key) in self.presence.holders

    def drop_channel(self, arn: str) -> None:
        self.presence.drop(arn)
        self.retention.drop(arn)

    def tick(self, now: float) -> None:
        for (arn, key), e in self.retention.expire(now):
            self._mail.outcome(arn, e.msg_type, EXPIRED, e.sender, key)
        self.presence.prune(now)

    def retained_count(self) -> int:
        return self.retention.count()

    async def retained(self, arn: str, key: str) -> list[Envelope]:
        return self.retention.peek((arn, key), self._clock.now())

"""The in-process bus of the embedded server: publishing is a direct call to the subscriber."""

from __future__ import annotations

from .base import Bus, Handler, Message, dispatch


class LocalBus(Bus):
    """One process, one handler per topic; ``publish`` calls it inline (order trivially kept)."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

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

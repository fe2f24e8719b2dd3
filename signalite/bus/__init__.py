"""Delivery between signaling sessions: in-process (embedded) or Redis (cluster)."""

from __future__ import annotations

from ..clock import Clock
from .base import CTL, MSG, Bus, BusUnavailable, Control, Envelope, Handler, Limits, MailHandler, Message, Registration


def open_bus(url: str | None, clock: Clock | None = None, name: str = "") -> Bus:
    """A bus for ``url``: ``local://`` (default, in-process) or ``redis://…`` (cluster)."""
    scheme = (url or "local://").split(":", 1)[0].lower()
    if scheme == "local":
        from .local import LocalBus

        return LocalBus(clock)
    if scheme in ("redis", "rediss"):
        from .redis import RedisBus

        return RedisBus(url or "", clock, name)
    raise ValueError(f"unsupported bus URL {url!r}: use local:// or redis://host:port")


__all__ = ["Bus", "BusUnavailable", "Control", "Envelope", "Handler", "Limits", "MailHandler", "Message",
           "Registration", "MSG", "CTL", "open_bus"]

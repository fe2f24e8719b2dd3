"""Delivery between signaling sessions: in-process (embedded) or Redis (cluster)."""

from __future__ import annotations

from .base import CTL, MSG, Bus, Envelope, Handler


def open_bus(url: str | None) -> Bus:
    """A bus for ``url``: ``local://`` (default, in-process) or ``redis://…`` (cluster)."""
    scheme = (url or "local://").split(":", 1)[0].lower()
    if scheme == "local":
        from .local import LocalBus

        return LocalBus()
    if scheme in ("redis", "rediss"):
        try:
            from .redis import RedisBus  # type: ignore[import-not-found]  # the cluster issue adds it
        except ImportError:
            raise ValueError("the Redis bus is not available in this build") from None
        return RedisBus(url)  # type: ignore[arg-type]
    raise ValueError(f"unsupported bus URL {url!r}: use local:// or redis://host:port")


__all__ = ["Bus", "Envelope", "Handler", "MSG", "CTL", "open_bus"]

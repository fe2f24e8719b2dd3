"""What an operation may use, built once per application by ``app.build_app``.

Operations get a :class:`OpContext` and never see HTTP; everything they touch (store, bus,
signaling hub, clock) hangs off :class:`Services`, so a test can build one directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from .aws.keys import KeyRing
from .aws.sigv4 import Principal
from .config import Settings
from .store import Store

if TYPE_CHECKING:  # pragma: no cover
    from .bus.base import Bus


@dataclass
class Services:
    settings: Settings
    store: Store
    keys: KeyRing
    bus: "Bus | None" = None
    hub: Any = None
    """The signaling hub (``signaling.hub.Hub``): live sockets of this node."""
    ice: Any = None
    """The ICE server provider (``dataplane.ice.IceProvider``)."""
    clock: Callable[[], float] = time.time
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class OpContext:
    principal: Principal
    services: Services
    request_id: str

    @property
    def account(self) -> str:
        return self.principal.account_id

    @property
    def region(self) -> str:
        return self.principal.region

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def settings(self) -> Settings:
        return self.services.settings


Handler = Callable[[OpContext, dict[str, Any]], Awaitable["dict[str, Any] | None"]]

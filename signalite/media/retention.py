"""Retention: recordings older than their stream's DataRetentionInHours are deleted.

A recording is let go once its *end* is more than the retention ago: a file is kept whole as long
as any of it is within the retention (AWS drops fragments; a file here is the unit). With a
retention of 0 (possible after UpdateDataRetention decreases it) a recording goes once it ended.
Kept regardless: recordings still being written, and recordings whose stream is unknown (no
sidecar naming it, or the stream no longer exists); those are for an operator to remove.

:func:`expired` decides, over plain values; :func:`sweep` does the reading and deleting, off the
event loop except for the store reads.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Collection, Iterable, Mapping

from . import library
from .library import Recording

if TYPE_CHECKING:  # pragma: no cover
    from ..store import Store

log = logging.getLogger("signalite.storage")
HOUR = 3600.0


def expired(recordings: Iterable[Recording], retention_hours: Mapping[str, int | None], now: float,
            active: Collection[Path] = ()) -> list[Recording]:
    """The recordings to delete at ``now`` (epoch seconds).

    ``retention_hours`` maps a stream ARN to its DataRetentionInHours (None or absent: unknown
    stream, keep); ``active`` holds the paths of recordings being written (kept).
    """
    out: list[Recording] = []
    for rec in recordings:
        if rec.path in active or rec.stream_arn is None:
            continue
        hours = retention_hours.get(rec.stream_arn)
        if hours is None or hours < 0:
            continue
        if rec.end + hours * HOUR <= now:
            out.append(rec)
    return out


async def retention_of(store: "Store", stream_arns: Iterable[str]) -> dict[str, int | None]:
    """DataRetentionInHours of each stream (None for a stream that does not exist)."""
    hours: dict[str, int | None] = {}
    for arn in set(stream_arns):
        attrs = await store.get_attrs_by_arn(arn)
        try:
            hours[arn] = None if attrs is None else int(attrs.get("DataRetentionInHours", 0))
        except (TypeError, ValueError):
            hours[arn] = None
    return hours


async def sweep(root: Path, store: "Store", now: float, active: Collection[Path] = ()) -> list[Recording]:
    """Delete the expired recordings under ``root``; returns them."""
    recordings = await asyncio.to_thread(library.scan, root)
    arns = [r.stream_arn for r in recordings if r.stream_arn is not None]
    if not arns:
        return []
    doomed = expired(recordings, await retention_of(store, arns), now, active)
    if doomed:
        await asyncio.to_thread(_delete_all, doomed)
        for rec in doomed:
            log.info("deleted recording %s of stream %s (older than the stream's retention)", rec.path, rec.stream)
    return doomed


def _delete_all(recordings: list[Recording]) -> None:
    for rec in recordings:
        library.delete(rec)

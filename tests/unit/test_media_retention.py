"""The retention sweep's decision (pure) and its deleting, over files in a temp directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

from signalite.media import library, retention
from signalite.media.library import Recording
from signalite.store import Resource, Store, open_store

HOUR = 3600.0
NOW = 1_800_000_000.0
A, B = "arn:aws:kinesisvideo:us-west-2:111122223333:stream/a/1", "arn:aws:kinesisvideo:us-west-2:111122223333:stream/b/2"


def rec(name: str, end_hours_ago: float, arn: str | None = A, complete: bool = True) -> Recording:
    end = NOW - end_hours_ago * HOUR
    return Recording(stream="a", path=Path(f"/m/a/{name}.mkv"), start=end - 60, end=end, bytes=1,
                     complete=complete, stream_arn=arn)


def names(recs: list[Recording]) -> list[str]:
    return [r.path.stem for r in recs]


def test_a_recording_goes_once_its_end_is_older_than_the_retention():
    recs = [rec("old", 25), rec("edge", 24), rec("young", 23.9), rec("new", 0)]
    assert names(retention.expired(recs, {A: 24}, NOW)) == ["old", "edge"]


def test_each_stream_has_its_own_retention():
    recs = [rec("a", 5, A), rec("b", 5, B)]
    assert names(retention.expired(recs, {A: 4, B: 6}, NOW)) == ["a"]


def test_unknown_streams_and_recordings_without_a_stream_are_kept():
    recs = [rec("deleted-stream", 1000, B), rec("no-sidecar", 1000, None)]
    assert retention.expired(recs, {B: None}, NOW) == []
    assert retention.expired(recs, {}, NOW) == []


def test_recordings_being_written_are_kept():
    active = rec("active", 1000, complete=False)
    crashed = rec("crashed", 1000, complete=False)
    assert names(retention.expired([active, crashed], {A: 1}, NOW, active={active.path})) == ["crashed"]


def test_zero_retention_lets_a_recording_go_once_it_ended():
    recs = [rec("ended", 0), rec("later", -1)]
    assert names(retention.expired(recs, {A: 0}, NOW)) == ["ended"]


def test_the_recording_is_the_unit_a_long_one_stays_while_its_end_is_retained():
    long = Recording(stream="a", path=Path("/m/a/long.mkv"), start=NOW - 100 * HOUR, end=NOW - 1 * HOUR,
                     bytes=1, complete=True, stream_arn=A)
    assert retention.expired([long], {A: 2}, NOW) == []


def _write(root: Path, stream: str, start: float, session: str, arn: str | None, end: float | None) -> Path:
    path = library.recording_path(root, stream, start, session)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x1a\x45\xdf\xa3")
    if arn is not None:
        library.write_sidecar(path, {"stream": stream, "stream_arn": arn, "session": session,
                                     "start": library.iso(start), "end": library.iso(end) if end else None,
                                     "complete": end is not None})
    return path


async def _store(tmp_path: Path) -> Store:
    """A real SQLite store holding stream A (24 h retention); stream B does not exist."""
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    await store.open()
    await store.insert(Resource(account="111122223333", region="us-west-2", kind="stream", name="a", arn=A,
                                created=NOW - 100 * HOUR, version="v1", attrs={"DataRetentionInHours": 24}))
    return store


def test_sweep_deletes_expired_files_and_their_sidecars(tmp_path: Path):
    root = tmp_path / "media"
    old = _write(root, "a", NOW - 50 * HOUR, "s1", A, NOW - 49 * HOUR)
    young = _write(root, "a", NOW - 2 * HOUR, "s2", A, NOW - 1 * HOUR)
    other = _write(root, "b", NOW - 50 * HOUR, "s3", B, NOW - 49 * HOUR)
    bare = _write(root, "a", NOW - 50 * HOUR, "s4", None, None)

    async def run() -> list[Recording]:
        store = await _store(tmp_path)
        try:
            return await retention.sweep(root, store, NOW)
        finally:
            await store.close()

    gone = asyncio.run(run())
    assert [r.path for r in gone] == [old]
    assert not old.exists() and not library.sidecar_path(old).exists()
    assert young.exists() and other.exists() and bare.exists()

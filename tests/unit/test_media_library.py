"""The recordings' layout and listing, and ``signalite admin recordings`` over a data directory."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from signalite.media import library
from signalite.recordings import add_recordings_command, cmd_recordings, list_recordings

START = 1_800_000_000.0  # 2027-01-15T08:00:00Z
ARN = "arn:aws:kinesisvideo:us-west-2:111122223333:stream/cam/1"


def _recording(data_dir: Path, stream: str, start: float, session: str, *, complete: bool = True,
               sidecar: bool = True, size: int = 100) -> Path:
    path = library.recording_path(library.media_root(data_dir), stream, start, session)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    if sidecar:
        library.write_sidecar(path, {
            "stream": stream, "stream_arn": ARN, "session": session, "start": library.iso(start),
            "end": library.iso(start + 30) if complete else None, "complete": complete,
            "video": {"codec": "h264", "frames": 900, "width": 640, "height": 480}})
    return path


def test_path_holds_the_stream_name_and_the_utc_start():
    path = library.recording_path(Path("/d/media"), "cam-1", START + 0.75, "0123456789abcdef")
    assert path == Path("/d/media/cam-1/20270115T080000Z-0123456789abcdef.mkv")
    assert library.sidecar_path(path) == path.with_suffix(".json")


@pytest.mark.parametrize("name", [".", "..", "..."])
def test_all_dot_stream_names_stay_inside_the_media_directory(name: str):
    directory = library.stream_dir_name(name)
    assert directory.strip(".") and "/" not in directory
    assert library.stream_from_dir_name(directory) == name
    assert library.stream_dir_name("a.b_c-d") == "a.b_c-d"


def test_listing_reads_the_sidecars_oldest_first(tmp_path: Path):
    later = _recording(tmp_path, "cam", START + 100, "bbbb")
    first = _recording(tmp_path, "cam", START, "aaaa", size=7)
    other = _recording(tmp_path, "door", START + 50, "cccc", complete=False)
    listed = list_recordings(tmp_path)
    assert [r.path for r in listed] == [first.resolve(), other.resolve(), later.resolve()]
    out = listed[0].to_json()
    assert out == {"stream": "cam", "path": str(first.resolve()), "start": "2027-01-15T08:00:00.000Z",
                   "end": "2027-01-15T08:00:30.000Z", "bytes": 7, "complete": True, "stream_arn": ARN,
                   "session": "aaaa", "video": {"codec": "h264", "frames": 900, "width": 640, "height": 480}}
    assert [r.stream for r in list_recordings(tmp_path, "door")] == ["door"]
    assert list_recordings(tmp_path, "nobody") == []


def test_a_recording_without_its_sidecar_is_listed_from_its_path(tmp_path: Path):
    path = _recording(tmp_path, "..", START, "dddd", sidecar=False)
    os.utime(path, (START + 42, START + 42))
    (rec,) = list_recordings(tmp_path)
    assert rec.stream == ".." and rec.start == START and rec.end == START + 42
    assert rec.complete is False and rec.stream_arn is None


def test_an_incomplete_recording_ends_at_its_last_write(tmp_path: Path):
    path = _recording(tmp_path, "cam", START, "eeee", complete=False)
    os.utime(path, (START + 9, START + 9))
    (rec,) = list_recordings(tmp_path)
    assert rec.complete is False and rec.end == START + 9


def test_no_media_directory_lists_nothing(tmp_path: Path):
    assert list_recordings(tmp_path / "absent") == []


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    parser = argparse.ArgumentParser(prog="signalite admin")
    add_recordings_command(parser.add_subparsers(dest="admin_command", required=True))
    args = parser.parse_args(argv)
    assert args.func is cmd_recordings
    assert args.func(args) == 0
    return capsys.readouterr().out


def test_the_command_prints_json_and_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    _recording(tmp_path, "cam", START, "aaaa")
    _recording(tmp_path, "door", START + 5, "bbbb", complete=False)
    items = json.loads(_run(["recordings", "--json", "--data-dir", str(tmp_path)], capsys))
    assert [(i["stream"], i["complete"]) for i in items] == [("cam", True), ("door", False)]
    assert all({"stream", "path", "start", "end", "bytes"} <= i.keys() for i in items)
    assert json.loads(_run(["recordings", "door", "--json", "--data-dir", str(tmp_path)], capsys))[0]["stream"] == "door"
    table = _run(["recordings", "--data-dir", str(tmp_path)], capsys).splitlines()
    assert table[0].split() == ["STREAM", "START", "END", "SIZE", "PATH"]
    assert table[1].startswith("cam ") and table[2].startswith("door ") and "(recording)" in table[2]
    assert "no recordings" in _run(["recordings", "--data-dir", str(tmp_path / "none")], capsys)


def test_the_module_runs_the_same_command(tmp_path: Path):
    _recording(tmp_path, "cam", START, "aaaa")
    out = subprocess.run([sys.executable, "-m", "signalite.recordings", "--json", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)[0]["stream"] == "cam"

"""``write_private``: private from creation, replaced atomically, no temporary file left behind."""

from __future__ import annotations

import os
import stat

import pytest

from signalite.files import write_private


def test_new_and_replaced_files_are_0600_and_complete(tmp_path):
    path = tmp_path / "secret"
    write_private(path, "one\n")
    assert path.read_text() == "one\n" and stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    inode = path.stat().st_ino
    write_private(path, b"two")
    assert path.read_bytes() == b"two" and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != inode  # a new file renamed over the old one, not rewritten in place
    assert sorted(os.listdir(tmp_path)) == ["secret"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "secret"
    write_private(path, "old")
    with pytest.raises(TypeError):
        write_private(path, 42)  # type: ignore[arg-type]
    assert path.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["secret"]

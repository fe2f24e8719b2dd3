"""Which files the console hands out, and with which headers (signalite.console, no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from signalite.console import Console

BUILT = Path(__file__).resolve().parents[2] / "signalite" / "console"


def test_the_pages_and_every_built_asset_are_served():
    console = Console()
    for page in ("index.html", "landing.html"):
        asset = console.get(page)
        assert asset is not None and asset.content_type == "text/html; charset=utf-8" and not asset.immutable
    for path in (BUILT / "static").iterdir():
        asset = console.get(f"static/{path.name}")
        assert asset is not None and asset.body == path.read_bytes()
        assert asset.immutable == (path.suffix in (".js", ".css")), path.name  # hashed names only
    assert console.get("index.html") is console.get("index.html")  # read once


@pytest.mark.parametrize("path", ["__init__.py", "static/../__init__.py", "../app.py", "static/.hidden", "static/",
                                  "static", "static/a/b.js", "", "static/nope.js", "/etc/passwd", "static/%2e%2e"])
def test_nothing_else_is(path):
    assert Console().get(path) is None


def test_the_etag_follows_the_content(tmp_path):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "app-0123456789.js").write_text("one")
    (tmp_path / "static" / "notes.txt").write_text("two")
    console = Console(tmp_path)
    js, txt = console.get("static/app-0123456789.js"), console.get("static/notes.txt")
    assert js and txt and js.etag != txt.etag
    assert js.content_type == "text/javascript; charset=utf-8" and js.immutable
    assert txt.content_type == "text/plain; charset=utf-8" and not txt.immutable

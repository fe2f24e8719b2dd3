"""``GET /console``: the web console, and the landing page a browser gets at ``GET /``.

The pages and their assets are files of this package, built from ``console/`` in the repository
(``make console``: esbuild and the pinned npm packages) and committed, so serving them needs no
Node and fetches nothing at run time. The console is a static single-page app: the browser signs
its own requests (control plane, GetIceServerConfig, admin API, the trace WebSocket) with SigV4,
so the server does nothing for it but hand out files.

Caching: asset names carry a hash of their content, so they are ``immutable`` for a year; the
pages are ``no-cache`` (revalidated by ETag), so a new build is seen on the next load.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from aiohttp import web

CONSOLE_PATH = "/console"
STATIC_PREFIX = "/console/static/"

_HASHED = re.compile(r"-[0-9a-f]{10}\.")
"""``app-c0863dd2b0.js``: named by the build after a hash of the content."""
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".txt": "text/plain",
          ".svg": "image/svg+xml", ".json": "application/json", ".map": "application/json"}

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
       "connect-src 'self' https: wss: http: ws:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
"""The pages run no inline code and load only their own files; requests go to the server's planes
(the WSS and HTTPS endpoints it advertises may be another origin than the page's)."""


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str
    immutable: bool


def _asset(name: str, body: bytes) -> Asset:
    suffix = name[name.rfind("."):] if "." in name else ""
    kind = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    if kind.startswith("text/") or kind in ("application/json", "image/svg+xml"):
        kind += "; charset=utf-8"
    return Asset(body, kind, '"' + hashlib.sha256(body).hexdigest()[:20] + '"', bool(_HASHED.search(name)))


class Console:
    """The console's files, read from the package the first time each is asked for."""

    def __init__(self, root: Traversable | None = None) -> None:
        self._root = root or resources.files(__name__)
        self._cache: dict[str, Asset | None] = {}

    def get(self, path: str) -> Asset | None:
        """``index.html``, ``landing.html`` or ``static/<name>``; None if there is no such file."""
        if path not in self._cache:
            self._cache[path] = self._load(path)
        return self._cache[path]

    def _load(self, path: str) -> Asset | None:
        parts = path.split("/")
        if not all(_NAME.fullmatch(p) for p in parts) or parts[-1].endswith(".py"):
            return None
        node = self._root
        for part in parts:
            node = node.joinpath(part)
        if not node.is_file():
            return None
        return _asset(parts[-1], node.read_bytes())

    def respond(self, request: web.Request, path: str) -> web.Response:
        asset = self.get(path)
        if asset is None:
            return web.Response(status=404, text="Not found: no such console file.\n",
                                headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
        headers = {
            "Content-Type": asset.content_type,
            "ETag": asset.etag,
            "Cache-Control": "public, max-age=31536000, immutable" if asset.immutable else "no-cache",
            "X-Content-Type-Options": "nosniff",
        }
        if asset.content_type.startswith("text/html"):
            headers.update({"Content-Security-Policy": CSP, "X-Frame-Options": "DENY",
                            "Referrer-Policy": "no-referrer"})
        if asset.etag in request.headers.get("If-None-Match", ""):
            del headers["Content-Type"]
            return web.Response(status=304, headers=headers)
        return web.Response(body=asset.body, headers=headers)


CONSOLE = web.AppKey("signalite.console", Console)


def landing_page(request: web.Request) -> web.Response:
    """The landing page: what a browser gets at the WSS endpoint (``GET /`` without an upgrade)."""
    console = request.app.get(CONSOLE) or Console()
    return console.respond(request, "landing.html")


def wants_html(request: web.Request) -> bool:
    """A browser navigating (``Accept: text/html…``), as opposed to an API client or a probe."""
    return "text/html" in request.headers.get("Accept", "")


def setup(app: web.Application) -> None:
    """Route ``/console``, ``/console/`` and ``/console/static/{name}``."""
    console = Console()
    app[CONSOLE] = console

    async def page(request: web.Request) -> web.Response:
        return console.respond(request, "index.html")

    async def static(request: web.Request) -> web.Response:
        return console.respond(request, "static/" + request.match_info["name"])

    app.router.add_get(CONSOLE_PATH, page)
    app.router.add_get(CONSOLE_PATH + "/", page)
    app.router.add_get(STATIC_PREFIX + "{name}", static)

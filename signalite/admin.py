"""Admin sub-commands (``signalite admin …``): operate a running server.

``signalite admin go-away --channel-arn ARN [--reconnect-ice-server] [--data-dir D]`` sends GO_AWAY
(the server closes the sockets after the grace period) or RECONNECT_ICE_SERVER to the clients of a
channel. The command finds the server and its CA in the data directory (``endpoint.json``, written
at start) and signs its request with SigV4 using the root key (``SIGNALITE_ACCESS_KEY_ID`` /
``SIGNALITE_SECRET_ACCESS_KEY``, else ``credentials.json`` in the data directory); the server
accepts only the root key on its admin API.
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path

ADMIN_PATH = "/_signalite/admin/signaling"


def add_admin_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    admin = sub.add_parser("admin", help="operate a running server")
    commands = admin.add_subparsers(dest="admin_command", required=True)
    go_away = commands.add_parser("go-away", help="send GO_AWAY (or RECONNECT_ICE_SERVER) to a channel's clients")
    go_away.add_argument("--channel-arn", required=True, help="the signaling channel")
    go_away.add_argument("--reconnect-ice-server", action="store_true",
                         help="send RECONNECT_ICE_SERVER instead of GO_AWAY (sockets stay open)")
    go_away.add_argument("--data-dir", type=Path, default=None,
                         help="the server's data directory (default $SIGNALITE_DATA_DIR or ./.signalite)")
    go_away.add_argument("--url", default=None, help="server base URL (default: from the data directory)")
    go_away.set_defaults(func=cmd_go_away)


def _root_key(data_dir: Path) -> tuple[str, str]:
    key, secret = os.environ.get("SIGNALITE_ACCESS_KEY_ID"), os.environ.get("SIGNALITE_SECRET_ACCESS_KEY")
    if key and secret:
        return key, secret
    path = data_dir / "credentials.json"
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("access_key_id") and saved.get("secret_access_key"):
            return saved["access_key_id"], saved["secret_access_key"]
    raise SystemExit(f"signalite admin: no root key: set SIGNALITE_ACCESS_KEY_ID/SIGNALITE_SECRET_ACCESS_KEY "
                     f"or use the --data-dir of the server ({path} not found)")


def cmd_go_away(args: argparse.Namespace) -> int:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from .aws import arn as arns

    data_dir = args.data_dir or Path(os.environ.get("SIGNALITE_DATA_DIR", ".signalite"))
    saved_path = data_dir / "endpoint.json"
    saved = json.loads(saved_path.read_text()) if saved_path.exists() else {}
    url = (args.url or saved.get("url") or "").rstrip("/")
    if not url:
        raise SystemExit("signalite admin: no server URL: pass --url or the --data-dir of a running server")
    parsed = arns.parse(args.channel_arn)
    region = parsed.region if parsed else "us-west-2"
    key, secret = _root_key(data_dir)
    body = json.dumps({"ChannelARN": args.channel_arn,
                       "Type": "RECONNECT_ICE_SERVER" if args.reconnect_ice_server else "GO_AWAY"})
    req = AWSRequest(method="POST", url=url + ADMIN_PATH, data=body.encode(),
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(key, secret), "kinesisvideo", region).add_auth(req)
    prepared = req.prepare()
    http_req = urllib.request.Request(prepared.url, data=prepared.body, method="POST",
                                      headers=dict(prepared.headers.items()))
    context = None
    if url.startswith("https://"):
        ca = saved.get("ca")
        context = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
    try:
        with urllib.request.urlopen(http_req, context=context, timeout=10) as resp:
            print(resp.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        print(f"signalite admin: {exc.code} {exc.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(f"signalite admin: cannot reach {url}: {exc.reason}", file=sys.stderr)
        return 1

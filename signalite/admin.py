"""Admin sub-commands (``signalite admin …``): operate a running server.

Each command finds the server and its CA in the data directory (``endpoint.json``, written at
start; ``--url`` overrides) and sends one SigV4-signed JSON request with the root key
(``SIGNALITE_ACCESS_KEY_ID`` / ``SIGNALITE_SECRET_ACCESS_KEY``, else ``credentials.json`` in the
data directory); the server accepts only the root key on its admin API. :class:`AdminClient` is
that request, shared by every command: it signs exactly the ``Host`` header it sends, and sends
URLs without the scheme's default port, so a server on 443 is reached as ``https://host``.

Failures raise :class:`CliError`; ``cli.main`` prints the message and exits 1.
"""

from __future__ import annotations

import argparse
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from .config import add_arguments, settings_from, without_default_port

ADMIN_PATH = "/_signalite/admin/signaling"
DISCONNECT_PATH = "/_signalite/admin/disconnect"
ACCOUNTS_PATH = "/_signalite/admin/accounts"

CHANNELS_PATH = "/_signalite/admin/channels"
CLIENTS_PATH = "/_signalite/admin/clients"
ENDPOINT_FILE = "endpoint.json"
"""Written by ``signalite serve`` into the data directory: ``{"url", "ca", "http_port"}``."""
DEFAULT_REGION = "us-west-2"

GO_AWAY_DESCRIPTION = """\
Send GO_AWAY to every client of a channel (the server then closes their sockets after
--go-away-grace), or with --reconnect-ice-server send RECONNECT_ICE_SERVER (the sockets stay
open). This command always sends the frame it names, whatever --go-away-frames says.

Who hangs on these frames: the KVS WebRTC C SDK (v1.14.0 and earlier) deadlocks on either
GO_AWAY or RECONNECT_ICE_SERVER: its listener thread stops, it answers no more pings, never
reconnects and ignores SIGINT (only kill -9 ends it). The KVS WebRTC SDK for JavaScript only
handles GO_AWAY in its releases since late 2025; older ones ignore the frame and reconnect when
the socket closes. To move C SDK devices, end their connections without a frame instead (a
server-initiated end closes with 1001 and no frame unless --go-away-frames is on)."""


class CliError(Exception):
    """A command that could not do what it was asked (no server, no key, an error answer). The
    message says why; ``cli.main`` prints it without a traceback and exits with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """``--data-dir`` (the same option as ``serve``'s, with its ``SIGNALITE_DATA_DIR``) and ``--url``:
    how every admin command finds the server."""
    add_arguments(parser, "data_dir")
    parser.add_argument("--url", default=None,
                        help="server base URL (default: the url in DATA_DIR/endpoint.json)")


def add_admin_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    admin = sub.add_parser("admin", help="operate a running server")
    commands = admin.add_subparsers(dest="admin_command", required=True)
    go_away = commands.add_parser(
        "go-away", help="send GO_AWAY (or RECONNECT_ICE_SERVER) to a channel's clients; the KVS C SDK "
                        "v1.14.0 and earlier hangs on either",
        description=GO_AWAY_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    go_away.add_argument("--channel-arn", required=True, help="the signaling channel")
    go_away.add_argument("--reconnect-ice-server", action="store_true",
                         help="send RECONNECT_ICE_SERVER instead of GO_AWAY (sockets stay open)")
    add_target_arguments(go_away)
    go_away.set_defaults(func=cmd_go_away)

    disconnect = commands.add_parser(
        "disconnect", help="close one client's WebSocket (status 1001; GO_AWAY first only with --go-away-frames)")
    disconnect.add_argument("channel_arn", metavar="CHANNEL_ARN", help="the signaling channel's ARN")
    who = disconnect.add_mutually_exclusive_group(required=True)
    who.add_argument("client_id", metavar="CLIENT_ID", nargs="?", default=None, help="the viewer's client id")
    who.add_argument("--master", action="store_true", help="close the channel's master instead of a viewer")
    add_target_arguments(disconnect)
    disconnect.set_defaults(func=cmd_disconnect)

    create_account = commands.add_parser(
        "create-account", help="create an account and print its root key as one JSON object "
                               "{AccountId, AccessKeyId, SecretAccessKey} (the secret is shown only this once)")
    create_account.add_argument("--account-id", default=None, metavar="ID",
                                help="the new account's 12-digit id (default: a new random one)")
    add_target_arguments(create_account)
    create_account.set_defaults(func=cmd_create_account)

    channels = commands.add_parser("channels", help="list the live channels (with sockets) on every node")
    channels.add_argument("--json", action="store_true", help="print the answer as JSON")
    add_target_arguments(channels)
    channels.set_defaults(func=cmd_channels)

    clients = commands.add_parser("clients", help="list a channel's connections on every node")
    clients.add_argument("channel_arn", metavar="CHANNEL_ARN", help="the signaling channel's ARN")
    clients.add_argument("--json", action="store_true", help="print the answer as JSON")
    add_target_arguments(clients)
    clients.set_defaults(func=cmd_clients)

    from .recordings import add_recordings_command

    add_recordings_command(commands)


def sign_request(method: str, url: str, body: bytes, access_key_id: str, secret_access_key: str,
                 region: str, service: str = "kinesisvideo") -> urllib.request.Request:
    """A urllib request for ``url`` signed with SigV4, whose ``Host`` header is set before signing,
    so the host that is signed is byte for byte the host that is sent (botocore would otherwise
    sign the URL's host less a default port while urllib sends the port it was given)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    host = urlsplit(url).netloc
    req = AWSRequest(method=method, url=url, data=body,
                     headers={"Host": host, "Content-Type": "application/json"})
    SigV4Auth(Credentials(access_key_id, secret_access_key), service, region).add_auth(req)
    prepared = req.prepare()
    return urllib.request.Request(url, data=body or None, method=method,
                                  headers=dict(prepared.headers.items()))


def _root_key(data_dir: Path, access_key_id: str | None, secret_access_key: str | None) -> tuple[str, str]:
    if access_key_id and secret_access_key:
        return access_key_id, secret_access_key
    path = data_dir / "credentials.json"
    if path.exists():
        saved = json.loads(path.read_text())
        if saved.get("access_key_id") and saved.get("secret_access_key"):
            return saved["access_key_id"], saved["secret_access_key"]
    raise CliError(f"signalite admin: no root key: set SIGNALITE_ACCESS_KEY_ID/SIGNALITE_SECRET_ACCESS_KEY "
                   f"or use the --data-dir of the server ({path} not found)")


@dataclass(frozen=True)
class AdminClient:
    """Where the server is and how to sign for it; :meth:`call` sends one admin request."""

    url: str
    """Base URL, without the scheme's default port."""
    access_key_id: str
    secret_access_key: str = field(repr=False)
    ca: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "AdminClient":
        """From ``--url`` / ``--data-dir`` (see :func:`add_target_arguments`) and the root key, all
        resolved through :mod:`signalite.config` (flags over ``SIGNALITE_*`` over defaults)."""
        settings = settings_from(args)
        saved_path = settings.data_dir / ENDPOINT_FILE
        saved = json.loads(saved_path.read_text()) if saved_path.exists() else {}
        url = args.url or saved.get("url")
        if not url:
            raise CliError("signalite admin: no server URL: pass --url or the --data-dir of a running server")
        key, secret = _root_key(settings.data_dir, settings.access_key_id, settings.secret_access_key)
        return cls(without_default_port(url), key, secret, saved.get("ca"))

    def call(self, path: str, payload: Mapping[str, Any], *, region: str = DEFAULT_REGION,
             method: str = "POST") -> Any:
        """Send ``payload`` as JSON to ``path``, signed for ``region``; the decoded JSON answer."""
        body = json.dumps(payload).encode()
        request = sign_request(method, self.url + path, body, self.access_key_id, self.secret_access_key, region)
        context = None
        if self.url.startswith("https://"):
            context = ssl.create_default_context(cafile=self.ca) if self.ca else ssl.create_default_context()
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as resp:
                answer = resp.read().decode()
        except urllib.error.HTTPError as exc:
            raise CliError(f"signalite admin: {exc.code} {exc.read().decode(errors='replace')}") from None
        except urllib.error.URLError as exc:
            raise CliError(f"signalite admin: cannot reach {self.url}: {exc.reason}") from None
        return json.loads(answer) if answer else None


def cmd_go_away(args: argparse.Namespace) -> int:
    from .aws import arn as arns

    client = AdminClient.from_args(args)
    parsed = arns.parse(args.channel_arn)
    answer = client.call(ADMIN_PATH, {"ChannelARN": args.channel_arn,
                                      "Type": "RECONNECT_ICE_SERVER" if args.reconnect_ice_server else "GO_AWAY"},
                         region=parsed.region if parsed else DEFAULT_REGION)
    print(json.dumps(answer))
    return 0


def cmd_disconnect(args: argparse.Namespace) -> int:
    from .aws import arn as arns

    client = AdminClient.from_args(args)
    parsed = arns.parse(args.channel_arn)
    payload = {"ChannelARN": args.channel_arn}
    if not args.master:
        payload["ClientId"] = args.client_id
    answer = client.call(DISCONNECT_PATH, payload, region=parsed.region if parsed else DEFAULT_REGION)
    print(json.dumps(answer))
    return 0


def cmd_create_account(args: argparse.Namespace) -> int:
    if args.account_id is not None and not (len(args.account_id) == 12 and args.account_id.isdigit()):
        raise CliError("signalite admin create-account: --account-id must be exactly 12 digits")
    client = AdminClient.from_args(args)
    payload = {} if args.account_id is None else {"AccountId": args.account_id}
    answer = client.call(ACCOUNTS_PATH, payload)
    print(json.dumps({k: answer[k] for k in ("AccountId", "AccessKeyId", "SecretAccessKey")}))
    return 0


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows])


def cmd_channels(args: argparse.Namespace) -> int:
    answer = AdminClient.from_args(args).call(CHANNELS_PATH, {})
    if args.json:
        print(json.dumps(answer["Channels"]))
        return 0
    rows = [[c["ChannelARN"], "yes" if c["Master"] else "no", str(c["Viewers"]), str(c.get("Retained", "-")), c["Node"]]
            for c in answer["Channels"]]
    print(_table(rows, ["CHANNEL", "MASTER", "VIEWERS", "RETAINED", "NODE"]) if rows else "no live channels")
    return 0


def _since(stamp: Any) -> str:
    """When a connection opened (another node's connections show only what presence knows)."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds") if stamp is not None else "-"


def cmd_clients(args: argparse.Namespace) -> int:
    from .aws import arn as arns

    parsed = arns.parse(args.channel_arn)
    answer = AdminClient.from_args(args).call(CLIENTS_PATH, {"ChannelARN": args.channel_arn},
                                              region=parsed.region if parsed else DEFAULT_REGION)
    if args.json:
        print(json.dumps(answer["Clients"]))
        return 0
    rows = [[c["Role"], c.get("ClientId") or "-", c["Node"], c.get("RemoteAddress") or "-",
              _since(c.get("ConnectedSince")), str(c.get("MessagesIn", "-")), str(c.get("MessagesOut", "-"))]
            for c in answer["Clients"]]
    print(_table(rows, ["ROLE", "CLIENT ID", "NODE", "REMOTE", "SINCE", "IN", "OUT"]) if rows else "no connections")
    return 0

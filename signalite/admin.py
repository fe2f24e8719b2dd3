"""Admin sub-commands (``signalite admin …``). The signaling issue adds GO_AWAY and
RECONNECT_ICE_SERVER here."""

from __future__ import annotations

import argparse


def add_admin_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    admin = sub.add_parser("admin", help="operate a running server")
    admin.add_subparsers(dest="admin_command", required=True)

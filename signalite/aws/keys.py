"""Access keys: the root key of the root account, from the environment or generated once.

A generated key is written to ``credentials.json`` in the data directory with mode 0600 and
printed once, on the start that created it; later starts read it back silently.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from ..files import write_private
from .sigv4 import SigningKey

_KEY_ALPHABET = string.ascii_uppercase + "234567"
_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/"


@dataclass(frozen=True)
class RootCredentials:
    access_key_id: str
    secret_access_key: str
    account_id: str
    generated: bool = False


def _new_account() -> str:
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def load_root_credentials(data_dir: Path, access_key_id: str | None = None,
                          secret_access_key: str | None = None, account_id: str | None = None) -> RootCredentials:
    path = data_dir / "credentials.json"
    saved: dict[str, str] = {}
    if path.exists():
        saved = json.loads(path.read_text())
    if access_key_id and secret_access_key:
        account = account_id or saved.get("account_id") or _new_account()
        if saved.get("account_id") != account:
            _write(path, {**saved, "account_id": account})
        return RootCredentials(access_key_id, secret_access_key, account)
    if saved.get("access_key_id") and saved.get("secret_access_key"):
        account = account_id or saved["account_id"]
        return RootCredentials(saved["access_key_id"], saved["secret_access_key"], account)
    creds = {
        "access_key_id": "AKIA" + "".join(secrets.choice(_KEY_ALPHABET) for _ in range(16)),
        "secret_access_key": "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40)),
        "account_id": account_id or saved.get("account_id") or _new_account(),
    }
    _write(path, creds)
    return RootCredentials(creds["access_key_id"], creds["secret_access_key"], creds["account_id"], generated=True)


def _write(path: Path, data: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps(data, indent=2))


class KeyRing:
    """Access key id → signing key. Holds the root key; later issues add IAM users here."""

    def __init__(self, root: RootCredentials) -> None:
        self.root = root
        self._keys = {root.access_key_id: SigningKey(root.secret_access_key, root.account_id, "root")}

    def lookup(self, access_key_id: str) -> SigningKey | None:
        return self._keys.get(access_key_id)

"""The admin client's signed request, checked by the server's own SigV4 verifier: the Host that is
signed is the Host that is sent, with and without a port in the URL (a server on 443 used to
answer InvalidSignatureException because botocore signed one host and urllib sent another)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from signalite.admin import sign_request
from signalite.aws.keys import KeyRing, RootCredentials
from signalite.aws.sigv4 import AuthError, SigV4Verifier

ROOT = RootCredentials("AKIDADMINTEST", "admin-secret", "111122223333")


def verify(request, host_sent: str) -> str:
    """What the server does: verify the request as it arrives with ``Host: host_sent``."""
    headers = CIMultiDict(request.header_items())
    headers["Host"] = host_sent
    path = request.selector
    principal = SigV4Verifier(KeyRing(ROOT).lookup).verify_headers(
        request.get_method(), path, "", headers, request.data or b"", get_all=headers.getall)
    return principal.user


@pytest.mark.parametrize("url, host", [
    ("https://127.0.0.1/_signalite/admin/signaling", "127.0.0.1"),
    ("https://127.0.0.1:443/_signalite/admin/signaling", "127.0.0.1:443"),
    ("https://127.0.0.1:8443/_signalite/admin/signaling", "127.0.0.1:8443"),
    ("https://[::1]/_signalite/admin/signaling", "[::1]"),
])
def test_the_signed_host_is_the_host_sent(url, host):
    request = sign_request("POST", url, b'{"ChannelARN": "x"}', ROOT.access_key_id, ROOT.secret_access_key,
                           "us-west-2")
    assert request.get_header("Host") == host  # urllib sends this header instead of its own
    assert verify(request, host) == "root"
    with pytest.raises(AuthError):  # and only this one
        verify(request, "signalite.example")

"""``--tls-san``: extra DNS names and IP addresses in the generated leaf certificate (for devices
that reach Signalite by DNS as ``kinesisvideo.<region>.amazonaws.com``). The real server serves the
leaf; a TLS client that verifies against the local CA accepts exactly the names it covers. A new
set of names re-issues the leaf under the same CA (clients keep trusting it); the same set, however
spelled, keeps the leaf."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path

from cryptography import x509

from tests.support.server import Server, free_port

ALWAYS = {"localhost", "127.0.0.1", "::1"}
DEVICE_NAME = "kinesisvideo.us-west-2.amazonaws.com"


def leaf(server: Server) -> x509.Certificate:
    return x509.load_pem_x509_certificate((server.data_dir / "tls" / "server.pem").read_bytes())


def names(cert: x509.Certificate) -> set[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n.value) for n in san}


def ca_files(server: Server) -> tuple[bytes, bytes]:
    tls = server.data_dir / "tls"
    return (tls / "ca.pem").read_bytes(), (tls / "ca.key").read_bytes()


def accepts(server: Server, name: str) -> bool:
    """Does a client that trusts only the local CA accept the served certificate for ``name``?"""
    ctx = ssl.create_default_context(cafile=server.ca)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname=name):
                return True
        except ssl.SSLCertVerificationError:
            return False


def test_tls_san_names_are_served_and_a_new_set_reissues_the_leaf_under_the_same_ca(tmp_path):
    server = Server(data_dir=tmp_path / "d", args=["--tls-san", f"{DEVICE_NAME},10.9.8.7"])
    server.start()
    try:
        first, ca = leaf(server), ca_files(server)
        assert names(first) == ALWAYS | {DEVICE_NAME, "10.9.8.7"}
        assert accepts(server, DEVICE_NAME) and accepts(server, "10.9.8.7") and accepts(server, "localhost")
        assert not accepts(server, "other.example")

        server.args = ["--tls-san", "other.example"]
        server.restart()
        second = leaf(server)
        assert ca_files(server) == ca  # the CA (and so every client's trust) is kept
        assert second.serial_number != first.serial_number and second.issuer == first.issuer
        assert names(second) == ALWAYS | {"other.example"}
        assert accepts(server, "other.example") and not accepts(server, DEVICE_NAME)

        # The same set of names, from the environment and spelled differently: the leaf is kept.
        pem = (server.data_dir / "tls" / "server.pem").read_bytes()
        server.args, server.env = [], {"SIGNALITE_TLS_SAN": "OTHER.example."}
        server.restart()
        assert (server.data_dir / "tls" / "server.pem").read_bytes() == pem

        # No --tls-san: back to the base names (the leaf follows the set both ways).
        server.env = {}
        server.restart()
        assert names(leaf(server)) == ALWAYS and ca_files(server) == ca
    finally:
        server.stop()


def test_the_leaf_covers_the_advertised_host(tmp_path):
    server = Server(data_dir=tmp_path / "d",
                    args=["--public-url", "https://signalite.test:443/kvs", "--tls-san", "10.0.0.9"])
    server.start()
    try:
        assert names(leaf(server)) == ALWAYS | {"signalite.test", "10.0.0.9"}
        assert accepts(server, "signalite.test")
    finally:
        server.stop()


def test_a_bad_tls_san_is_refused_before_anything_is_generated(tmp_path):
    for args, env, code in ((["--tls-san", "ok.example,not a name"], {}, 2),
                            ([], {"SIGNALITE_TLS_SAN": "under_score!.example"}, 1)):
        proc = subprocess.run([sys.executable, "-m", "signalite", "serve", "--data-dir", str(tmp_path / "d"),
                               "--port", str(free_port()), *args], capture_output=True, text=True, timeout=60,
                              env={**{k: v for k, v in os.environ.items() if not k.startswith("SIGNALITE_")},
                                   **env})
        assert proc.returncode == code, proc.stderr
        assert "neither a DNS name nor an IP address" in proc.stderr and "Traceback" not in proc.stderr
    assert not Path(tmp_path / "d" / "tls").exists()

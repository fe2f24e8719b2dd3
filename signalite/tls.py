"""A local CA and a leaf certificate, generated into the data directory on first start.

The CA is kept across restarts so that clients trust the server once (``AWS_CA_BUNDLE``,
``NODE_EXTRA_CA_CERTS``, the KVS C SDK's ``pCertPath``); the leaf is re-issued, by the same CA,
when the set of names it must cover changes (``--host``, the advertised host, ``--tls-san``),
when it is within 30 days of expiry, or when it no longer matches its key or the CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .files import write_private

ALWAYS = ("localhost", "127.0.0.1", "::1")
"""Names every generated leaf covers, whatever the flags say."""


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path
    ca: Path | None


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _canonical(name: x509.GeneralName | str) -> str:
    """One spelling per name, to compare sets: IP addresses in compressed form, DNS names in lower
    case without a final dot."""
    if isinstance(name, x509.IPAddress):
        return str(name.value)
    if isinstance(name, x509.DNSName):
        return name.value.lower().rstrip(".")
    assert isinstance(name, str)
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower().rstrip(".")


def leaf_names(hosts: Iterable[str]) -> list[str]:
    """The names a generated leaf covers for ``hosts``: :data:`ALWAYS` first, then each host once
    (wildcard listen addresses dropped; they are not names)."""
    wanted = [h.strip("[]") for h in hosts if h and h not in ("0.0.0.0", "::", "[::]")]
    out: dict[str, str] = {}
    for name in (*ALWAYS, *wanted):
        out.setdefault(_canonical(name), name.rstrip("."))
    return list(out.values())


def _ensure_ca(tls_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_pem, ca_key = tls_dir / "ca.pem", tls_dir / "ca.key"
    if ca_pem.exists() and ca_key.exists():
        cert = x509.load_pem_x509_certificate(ca_pem.read_bytes())
        key = serialization.load_pem_private_key(ca_key.read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cert, key
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Signalite local CA"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Signalite")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    write_private(ca_key, _key_pem(key))
    ca_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _leaf_current(cert_path: Path, key_path: Path, names: list[str], ca: x509.Certificate) -> bool:
    """True when the saved leaf can be served as is: it covers exactly ``names``, is not close to
    expiry, was issued by ``ca`` and matches the saved key."""
    if not (cert_path.exists() and key_path.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        present = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        cert.verify_directly_issued_by(ca)
    except (x509.ExtensionNotFound, InvalidSignature, ValueError, TypeError):  # damaged or foreign: re-issue
        return False
    if cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < dt.timedelta(days=30):
        return False
    if key.public_key() != cert.public_key():
        return False
    return {_canonical(n) for n in present} == {_canonical(n) for n in names}


def ensure_local_ca(data_dir: Path) -> Path:
    """The generated CA's certificate (made if absent), without touching the leaf: for commands
    such as ``signalite env`` that only need the CA and do not know the server's names."""
    tls_dir = data_dir / "tls"
    tls_dir.mkdir(parents=True, exist_ok=True)
    _ensure_ca(tls_dir)
    return tls_dir / "ca.pem"


def ensure_local_tls(data_dir: Path, hosts: Iterable[str]) -> TlsFiles:
    """The generated CA (made once) and a leaf for ``hosts`` (see :func:`leaf_names`), re-issued
    only when it is not current (:func:`_leaf_current`)."""
    tls_dir = data_dir / "tls"
    tls_dir.mkdir(parents=True, exist_ok=True)
    names = leaf_names(hosts)
    ca_cert, ca_key = _ensure_ca(tls_dir)
    leaf_pem, leaf_key = tls_dir / "server.pem", tls_dir / "server.key"
    if not _leaf_current(leaf_pem, leaf_key, names, ca_cert):
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=825))
                .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        write_private(leaf_key, _key_pem(key))
        leaf_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM)
                             + ca_cert.public_bytes(serialization.Encoding.PEM))
    return TlsFiles(leaf_pem, leaf_key, tls_dir / "ca.pem")


def server_context(files: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(files.cert), str(files.key))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx

"""Refreshing the metadata BLOB fetches the CRLs its certificates name, from a real HTTP server on loopback."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from passgate.cli.mds import crl_urls, refresh
from tests.services import free_port

NOW = datetime(2026, 6, 1, tzinfo=UTC)


class CrlServer:
    """Serves CRLs at /<name>.crl; an absent name answers 404."""

    def __init__(self) -> None:
        self.crls: dict[str, bytes] = {}
        self.port = free_port()
        crls = self.crls

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = crls.get(self.path.strip("/"))
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"


@pytest.fixture
def crl_server() -> Iterator[CrlServer]:
    server = CrlServer()
    yield server
    server.server.shutdown()


def make_certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    crl_url: str | None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=30))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if crl_url:
        builder = builder.add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(crl_url)],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def make_crl(issuer: x509.Certificate, key: ec.EllipticCurvePrivateKey, *revoked: x509.Certificate) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(NOW - timedelta(days=1))
        .next_update(NOW + timedelta(days=7))
    )
    for certificate in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(certificate.serial_number)
            .revocation_date(NOW - timedelta(days=2))
            .build()
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def blob(crl_server: CrlServer, tmp_path: Path) -> tuple[Path, str, dict[str, object]]:
    root_key, ca_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = make_certificate("Root", root_key, "Root", root_key, ca=True, crl_url=None)
    ca = make_certificate("CA", ca_key, "Root", root_key, ca=True, crl_url=crl_server.url("root.crl"))
    leaf = make_certificate("Signer", leaf_key, "CA", ca_key, ca=False, crl_url=crl_server.url("ca.crl"))
    header = {
        "alg": "ES256",
        "typ": "JWT",
        "x5c": [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in (leaf, ca)],
    }
    body = {"legalHeader": "Test.", "no": 3, "nextUpdate": "2026-07-01", "entries": []}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(body).encode())}"
    r, s = decode_dss_signature(leaf_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    path = tmp_path / "blob.jwt"
    path.write_text(f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}")
    crl_server.crls["root.crl"] = make_crl(root, root_key)
    crl_server.crls["ca.crl"] = make_crl(ca, ca_key)
    parts = {"root": root, "root_key": root_key, "ca": ca, "ca_key": ca_key, "leaf": leaf}
    return path, root.public_bytes(serialization.Encoding.PEM).decode(), parts


def run(path: Path, root_pem: str, store: Path) -> int:
    return refresh(str(path), None, store, NOW, fetch_crls=True, trust_anchor_pem=root_pem)


def test_the_chain_names_its_crls(blob: tuple[Path, str, dict[str, object]], crl_server: CrlServer) -> None:
    assert crl_urls(blob[0].read_text()) == [crl_server.url("ca.crl"), crl_server.url("root.crl")]


def test_current_crls_are_fetched_and_the_blob_kept(blob: tuple[Path, str, dict[str, object]], tmp_path: Path) -> None:
    path, root_pem, _ = blob
    store = tmp_path / "mds.jwt"
    assert run(path, root_pem, store) == 0
    assert store.read_text() == path.read_text()


def test_a_revoked_signer_is_refused(
    blob: tuple[Path, str, dict[str, object]], crl_server: CrlServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, root_pem, parts = blob
    crl_server.crls["ca.crl"] = make_crl(parts["ca"], parts["ca_key"], parts["leaf"])  # type: ignore[arg-type]
    store = tmp_path / "mds.jwt"
    assert run(path, root_pem, store) == 1
    assert "mds_revoked_certificate" in capsys.readouterr().err
    assert not store.exists()


def test_a_crl_that_cannot_be_fetched_refuses_the_blob(
    blob: tuple[Path, str, dict[str, object]], crl_server: CrlServer, tmp_path: Path
) -> None:
    path, root_pem, _ = blob
    del crl_server.crls["root.crl"]
    assert run(path, root_pem, tmp_path / "mds.jwt") == 1
    assert not (tmp_path / "mds.jwt").exists()

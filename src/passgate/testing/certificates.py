"""A test certificate authority for the attestation makers: a self-signed P-256 root that issues certificates."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

CertificatePublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey


@dataclass(frozen=True, kw_only=True)
class TestRoot:
    """A root valid from a day before `moment` to a year after it; what it issues has the same validity."""

    __test__ = False  # not a test class, whatever pytest's naming rules say

    key: ec.EllipticCurvePrivateKey
    name: x509.Name
    certificate: x509.Certificate

    @classmethod
    def create(cls, common_name: str, moment: datetime.datetime) -> TestRoot:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        certificate = (
            _valid_around(x509.CertificateBuilder(), moment)
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key=key, name=name, certificate=certificate)

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def issue(
        self,
        subject: x509.Name,
        public_key: CertificatePublicKey,
        *,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> x509.CertificateBuilder:
        """A certificate for `public_key` issued by this root, to add extensions to and `sign(root.key, ...)`; valid
        as long as this root unless `not_before` or `not_after` say otherwise."""
        builder = x509.CertificateBuilder().subject_name(subject).issuer_name(self.name).public_key(public_key)
        return (
            builder.serial_number(x509.random_serial_number())
            .not_valid_before(not_before or self.certificate.not_valid_before_utc)
            .not_valid_after(not_after or self.certificate.not_valid_after_utc)
        )

    def intermediate(self, common_name: str, *, not_after: datetime.datetime | None = None) -> TestRoot:
        """A CA certificate issued by this root, which issues in turn (an `x5c` chain's middle certificate).
        `not_after` in the past makes an expired intermediate; what it issues keeps this root's validity."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        certificate = (
            self.issue(name, key.public_key(), not_after=not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        return TestRoot(key=key, name=name, certificate=certificate)

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


def _valid_around(builder: x509.CertificateBuilder, moment: datetime.datetime) -> x509.CertificateBuilder:
    return (
        builder.serial_number(x509.random_serial_number())
        .not_valid_before(moment - datetime.timedelta(days=1))
        .not_valid_after(moment + datetime.timedelta(days=365))
    )

"""Just enough DER to read X.509 extensions that `cryptography` refuses.

Some real TPM attestation certificates (Windows Hello) carry a certificate-policies extension whose
UserNotice has trailing data; `cryptography` then refuses *all* of the certificate's extensions. The
checks WebAuthn asks of such a certificate read three extensions, which this reader finds tolerantly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from passgate.core.errors import AttestationInvalid

SEQUENCE, SET, OID, BOOLEAN, OCTET_STRING = 0x30, 0x31, 0x06, 0x01, 0x04


@dataclass(frozen=True)
class Element:
    tag: int
    value: bytes

    def children(self) -> list[Element]:
        return list(elements(self.value))


def elements(data: bytes) -> Iterator[Element]:
    """The TLV elements of `data`, in order.

    Raises:
        AttestationInvalid: not DER.
    """
    position = 0
    while position < len(data):
        if position + 2 > len(data):
            raise AttestationInvalid("Truncated DER in the attestation certificate.")
        tag, first = data[position], data[position + 1]
        position += 2
        if first < 0x80:
            length = first
        else:
            size = first & 0x7F
            if size == 0 or size > 4 or position + size > len(data):
                raise AttestationInvalid("Unsupported DER length in the attestation certificate.")
            length = int.from_bytes(data[position : position + size], "big")
            position += size
        if position + length > len(data):
            raise AttestationInvalid("Truncated DER in the attestation certificate.")
        yield Element(tag, data[position : position + length])
        position += length


def oid(value: bytes) -> str:
    if not value:
        raise AttestationInvalid("Empty object identifier in the attestation certificate.")
    parts = [value[0] // 40, value[0] % 40]
    number = 0
    for byte in value[1:]:
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(number)
            number = 0
    return ".".join(map(str, parts))


def all_oids(element: Element) -> set[str]:
    """Every object identifier anywhere inside `element`."""
    if element.tag == OID:
        return {oid(element.value)}
    if element.tag & 0x20:  # constructed: look inside
        return set().union(*(all_oids(child) for child in element.children()))
    return set()


def attributes(element: Element) -> dict[str, bytes]:
    """Every (OID, value) pair inside `element`: the AttributeTypeAndValues of a Name."""
    found: dict[str, bytes] = {}
    if element.tag & 0x20:
        children = element.children()
        if element.tag == SEQUENCE and len(children) == 2 and children[0].tag == OID and not children[1].tag & 0x20:
            found[oid(children[0].value)] = children[1].value
        for child in children:
            found.update(attributes(child))
    return found


@dataclass(frozen=True, kw_only=True)
class Extension:
    oid: str
    critical: bool
    value: bytes  # the DER inside extnValue


@dataclass(frozen=True, kw_only=True)
class TbsCertificate:
    version: int
    subject: bytes  # the Name's content; empty for an empty subject
    extensions: dict[str, Extension]


def read_certificate(der: bytes) -> TbsCertificate:
    """The version, subject and extensions of a certificate.

    Raises:
        AttestationInvalid: not a DER certificate.
    """
    [certificate] = list(elements(der)) or [Element(0, b"")]
    if certificate.tag != SEQUENCE:
        raise AttestationInvalid("The attestation certificate is not a DER certificate.")
    tbs = certificate.children()[0].children()
    version = 0
    if tbs and tbs[0].tag == 0xA0:
        version = int.from_bytes(tbs[0].children()[0].value, "big")
        tbs = tbs[1:]
    # serial, signature algorithm, issuer, validity, subject, subjectPublicKeyInfo, then optional fields
    if len(tbs) < 6:
        raise AttestationInvalid("The attestation certificate is incomplete.")
    extensions: dict[str, Extension] = {}
    for field in tbs[6:]:
        if field.tag != 0xA3:
            continue
        for extension in field.children()[0].children():
            parts = extension.children()
            critical = len(parts) == 3 and parts[1].tag == BOOLEAN and parts[1].value != b"\x00"
            extensions[oid(parts[0].value)] = Extension(
                oid=oid(parts[0].value), critical=critical, value=parts[-1].value
            )
    return TbsCertificate(version=version, subject=tbs[4].value, extensions=extensions)

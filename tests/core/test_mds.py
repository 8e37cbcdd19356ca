"""FIDO metadata BLOBs: the real November 2021 BLOB end to end, tampered copies, and a test PKI for CRLs.

Nothing is mocked: signatures, chains and CRLs are checked by the real code on real or freshly made data.
A guard makes any network connection fail, so the tests prove they never fetch anything.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

import passgate
from passgate.cli import mds as mds_cli
from passgate.core.encoding import b64url_decode
from passgate.core.mds import (
    GLOBALSIGN_ROOT_R3,
    MetadataBlob,
    MetadataCache,
    MetadataError,
    MetadataRollback,
    StatusReport,
    accept_update,
    verify_blob,
)
from passgate.core.policy import preset
from tests.conftest import load_vector

REAL = load_vector("mds3_real_fido_blob_no9_webauthn4j.json")
REAL_JWS: str = REAL["mds_blob_jwt"]
REAL_CRLS = {name: base64.b64decode(der) for name, der in REAL["crls_der_b64"].items()}
INSIDE_VALIDITY = datetime(2021, 11, 20, 12, 0, tzinfo=UTC)  # after the BLOB was issued, before nextUpdate
YUBIKEY_5 = "ee882879-721c-4913-9775-3dfcce97072a"

NOW = datetime(2025, 6, 1, tzinfo=UTC)  # for the test PKI
BEFORE, AFTER = datetime(2020, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the MDS tests must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def code_of(jws: str, *, now: datetime = INSIDE_VALIDITY, **kwargs: Any) -> str:
    with pytest.raises(MetadataError) as refused:
        verify_blob(jws, now=now, **kwargs)
    return refused.value.code


def segments(jws: str) -> list[str]:
    return jws.split(".")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def der_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


def flip(text: str, index: int) -> str:
    """`text` with the base64url character at `index` replaced by another one."""
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def with_header(jws: str, **changes: Any) -> str:
    header = json.loads(b64url_decode(segments(jws)[0]))
    header.update(changes)
    return ".".join([b64url(json.dumps(header).encode()), *segments(jws)[1:]])


# --- the real BLOB ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_blob() -> MetadataBlob:
    return verify_blob(REAL_JWS, trust_anchor_pem=GLOBALSIGN_ROOT_R3, now=INSIDE_VALIDITY)


def test_the_real_blob_verifies_inside_its_validity(real_blob: MetadataBlob) -> None:
    assert real_blob.number == 9
    assert real_blob.next_update == date(2021, 12, 1)
    assert real_blob.legal_header.startswith("Retrieval and use of this BLOB")
    # 98 entries: 46 FIDO2 models by AAGUID, 35 U2F models (82 key identifiers), 17 UAF models left out.
    assert len(real_blob.entries) == 46
    assert len(real_blob.by_key_identifier) == 82
    assert real_blob.skipped == ()
    assert real_blob.jws == REAL_JWS
    assert not real_blob.is_stale(INSIDE_VALIDITY) and real_blob.is_stale(datetime(2021, 12, 2, tzinfo=UTC))


def test_a_yubikey_5_entry(real_blob: MetadataBlob) -> None:
    entry = real_blob.entries[YUBIKEY_5]
    assert entry.aaguid == YUBIKEY_5
    assert entry.description == "YubiKey 5 Series"
    assert entry.icon is not None and entry.icon.startswith("data:image/png;base64,")
    assert entry.status_reports == (StatusReport("FIDO_CERTIFIED_L1", date(2020, 5, 12)),)
    assert entry.certification_level == "FIDO_CERTIFIED_L1"
    assert not entry.compromised
    [root] = [x509.load_pem_x509_certificate(pem.encode()) for pem in entry.attestation_root_certificates]
    assert root.subject.rfc4514_string() == "CN=Yubico U2F Root CA Serial 457200631"
    assert real_blob.entry(UUID(YUBIKEY_5).bytes) is entry  # as authenticator data carries it
    assert real_blob.entry(YUBIKEY_5.upper()) is entry
    assert real_blob.entry("not an aaguid") is None


def test_a_u2f_model_is_found_by_key_identifier(real_blob: MetadataBlob) -> None:
    entry = real_blob.by_key_identifier["f4b64a68c334e901b8e23c6e66e6866c31931f5d"]
    assert entry.aaguid is None
    assert entry.description == "Feitian ePass FIDO-NFC Security Key"
    assert entry.certification_level == "FIDO_CERTIFIED_L1"  # over the older plain FIDO_CERTIFIED


def test_root_certificates_wrapped_in_lines_are_read(real_blob: MetadataBlob) -> None:
    # 11 entries of this BLOB break their base64 with newlines. The DER is not parsed here: some real roots
    # have negative serial numbers, which cryptography is deprecating; attestation parses them when used.
    pems = [pem for e in real_blob.by_key_identifier.values() for pem in e.attestation_root_certificates]
    pems += [pem for e in real_blob.entries.values() for pem in e.attestation_root_certificates]
    for pem in pems:
        lines = pem.splitlines()
        assert lines[0] == "-----BEGIN CERTIFICATE-----" and lines[-1] == "-----END CERTIFICATE-----"
        assert all(len(line) <= 64 for line in lines[1:-1])
        assert base64.b64decode("".join(lines[1:-1]), validate=True)[:1] == b"\x30"  # a DER SEQUENCE


def test_the_entries_are_the_metadata_registration_takes(real_blob: MetadataBlob) -> None:
    yubikey = load_vector("pyw_reg_packed_x5c_yubikey_firefox.json")
    registered = passgate.verify_registration(
        yubikey["credential_json"],
        expected_challenge=b64url_decode(yubikey["expected_challenge_b64url"]),
        expected_rp_id=yubikey["rp_id"],
        expected_origins=[yubikey["origin"]],
        policy=preset("high-assurance"),  # needs attestation from a FIDO_CERTIFIED_L1 model
        metadata=real_blob.entries,
    )
    assert registered.attestation_trust == "attested"


def test_a_changed_payload_byte_breaks_the_signature() -> None:
    header, payload, signature = segments(REAL_JWS)
    assert code_of(f"{header}.{flip(payload, len(payload) // 2)}.{signature}") == "mds_signature_invalid"


def test_a_changed_signature_fails() -> None:
    header, payload, signature = segments(REAL_JWS)
    assert code_of(f"{header}.{payload}.{flip(signature, 10)}") == "mds_signature_invalid"


def test_a_swapped_leaf_or_a_broken_chain_fails(pki: Pki) -> None:
    x5c = json.loads(b64url_decode(segments(REAL_JWS)[0]))["x5c"]
    assert code_of(with_header(REAL_JWS, x5c=[der_b64(pki.leaf), x5c[1]])) == "mds_chain_invalid"
    assert code_of(with_header(REAL_JWS, x5c=[x5c[0]])) == "mds_chain_invalid"  # intermediate left out
    assert code_of(with_header(REAL_JWS, x5c=[x5c[1]])) == "mds_signature_invalid"  # a valid chain, wrong key
    assert code_of(REAL_JWS, trust_anchor_pem=pki.root_pem) == "mds_chain_invalid"  # another anchor pinned


def test_the_header_must_be_sound() -> None:
    assert code_of(with_header(REAL_JWS, x5c=[])) == "mds_malformed"
    assert code_of(with_header(REAL_JWS, x5c=["not base64!"])) == "mds_malformed"
    assert code_of(with_header(REAL_JWS, alg="none")) == "mds_signature_invalid"
    assert code_of(with_header(REAL_JWS, alg="HS256")) == "mds_signature_invalid"
    assert code_of(with_header(REAL_JWS, crit=["exp"])) == "mds_malformed"
    assert code_of(".".join(segments(REAL_JWS)[:2])) == "mds_malformed"
    assert code_of("e30.e30.") == "mds_malformed"
    assert code_of("not-json.e30.AAAA") == "mds_malformed"


@pytest.mark.parametrize(
    "now",
    [
        datetime(2022, 5, 15, tzinfo=UTC),  # the day after the signing certificate expired
        datetime(2026, 10, 1, tzinfo=UTC),  # the intermediate has expired too
        datetime(2021, 4, 1, tzinfo=UTC),  # before the signing certificate was valid
    ],
)
def test_the_real_blob_is_refused_outside_its_certificates_validity(now: datetime) -> None:
    assert code_of(REAL_JWS, now=now) == "mds_expired"


def test_the_real_crls_are_signed_by_the_chain_but_issued_later() -> None:
    # GlobalSign's CRLs of the vector date from 2024; a CRL from after `now` is refused, as OpenSSL does.
    # Getting that far means each CRL's signature verified against its issuer in the real chain.
    for crl in REAL_CRLS.values():
        with pytest.raises(MetadataError, match="not valid until 2024") as refused:
            verify_blob(REAL_JWS, crls_der_or_pem=[crl], now=INSIDE_VALIDITY)
        assert refused.value.code == "mds_crl_invalid"


def test_a_real_crl_with_a_changed_signature_is_refused() -> None:
    tampered = bytearray(REAL_CRLS["root-r3.crl"])
    tampered[-5] ^= 0x01
    with pytest.raises(MetadataError, match="not signed by a certificate") as refused:
        verify_blob(REAL_JWS, crls_der_or_pem=[bytes(tampered)], now=INSIDE_VALIDITY)
    assert refused.value.code == "mds_crl_invalid"
    assert code_of(REAL_JWS, crls_der_or_pem=[b"not a CRL"]) == "mds_crl_invalid"


# --- a test PKI: root -> intermediate CA -> BLOB signer, with CRLs ------------------------------------------------


@dataclass(frozen=True)
class Pki:
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate

    @property
    def root_pem(self) -> str:
        return self.root.public_bytes(serialization.Encoding.PEM).decode("ascii")


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    not_after: datetime = AFTER,
) -> x509.Certificate:
    usage = dict.fromkeys(
        [
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ],
        False,
    )
    usage.update({"key_cert_sign": ca, "crl_sign": ca, "digital_signature": not ca})
    return (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(BEFORE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def pki() -> Pki:
    root_key, ca_key, leaf_key = new_key(), new_key(), new_key()
    return Pki(
        root_key=root_key,
        root=certificate("Test MDS Root", root_key, "Test MDS Root", root_key, ca=True),
        ca_key=ca_key,
        ca=certificate("Test MDS CA", ca_key, "Test MDS Root", root_key, ca=True),
        leaf_key=leaf_key,
        leaf=certificate("mds.test", leaf_key, "Test MDS CA", ca_key, ca=False),
    )


def entry(aaguid: str | None = None, *statuses: tuple[str, str], **fields: Any) -> dict[str, Any]:
    made: dict[str, Any] = {
        "metadataStatement": {"description": f"Model {aaguid}", "attestationRootCertificates": []},
        "statusReports": [{"status": status, "effectiveDate": day} for status, day in statuses],
        "timeOfLastStatusChange": "2024-01-01",
    }
    if aaguid is not None:
        made["aaguid"] = aaguid
    made.update(fields)
    return made


def payload(number: int = 5, entries: Sequence[object] = (), **fields: Any) -> dict[str, Any]:
    return {"legalHeader": "Test terms.", "no": number, "nextUpdate": "2025-07-01", "entries": list(entries), **fields}


def sign(
    pki: Pki,
    body: dict[str, Any],
    *,
    x5c: Sequence[x509.Certificate] | None = None,
    key: ec.EllipticCurvePrivateKey | None = None,
    alg: str = "ES256",
) -> str:
    header = {"alg": alg, "typ": "JWT", "x5c": [der_b64(cert) for cert in (x5c or [pki.leaf, pki.ca])]}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(body).encode())}"
    r, s = decode_dss_signature((key or pki.leaf_key).sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def crl(
    issuer: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    *revoked: x509.Certificate,
    last_update: datetime = datetime(2025, 5, 1, tzinfo=UTC),
    next_update: datetime = datetime(2025, 7, 1, tzinfo=UTC),
    encoding: serialization.Encoding = serialization.Encoding.DER,
) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(last_update)
        .next_update(next_update)
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(datetime(2025, 4, 1, tzinfo=UTC))
            .build()
        )
    return builder.sign(key, hashes.SHA256()).public_bytes(encoding)


def verify_test(jws: str, pki: Pki, *crls: bytes, now: datetime = NOW) -> MetadataBlob:
    return verify_blob(jws, trust_anchor_pem=pki.root_pem, crls_der_or_pem=crls, now=now)


def test_an_es256_blob_from_the_test_pki_verifies_with_current_crls(pki: Pki) -> None:
    jws = sign(pki, payload(7, [entry("AB9A7A4C-1DB9-4A71-B7B1-5BB2C1F5E5D1", ("FIDO_CERTIFIED_L2", "2024-02-01"))]))
    fresh = [crl(pki.ca, pki.ca_key), crl(pki.root, pki.root_key, encoding=serialization.Encoding.PEM)]
    blob = verify_test(jws, pki, *fresh)
    assert blob.number == 7 and blob.next_update == date(2025, 7, 1)
    assert blob.entries["ab9a7a4c-1db9-4a71-b7b1-5bb2c1f5e5d1"].certification_level == "FIDO_CERTIFIED_L2"


def refused(jws: str, pki: Pki, *crls: bytes, now: datetime = NOW) -> str:
    with pytest.raises(MetadataError) as failure:
        verify_test(jws, pki, *crls, now=now)
    return failure.value.code


def test_a_crl_revoking_the_signer_or_the_intermediate_fails(pki: Pki) -> None:
    jws = sign(pki, payload())
    assert refused(jws, pki, crl(pki.ca, pki.ca_key, pki.leaf)) == "mds_revoked_certificate"
    assert refused(jws, pki, crl(pki.ca, pki.ca_key), crl(pki.root, pki.root_key, pki.ca)) == "mds_revoked_certificate"
    other = certificate("someone else", new_key(), "Test MDS CA", pki.ca_key, ca=False)
    assert verify_test(jws, pki, crl(pki.ca, pki.ca_key, other)).number == 5  # others' revocations do not matter


def test_crls_must_be_genuine_and_current(pki: Pki) -> None:
    jws = sign(pki, payload())
    forged = crl(pki.ca, new_key(), pki.leaf)  # the CA's name, another key
    assert refused(jws, pki, forged) == "mds_crl_invalid"
    stranger_key = new_key()
    stranger = certificate("Another CA", stranger_key, "Another CA", stranger_key, ca=True)
    assert refused(jws, pki, crl(stranger, stranger_key)) == "mds_crl_invalid"  # not this chain's
    stale = crl(pki.ca, pki.ca_key, next_update=datetime(2025, 5, 31, tzinfo=UTC))
    assert refused(jws, pki, stale) == "mds_crl_expired"
    early = crl(pki.ca, pki.ca_key, last_update=datetime(2025, 6, 2, tzinfo=UTC))
    assert refused(jws, pki, early) == "mds_crl_invalid"


def test_an_expired_intermediate_fails(pki: Pki) -> None:
    old_ca = certificate(
        "Test MDS CA", pki.ca_key, "Test MDS Root", pki.root_key, ca=True, not_after=NOW.replace(year=2024)
    )
    jws = sign(pki, payload(), x5c=[pki.leaf, old_ca])
    assert refused(jws, pki) == "mds_expired"
    assert verify_test(jws, pki, now=datetime(2023, 1, 1, tzinfo=UTC)).number == 5


def test_the_signer_must_be_a_certificate_of_the_chain_and_a_ca_may_not_sign_as_leaf(pki: Pki) -> None:
    assert refused(sign(pki, payload(), key=new_key()), pki) == "mds_signature_invalid"
    assert refused(sign(pki, payload(), alg="RS256"), pki) == "mds_signature_invalid"
    # A leaf certificate cannot issue others: a chain through it is refused.
    rogue_key = new_key()
    rogue = certificate("rogue", rogue_key, "mds.test", pki.leaf_key, ca=False)
    assert refused(sign(pki, payload(), x5c=[rogue, pki.leaf, pki.ca], key=rogue_key), pki) == "mds_chain_invalid"


def test_a_payload_must_have_its_fields(pki: Pki) -> None:
    for broken in [
        {"legalHeader": "x", "nextUpdate": "2025-07-01", "entries": []},
        payload(no="5"),
        payload(no=True),
        payload(nextUpdate="July"),
        {**payload(), "entries": {}},
        {"no": 5, "nextUpdate": "2025-07-01", "entries": []},
    ]:
        assert refused(sign(pki, broken), pki) == "mds_malformed", broken


def test_entries_are_read_and_odd_ones_skipped(pki: Pki) -> None:
    first = "11111111-1111-4111-8111-111111111111"
    entries = [
        entry(first.upper(), ("FIDO_CERTIFIED_L1", "2023-01-01"), ("FIDO_CERTIFIED_L2plus", "2024-01-01")),
        entry(None, attestationCertificateKeyIdentifiers=["ABCDEF0123"]),  # U2F
        entry(None, aaid="4746#F816"),  # UAF: not for WebAuthn
        entry("22222222-2222-4222-8222-222222222222", statusReports="oops"),
        entry("not-a-uuid"),
        entry(first),  # the same model again
        "not an object",
    ]
    blob = verify_test(sign(pki, payload(entries=entries)), pki)
    assert list(blob.entries) == [first]
    assert blob.entries[first].certification_level == "FIDO_CERTIFIED_L2plus"
    assert blob.by_key_identifier["abcdef0123"].aaguid is None
    assert [line.split(":")[0] for line in blob.skipped] == ["entry 3", "entry 4", "entry 5", "entry 6"]


@pytest.mark.parametrize(
    ("statuses", "level", "compromised"),
    [
        ([("FIDO_CERTIFIED_L1", "2023-01-01")], "FIDO_CERTIFIED_L1", False),
        ([("FIDO_CERTIFIED", "2023-01-01")], None, False),  # the legacy status names no level
        ([("NOT_FIDO_CERTIFIED", "2023-01-01")], None, False),
        ([("FIDO_CERTIFIED_L1", "2023-01-01"), ("USER_VERIFICATION_BYPASS", "2024-01-01")], "FIDO_CERTIFIED_L1", True),
        (
            [("ATTESTATION_KEY_COMPROMISE", "2024-01-01"), ("FIDO_CERTIFIED_L1", "2023-01-01")],
            "FIDO_CERTIFIED_L1",
            True,
        ),
        ([("REVOKED", "2024-01-01")], None, True),
        ([("USER_KEY_REMOTE_COMPROMISE", "2024-01-01")], None, True),
        ([("USER_KEY_PHYSICAL_COMPROMISE", "2024-01-01")], None, True),
        ([("REVOKED", "2023-01-01"), ("UPDATE_AVAILABLE", "2024-01-01")], None, False),  # only the latest counts
        ([("FIDO_CERTIFIED_L3", "2023-01-01"), ("FIDO_CERTIFIED_L1plus", "2024-01-01")], "FIDO_CERTIFIED_L3", False),
        ([], None, False),
    ],
)
def test_certification_and_compromise(
    pki: Pki, statuses: list[tuple[str, str]], level: str | None, compromised: bool
) -> None:
    aaguid = "33333333-3333-4333-8333-333333333333"
    model = verify_test(sign(pki, payload(entries=[entry(aaguid, *statuses)])), pki).entries[aaguid]
    assert (model.certification_level, model.compromised) == (level, compromised)


def test_only_data_uri_icons_are_kept(pki: Pki) -> None:
    made = [entry("44444444-4444-4444-8444-444444444444"), entry("55555555-5555-4555-8555-555555555555")]
    made[0]["metadataStatement"]["icon"] = "https://tracker.example/icon.png"
    made[1]["metadataStatement"]["icon"] = "data:image/png;base64,iVBORw0KGgo="
    blob = verify_test(sign(pki, payload(entries=made)), pki)
    assert [model.icon for model in blob.entries.values()] == [None, "data:image/png;base64,iVBORw0KGgo="]


# --- updates ---------------------------------------------------------------------------------------------------


def test_updates_go_forward_only(pki: Pki) -> None:
    no5, no6 = verify_test(sign(pki, payload(5)), pki), verify_test(sign(pki, payload(6)), pki)
    assert accept_update(None, no5) is no5
    assert accept_update(no5, no6) is no6
    assert accept_update(no6, verify_test(sign(pki, payload(6)), pki)) is no6  # a no-op refresh
    with pytest.raises(MetadataRollback) as refused:
        accept_update(no6, no5)
    assert refused.value.code == "mds_rollback"


def test_the_cache_keeps_the_last_good_blob(pki: Pki) -> None:
    cache = MetadataCache(trust_anchor_pem=pki.root_pem)
    assert cache.current is None
    assert cache.refresh(sign(pki, payload(6)), now=NOW) and cache.last_error is None
    good = cache.current
    assert good is not None and good.number == 6

    header, body, signature = segments(sign(pki, payload(7)))
    assert not cache.refresh(f"{header}.{body}.{flip(signature, 3)}", now=NOW)
    assert cache.current is good and cache.last_error is not None
    assert cache.last_error.code == "mds_signature_invalid"

    assert not cache.refresh(sign(pki, payload(5)), now=NOW)
    assert cache.current is good and cache.last_error.code == "mds_rollback"

    assert not cache.refresh(sign(pki, payload(7)), now=NOW, crls_der_or_pem=[crl(pki.ca, pki.ca_key, pki.leaf)])
    assert cache.current is good and cache.last_error.code == "mds_revoked_certificate"

    assert cache.refresh(sign(pki, payload(6)), now=NOW) and cache.current is good  # same number: kept
    assert cache.refresh(sign(pki, payload(7)), now=NOW) and cache.last_error is None
    assert cache.current.number == 7


def test_the_cache_uses_the_globalsign_root_by_default() -> None:
    cache = MetadataCache()
    assert cache.refresh(REAL_JWS, now=INSIDE_VALIDITY)
    assert cache.current is not None and cache.current.number == 9
    assert not cache.refresh(REAL_JWS, now=datetime(2022, 6, 1, tzinfo=UTC))
    assert cache.last_error is not None and cache.last_error.code == "mds_expired"
    assert cache.current.number == 9


# --- passgate mds refresh --------------------------------------------------------------------------------------


def test_refresh_from_a_file_stores_the_verified_blob(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, store = tmp_path / "blob.jwt", tmp_path / "state" / "mds.jwt"
    source.write_text(REAL_JWS + "\n")
    assert mds_cli.refresh(str(source), None, store, INSIDE_VALIDITY) == 0
    assert store.read_text() == REAL_JWS
    assert capsys.readouterr().out == (
        "FIDO metadata BLOB no. 9: 46 authenticators by AAGUID, 82 U2F key identifiers, next update 2021-12-01; "
        f"stored in {store}\n"
    )
    assert mds_cli.refresh(str(source), None, store, INSIDE_VALIDITY) == 0
    assert "already stored" in capsys.readouterr().out
    loaded = mds_cli.load_stored(store, now=INSIDE_VALIDITY)
    assert loaded is not None and loaded.number == 9
    assert sorted(p.name for p in store.parent.iterdir()) == ["mds.jwt"]  # no temporary file left


def test_refresh_keeps_the_stored_blob_when_the_new_one_is_bad_or_older(
    tmp_path: Path, pki: Pki, capsys: pytest.CaptureFixture[str]
) -> None:
    store, source = tmp_path / "mds.jwt", tmp_path / "new.jwt"
    stored = sign(pki, payload(6))
    store.write_text(stored)

    def run(jws: str, *crls: Path) -> int:
        source.write_text(jws)
        return mds_cli.refresh(str(source), None, store, NOW, crl_files=crls, trust_anchor_pem=pki.root_pem)

    assert run(sign(pki, payload(5))) == 1
    assert "mds_rollback" in capsys.readouterr().err
    header, body, signature = segments(sign(pki, payload(7)))
    assert run(f"{header}.{flip(body, 5)}.{signature}") == 1
    assert "mds_signature_invalid" in capsys.readouterr().err
    revoking = tmp_path / "ca.crl"
    revoking.write_bytes(crl(pki.ca, pki.ca_key, pki.leaf))
    assert run(sign(pki, payload(7)), revoking) == 1
    assert "mds_revoked_certificate" in capsys.readouterr().err
    assert store.read_text() == stored

    newer = sign(pki, payload(7))
    assert run(newer) == 0
    assert store.read_text() == newer and "no. 7" in capsys.readouterr().out


def test_refresh_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = tmp_path / "mds.jwt"
    assert mds_cli.refresh(None, None, store, INSIDE_VALIDITY) == 2
    assert mds_cli.refresh("a", "https://mds3.fidoalliance.org/", store, INSIDE_VALIDITY) == 2
    assert mds_cli.refresh(None, "http://mds3.fidoalliance.org/", store, INSIDE_VALIDITY) == 2  # https only
    assert mds_cli.refresh(str(tmp_path / "missing.jwt"), None, store, INSIDE_VALIDITY) == 1
    assert not store.exists()
    assert capsys.readouterr().out == ""

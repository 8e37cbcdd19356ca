"""Secrets sealed at rest: one implementation for every purpose, and mail queued before keeps opening."""

from __future__ import annotations

import secrets

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from passgate.core.policy import Policy
from passgate.service import mail_queue, sealing
from passgate.service.context import Context, RelyingParty
from passgate.store.memory import memory_storage

SECRET = bytes(range(32))


def context(secret_key: bytes = SECRET) -> Context:
    rp = RelyingParty(
        rp_id="localhost", rp_name="t", origins=("http://localhost",), policy=Policy(), secret_key=secret_key
    )
    return Context(rp=rp, storage=memory_storage())


def queued_body_as_stored(secret_key: bytes, mail_id: str, text: str) -> bytes:
    """A mail body as the outbox stored it before sealing had a module of its own: the format on disk."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"passgate mail outbox v1").derive(secret_key)
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(key).encrypt(nonce, text.encode(), mail_id.encode())


def test_mail_queued_before_still_opens_and_new_mail_has_the_same_format() -> None:
    stored = queued_body_as_stored(SECRET, "m1", "Your link: https://example.com/x")
    assert mail_queue.unseal(context(), "m1", stored) == "Your link: https://example.com/x"
    sealed = mail_queue.seal(context(), "m1", "new body")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"passgate mail outbox v1").derive(SECRET)
    assert AESGCM(key).decrypt(sealed[:12], sealed[12:], b"m1") == b"new body"


def test_a_sealed_value_opens_only_for_its_purpose_record_and_secret() -> None:
    sealed = sealing.seal(SECRET, purpose=sealing.SIGNING_KEYS, bound_to=b"kid-1", plaintext=b"private key")
    assert b"private key" not in sealed
    assert sealing.unseal(SECRET, purpose=sealing.SIGNING_KEYS, bound_to=b"kid-1", sealed=sealed) == b"private key"
    refused = [
        (SECRET, sealing.MAIL_OUTBOX, b"kid-1", sealed),  # another purpose
        (SECRET, sealing.SIGNING_KEYS, b"kid-2", sealed),  # another record
        (bytes(32), sealing.SIGNING_KEYS, b"kid-1", sealed),  # another secret_key
        (SECRET, sealing.SIGNING_KEYS, b"kid-1", sealed[:-1] + bytes([sealed[-1] ^ 1])),  # altered
        (SECRET, sealing.SIGNING_KEYS, b"kid-1", sealed[:20]),  # cut short
    ]
    for secret_key, purpose, bound_to, value in refused:
        with pytest.raises(sealing.InvalidTag):
            sealing.unseal(secret_key, purpose=purpose, bound_to=bound_to, sealed=value)

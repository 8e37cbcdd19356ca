"""Secrets at rest: AES-GCM under a key derived (HKDF-SHA256) from `secret_key` and a purpose label.

Each purpose has its own label, so a key derived for one use never opens what another sealed, and each sealed
value is bound to the record it belongs to (the associated data): a sealed value copied onto another row does not
open there. The sealed form is a random 96-bit nonce followed by the ciphertext and its tag.

Labels are part of the stored format: changing one makes everything sealed under it unreadable.
"""

from __future__ import annotations

import secrets
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["CHALLENGES", "MAIL_OUTBOX", "SIGNING_KEYS", "WEBHOOK_SECRETS", "InvalidTag", "seal", "unseal"]

CHALLENGES = b"passgate challenges v1"  # a ceremony's state, carried by its challenge (bound to nothing else)
MAIL_OUTBOX = b"passgate mail outbox v1"  # queued mail bodies, bound to the message id
SIGNING_KEYS = b"passgate signing keys v1"  # private signing keys, bound to their kid
WEBHOOK_SECRETS = b"passgate webhook secrets v1"  # an endpoint's signing secrets, bound to its id

_NONCE = 12


@lru_cache(maxsize=64)  # derived once per key and purpose: every ceremony opens and seals its challenge
def _cipher(secret_key: bytes, purpose: bytes) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose)
    return AESGCM(hkdf.derive(secret_key))


def seal(secret_key: bytes, *, purpose: bytes, bound_to: bytes, plaintext: bytes) -> bytes:
    """`plaintext` sealed for `purpose`, opening only with the same `bound_to` (e.g. the row's id)."""
    nonce = secrets.token_bytes(_NONCE)
    return nonce + _cipher(secret_key, purpose).encrypt(nonce, plaintext, bound_to)


def unseal(secret_key: bytes, *, purpose: bytes, bound_to: bytes, sealed: bytes) -> bytes:
    """The plaintext.

    Raises:
        InvalidTag: sealed under another secret_key or purpose, for another record, or altered.
    """
    if len(sealed) < _NONCE + 16:
        raise InvalidTag()
    return _cipher(secret_key, purpose).decrypt(sealed[:_NONCE], sealed[_NONCE:], bound_to)

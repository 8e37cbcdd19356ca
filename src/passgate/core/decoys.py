"""Decoy credentials for usernames without an account, shaped like the passkeys real accounts list.

Username-first sign-in answers with the account's passkeys. For a name without an account, the answer lists
decoys instead: how many, their transports and their id lengths are drawn from the name's HMAC under the
server's secret key, over values real passkeys have, so the answer is stable for a name and varies between
names as real answers do. README ("JSON API") states what still tells them apart.
"""

from __future__ import annotations

import hashlib
import hmac

from passgate.core.options import CredentialDescriptor

# (transports as browsers report them - sorted -, credential id length in bytes), one entry per kind of
# passkey, repeated to weigh common kinds more: synced passkeys of phones and password managers,
# platform authenticators, security keys over USB and NFC.
PROFILES: tuple[tuple[tuple[str, ...], int], ...] = (
    (("hybrid", "internal"), 16),
    (("hybrid", "internal"), 16),
    (("hybrid", "internal"), 20),
    (("hybrid", "internal"), 20),
    (("hybrid", "internal"), 32),
    (("internal",), 16),
    (("internal",), 32),
    (("internal",), 32),
    (("usb",), 64),
    (("nfc", "usb"), 64),
    (("nfc", "usb"), 48),
    (("ble", "nfc", "usb"), 64),
)
# How many passkeys an account lists, weighted: most have one, some a second, few more.
COUNTS = (1, 1, 1, 1, 1, 2, 2, 2, 3, 3)


def decoy_credentials(*, secret_key: bytes, identifier: str) -> list[CredentialDescriptor]:
    """The decoys for `identifier` (a normalized username): the same list every time for the same key."""
    seed = hmac.new(secret_key, b"passgate decoy\x00" + identifier.encode(), hashlib.sha256).digest()
    stream = _Stream(seed)
    count = COUNTS[stream.below(len(COUNTS))]
    decoys = []
    for _ in range(count):
        transports, length = PROFILES[stream.below(len(PROFILES))]
        decoys.append(CredentialDescriptor(credential_id=stream.take(length), transports=transports))
    return decoys


class _Stream:
    """Bytes drawn in order from SHAKE-256 keyed by a secret seed."""

    def __init__(self, seed: bytes) -> None:
        self._bytes = hashlib.shake_256(seed).digest(512)  # enough for the longest list
        self._used = 0

    def take(self, size: int) -> bytes:
        chunk = self._bytes[self._used : self._used + size]
        self._used += size
        return chunk

    def below(self, bound: int) -> int:
        # 4 bytes for a bound below 20: the bias of the modulo is under 1e-8.
        return int.from_bytes(self.take(4), "big") % bound

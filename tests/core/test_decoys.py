"""Decoy credentials for unknown usernames: stable per name, varied across names, shaped like real passkeys."""

from __future__ import annotations

from collections import Counter

from passgate.core.decoys import PROFILES, decoy_credentials

KEY = b"k" * 32
REAL_TRANSPORTS = {"ble", "hybrid", "internal", "nfc", "smart-card", "usb"}


def test_the_same_name_gets_the_same_decoys() -> None:
    first = decoy_credentials(secret_key=KEY, identifier="nobody")
    assert decoy_credentials(secret_key=KEY, identifier="nobody") == first
    assert decoy_credentials(secret_key=b"another key".ljust(32), identifier="nobody") != first


def test_names_get_different_decoys_over_realistic_values() -> None:
    lists = [decoy_credentials(secret_key=KEY, identifier=f"user{n}") for n in range(400)]
    ids = [d.credential_id for decoys in lists for d in decoys]
    assert len(set(ids)) == len(ids)  # no two names (or passkeys) share an id
    counts = Counter(len(decoys) for decoys in lists)
    assert set(counts) == {1, 2, 3} and counts[1] > counts[2] > counts[3]
    transports = Counter(d.transports for decoys in lists for d in decoys)
    assert len(transports) >= 4 and set(transports) == {t for t, _ in PROFILES}
    for decoys in lists:
        for decoy in decoys:
            assert set(decoy.transports) <= REAL_TRANSPORTS
            assert list(decoy.transports) == sorted(decoy.transports)  # as browsers report them
            assert (decoy.transports, len(decoy.credential_id)) in PROFILES
    lengths = {len(d.credential_id) for decoys in lists for d in decoys}
    assert {16, 32, 64} <= lengths

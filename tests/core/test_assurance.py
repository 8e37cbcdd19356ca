"""amr and acr from what a sign-in proved: the table in the README, row by row."""

from __future__ import annotations

import pytest

from passgate.core.assurance import Assurance, SignInProof, assurance

ROWS = [
    # A passkey sign-in: possession; with UV also the user; hardware only when device-bound and attested.
    (
        SignInProof(kind="passkey", passkey=True, user_verified=True, backup_eligible=True),
        ("pop", "user", "mfa", "swk"),
        "phr",
    ),
    (SignInProof(kind="passkey", passkey=True, user_verified=False, backup_eligible=True), ("pop", "swk"), "phr"),
    (
        SignInProof(kind="passkey", passkey=True, user_verified=True, backup_eligible=False),
        ("pop", "user", "mfa", "swk"),
        "phr",
    ),
    (
        SignInProof(kind="passkey", passkey=True, user_verified=True, backup_eligible=True, attested=True),
        ("pop", "user", "mfa", "swk"),
        "phr",
    ),
    (
        SignInProof(kind="passkey", passkey=True, user_verified=True, backup_eligible=False, attested=True),
        ("pop", "user", "mfa", "hwk"),
        "phrh",
    ),
    (
        SignInProof(kind="passkey", passkey=True, user_verified=False, backup_eligible=False, attested=True),
        ("pop", "hwk"),
        "phrh",
    ),
    # Recovery: a backup code or an emailed link, never phr; a compromised model's passkey proves possession only.
    (SignInProof(kind="recovery", passkey=False), ("otp",), None),
    (
        SignInProof(kind="recovery", passkey=True, user_verified=True, backup_eligible=False, attested=True),
        ("pop", "user", "mfa", "swk"),
        None,
    ),
    # An imported password, while the account moves to passkeys: a password, never phr.
    (SignInProof(kind="password", passkey=False), ("pwd",), None),
]


@pytest.mark.parametrize(("proof", "amr", "acr"), ROWS)
def test_each_row(proof: SignInProof, amr: tuple[str, ...], acr: str | None) -> None:
    assert assurance(proof) == Assurance(amr=amr, acr=acr)


def test_never_a_method_webauthn_does_not_report() -> None:
    every = {value for proof, _, _ in ROWS for value in assurance(proof).amr}
    assert not every & {"fpt", "face", "pin", "iris", "retina", "vbm"}

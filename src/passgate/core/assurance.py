"""What a sign-in proved, as the `amr` (RFC 8176) and `acr` claims of the tokens Passgate signs.

A passkey sign-in proves possession of a key ("pop"). With the UV flag the authenticator also verified its user
("user" and "mfa": something held and something known or been). The key is hardware-bound ("hwk") only when it
cannot leave its device (backup eligibility, BE, clear) and a verified attestation chained to a trust anchor proved
what device that is; otherwise Passgate cannot tell a hardware key from a software one ("swk"). WebAuthn does not say
how the user was verified, so never "fpt", "face" or "pin".

`acr` is "phr" (phishing-resistant) for a passkey sign-in and "phrh" (phishing-resistant, hardware-protected) when
the key is hardware-bound. A recovery session (a backup code or a sign-in link sent by email) never carries either:
its `amr` is ["otp"], both being single-use secrets, and it has no `acr`. A session opened by a passkey of a model
known to be compromised is a recovery session too: it proved possession of that passkey ("pop", "swk") and no more.
A password session (an imported account's old password, while it moves to passkeys) proved a password: `amr`
["pwd"], no `acr`, never a step-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PHR = "phr"
PHRH = "phrh"
ACR_VALUES = (PHR, PHRH)


@dataclass(frozen=True, kw_only=True)
class SignInProof:
    """What the sign-in behind a session proved.

    `kind` "passkey" is a passkey sign-in, sign-up or step-up; "recovery" a backup code or an emailed link (or a
    passkey of a compromised model, when `passkey` is True); "password" an imported password. `user_verified` is
    the UV flag of that passkey's last ceremony, `backup_eligible` its BE flag, `attested` whether a verified
    attestation chained to a trust anchor.
    """

    kind: Literal["passkey", "recovery", "password"]
    passkey: bool
    user_verified: bool = False
    backup_eligible: bool = True
    attested: bool = False


@dataclass(frozen=True, kw_only=True)
class Assurance:
    amr: tuple[str, ...]
    acr: str | None  # None: the token carries no acr


def assurance(proof: SignInProof) -> Assurance:
    """The `amr` and `acr` of a session whose sign-in proved `proof`."""
    if not proof.passkey:
        return Assurance(amr=("pwd",) if proof.kind == "password" else ("otp",), acr=None)
    hardware = proof.kind == "passkey" and not proof.backup_eligible and proof.attested
    amr = ["pop"]
    if proof.user_verified:
        amr += ["user", "mfa"]
    amr.append("hwk" if hardware else "swk")
    if proof.kind == "recovery":
        return Assurance(amr=tuple(amr), acr=None)
    return Assurance(amr=tuple(amr), acr=PHRH if hardware else PHR)

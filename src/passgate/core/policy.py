"""What a relying party accepts: the policy every verification is made under."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from passgate.core import cose

UserVerification = Literal["required", "preferred", "discouraged"]
AttestationConveyance = Literal["none", "indirect", "direct", "enterprise"]
ResidentKey = Literal["required", "preferred", "discouraged"]

# Strongest and most common first: the order is the preference sent to authenticators.
DEFAULT_ALGORITHMS: tuple[int, ...] = (
    cose.ES256,
    cose.EDDSA,
    cose.ED25519,
    cose.ES384,
    cose.ES512,
    cose.ED448,
    cose.PS256,
    cose.RS256,
    cose.ML_DSA_44,
    cose.ML_DSA_65,
    cose.ML_DSA_87,
)


@dataclass(frozen=True, kw_only=True)
class Policy:
    """The relying party's rules for registration and sign-in.

    Attributes:
        user_verification: "required" rejects responses without the UV flag; "preferred" and
            "discouraged" only shape the options sent to the browser.
        allowed_algorithms: COSE algorithm identifiers accepted for credential keys, in preference order.
        trusted_roots: PEM trust anchors by attestation format ("packed", "tpm", ...). Attestation
            certificate chains are validated against them at the verification time.
        allow_cross_origin: accept ceremonies run in a cross-origin iframe (clientData.crossOrigin).
        allowed_top_origins: when cross-origin ceremonies are allowed, the top-level origins that may
            embed them; empty means any.
        attestation: the attestation conveyance preference sent in creation options.
        resident_key: the discoverable-credential requirement sent in creation options.
        timeout_ms: the ceremony timeout sent to browsers.
    """

    user_verification: UserVerification = "preferred"
    allowed_algorithms: tuple[int, ...] = DEFAULT_ALGORITHMS
    trusted_roots: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    allow_cross_origin: bool = False
    allowed_top_origins: tuple[str, ...] = ()
    attestation: AttestationConveyance = "none"
    resident_key: ResidentKey = "required"
    timeout_ms: int = 300_000

    @property
    def requires_user_verification(self) -> bool:
        return self.user_verification == "required"

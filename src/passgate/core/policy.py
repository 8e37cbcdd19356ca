"""What a relying party accepts: the policy every verification is made under."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, Protocol

from passgate.core import cose

UserVerification = Literal["required", "preferred", "discouraged"]
AttestationConveyance = Literal["none", "indirect", "direct", "enterprise"]
ResidentKey = Literal["required", "preferred", "discouraged"]
SignCountRule = Literal["reject", "flag"]
Attachment = Literal["platform", "cross-platform"]
CERTIFICATION_LEVELS = {
    "FIDO_CERTIFIED_L1": 1,
    "FIDO_CERTIFIED_L1plus": 1,
    "FIDO_CERTIFIED_L2": 2,
    "FIDO_CERTIFIED_L2plus": 2,
    "FIDO_CERTIFIED_L3": 3,
    "FIDO_CERTIFIED_L3plus": 3,
}

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


class AuthenticatorMetadata(Protocol):
    """What FIDO metadata says of an authenticator model (see passgate.core.mds)."""

    @property
    def attestation_root_certificates(self) -> tuple[str, ...]: ...
    @property
    def certification_level(self) -> str | None: ...
    @property
    def compromised(self) -> bool: ...


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
        name: the preset this policy started from.
        require_attestation: registration needs an attestation that chains to a trust anchor (from
            `trusted_roots` or the authenticator's FIDO metadata); self and none attestation are refused.
        aaguid_allow: if not empty, only these authenticator models (AAGUIDs, lower case) may register.
        aaguid_block: these models may not register.
        allow_backup_eligible: False accepts device-bound passkeys only (the BE flag refused).
        min_certification_level: 0, or the lowest FIDO certification level (1-3) metadata must show.
        sign_count_rule: "reject" a counter that went backwards, or accept it and "flag" a clone warning.
        authenticator_attachment: ask for platform or cross-platform authenticators (None: either).
        hints: WebAuthn Level 3 hints sent in options ("security-key", "client-device", "hybrid").
        confirm_transactions: offer the payment confirmation ceremony (an assertion bound to a transaction).
        on_compromised: a passkey whose model FIDO metadata reports compromised may "block" sign-in, or
            sign in to a "recover" session (a new passkey first, no security changes until then).
    """

    user_verification: UserVerification = "preferred"
    allowed_algorithms: tuple[int, ...] = DEFAULT_ALGORITHMS
    trusted_roots: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    allow_cross_origin: bool = False
    allowed_top_origins: tuple[str, ...] = ()
    attestation: AttestationConveyance = "none"
    resident_key: ResidentKey = "required"
    timeout_ms: int = 300_000
    name: str = "consumer"
    require_attestation: bool = False
    aaguid_allow: frozenset[str] = frozenset()
    aaguid_block: frozenset[str] = frozenset()
    allow_backup_eligible: bool = True
    min_certification_level: int = 0
    sign_count_rule: SignCountRule = "reject"
    authenticator_attachment: Attachment | None = None
    hints: tuple[str, ...] = ()
    confirm_transactions: bool = False
    on_compromised: Literal["block", "recover"] = "recover"

    @property
    def requires_user_verification(self) -> bool:
        return self.user_verification == "required"


# Algorithms FIPS 186 approves, all of which hardware authenticators implement.
HARDWARE_ALGORITHMS: tuple[int, ...] = (cose.ES256, cose.ES384, cose.ES512, cose.PS256, cose.RS256)

PRESETS: Mapping[str, Policy] = {
    # Consumers: any passkey, synced ones welcome; no attestation asked for (it would only add a prompt).
    "consumer": Policy(name="consumer"),
    # Enterprises: known authenticator models, attested and verified against FIDO metadata; always UV.
    "enterprise": Policy(
        name="enterprise", user_verification="required", attestation="direct", require_attestation=True
    ),
    # Government and administrators: device-bound, certified hardware, always UV.
    "high-assurance": Policy(
        name="high-assurance",
        user_verification="required",
        attestation="direct",
        require_attestation=True,
        allow_backup_eligible=False,
        min_certification_level=1,
        allowed_algorithms=HARDWARE_ALGORITHMS,
        hints=("security-key", "client-device"),
    ),
    # Payments: UV on every sign-in; synced passkeys allowed; per-transaction confirmation.
    "payments": Policy(name="payments", user_verification="required", confirm_transactions=True),
}


def preset(name: str, **overrides: Any) -> Policy:
    """A named preset with any field overridden.

    Raises:
        ValueError: unknown preset or field, or a value of the wrong kind.
    """
    if name not in PRESETS:
        raise ValueError(f"Unknown policy {name!r}; choose one of {', '.join(PRESETS)}.")
    known = {f.name: f for f in fields(Policy)}
    unknown = set(overrides) - set(known)
    if unknown:
        raise ValueError(f"Unknown policy setting(s): {', '.join(sorted(unknown))}.")
    converted: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in ("aaguid_allow", "aaguid_block"):
            value = frozenset(str(v).lower() for v in value)
        elif key in ("allowed_algorithms", "allowed_top_origins", "hints"):
            value = tuple(value)
        elif key == "trusted_roots":
            value = {fmt: tuple(pems) for fmt, pems in dict(value).items()}
        converted[key] = value
    policy = replace(PRESETS[name], **converted)
    check(policy)
    return policy


def check(policy: Policy) -> None:
    """Raises ValueError naming the setting that is inconsistent."""
    choices: dict[str, tuple[object, ...]] = {
        "user_verification": ("required", "preferred", "discouraged"),
        "attestation": ("none", "indirect", "direct", "enterprise"),
        "resident_key": ("required", "preferred", "discouraged"),
        "sign_count_rule": ("reject", "flag"),
        "authenticator_attachment": (None, "platform", "cross-platform"),
        "on_compromised": ("block", "recover"),
    }
    for name, allowed in choices.items():
        if getattr(policy, name) not in allowed:
            raise ValueError(f"policy {name} must be one of {', '.join(map(str, allowed))}.")
    unknown_algorithms = set(policy.allowed_algorithms) - set(cose.ALGORITHM_NAMES)
    if not policy.allowed_algorithms or unknown_algorithms:
        raise ValueError(f"allowed_algorithms must name supported COSE algorithms: {sorted(unknown_algorithms)}")
    if not 0 <= policy.min_certification_level <= 3:
        raise ValueError("min_certification_level must be between 0 and 3.")
    if policy.require_attestation and policy.attestation == "none":
        raise ValueError("require_attestation needs attestation 'direct', 'indirect' or 'enterprise'.")
    if policy.min_certification_level and not policy.require_attestation:
        raise ValueError(
            "min_certification_level needs require_attestation: a level is known only for attested models."
        )
    if not set(policy.hints) <= {"security-key", "client-device", "hybrid"}:
        raise ValueError("hints must be among security-key, client-device, hybrid.")

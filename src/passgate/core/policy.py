"""What a relying party accepts: the policy every verification is made under."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, Protocol

from cryptography import x509

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
        trusted_roots: PEM trust anchors by attestation format ("packed", "tpm", ...), each a `str` or
            `bytes` PEM certificate (kept as `str`). Attestation certificate chains are validated against
            them at the verification time.
        allow_cross_origin: accept ceremonies run in a cross-origin iframe (clientData.crossOrigin).
        allowed_top_origins: when cross-origin ceremonies are allowed, the top-level origins that may
            embed them; empty means any.
        attestation: the attestation conveyance preference sent in creation options.
        resident_key: the discoverable-credential requirement sent in creation options.
        timeout_ms: the ceremony timeout sent to browsers.
        name: the preset this policy started from.
        require_attestation: registration needs an attestation that chains to a trust anchor (from
            `trusted_roots`, the authenticator's FIDO metadata or, with `trust_platform_roots`, a platform
            vendor's root); self and none attestation are refused.
        trust_platform_roots: the Apple and Google roots py_webauthn knows count as trust anchors for the
            apple, android-key and android-safetynet formats. Off, only `trusted_roots` and metadata do.
        require_cts_profile_match: android-safetynet attestations must report ctsProfileMatch (a device
            that passed Android compatibility testing), not only basicIntegrity.
        aaguid_allow: if not empty, only these authenticator models may register, and only when a
            verified attestation proves the model. Entries are UUIDs, with or without hyphens, in any case;
            they are kept in the canonical lower-case hyphenated form.
        aaguid_block: these models may not register, whether attested or only claimed.
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
    trust_platform_roots: bool = True
    require_cts_profile_match: bool = True
    aaguid_allow: frozenset[str] = frozenset()
    aaguid_block: frozenset[str] = frozenset()
    allow_backup_eligible: bool = True
    min_certification_level: int = 0
    sign_count_rule: SignCountRule = "reject"
    authenticator_attachment: Attachment | None = None
    hints: tuple[str, ...] = ()
    confirm_transactions: bool = False
    on_compromised: Literal["block", "recover"] = "recover"

    def __post_init__(self) -> None:
        # Frozen: the normalised values replace what was passed, once, when the policy is built.
        object.__setattr__(self, "trusted_roots", _trusted_roots(self.trusted_roots))
        object.__setattr__(self, "aaguid_allow", _aaguids(self.aaguid_allow, "aaguid_allow"))
        object.__setattr__(self, "aaguid_block", _aaguids(self.aaguid_block, "aaguid_block"))

    @property
    def requires_user_verification(self) -> bool:
        return self.user_verification == "required"


_AAGUID = re.compile(r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _aaguids(entries: Iterable[object], setting: str) -> frozenset[str]:
    """Raises ValueError naming an entry that is not an AAGUID."""
    if isinstance(entries, str | bytes) or not isinstance(entries, Iterable):
        raise TypeError(f"{setting} must be a list of AAGUIDs, not {type(entries).__name__}.")
    canonical = set()
    for entry in entries:
        text = entry.strip().lower() if isinstance(entry, str) else ""
        if not _AAGUID.fullmatch(text):
            raise ValueError(f"{setting}: {entry!r} is not an AAGUID (a UUID such as {_EXAMPLE_AAGUID}).")
        hexdigits = text.replace("-", "")
        canonical.add("-".join((hexdigits[:8], hexdigits[8:12], hexdigits[12:16], hexdigits[16:20], hexdigits[20:])))
    return frozenset(canonical)


_EXAMPLE_AAGUID = "ee882879-721c-4913-9775-3dfcce97072a"


def _trusted_roots(roots: object) -> Mapping[str, tuple[str, ...]]:
    """Raises TypeError or ValueError naming a format whose roots are not PEM certificates."""
    if not isinstance(roots, Mapping):
        raise TypeError(f"trusted_roots must map attestation formats to PEM certificates, not {type(roots).__name__}.")
    normalised: dict[str, tuple[str, ...]] = {}
    for fmt, pems in roots.items():
        if not isinstance(fmt, str):
            raise TypeError(f"trusted_roots keys must be attestation format names, not {fmt!r}.")
        if isinstance(pems, str | bytes) or not isinstance(pems, Iterable):
            raise TypeError(f"trusted_roots[{fmt!r}] must be a list of PEM certificates.")
        texts = []
        for pem in pems:
            if not isinstance(pem, str | bytes):
                raise TypeError(f"trusted_roots[{fmt!r}] holds a {type(pem).__name__}, not a PEM certificate.")
            try:
                text = pem.decode("ascii") if isinstance(pem, bytes) else pem
                x509.load_pem_x509_certificate(text.encode("ascii"))
            except ValueError as exc:  # including text that is not ASCII, as PEM always is
                raise ValueError(f"trusted_roots[{fmt!r}] holds something that is not a PEM certificate.") from exc
            texts.append(text)
        normalised[fmt] = tuple(texts)
    return normalised


# Algorithms FIPS 186 approves, all of which hardware authenticators implement.
HARDWARE_ALGORITHMS: tuple[int, ...] = (cose.ES256, cose.ES384, cose.ES512, cose.PS256, cose.RS256)

PRESETS: Mapping[str, Policy] = {
    # Consumers: any passkey, synced ones welcome; no attestation asked for (it would only add a prompt).
    "consumer": Policy(name="consumer"),
    # Enterprises: known authenticator models, attested and verified against FIDO metadata or the
    # operator's own roots (not the platform vendors' unless asked for); always UV.
    "enterprise": Policy(
        name="enterprise",
        user_verification="required",
        attestation="direct",
        require_attestation=True,
        trust_platform_roots=False,
    ),
    # Government and administrators: device-bound, certified hardware, always UV.
    "high-assurance": Policy(
        name="high-assurance",
        user_verification="required",
        attestation="direct",
        require_attestation=True,
        trust_platform_roots=False,
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
        ValueError: unknown preset or field, a bad AAGUID or root, or a value of the wrong kind.
        TypeError: a value of the wrong type (roots that are not PEM text, lists that are not lists).
    """
    if name not in PRESETS:
        raise ValueError(f"Unknown policy {name!r}; choose one of {', '.join(PRESETS)}.")
    known = {f.name: f for f in fields(Policy)}
    unknown = set(overrides) - set(known)
    if unknown:
        raise ValueError(f"Unknown policy setting(s): {', '.join(sorted(unknown))}.")
    converted: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in ("allowed_algorithms", "allowed_top_origins", "hints"):
            value = tuple(value)
        converted[key] = value  # Policy itself normalises aaguid_allow, aaguid_block and trusted_roots
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
    if policy.aaguid_allow and not policy.require_attestation:
        raise ValueError("aaguid_allow needs require_attestation: only an attestation proves an authenticator's model.")
    if not set(policy.hints) <= {"security-key", "client-device", "hybrid"}:
        raise ValueError("hints must be among security-key, client-device, hybrid.")

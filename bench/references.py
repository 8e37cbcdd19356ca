"""Reference rates measured on the same machine, in the same run, each on one core.

* OpenSSL's ECDSA P-256 verifications per second (`openssl speed -seconds N -elapsed ecdsap256`, one process):
  the floor of what checking one passkey signature costs.
* py_webauthn's `verify_authentication_response` per second over one genuine assertion (parsing included): what
  a bare Python verification costs, without HTTP, storage or sessions.
* Passgate's own `passgate.verify_authentication` per second over the same assertion (its pure core).
* `cryptography`'s ECDSA P-256 verify per second called from Python (its bundled OpenSSL, which may differ
  from the `openssl` command's): the signature check alone, as every Python verifier pays it.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import webauthn
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

import passgate
from bench.procstat import OtherLoad
from bench.settings import ORIGIN, RP_ID
from passgate.core.encoding import b64url_encode
from passgate.testing import SoftwareAuthenticator

T = TypeVar("T")

_OPENSSL_LINE = re.compile(r"^\s*256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class References:
    """Operations per second on one core."""

    openssl_verify: float
    openssl_sign: float
    py_webauthn_verify: float
    passgate_core_verify: float
    cryptography_verify: float


def parse_openssl_speed(output: str) -> tuple[float, float]:
    """(sign/s, verify/s) from `openssl speed ecdsap256` output.

    Raises:
        ValueError: the nistp256 result line is missing.
    """
    match = _OPENSSL_LINE.search(output)
    if match is None:
        raise ValueError(f"no 'nistp256' line in openssl speed output: {output[-500:]!r}")
    return float(match.group(1)), float(match.group(2))


def openssl_rates(seconds: float) -> tuple[float, float]:
    """Measure (sign/s, verify/s) of ECDSA P-256 with `openssl speed` (one process, wall-clock timing)."""
    completed = subprocess.run(
        ["openssl", "speed", "-seconds", str(max(1, round(seconds))), "-elapsed", "ecdsap256"],
        check=True,
        capture_output=True,
        text=True,
        timeout=20 * max(1, seconds) + 30,
    )
    return parse_openssl_speed(completed.stdout)


def _rate(operation: Callable[[], object], seconds: float) -> float:
    """Calls per second of `operation`, looped for about `seconds` (bounded by 10 million calls)."""
    operation()  # warm caches and lazy imports outside the timing
    calls = 0
    started = time.perf_counter()
    deadline = started + seconds
    while calls < 10_000_000:
        for _ in range(50):
            operation()
        calls += 50
        if time.perf_counter() >= deadline:
            break
    return calls / (time.perf_counter() - started)


def _genuine_assertion() -> tuple[dict[str, object], bytes, bytes]:
    """A real ES256 assertion from a counter-less SoftwareAuthenticator: (assertion, challenge, COSE key)."""
    authenticator = SoftwareAuthenticator(sign_count=None)
    user = {"id": "AQID", "name": "reference", "displayName": "reference"}
    creation = {"rp": {"id": RP_ID, "name": "bench"}, "user": user, "challenge": "AAAA", "pubKeyCredParams": []}
    authenticator.create(creation, origin=ORIGIN)
    challenge = bytes(range(32))
    request = {"challenge": b64url_encode(challenge), "rpId": RP_ID}
    assertion = authenticator.get(request, origin=ORIGIN)
    return assertion, challenge, authenticator.credentials[0].public_key_cose


def py_webauthn_rate(seconds: float) -> float:
    """`webauthn.verify_authentication_response` calls per second (dict parsed every call, counter 0 vs 0)."""
    assertion, challenge, public_key = _genuine_assertion()

    def verify() -> object:
        return webauthn.verify_authentication_response(
            credential=assertion,
            expected_challenge=challenge,
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
            credential_public_key=public_key,
            credential_current_sign_count=0,
        )

    return _rate(verify, seconds)


def passgate_core_rate(seconds: float) -> float:
    """`passgate.verify_authentication` calls per second over the same kind of assertion."""
    assertion, challenge, public_key = _genuine_assertion()

    def verify() -> object:
        return passgate.verify_authentication(
            assertion,
            expected_challenge=challenge,
            expected_rp_id=RP_ID,
            expected_origins=[ORIGIN],
            credential_public_key=public_key,
            stored_sign_count=0,
        )

    return _rate(verify, seconds)


def cryptography_rate(seconds: float) -> float:
    """`EllipticCurvePublicKey.verify` (ECDSA P-256, SHA-256) calls per second on a 37-byte + 32-byte message."""
    key = ec.generate_private_key(ec.SECP256R1())
    message = bytes(69)
    signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
    public = key.public_key()

    def verify() -> None:
        public.verify(signature, message, ec.ECDSA(hashes.SHA256()))

    return _rate(verify, seconds)


def measure(seconds: float, *, retries: int = 0, noise: float = 1.0) -> tuple[References, dict[str, float]]:
    """All the references (about 5 times `seconds`; run them while no server is busy), and for each the cores
    other processes kept busy meanwhile. A reference disturbed by more than `noise` cores of others' work is
    measured again, `retries` times at most, and the least disturbed measurement kept."""
    other: dict[str, float] = {}

    def observed(name: str, call: Callable[[], T]) -> T:
        best: tuple[T, float] | None = None
        for _ in range(retries + 1):
            load = OtherLoad()
            value = call()
            cores = load.cores()
            if best is None or cores < best[1]:
                best = (value, cores)
            if cores <= noise:
                break
        assert best is not None
        other[name] = best[1]
        return best[0]

    sign, verify = observed("openssl_verify", lambda: openssl_rates(seconds))
    measured = References(
        openssl_verify=verify,
        openssl_sign=sign,
        py_webauthn_verify=observed("py_webauthn_verify", lambda: py_webauthn_rate(seconds)),
        passgate_core_verify=observed("passgate_core_verify", lambda: passgate_core_rate(seconds)),
        cryptography_verify=observed("cryptography_verify", lambda: cryptography_rate(seconds)),
    )
    return measured, other

"""The issuer's published keys: parsing a JWKS and deciding when to fetch it again."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from .errors import IssuerUnreachable

PublicKey = ECKey | RSAKey

# The only key types a Passgate token can be checked with; an `oct` (HMAC) key in a JWKS is skipped, so no token can
# ever be checked against a shared secret, least of all one made from the public key.
_KEY_TYPES: dict[str, type[PublicKey]] = {"EC": ECKey, "RSA": RSAKey}
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)


def parse_key_set(document: object) -> dict[str, PublicKey]:
    """The signing keys of a JWKS document by kid.

    :raises IssuerUnreachable: the document is not a JWKS.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise IssuerUnreachable("the JWKS document has no keys list")
    keys: dict[str, PublicKey] = {}
    for entry in document["keys"]:
        if not isinstance(entry, Mapping) or entry.get("use", "sig") != "sig":
            continue
        key_type = _KEY_TYPES.get(str(entry.get("kty")))
        kid = entry.get("kid")
        if key_type is None or not isinstance(kid, str):
            continue
        try:
            key = key_type.import_key(dict(entry))
        except (JoseError, ValueError, TypeError):
            continue  # one malformed key must not hide the others
        if key.is_private:
            continue
        keys[kid] = key
    return keys


def cache_lifetime(cache_control: str | None, *, default: float, minimum: float, maximum: float) -> float:
    """Seconds a fetched JWKS stays fresh: its Cache-Control max-age, kept between ``minimum`` and ``maximum``.

    ``no-store``/``no-cache`` count as ``minimum``: a verifier that fetched the keys for every token would put the
    issuer's availability on every request's path.
    """
    if cache_control is None:
        return default
    if _NO_CACHE.search(cache_control):
        return minimum
    match = _MAX_AGE.search(cache_control)
    if match is None:
        return default
    return min(max(float(match.group(1)), minimum), maximum)


@dataclass
class KeyCache:
    """The last good key set, when it goes stale, and when an unknown kid last forced a fetch."""

    refetch_interval: float
    keys: dict[str, PublicKey] | None = None
    fresh_until: float = 0.0
    last_forced_fetch: float | None = None

    def is_fresh(self, now: float) -> bool:
        return self.keys is not None and now < self.fresh_until

    def may_force_fetch(self, now: float) -> bool:
        return self.last_forced_fetch is None or now - self.last_forced_fetch >= self.refetch_interval

    def store(self, keys: dict[str, PublicKey], *, now: float, lifetime: float) -> None:
        self.keys = keys
        self.fresh_until = now + lifetime

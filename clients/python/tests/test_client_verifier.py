"""PassgateVerifier against a real issuer on loopback: signatures, pinned algorithms, claims, and the JWKS cache."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from conftest import AUDIENCE, Clock, Issuer
from passgate_client import PassgateUser, PassgateVerifier
from passgate_client.errors import IssuerUnreachable, PassgateError

JWKS = "/.well-known/jwks.json"
DISCOVERY = "/.well-known/openid-configuration"


def verifier(issuer: Issuer, clock: Clock, **options: Any) -> PassgateVerifier:
    return PassgateVerifier(issuer.url, AUDIENCE, clock=clock, **options)


def code_of(verifier: PassgateVerifier, token: str, **options: Any) -> str:
    with pytest.raises(PassgateError) as refused:
        verifier.verify(token, **options)
    return refused.value.code


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.{b64(signature)}"


def test_good_es256_token_gives_the_user_through_discovery(issuer: Issuer, clock: Clock) -> None:
    user = verifier(issuer, clock).verify(issuer.token(scope="openid email", azp="shop"))

    assert isinstance(user, PassgateUser)
    assert (user.sub, user.sid, user.acr, user.token_type) == ("user-1", "session-1", "phr", "session+jwt")
    assert user.amr == ("pop", "user", "mfa", "swk")
    assert user.scope == ("openid", "email")
    assert user.client_id == "shop"
    assert user.expires_at == user.claims["exp"]
    assert user.auth_time == user.claims["auth_time"]
    assert issuer.requests == {DISCOVERY: 1, JWKS: 1}
    with pytest.raises(TypeError):
        user.claims["sub"] = "someone-else"  # type: ignore[index]


def test_good_rs256_access_token_with_an_explicit_jwks_uri(issuer: Issuer, clock: Clock) -> None:
    check = verifier(issuer, clock, jwks_uri=issuer.url + JWKS)

    user = check.verify(issuer.token(issuer.rs256, typ="at+jwt", aud=["other", AUDIENCE], client_id="shop"))

    assert (user.sub, user.token_type, user.client_id) == ("user-1", "at+jwt", "shop")
    assert issuer.requests == {JWKS: 1}


async def test_averify_checks_the_same_way(issuer: Issuer, clock: Clock) -> None:
    check = verifier(issuer, clock)

    assert (await check.averify(issuer.token())).sub == "user-1"
    with pytest.raises(PassgateError) as refused:
        await check.averify(issuer.token(aud="someone-else"))
    assert refused.value.code == "wrong_audience"
    assert issuer.requests == {DISCOVERY: 1, JWKS: 1}


def test_alg_none_is_refused(issuer: Issuer, clock: Clock) -> None:
    token = unsigned({"alg": "none", "typ": "session+jwt", "kid": issuer.es256.thumbprint()}, issuer.claims())

    assert code_of(verifier(issuer, clock), token) == "unsupported_algorithm"


def test_hs256_signed_with_the_public_key_is_refused_even_when_the_jwks_holds_an_oct_key(
    issuer: Issuer, clock: Clock
) -> None:
    public_pem = issuer.rs256.as_pem(private=False)
    header = {"alg": "HS256", "typ": "session+jwt", "kid": issuer.rs256.thumbprint()}
    body = unsigned(header, issuer.claims()).rsplit(".", 1)[0]
    token = f"{body}.{b64(hmac.new(public_pem, body.encode(), hashlib.sha256).digest())}"
    check = verifier(issuer, clock)

    assert code_of(check, token) == "unsupported_algorithm"

    # An oct key in the JWKS under the same kid changes nothing: such keys are never loaded.
    header["kid"] = "oct-key"
    body = unsigned(header, issuer.claims()).rsplit(".", 1)[0]
    token = f"{body}.{b64(hmac.new(public_pem, body.encode(), hashlib.sha256).digest())}"
    assert code_of(check, token) == "unsupported_algorithm"


def test_a_token_signed_by_another_key_under_a_published_kid_is_refused(issuer: Issuer, clock: Clock) -> None:
    stranger = ECKey.generate_key("P-256")
    token = issuer.token(stranger, header={"kid": issuer.es256.thumbprint()})

    assert code_of(verifier(issuer, clock), token) == "invalid_token"


def test_unknown_kid_refetches_once_then_verifies_after_rotation_and_not_again_within_the_throttle(
    issuer: Issuer, clock: Clock
) -> None:
    check = verifier(issuer, clock)
    check.verify(issuer.token())
    rotated = ECKey.generate_key("P-256", parameters={"use": "sig"})
    assert issuer.requests[JWKS] == 1

    issuer.published.append(rotated)
    clock.advance(5)
    assert check.verify(issuer.token(rotated)).sub == "user-1"
    assert issuer.requests[JWKS] == 2

    never_published = ECKey.generate_key("P-256")
    clock.advance(5)
    assert code_of(check, issuer.token(never_published)) == "unknown_key"
    assert code_of(check, issuer.token(never_published)) == "unknown_key"
    assert issuer.requests[JWKS] == 2  # the throttle: one forced fetch per 30 s

    clock.advance(30)
    assert code_of(check, issuer.token(never_published)) == "unknown_key"
    assert issuer.requests[JWKS] == 3


def test_an_unknown_kid_after_the_set_went_stale_costs_one_fetch_not_two(issuer: Issuer, clock: Clock) -> None:
    check = verifier(issuer, clock)
    check.verify(issuer.token())
    clock.advance(301)

    assert code_of(check, issuer.token(ECKey.generate_key("P-256"))) == "unknown_key"
    assert issuer.requests[JWKS] == 2


def test_the_jwks_max_age_is_honoured(issuer: Issuer, clock: Clock) -> None:
    issuer.cache_control = "public, max-age=120"
    check = verifier(issuer, clock)
    token = issuer.token()

    check.verify(token)
    clock.advance(119)
    check.verify(token)
    assert issuer.requests[JWKS] == 1

    clock.advance(2)
    check.verify(token)
    assert issuer.requests[JWKS] == 2


def test_issuer_unreachable_after_a_first_fetch_keeps_the_cached_keys(issuer: Issuer, clock: Clock) -> None:
    check = verifier(issuer, clock)
    check.verify(issuer.token())
    issuer.stop()
    clock.advance(301)

    assert check.verify(issuer.token()).sub == "user-1"
    assert check.verify(issuer.token(issuer.rs256)).sub == "user-1"


def test_issuer_unreachable_with_nothing_cached_is_no_verdict_on_the_token(issuer: Issuer, clock: Clock) -> None:
    check = verifier(issuer, clock)
    token = issuer.token()
    issuer.stop()

    with pytest.raises(IssuerUnreachable) as refused:
        check.verify(token)
    assert refused.value.code == "issuer_unreachable"


def test_a_discovery_document_for_another_issuer_is_refused(issuer: Issuer, clock: Clock) -> None:
    check = PassgateVerifier(issuer.url + "/other", AUDIENCE, clock=clock)
    check.discovery_uri = issuer.url + DISCOVERY

    assert code_of(check, issuer.token(iss=issuer.url + "/other")) == "issuer_unreachable"
    assert issuer.requests[JWKS] == 0


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"exp": -60}, "expired"),  # times are offsets from the verifier's clock
        ({"nbf": +120}, "not_yet_valid"),
        ({"iat": +120}, "not_yet_valid"),
        ({"aud": "https://other.example"}, "wrong_audience"),
        ({"aud": ["https://other.example"]}, "wrong_audience"),
        ({"iss": "http://localhost:1"}, "wrong_issuer"),
        ({"exp": None}, "invalid_token"),
        ({"sub": None}, "invalid_token"),
        ({"exp": "tomorrow"}, "invalid_token"),
    ],
)
def test_claims_are_checked(issuer: Issuer, clock: Clock, claims: dict[str, Any], code: str) -> None:
    timed = {k: int(clock()) + v for k, v in claims.items() if k in ("exp", "nbf", "iat") and isinstance(v, int)}
    assert code_of(verifier(issuer, clock), issuer.token(**{**claims, **timed})) == code


def test_a_small_clock_skew_is_allowed(issuer: Issuer, clock: Clock) -> None:
    now = int(clock.now)
    token = issuer.token(exp=now - 10, nbf=now + 10, iat=now + 10)

    assert verifier(issuer, clock).verify(token).sub == "user-1"
    assert code_of(verifier(issuer, clock, leeway=0), token) == "expired"


def test_the_token_type_is_one_the_caller_accepts(issuer: Issuer, clock: Clock) -> None:
    id_token = issuer.token(typ="JWT")
    logout_token = issuer.token(typ="logout+jwt")

    assert code_of(verifier(issuer, clock), id_token) == "wrong_type"
    assert code_of(verifier(issuer, clock), logout_token) == "wrong_type"
    assert verifier(issuer, clock).verify(issuer.token(typ="AT+JWT")).token_type == "AT+JWT"
    assert verifier(issuer, clock).verify(issuer.token(typ="application/session+jwt")).sub == "user-1"
    assert code_of(verifier(issuer, clock), issuer.token(typ="text/session+jwt")) == "wrong_type"
    assert verifier(issuer, clock, typ=("JWT",)).verify(id_token).token_type == "JWT"
    assert code_of(verifier(issuer, clock, typ=("JWT",)), issuer.token()) == "wrong_type"


def test_a_token_without_typ_is_accepted_only_where_none_is_an_accepted_type(issuer: Issuer, clock: Clock) -> None:
    protected = {"alg": "ES256", "kid": issuer.es256.thumbprint()}
    untyped = jws.serialize_compact(protected, json.dumps(issuer.claims()), issuer.es256, algorithms=["ES256"])
    assert "typ" not in jws.extract_compact(untyped.encode()).protected

    assert code_of(verifier(issuer, clock), untyped) == "wrong_type"
    assert code_of(verifier(issuer, clock, typ=("JWT",)), untyped) == "wrong_type"
    assert verifier(issuer, clock, typ=("JWT", None)).verify(untyped).token_type == "JWT"
    assert code_of(verifier(issuer, clock, typ=("JWT", None)), issuer.token()) == "wrong_type"


def test_require_acr_refuses_a_weaker_acr_with_its_own_code(issuer: Issuer, clock: Clock) -> None:
    check = verifier(issuer, clock)

    assert code_of(check, issuer.token(acr="phr"), require_acr="phrh") == "insufficient_acr"
    assert code_of(check, issuer.token(acr=None), require_acr="phr") == "insufficient_acr"
    assert code_of(verifier(issuer, clock, require_acr="phrh"), issuer.token()) == "insufficient_acr"
    assert check.verify(issuer.token(acr="phrh"), require_acr="phrh").acr == "phrh"
    assert check.verify(issuer.token(acr="phrh"), require_acr="phr").acr == "phrh"
    with pytest.raises(ValueError, match="require_acr"):
        check.verify(issuer.token(), require_acr="gold")


def test_max_age_refuses_an_old_sign_in(issuer: Issuer, clock: Clock) -> None:
    check = verifier(issuer, clock)
    now = int(clock.now)

    assert code_of(check, issuer.token(auth_time=now - 3600), max_age=600) == "too_old"
    assert code_of(check, issuer.token(auth_time=None), max_age=600) == "too_old"
    assert check.verify(issuer.token(auth_time=now - 300), max_age=600).auth_time == now - 300


@pytest.mark.parametrize("token", ["", "not-a-token", "a.b.c", "a.b", "é.b.c", f"{b64(b'[]')}.e30.c2ln"])
def test_garbage_is_an_invalid_token(issuer: Issuer, clock: Clock, token: str) -> None:
    assert code_of(verifier(issuer, clock), token) == "invalid_token"
    assert issuer.requests == {}


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ({"alg": ["ES256"], "typ": "session+jwt", "kid": "k"}, "unsupported_algorithm"),
        ({"alg": {"ES256": 1}, "typ": "session+jwt", "kid": "k"}, "unsupported_algorithm"),
        ({"alg": "ES256", "typ": ["session+jwt"], "kid": "k"}, "wrong_type"),
        ({"alg": "ES256", "typ": "session+jwt", "kid": {"k": 1}}, "invalid_token"),
        ({"alg": "ES256", "typ": "session+jwt"}, "invalid_token"),
    ],
)
def test_a_malformed_header_is_refused_before_any_fetch(
    issuer: Issuer, clock: Clock, header: dict[str, Any], code: str
) -> None:
    assert code_of(verifier(issuer, clock), unsigned(header, issuer.claims(), b"sig")) == code
    assert issuer.requests == {}

"""The authorization code flow's pure parts: PKCE and reading an authorization request."""

from __future__ import annotations

import dataclasses

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from passgate.core.authorization import (
    PageError,
    consent_needed,
    read_request,
    redirect_target,
    single_values,
    verifier_matches,
)
from passgate.core.errors import InvalidClient, InvalidRequest
from passgate.core.oidc_clients import OidcClient

# RFC 7636 appendix B.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

SHOP = OidcClient(
    client_id="shop",
    name="Shop",
    redirect_uris=("https://shop.example/callback",),
    secret_hash=None,
    post_logout_redirect_uris=(),
    backchannel_logout_uri=None,
    scopes=("openid", "email"),
    first_party=True,
)


def test_the_rfc_7636_example_verifier_matches_its_challenge() -> None:
    assert verifier_matches(VERIFIER, CHALLENGE)
    assert not verifier_matches(VERIFIER, VERIFIER)  # plain is never accepted
    assert not verifier_matches(VERIFIER[:-1] + "l", CHALLENGE)
    assert not verifier_matches("short", create_s256_code_challenge("short"))  # under 43 characters


def test_a_parameter_given_twice_is_refused_and_empty_ones_are_absent() -> None:
    assert single_values([("state", ""), ("scope", "openid")]) == {"scope": "openid"}
    with pytest.raises(InvalidRequest):
        single_values([("scope", "openid"), ("scope", "email")])


def test_unknown_clients_and_redirect_uris_are_page_errors() -> None:
    with pytest.raises(PageError) as unknown:
        redirect_target(None, {"redirect_uri": "https://shop.example/callback"})
    assert isinstance(unknown.value.error, InvalidClient)
    for uri in ("https://shop.example/callback/", "https://shop.example/Callback", None):
        with pytest.raises(PageError):
            redirect_target(SHOP, {} if uri is None else {"redirect_uri": uri})
    assert (
        redirect_target(SHOP, {"redirect_uri": "https://shop.example/callback"})[1] == "https://shop.example/callback"
    )


def test_the_granted_scope_is_what_was_asked_and_the_client_may_have() -> None:
    values = {
        "response_type": "code",
        "scope": "email openid profile offline_access unknown",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    request = read_request(SHOP, "https://shop.example/callback", values)
    assert request.scope == ("openid", "email")
    assert request.response_mode == "query" and not request.prompt_none


def test_consent_is_needed_for_a_scope_not_consented_to_or_prompt_consent_unless_first_party() -> None:
    values = {"response_type": "code", "scope": "openid email", "code_challenge": CHALLENGE}
    values["code_challenge_method"] = "S256"
    partner = dataclasses.replace(SHOP, client_id="partner", first_party=False)
    asked = read_request(partner, "https://shop.example/callback", values)
    assert consent_needed(asked, ())
    assert consent_needed(asked, {"openid"})
    assert not consent_needed(asked, {"openid", "email", "profile"})
    again = read_request(partner, "https://shop.example/callback", {**values, "prompt": "consent"})
    assert again.prompt_consent and consent_needed(again, {"openid", "email"})
    first_party = read_request(SHOP, "https://shop.example/callback", {**values, "prompt": "consent"})
    assert not consent_needed(first_party, ())

"""GetAssertion: every case of the conformance tool's request options and assertion response groups, sent through
/assertion/options and /assertion/result after a registration through /attestation/*."""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.testing import SoftwareAuthenticator
from tests.conformance.cases import Build, Case, check, deviates, fails, passes
from tests.conformance.conftest import Models, Tool, client_data, ok, resign_assertion, set_client_data, with_extensions

Edit = Callable[[dict[str, Any], SoftwareAuthenticator], Any]
_users = itertools.count(1)


async def _registered(tool: Tool, authenticator: SoftwareAuthenticator, **options: Any) -> str:
    username = f"assertion-{next(_users)}"
    response = await tool.register(authenticator, username=username, attestation="direct", **options)
    assert ok(response), response.text
    return username


def sign_in(
    edit: Edit | None = None,
    *,
    authenticator: Callable[[], SoftwareAuthenticator] = lambda: SoftwareAuthenticator(attestation="packed"),
    flags: dict[str, bool] | None = None,
    **options: Any,
) -> Build:
    """A case: a registration, then the options call (with `options`), the authenticator's assertion (made with
    `flags` set on it, changed by `edit`), and the result call."""

    async def build(tool: Tool, models: Models) -> httpx.Response:
        del models
        held = authenticator()
        username = await _registered(tool, held)
        for name, value in (flags or {}).items():
            setattr(held, name, value)
        return await tool.sign_in(held, username, mutate=None if edit is None else (lambda c: edit(c, held)), **options)

    return build


def member(path: str, value: Any) -> Edit:
    def edit(credential: dict[str, Any], _held: SoftwareAuthenticator) -> None:
        *parents, name = path.split(".")
        target = credential
        for parent in parents:
            target = target[parent]
        if value is ...:
            target.pop(name, None)
        else:
            target[name] = value

    return edit


def not_base64url(field: str) -> Edit:
    def edit(credential: dict[str, Any], _held: SoftwareAuthenticator) -> None:
        target = credential if field == "id" else credential["response"]
        target[field] = base64.b64encode(b64url_decode(target[field])).decode() + "=="

    return edit


def collected(name: str, value: Any) -> Edit:
    """Change the client data, and sign again: only the change itself is wrong."""

    def edit(credential: dict[str, Any], held: SoftwareAuthenticator) -> None:
        data = client_data(credential)
        if value is ...:
            data.pop(name, None)
        else:
            data[name] = value
        set_client_data(credential, data)
        resign_assertion(credential, held.credentials[-1])

    return edit


def auth_data(change: Callable[[bytes], bytes], *, resign: bool = True) -> Edit:
    def edit(credential: dict[str, Any], held: SoftwareAuthenticator) -> None:
        changed = change(b64url_decode(credential["response"]["authenticatorData"]))
        if resign:
            resign_assertion(credential, held.credentials[-1], changed)
        else:
            credential["response"]["authenticatorData"] = b64url_encode(changed)

    return edit


def flip_signature(credential: dict[str, Any], _held: SoftwareAuthenticator) -> None:
    signature = bytearray(b64url_decode(credential["response"]["signature"]))
    signature[len(signature) // 2] ^= 0x01
    credential["response"]["signature"] = b64url_encode(bytes(signature))


def signed_over_other_client_data(credential: dict[str, Any], held: SoftwareAuthenticator) -> None:
    data = b64url_decode(credential["response"]["authenticatorData"])
    other = hashlib.sha256(b"other client data").digest()
    credential["response"]["signature"] = b64url_encode(held.credentials[-1].sign(data + other))


# -- Server-ServerPublicKeyCredentialGetOptionsResponse-Req-1 ------------------------------------------------------

EXTENSION = {"example.extension": "In a hole in the ground there lived a hobbit"}


async def _request_options_shape(tool: Tool, models: Models) -> httpx.Response:
    held = SoftwareAuthenticator(attestation="packed")
    username = await _registered(tool, held)
    response = await tool.post(
        "/assertion/options", {"username": username, "userVerification": "required", "extensions": EXTENSION}
    )
    options = response.json()
    assert len(b64url_decode(options["challenge"])) >= 16
    assert options["timeout"] > 0
    assert options["extensions"]["example.extension"] == EXTENSION["example.extension"]
    assert tool.origin.split("://")[1].split(":")[0].endswith(options["rpId"])
    assert [b64url_decode(d["id"]) for d in options["allowCredentials"]] == [held.credentials[0].credential_id]
    assert options["userVerification"] == "required"
    return response


async def _fresh_challenges(tool: Tool, models: Models) -> httpx.Response:
    username = await _registered(tool, SoftwareAuthenticator())
    first = await tool.post("/assertion/options", {"username": username})
    second = await tool.post("/assertion/options", {"username": username})
    assert first.json()["challenge"] != second.json()["challenge"]
    return second


REQ_1: dict[str, Case] = {
    "P-1": passes(
        "options: status, challenge, extensions, timeout, rpId, allowCredentials, userVerification",
        _request_options_shape,
    ),
    "P-2": passes("two options calls, two different challenges", _fresh_challenges),
}


@pytest.mark.parametrize("case", REQ_1)
async def test_Server_ServerPublicKeyCredentialGetOptionsResponse_Req_1(
    tool_with_models: Tool, models: Models, case: str
) -> None:
    await check(
        REQ_1[case],
        CODES.get("Server-ServerPublicKeyCredentialGetOptionsResponse-Req-1", {}).get(case),
        tool_with_models,
        models,
    )


# -- Server-ServerAuthenticatorAssertionResponse-Resp-1: the credential's structure ---------------------------------


def _empty_user_handle_after_resident_key() -> Build:
    async def build(tool: Tool, models: Models) -> httpx.Response:
        held = SoftwareAuthenticator(attestation="packed")
        selection = {"requireResidentKey": True, "authenticatorAttachment": "cross-platform"}
        username = await _registered(tool, held, authenticatorSelection=selection)
        return await tool.sign_in(held, username, mutate=lambda c: member("response.userHandle", "")(c, held))

    return build


USER_HANDLE_WHY = (
    "WebAuthn Level 3 (7.2, step 6) checks userHandle only when it is present, and an empty one is absent in the "
    "JSON encoding; the user was identified by the username before the ceremony, and the credential is theirs. "
    "The 2021 tool leaves this case commented out."
)

RESP_1: dict[str, Case] = {
    "P-1": passes("valid assertion", sign_in()),
    "F-1": fails("id missing", sign_in(member("id", ...))),
    "F-2": fails("id not a string", sign_in(member("id", 42))),
    "F-3": fails("id not base64url", sign_in(not_base64url("id"))),
    "F-4": fails("type missing", sign_in(member("type", ...))),
    "F-5": fails("type not a string", sign_in(member("type", 3))),
    "F-6": fails('type not "public-key"', sign_in(member("type", "avocado-toast"))),
    "F-7": fails("response missing", sign_in(member("response", ...))),
    "F-8": fails("response not an object", sign_in(member("response", "text"))),
    "F-9": fails("response.clientDataJSON missing", sign_in(member("response.clientDataJSON", ...))),
    "F-10": fails("response.clientDataJSON not a string", sign_in(member("response.clientDataJSON", 7))),
    "F-11": fails("response.clientDataJSON empty", sign_in(member("response.clientDataJSON", ""))),
    "F-12": fails("response.authenticatorData missing", sign_in(member("response.authenticatorData", ...))),
    "F-13": fails("response.authenticatorData not a string", sign_in(member("response.authenticatorData", 7))),
    "F-14": fails("response.authenticatorData not base64url", sign_in(not_base64url("authenticatorData"))),
    "F-15": fails("response.authenticatorData empty", sign_in(member("response.authenticatorData", ""))),
    "F-16": fails("response.signature missing", sign_in(member("response.signature", ...))),
    "F-17": fails("response.signature not a string", sign_in(member("response.signature", 7))),
    "F-18": fails("response.signature not base64url", sign_in(not_base64url("signature"))),
    "F-19": fails("response.signature empty", sign_in(member("response.signature", ""))),
    "F-20": fails("signature does not verify", sign_in(flip_signature)),
    "F-21": fails("response.userHandle not a string", sign_in(member("response.userHandle", 7))),
    "F-23": deviates(
        "userHandle empty after a requireResidentKey registration",
        _empty_user_handle_after_resident_key(),
        tool="failed",
        why=USER_HANDLE_WHY,
    ),
}


@pytest.mark.parametrize("case", RESP_1)
async def test_Server_ServerAuthenticatorAssertionResponse_Resp_1(
    tool_with_models: Tool, models: Models, case: str
) -> None:
    await check(
        RESP_1[case],
        CODES.get("Server-ServerAuthenticatorAssertionResponse-Resp-1", {}).get(case),
        tool_with_models,
        models,
    )


# -- Resp-2: CollectedClientData -----------------------------------------------------------------------------------

TOKEN_BINDING_WHY = (
    "WebAuthn Level 3 no longer verifies tokenBinding (the member is only reserved), and real browsers sent other "
    "shapes: Passgate refuses only a status other than present or supported."
)

RESP_2: dict[str, Case] = {
    "F-1": fails("type missing", sign_in(collected("type", ...))),
    "F-2": fails("type not a string", sign_in(collected("type", 5))),
    "F-3": fails("type empty", sign_in(collected("type", ""))),
    "F-4": fails('type not "webauthn.get"', sign_in(collected("type", "hobbit.get"))),
    "F-5": fails('type "webauthn.create"', sign_in(collected("type", "webauthn.create"))),
    "F-6": fails("challenge missing", sign_in(collected("challenge", ...))),
    "F-7": fails("challenge not a string", sign_in(collected("challenge", 12))),
    "F-8": fails("challenge empty", sign_in(collected("challenge", ""))),
    "F-9": fails("challenge not base64url", sign_in(collected("challenge", "a+b/c=="))),
    "F-10": fails("challenge not the one issued", sign_in(collected("challenge", b64url_encode(os.urandom(32))))),
    "F-11": fails("origin missing", sign_in(collected("origin", ...))),
    "F-12": fails("origin not a string", sign_in(collected("origin", 3))),
    "F-13": fails("origin empty", sign_in(collected("origin", ""))),
    "F-14": fails("origin not the site's", sign_in(collected("origin", "https://evil.example"))),
    "F-15": deviates(
        "tokenBinding not an object",
        sign_in(collected("tokenBinding", "present")),
        tool="failed",
        why=TOKEN_BINDING_WHY,
    ),
    "F-16": deviates(
        "tokenBinding without status", sign_in(collected("tokenBinding", {})), tool="failed", why=TOKEN_BINDING_WHY
    ),
    "F-17": fails(
        "tokenBinding.status not present or supported", sign_in(collected("tokenBinding", {"status": "hobbit"}))
    ),
}


@pytest.mark.parametrize("case", RESP_2)
async def test_Server_ServerAuthenticatorAssertionResponse_Resp_2(
    tool_with_models: Tool, models: Models, case: str
) -> None:
    await check(
        RESP_2[case],
        CODES.get("Server-ServerAuthenticatorAssertionResponse-Resp-2", {}).get(case),
        tool_with_models,
        models,
    )


# -- Resp-3: authenticatorData -------------------------------------------------------------------------------------

USER_PRESENCE_WHY = (
    "WebAuthn Level 3 (7.2, step 16) requires the UP flag in every assertion; the 2021 tool accepts an assertion "
    "with neither UP nor UV. Passgate refuses it (user_not_present), as python-fido2 and py_webauthn do."
)


def _counter_not_increased() -> Build:
    async def build(tool: Tool, models: Models) -> httpx.Response:
        held = SoftwareAuthenticator(attestation="packed", sign_count=5)
        username = await _registered(tool, held)
        held.sign_count = 4  # the assertion reports 5 again: what the registration reported
        return await tool.sign_in(held, username)

    return build


def _with_extension_data(credential: dict[str, Any], held: SoftwareAuthenticator) -> None:
    data = b64url_decode(credential["response"]["authenticatorData"])
    resign_assertion(credential, held.credentials[-1], with_extensions(data, {"example.extension": True}))


UP, UV = {"user_present": True}, {"user_verified": True}
NO_UP, NO_UV = {"user_present": False}, {"user_verified": False}

RESP_3: dict[str, Case] = {
    "P-1": passes(
        "an authenticator without a counter (always 0)",
        sign_in(authenticator=lambda: SoftwareAuthenticator(sign_count=None)),
    ),
    "P-2": passes('UV set, userVerification "required"', sign_in(flags=UV, userVerification="required")),
    "P-3": passes(
        'UV and UP set, userVerification "required"', sign_in(flags={**UP, **UV}, userVerification="required")
    ),
    "P-4": deviates(
        'neither UV nor UP, userVerification "preferred"',
        sign_in(flags={**NO_UP, **NO_UV}, userVerification="preferred"),
        tool="ok",
        why=USER_PRESENCE_WHY,
    ),
    "P-5": passes(
        'UP only, userVerification "discouraged"', sign_in(flags={**UP, **NO_UV}, userVerification="discouraged")
    ),
    "P-6": passes('UV set, userVerification "discouraged"', sign_in(flags=UV, userVerification="discouraged")),
    "P-7": deviates(
        'neither UV nor UP, userVerification "discouraged"',
        sign_in(flags={**NO_UP, **NO_UV}, userVerification="discouraged"),
        tool="ok",
        why=USER_PRESENCE_WHY,
    ),
    "P-8": passes("extension data, ED set", sign_in(_with_extension_data, extensions=EXTENSION)),
    "F-1": fails(
        "authenticatorData with leftover bytes", sign_in(auth_data(lambda d: d + os.urandom(2), resign=False))
    ),
    "F-2": fails(
        "rpIdHash not the rp id's", sign_in(auth_data(lambda d: hashlib.sha256(b"evil.example").digest() + d[32:]))
    ),
    "F-3": fails("signature over another client data hash", sign_in(signed_over_other_client_data)),
    "F-4": fails("counter not increased, for an authenticator that counts", _counter_not_increased()),
    "F-5": fails('UP only, userVerification "required"', sign_in(flags={**UP, **NO_UV}, userVerification="required")),
}


@pytest.mark.parametrize("case", RESP_3)
async def test_Server_ServerAuthenticatorAssertionResponse_Resp_3(
    tool_with_models: Tool, models: Models, case: str
) -> None:
    await check(
        RESP_3[case],
        CODES.get("Server-ServerAuthenticatorAssertionResponse-Resp-3", {}).get(case),
        tool_with_models,
        models,
    )


GROUPS: dict[str, dict[str, Case]] = {
    "Server-ServerPublicKeyCredentialGetOptionsResponse-Req-1": REQ_1,
    "Server-ServerAuthenticatorAssertionResponse-Resp-1": RESP_1,
    "Server-ServerAuthenticatorAssertionResponse-Resp-2": RESP_2,
    "Server-ServerAuthenticatorAssertionResponse-Resp-3": RESP_3,
}


# The error code each refused case answers with: refused for the reason the case is about.
CODES: dict[str, dict[str, str]] = {
    "Server-ServerAuthenticatorAssertionResponse-Resp-1": {
        "F-1": "malformed_response",
        "F-2": "malformed_response",
        "F-3": "malformed_response",
        "F-4": "malformed_response",
        "F-5": "malformed_response",
        "F-6": "malformed_response",
        "F-7": "malformed_response",
        "F-8": "malformed_response",
        "F-9": "malformed_response",
        "F-10": "malformed_response",
        "F-11": "malformed_response",
        "F-12": "malformed_response",
        "F-13": "malformed_response",
        "F-14": "malformed_response",
        "F-15": "malformed_response",
        "F-16": "malformed_response",
        "F-17": "malformed_response",
        "F-18": "malformed_response",
        "F-19": "bad_signature",
        "F-20": "bad_signature",
        "F-21": "malformed_response",
    },
    "Server-ServerAuthenticatorAssertionResponse-Resp-2": {
        "F-1": "malformed_response",
        "F-2": "malformed_response",
        "F-3": "type_mismatch",
        "F-4": "type_mismatch",
        "F-5": "type_mismatch",
        "F-6": "malformed_response",
        "F-7": "malformed_response",
        "F-8": "challenge_not_found",
        "F-9": "malformed_response",
        "F-10": "challenge_not_found",
        "F-11": "malformed_response",
        "F-12": "malformed_response",
        "F-13": "origin_mismatch",
        "F-14": "origin_mismatch",
        "F-17": "token_binding_invalid",
    },
    "Server-ServerAuthenticatorAssertionResponse-Resp-3": {
        "P-4": "user_not_present",
        "P-7": "user_not_present",
        "F-1": "malformed_response",
        "F-2": "rp_id_mismatch",
        "F-3": "bad_signature",
        "F-4": "sign_count_regression",
        "F-5": "user_not_verified",
    },
}

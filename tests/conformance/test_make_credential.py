"""MakeCredential: every case of the conformance tool's creation options and attestation response groups, sent
through /attestation/options and /attestation/result by a software authenticator and the attestation makers."""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.testing import SoftwareAuthenticator
from passgate.testing.android import android_key_attestation, safetynet_attestation
from passgate.testing.packed import packed_attestation
from passgate.testing.tpm import tpm_attestation
from passgate.testing.u2f import fido_u2f_attestation
from tests.conformance.cases import Build, Case, check, deviates, fails, passes
from tests.conformance.conftest import (
    ANDROID_KEY_AAGUID,
    PACKED_AAGUID,
    SAFETYNET_AAGUID,
    TPM_AAGUID,
    Models,
    Tool,
    attestation_object,
    client_data,
    ok,
    set_attestation_object,
    set_client_data,
    signed_data,
    with_extensions,
)

Edit = Callable[[dict[str, Any]], Any]
MakeAuthenticator = Callable[[], SoftwareAuthenticator]


def register(
    edit: Edit | None = None, authenticator: MakeAuthenticator = SoftwareAuthenticator, **options: Any
) -> Build:
    """A case: the tool's options call, the authenticator's answer changed by `edit`, the result call."""

    async def build(tool: Tool, models: Models) -> httpx.Response:
        del models
        return await tool.register(authenticator(), mutate=edit, **options)

    return build


def attested(make: Callable[[dict[str, Any], SoftwareAuthenticator, Models], Any], aaguid: bytes, **kw: Any) -> Build:
    """A case whose answer an attestation maker rewrites (with the authenticator and the models' root at hand)."""

    async def build(tool: Tool, models: Models) -> httpx.Response:
        authenticator = SoftwareAuthenticator(aaguid=aaguid, **kw)
        return await tool.register(authenticator, attestation="direct", mutate=lambda c: make(c, authenticator, models))

    return build


def member(path: str, value: Any) -> Edit:
    """Set (or, with ..., remove) a member of the credential JSON: "id", "response.clientDataJSON"."""

    def edit(credential: dict[str, Any]) -> None:
        *parents, name = path.split(".")
        target = credential
        for parent in parents:
            target = target[parent]
        if value is ...:
            target.pop(name, None)
        else:
            target[name] = value

    return edit


def collected(name: str, value: Any) -> Edit:
    """Set (or remove) a member of the client data."""

    def edit(credential: dict[str, Any]) -> None:
        data = client_data(credential)
        if value is ...:
            data.pop(name, None)
        else:
            data[name] = value
        set_client_data(credential, data)

    return edit


def attestation_member(name: str, value: Any) -> Edit:
    def edit(credential: dict[str, Any]) -> None:
        decoded = attestation_object(credential)
        if value is ...:
            decoded.pop(name, None)
        else:
            decoded[name] = value
        set_attestation_object(credential, decoded)

    return edit


def auth_data_edit(change: Callable[[bytes], bytes]) -> Edit:
    def edit(credential: dict[str, Any]) -> None:
        decoded = attestation_object(credential)
        decoded["authData"] = change(decoded["authData"])
        set_attestation_object(credential, decoded)

    return edit


def statement_member(name: str, value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(credential: dict[str, Any]) -> dict[str, Any]:
        decoded = attestation_object(credential)
        if value is ...:
            decoded["attStmt"].pop(name, None)
        else:
            decoded["attStmt"][name] = value
        set_attestation_object(credential, decoded)
        return credential

    return edit


def flip_signature(credential: dict[str, Any]) -> dict[str, Any]:
    decoded = attestation_object(credential)
    signature = bytearray(decoded["attStmt"]["sig"])
    signature[len(signature) // 2] ^= 0x01
    decoded["attStmt"]["sig"] = bytes(signature)
    set_attestation_object(credential, decoded)
    return credential


def as_format(fmt: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def edit(credential: dict[str, Any]) -> dict[str, Any]:
        decoded = attestation_object(credential)
        decoded["fmt"] = fmt
        set_attestation_object(credential, decoded)
        return credential

    return edit


def flags(auth_data: bytes, *, set_: int = 0, clear: int = 0) -> bytes:
    return auth_data[:32] + bytes([(auth_data[32] | set_) & ~clear & 0xFF]) + auth_data[33:]


def packed_full(**options: Any) -> Callable[[dict[str, Any], SoftwareAuthenticator, Models], dict[str, Any]]:
    return lambda c, _a, m: packed_attestation(c, root=m.root, **options).response


def then(
    first: Callable[[dict[str, Any], SoftwareAuthenticator, Models], dict[str, Any]],
    second: Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[dict[str, Any], SoftwareAuthenticator, Models], dict[str, Any]]:
    return lambda c, a, m: second(first(c, a, m))


def self_attested_with_extensions(credential: dict[str, Any], authenticator: SoftwareAuthenticator) -> None:
    """Packed self attestation over authenticator data that carries extension data (ED set), signed anew."""
    decoded = attestation_object(credential)
    decoded["authData"] = with_extensions(decoded["authData"], {"example.extension": True})
    key = authenticator.credentials[-1]
    decoded["attStmt"]["sig"] = key.sign(signed_data(credential, decoded["authData"]))
    set_attestation_object(credential, decoded)


# -- Server-ServerPublicKeyCredentialCreationOptions-Req-1 --------------------------------------------------------

EXTENSION = {"example.extension": "In a hole in the ground there lived a hobbit"}


async def _creation_options_shape(tool: Tool, models: Models) -> httpx.Response:
    response = await tool.post(
        "/attestation/options",
        {"username": "req1", "displayName": "Req One", "attestation": "direct", "extensions": EXTENSION},
    )
    options = response.json()
    assert options["user"]["name"] == "req1" and options["user"]["displayName"] == "Req One"
    assert 0 < len(b64url_decode(options["user"]["id"])) <= 64
    assert options["rp"]["name"] and options["rp"]["id"] == "localhost"
    assert len(b64url_decode(options["challenge"])) >= 16
    assert options["pubKeyCredParams"] and all(p["type"] == "public-key" for p in options["pubKeyCredParams"])
    assert options["timeout"] > 0
    assert options["extensions"]["example.extension"] == EXTENSION["example.extension"]
    assert options["attestation"] == "direct"
    return response


async def _attestation_none(tool: Tool, models: Models) -> httpx.Response:
    response = await tool.post("/attestation/options", {"username": "req2", "displayName": "x", "attestation": "none"})
    assert response.json()["attestation"] == "none"
    return response


async def _fresh_challenges(tool: Tool, models: Models) -> httpx.Response:
    first = await tool.post("/attestation/options", {"username": "req3", "displayName": "x"})
    second = await tool.post("/attestation/options", {"username": "req3", "displayName": "x"})
    assert first.json()["challenge"] != second.json()["challenge"]
    return second


CREATION_OPTIONS: dict[str, Case] = {
    "P-1": passes(
        "options: status, user, rp, challenge, pubKeyCredParams, timeout, extensions", _creation_options_shape
    ),
    "P-2": passes('attestation "none" asked, "none" in the options', _attestation_none),
    "P-3": passes("two options calls, two different challenges", _fresh_challenges),
}


@pytest.mark.parametrize("case", CREATION_OPTIONS)
async def test_Server_ServerPublicKeyCredentialCreationOptions_Req_1(
    tool_with_models: Tool, models: Models, case: str
) -> None:
    await check(
        CREATION_OPTIONS[case],
        CODES.get("Server-ServerPublicKeyCredentialCreationOptions-Req-1", {}).get(case),
        tool_with_models,
        models,
    )


# -- Server-ServerAuthenticatorAttestationResponse-Resp-1: the credential's structure -------------------------------


async def _excluded_on_second_options(tool: Tool, models: Models) -> httpx.Response:
    authenticator = SoftwareAuthenticator()
    first = await tool.register(authenticator, username="resp1-p1")
    assert ok(first), first.text
    options = await tool.attestation_options("resp1-p1")
    assert [b64url_decode(d["id"]) for d in options["excludeCredentials"]] == [
        authenticator.credentials[0].credential_id
    ]
    return first


def _not_base64url(field: str) -> Edit:
    def edit(credential: dict[str, Any]) -> None:
        target = credential if field == "id" else credential["response"]
        import base64

        target[field] = base64.b64encode(b64url_decode(target[field])).decode() + "=="

    return edit


RESP_1: dict[str, Case] = {
    "P-1": passes(
        "a second options call for the user lists the credential in excludeCredentials", _excluded_on_second_options
    ),
    "F-1": fails("id missing", register(member("id", ...))),
    "F-2": fails("id not a string", register(member("id", 42))),
    "F-3": fails("id not base64url", register(_not_base64url("id"))),
    "F-4": fails("type missing", register(member("type", ...))),
    "F-5": fails("type not a string", register(member("type", 1))),
    "F-6": fails('type not "public-key"', register(member("type", "avocado-toast"))),
    "F-7": fails("response missing", register(member("response", ...))),
    "F-8": fails("response not an object", register(member("response", "text"))),
    "F-9": fails("response.clientDataJSON missing", register(member("response.clientDataJSON", ...))),
    "F-10": fails("response.clientDataJSON not a string", register(member("response.clientDataJSON", 7))),
    "F-11": fails("response.clientDataJSON empty", register(member("response.clientDataJSON", ""))),
    "F-12": fails("response.attestationObject missing", register(member("response.attestationObject", ...))),
    "F-13": fails("response.attestationObject not a string", register(member("response.attestationObject", 7))),
    "F-14": fails("response.attestationObject empty", register(member("response.attestationObject", ""))),
}


@pytest.mark.parametrize("case", RESP_1)
async def test_Server_ServerAuthenticatorAttestationResponse_Resp_1(
    tool_with_models: Tool, models: Models, case: str
) -> None:
    await check(
        RESP_1[case],
        CODES.get("Server-ServerAuthenticatorAttestationResponse-Resp-1", {}).get(case),
        tool_with_models,
        models,
    )


# -- Resp-2: CollectedClientData ----------------------------------------------------------------------------------

TOKEN_BINDING_WHY = (
    "WebAuthn Level 3 no longer verifies tokenBinding (the member is only reserved), and real browsers sent other "
    'shapes (Firefox\'s "unused" string, tests/vectors/pyw_reg_fido_u2f_yubikey_tokenbinding_unused.json): Passgate '
    "refuses only a status other than present or supported."
)

RESP_2: dict[str, Case] = {
    "F-1": fails("type missing", register(collected("type", ...))),
    "F-2": fails("type not a string", register(collected("type", 5))),
    "F-3": fails("type empty", register(collected("type", ""))),
    "F-4": fails('type not "webauthn.create"', register(collected("type", "hobbit.create"))),
    "F-5": fails('type "webauthn.get"', register(collected("type", "webauthn.get"))),
    "F-6": fails("challenge missing", register(collected("challenge", ...))),
    "F-7": fails("challenge not a string", register(collected("challenge", 12))),
    "F-8": fails("challenge empty", register(collected("challenge", ""))),
    "F-9": fails("challenge not base64url", register(collected("challenge", "a+b/c=="))),
    "F-10": fails("challenge not the one issued", register(collected("challenge", b64url_encode(os.urandom(32))))),
    "F-11": fails("origin missing", register(collected("origin", ...))),
    "F-12": fails("origin not a string", register(collected("origin", 3))),
    "F-13": fails("origin empty", register(collected("origin", ""))),
    "F-14": fails("origin not the site's", register(collected("origin", "https://evil.example"))),
    "F-15": deviates(
        "tokenBinding not an object",
        register(collected("tokenBinding", "present")),
        tool="failed",
        why=TOKEN_BINDING_WHY,
    ),
    "F-16": deviates(
        "tokenBinding without status", register(collected("tokenBinding", {})), tool="failed", why=TOKEN_BINDING_WHY
    ),
    "F-17": fails(
        "tokenBinding.status not present or supported", register(collected("tokenBinding", {"status": "hobbit"}))
    ),
}


@pytest.mark.parametrize("case", RESP_2)
async def test_Server_ServerAuthenticatorAttestationResponse_Resp_2(
    tool_with_models: Tool, models: Models, case: str
) -> None:
    await check(
        RESP_2[case],
        CODES.get("Server-ServerAuthenticatorAttestationResponse-Resp-2", {}).get(case),
        tool_with_models,
        models,
    )


# -- Resp-3: the attestation object --------------------------------------------------------------------------------


def _packed_with_extensions() -> Build:
    async def build(tool: Tool, models: Models) -> httpx.Response:
        authenticator = SoftwareAuthenticator(attestation="packed")
        return await tool.register(
            authenticator, attestation="direct", mutate=lambda c: self_attested_with_extensions(c, authenticator)
        )

    return build


def _packed(edit: Callable[[dict[str, Any]], dict[str, Any]]) -> Build:
    return attested(then(packed_full(), edit), PACKED_AAGUID)


RESP_3: dict[str, Case] = {
    "P-1": passes("packed, with extension data and ED set", _packed_with_extensions()),
    "F-1": fails(
        "attestationObject not CBOR", register(member("response.attestationObject", b64url_encode(b"\xff\x00not cbor")))
    ),
    "F-2": fails("fmt missing", register(attestation_member("fmt", ...))),
    "F-3": fails("fmt not a string", register(attestation_member("fmt", 42))),
    "F-4": fails("attStmt missing", register(attestation_member("attStmt", ...))),
    "F-5": fails("attStmt not a map", register(attestation_member("attStmt", "statement"))),
    "F-6": fails("authData missing", register(attestation_member("authData", ...))),
    "F-7": fails("authData not bytes", register(attestation_member("authData", "authenticator data"))),
    "F-8": fails("authData empty", register(attestation_member("authData", b""))),
    "F-9": fails(
        "AT clear, attested credential data present", register(auth_data_edit(lambda d: flags(d, clear=0x40)))
    ),
    "F-10": fails(
        "AT clear, no attested credential data", register(auth_data_edit(lambda d: flags(d[:37], clear=0x40)))
    ),
    "F-11": fails("AT set, no attested credential data", register(auth_data_edit(lambda d: d[:37]))),
    "F-12": fails("authData with leftover bytes", register(auth_data_edit(lambda d: d + b"\x00\x01"))),
    "F-13": fails(
        "packed attStmt empty",
        register(attestation_member("attStmt", {}), lambda: SoftwareAuthenticator(attestation="packed")),
    ),
    "F-14": fails("packed alg missing", _packed(statement_member("alg", ...))),
    "F-15": fails("packed alg not a number", _packed(statement_member("alg", "ES256"))),
    "F-16": fails(
        "packed alg not the attestation key's (the metadata's ES256)", _packed(statement_member("alg", -257))
    ),
    "F-17": fails("packed sig missing", _packed(statement_member("sig", ...))),
    "F-18": fails("packed sig not bytes", _packed(statement_member("sig", "signature"))),
    "F-19": fails("packed sig empty", _packed(statement_member("sig", b""))),
}


@pytest.mark.parametrize("case", RESP_3)
async def test_Server_ServerAuthenticatorAttestationResponse_Resp_3(
    tool_with_models: Tool, models: Models, case: str
) -> None:
    await check(
        RESP_3[case],
        CODES.get("Server-ServerAuthenticatorAttestationResponse-Resp-3", {}).get(case),
        tool_with_models,
        models,
    )


# -- Resp-4: algorithms, SELF packed --------------------------------------------------------------------------------


def _self_packed(algorithm: int) -> Build:
    return register(
        authenticator=lambda: SoftwareAuthenticator(algorithm=algorithm, attestation="packed"), attestation="direct"
    )


RESP_4: dict[str, Case] = {
    "P-1": passes("ES256K (secp256k1), optional", _self_packed(-47)),
    "P-2": passes("PS256, optional", _self_packed(-37)),
    "P-3": passes("PS384, optional", _self_packed(-38)),
    "P-4": passes("PS512, optional", _self_packed(-39)),
    "P-5": passes("RS256", _self_packed(-257)),
    "P-6": passes("RS384, optional", _self_packed(-258)),
    "P-7": passes("RS512, optional", _self_packed(-259)),
    "P-8": passes("RS1 (policy lists -65535)", _self_packed(-65535)),
    "P-9": passes("ES256", _self_packed(-7)),
    "P-10": passes("ES384, optional", _self_packed(-35)),
    "P-11": passes("ES512, optional", _self_packed(-36)),
    "P-12": passes("Ed25519 (EdDSA), optional", _self_packed(-8)),
}


@pytest.mark.parametrize("case", RESP_4)
async def test_Server_ServerAuthenticatorAttestationResponse_Resp_4(
    tool_with_models: Tool, models: Models, case: str
) -> None:
    await check(
        RESP_4[case],
        CODES.get("Server-ServerAuthenticatorAttestationResponse-Resp-4", {}).get(case),
        tool_with_models,
        models,
    )


# -- Resp-5: packed FULL attestation ---------------------------------------------------------------------------------


def _full(**options: Any) -> Build:
    return attested(packed_full(**options), PACKED_AAGUID)


def _full_then(edit: Callable[[dict[str, Any]], dict[str, Any]], **options: Any) -> Build:
    return attested(then(packed_full(**options), edit), PACKED_AAGUID)


def _signed_by_credential_key() -> Build:
    return attested(
        lambda c, a, m: packed_attestation(c, root=m.root, signing_key=a.credentials[-1].private_key).response,  # type: ignore[arg-type]
        PACKED_AAGUID,
    )


def _unknown_root() -> Build:
    return attested(lambda c, _a, _m: packed_attestation(c).response, PACKED_AAGUID)


def _other_signer() -> Build:
    import cryptography.hazmat.primitives.asymmetric.ec as ec

    return _full(signing_key=ec.generate_private_key(ec.SECP256R1()))


RESP_5: dict[str, Case] = {
    "P-1": passes("valid FULL packed attestation", _full()),
    "P-2": passes("x5c chains through an intermediate to the metadata's root", _full(intermediate=True)),
    "F-1": fails("unknown fmt", _full_then(as_format("hobbit-fmt"))),
    "F-2": fails("sig does not verify", _full_then(flip_signature)),
    "F-3": fails("x5c missing", _full_then(statement_member("x5c", ...))),
    "F-4": fails("x5c not an array", _full_then(statement_member("x5c", b"certificate"))),
    "F-5": fails("x5c empty", _full_then(statement_member("x5c", []))),
    "F-6": fails("attestation certificate expired", _full(validity="expired")),
    "F-7": fails("attestation certificate not yet valid", _full(validity="not-yet-valid")),
    "F-8": fails("alg (ES512) is not the attestation certificate's (the metadata's ES256)", _full(alg=-36)),
    "F-9": fails("x5c does not chain to the metadata's root", _unknown_root()),
    "F-10": fails("x5c includes the root", _full(intermediate=True, chain="with-root")),
    "F-11": fails("x5c out of order", _full(intermediate=True, chain="reversed")),
    "F-12": fails("expired intermediate", _full(expired_intermediate=True)),
    "F-13": fails("sig made by another key than the attestation certificate's", _other_signer()),
    "F-14": fails("sig made by the credential key instead of the attestation key", _signed_by_credential_key()),
}


@pytest.mark.parametrize("case", RESP_5)
async def test_Server_ServerAuthenticatorAttestationResponse_Resp_5(
    tool_with_models: Tool, models: Models, case: str
) -> None:
    await check(
        RESP_5[case],
        CODES.get("Server-ServerAuthenticatorAttestationResponse-Resp-5", {}).get(case),
        tool_with_models,
        models,
    )


# -- Resp-6: packed SELF (surrogate) --------------------------------------------------------------------------------


def _self(edit: Edit | None = None) -> Build:
    return register(edit, lambda: SoftwareAuthenticator(attestation="packed"), attestation="direct")


def _self_signature_with_x5c() -> Build:
    """Full attestation's x5c, but the credential key signed: the statement claims a certificate it is not from."""

    def make(credential: dict[str, Any], authenticator: SoftwareAuthenticator, models: Models) -> dict[str, Any]:
        full = packed_attestation(credential, root=models.root).response
        decoded = attestation_object(full)
        decoded["attStmt"]["sig"] = authenticator.credentials[-1].sign(signed_data(full, decoded["authData"]))
        set_attestation_object(full, decoded)
        return full

    return attested(make, PACKED_AAGUID)


RESP_6: dict[str, Case] = {
    "P-1": passes("valid SELF packed attestation", _self()),
    "F-1": fails("sig does not verify", _self(flip_signature)),
    "F-2": fails("a self signature presented as FULL attestation (with x5c)", _self_signature_with_x5c()),
    "F-3": fails("unknown fmt", _self(as_format("hobbit-fmt"))),
}


@pytest.mark.parametrize("case", RESP_6)
async def test_Server_ServerAuthenticatorAttestationResponse_Resp_6(
    tool_with_models: Tool, models: Models, case: str
) -> None:
    await check(
        RESP_6[case],
        CODES.get("Server-ServerAuthenticatorAttestationResponse-Resp-6", {}).get(case),
        tool_with_models,
        models,
    )


# -- Resp-7: "none" ------------------------------------------------------------------------------------------------

RESP_7: dict[str, Case] = {
    "P-1": passes('valid "none" attestation', register()),
    "P-2": passes('valid "none" attestation, though "direct" was asked for', register(attestation="direct")),
    "F-1": fails('FULL packed statement sent as fmt "none"', _full_then(as_format("none"))),
}


@pytest.mark.parametrize("case", RESP_7)
async def test_Server_ServerAuthenticatorAttestationResponse_Resp_7(
    tool_with_models: Tool, models: Models, case: str
) -> None:
    await check(
        RESP_7[case],
        CODES.get("Server-ServerAuthenticatorAttestationResponse-Resp-7", {}).get(case),
        tool_with_models,
        models,
    )


# -- Resp-8: "fido-u2f" --------------------------------------------------------------------------------------------


def _u2f(aaguid: bytes = bytes(16), edit: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> Build:
    def make(credential: dict[str, Any], _a: SoftwareAuthenticator, models: Models) -> dict[str, Any]:
        made = fido_u2f_attestation(credential, root=models.root).response
        return edit(made) if edit else made

    return attested(make, aaguid)


RESP_8: dict[str, Case] = {
    "P-1": passes('valid "fido-u2f" attestation', _u2f()),
    "F-1": fails("AAGUID not zero", _u2f(PACKED_AAGUID)),
    "F-2": fails("sig does not verify", _u2f(edit=flip_signature)),
}


@pytest.mark.parametrize("case", RESP_8)
async def test_Server_ServerAuthenticatorAttestationResponse_Resp_8(
    tool_with_models: Tool, models: Models, case: str
) -> None:
    await check(
        RESP_8[case],
        CODES.get("Server-ServerAuthenticatorAttestationResponse-Resp-8", {}).get(case),
        tool_with_models,
        models,
    )


# -- Resp-9: "tpm" (the tools' TPM manufacturer FFFFF1D0) ------------------------------------------------------------


def _tpm(**options: Any) -> Build:
    return attested(
        lambda c, _a, m: tpm_attestation(c, root=m.root, manufacturer="id:FFFFF1D0", **options).response, TPM_AAGUID
    )


RESP_9: dict[str, Case] = {
    "P-1": passes("valid TPM attestation, SHA-256", _tpm()),
    "P-2": passes("valid TPM attestation, SHA-1 (an RS1 AIK)", _tpm(sha1=True)),
    "P-3": passes("certInfo's name names SHA-1 while pubArea.nameAlg is SHA-256", _tpm(attested_name_alg="sha1")),
    "F-1": fails("x5c in the wrong order", _tpm(intermediate=True, reversed_chain=True)),
    "F-2": fails("certInfo.extraData not the hash of attToBeSigned", _tpm(wrong_extra_data=True)),
    "F-3": fails("certInfo.magic not TPM_GENERATED_VALUE", _tpm(magic=0xDEADBEEF)),
    "F-4": fails("pubArea.unique not the credential key", _tpm(wrong_unique=True)),
}


@pytest.mark.parametrize("case", RESP_9)
async def test_Server_ServerAuthenticatorAttestationResponse_Resp_9(
    tool_with_models: Tool, models: Models, case: str
) -> None:
    await check(
        RESP_9[case],
        CODES.get("Server-ServerAuthenticatorAttestationResponse-Resp-9", {}).get(case),
        tool_with_models,
        models,
    )


# -- Resp-A: "android-key" -----------------------------------------------------------------------------------------


def _android_key(**options: Any) -> Build:
    return attested(
        lambda c, a, m: android_key_attestation(c, a.credentials[-1], root=m.root, **options).response,
        ANDROID_KEY_AAGUID,
    )


RESP_A: dict[str, Case] = {
    "P-1": passes('valid "android-key" attestation', _android_key()),
    "F-1": fails("the certificate's attestationChallenge not the client data hash", _android_key(challenge=bytes(32))),
    "F-2": fails("the certificate's key not the credential key", _android_key(wrong_public_key=True)),
    "F-3": fails("x5c in the wrong order", _android_key(reversed_chain=True)),
}


@pytest.mark.parametrize("case", RESP_A)
async def test_Server_ServerAuthenticatorAttestationResponse_Resp_A(
    tool_with_models: Tool, models: Models, case: str
) -> None:
    await check(
        RESP_A[case],
        CODES.get("Server-ServerAuthenticatorAttestationResponse-Resp-A", {}).get(case),
        tool_with_models,
        models,
    )


# -- Resp-B: "android-safetynet" -----------------------------------------------------------------------------------


def _safetynet(**options: Any) -> Build:
    return attested(lambda c, _a, m: safetynet_attestation(c, root=m.root, **options).response, SAFETYNET_AAGUID)


def _at(seconds: int) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)


RESP_B: dict[str, Case] = {
    "P-1": passes('valid "android-safetynet" attestation', _safetynet()),
    "F-1": fails("ver empty", _safetynet(ver="")),
    "F-2": fails("response empty", _safetynet(empty_response=True)),
    "F-3": fails("nonce not the hash of attToBeSigned", _safetynet(nonce="bm90IHRoZSBub25jZQ==")),
    "F-4": fails("the JWS header's x5c empty", _safetynet(x5c=False)),
    "F-5": fails("ctsProfileMatch false", _safetynet(cts_profile_match=False)),
    "F-6": fails("timestampMs in the future", _safetynet(timestamp=_at(120))),
    "F-7": fails("timestampMs older than a minute", _safetynet(timestamp=_at(-120))),
}


@pytest.mark.parametrize("case", RESP_B)
async def test_Server_ServerAuthenticatorAttestationResponse_Resp_B(
    tool_with_models: Tool, models: Models, case: str
) -> None:
    await check(
        RESP_B[case],
        CODES.get("Server-ServerAuthenticatorAttestationResponse-Resp-B", {}).get(case),
        tool_with_models,
        models,
    )


GROUPS: dict[str, dict[str, Case]] = {
    "Server-ServerPublicKeyCredentialCreationOptions-Req-1": CREATION_OPTIONS,
    "Server-ServerAuthenticatorAttestationResponse-Resp-1": RESP_1,
    "Server-ServerAuthenticatorAttestationResponse-Resp-2": RESP_2,
    "Server-ServerAuthenticatorAttestationResponse-Resp-3": RESP_3,
    "Server-ServerAuthenticatorAttestationResponse-Resp-4": RESP_4,
    "Server-ServerAuthenticatorAttestationResponse-Resp-5": RESP_5,
    "Server-ServerAuthenticatorAttestationResponse-Resp-6": RESP_6,
    "Server-ServerAuthenticatorAttestationResponse-Resp-7": RESP_7,
    "Server-ServerAuthenticatorAttestationResponse-Resp-8": RESP_8,
    "Server-ServerAuthenticatorAttestationResponse-Resp-9": RESP_9,
    "Server-ServerAuthenticatorAttestationResponse-Resp-A": RESP_A,
    "Server-ServerAuthenticatorAttestationResponse-Resp-B": RESP_B,
}


# The error code each refused case answers with: refused for the reason the case is about.
CODES: dict[str, dict[str, str]] = {
    "Server-ServerAuthenticatorAttestationResponse-Resp-1": {
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
    },
    "Server-ServerAuthenticatorAttestationResponse-Resp-2": {
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
    "Server-ServerAuthenticatorAttestationResponse-Resp-3": {
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
        "F-13": "attestation_invalid",
        "F-14": "attestation_invalid",
        "F-15": "attestation_invalid",
        "F-16": "unsupported_algorithm",
        "F-17": "attestation_invalid",
        "F-18": "attestation_invalid",
        "F-19": "attestation_invalid",
    },
    "Server-ServerAuthenticatorAttestationResponse-Resp-5": {
        "F-1": "unsupported_attestation_format",
        "F-2": "attestation_invalid",
        "F-3": "attestation_invalid",
        "F-4": "attestation_invalid",
        "F-5": "attestation_invalid",
        "F-6": "attestation_untrusted",
        "F-7": "attestation_untrusted",
        "F-8": "attestation_invalid",
        "F-9": "attestation_untrusted",
        "F-10": "attestation_invalid",
        "F-11": "attestation_invalid",
        "F-12": "attestation_untrusted",
        "F-13": "attestation_invalid",
        "F-14": "attestation_invalid",
    },
    "Server-ServerAuthenticatorAttestationResponse-Resp-6": {
        "F-1": "attestation_invalid",
        "F-2": "attestation_invalid",
        "F-3": "unsupported_attestation_format",
    },
    "Server-ServerAuthenticatorAttestationResponse-Resp-7": {
        "F-1": "attestation_invalid",
    },
    "Server-ServerAuthenticatorAttestationResponse-Resp-8": {
        "F-1": "attestation_invalid",
        "F-2": "attestation_invalid",
    },
    "Server-ServerAuthenticatorAttestationResponse-Resp-9": {
        "F-1": "attestation_invalid",
        "F-2": "attestation_invalid",
        "F-3": "attestation_invalid",
        "F-4": "attestation_invalid",
    },
    "Server-ServerAuthenticatorAttestationResponse-Resp-A": {
        "F-1": "attestation_invalid",
        "F-2": "attestation_invalid",
        "F-3": "attestation_untrusted",
    },
    "Server-ServerAuthenticatorAttestationResponse-Resp-B": {
        "F-1": "attestation_invalid",
        "F-2": "attestation_invalid",
        "F-3": "attestation_invalid",
        "F-4": "attestation_invalid",
        "F-5": "attestation_invalid",
        "F-6": "attestation_invalid",
        "F-7": "attestation_invalid",
    },
}

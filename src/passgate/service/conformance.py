"""The FIDO2 conformance-test profile: the ceremonies as the FIDO conformance tools drive them.

The tools speak the "FIDO2: Server Requirements and Transport Binding Profile" API (web/conformance.py serves it
when `conformance = true`). Its requests choose, per ceremony, what a relying party's policy fixes for every
ceremony here: the attestation conveyance, the authenticator selection and the user verification requirement.
So each ceremony runs the ordinary registration and authentication services under the configured policy with the
request's choices applied, and the choices travel to the result call in the tool's cookies (`CeremonyState`). A
client gains nothing by editing them: it chose them itself at the options call.

Also here: the test-only metadata statements folder (`mds_statements_dir`), read as FIDO metadata entries.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.core.errors import InvalidRequest, MalformedResponse
from passgate.core.identifiers import normalize_identifier
from passgate.core.mds import MetadataBlob, MetadataEntry, MetadataError, statement_entry
from passgate.core.policy import Policy
from passgate.service import authentication, registration
from passgate.service.context import Client, Context
from passgate.service.sessions import SignedIn

log = logging.getLogger("passgate")

_USER_VERIFICATION = ("required", "preferred", "discouraged")
_ATTESTATION = ("none", "indirect", "direct", "enterprise")
_RESIDENT_KEY = ("required", "preferred", "discouraged")
_ATTACHMENT = ("platform", "cross-platform")


@dataclass(frozen=True, kw_only=True)
class CeremonyState:
    """What an options request chose, kept (in a cookie) for the result call; None keeps the policy's."""

    user_verification: str | None = None
    attestation: str | None = None
    resident_key: str | None = None
    attachment: str | None = None

    def encode(self) -> str:
        fields = {
            "uv": self.user_verification,
            "att": self.attestation,
            "rk": self.resident_key,
            "aa": self.attachment,
        }
        return b64url_encode(json.dumps({k: v for k, v in fields.items() if v is not None}).encode())

    @classmethod
    def decode(cls, text: str | None) -> CeremonyState:
        """The state a cookie holds; an absent or unreadable one is the policy's own (no choices)."""
        if not text:
            return cls()
        try:
            fields = json.loads(b64url_decode(text, field="state"))
        except (MalformedResponse, ValueError):
            return cls()
        if not isinstance(fields, dict):
            return cls()
        return cls(
            user_verification=_choice(fields.get("uv"), _USER_VERIFICATION),
            attestation=_choice(fields.get("att"), _ATTESTATION),
            resident_key=_choice(fields.get("rk"), _RESIDENT_KEY),
            attachment=_choice(fields.get("aa"), _ATTACHMENT),
        )

    def policy(self, base: Policy) -> Policy:
        """`base` with these choices applied."""
        changes: dict[str, Any] = {}
        if self.user_verification is not None:
            changes["user_verification"] = self.user_verification
        if self.attestation is not None:
            changes["attestation"] = self.attestation
        if self.resident_key is not None:
            changes["resident_key"] = self.resident_key
        if self.attachment is not None:
            changes["authenticator_attachment"] = self.attachment
        return replace(base, **changes)


def _choice(value: object, allowed: tuple[str, ...]) -> str | None:
    return value if isinstance(value, str) and value in allowed else None


def _under(ctx: Context, state: CeremonyState) -> Context:
    return replace(ctx, rp=replace(ctx.rp, policy=state.policy(ctx.rp.policy)))


def _member(body: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    """Raises InvalidRequest for a value that is not one of `allowed`."""
    value = body.get(name)
    if value is None:
        return None
    if value not in allowed:
        raise InvalidRequest(f"{name} must be one of {', '.join(allowed)}.")
    return str(value)


def _object(body: Any, name: str) -> Mapping[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidRequest(f"{name} must be an object.")
    return body


def _required_string(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{name} is required.")
    return value


def _with_extensions(options: dict[str, Any], extensions: Mapping[str, Any]) -> dict[str, Any]:
    # The tools send extensions of their own (example.extension) and expect them back in the options.
    if extensions:
        options["extensions"] = {**options.get("extensions", {}), **extensions}
    return options


async def attestation_options(
    ctx: Context, client: Client, body: Any, *, signed_in: SignedIn | None
) -> tuple[dict[str, Any], str, CeremonyState]:
    """ServerPublicKeyCredentialCreationOptionsResponse (without the envelope) for a
    ServerPublicKeyCredentialCreationOptionsRequest: a new account, or, signed in as that username (a registration
    moments ago opened the session), another passkey for it, with the account's passkeys in excludeCredentials.

    Returns the options, the browser token of the ceremony and the state the result call needs.

    Raises:
        InvalidRequest: username or displayName missing, a member of the wrong kind.
        UsernameTaken: the username has an account, and this client is not signed in to it.
        PasskeyError: as registration.begin.
    """
    fields = _object(body, "The request")
    username = _required_string(fields, "username")
    display_name = _required_string(fields, "displayName")
    selection = _object(fields.get("authenticatorSelection"), "authenticatorSelection")
    extensions = _object(fields.get("extensions"), "extensions")
    resident_key = _member(selection, "residentKey", _RESIDENT_KEY)
    if resident_key is None and isinstance(selection.get("requireResidentKey"), bool):
        resident_key = "required" if selection["requireResidentKey"] else "discouraged"
    state = CeremonyState(
        user_verification=_member(selection, "userVerification", _USER_VERIFICATION),
        attestation=_member(fields, "attestation", _ATTESTATION),
        resident_key=resident_key,
        attachment=_member(selection, "authenticatorAttachment", _ATTACHMENT),
    )
    ceremony_ctx = _under(ctx, state)
    own = signed_in is not None and normalize_identifier(signed_in.user.username) == normalize_identifier(username)
    if signed_in is not None and own:
        options, browser = await registration.begin(ceremony_ctx, client, signed_in=signed_in, exclude_credentials=True)
    else:
        options, browser = await registration.begin(
            ceremony_ctx, client, signed_in=None, username=username, display_name=display_name
        )
    return _with_extensions(options, extensions), browser, state


_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_ENCODED_MEMBERS = ("clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle")


def credential_json(body: Any) -> Any:
    """The tools' ServerPublicKeyCredential as the ceremonies read a credential: `getClientExtensionResults` is
    its name for `clientExtensionResults` (and `rawId`, which it leaves out, defaults to `id` already).

    The transport binding's binary members are base64url, strictly: the JSON API also reads padding and the
    standard alphabet (some clients send them), the conformance tools check that a server refuses them.

    Raises:
        MalformedResponse: `id` or a binary member of `response` is a string that is not strict base64url.
    """
    if not isinstance(body, dict):
        return body
    if "getClientExtensionResults" in body and "clientExtensionResults" not in body:
        body = {**body, "clientExtensionResults": body["getClientExtensionResults"]}
    response = body.get("response")
    members = [("id", body.get("id"))]
    if isinstance(response, dict):
        members += [(name, response.get(name)) for name in _ENCODED_MEMBERS]
    for name, value in members:
        if isinstance(value, str) and not _BASE64URL.fullmatch(value):
            raise MalformedResponse(f"{name} is not base64url.")
    return body


async def attestation_result(
    ctx: Context, client: Client, body: Any, *, signed_in: SignedIn | None, state: CeremonyState
) -> tuple[registration.Registered, str | None]:
    """Verify and store the new passkey under the options call's choices; a new account is signed in.

    Returns what was registered and, for a new account, the token of its session.

    Raises:
        PasskeyError: every refusal, as registration.complete.
    """
    result = await registration.complete(_under(ctx, state), client, credential_json(body), signed_in=signed_in)
    return result, result.session_token


async def assertion_options(ctx: Context, client: Client, body: Any) -> tuple[dict[str, Any], str, CeremonyState]:
    """ServerPublicKeyCredentialGetOptionsResponse (without the envelope): the username's passkeys in
    allowCredentials, the request's userVerification.

    Raises:
        InvalidRequest: username missing, userVerification not one of required, preferred, discouraged.
        PasskeyError: as authentication.begin.
    """
    fields = _object(body, "The request")
    username = _required_string(fields, "username")
    extensions = _object(fields.get("extensions"), "extensions")
    state = CeremonyState(user_verification=_member(fields, "userVerification", _USER_VERIFICATION))
    options, browser = await authentication.begin(_under(ctx, state), client, username=username)
    return _with_extensions(options, extensions), browser, state


async def assertion_result(
    ctx: Context, client: Client, body: Any, *, state: CeremonyState
) -> authentication.SignedInWith:
    """Verify the assertion under the options call's userVerification, and start a session.

    Raises:
        PasskeyError: every refusal, as authentication.complete.
    """
    return await authentication.complete(_under(ctx, state), client, credential_json(body))


def load_statements(ctx: Context, folder: Path) -> int:
    """Read the metadata statements of `folder` (one JSON file each, as the conformance tools hand them out) into
    the context's metadata, beside a BLOB's entries (a statement wins over the BLOB's entry for its AAGUID).

    Test-only: the statements are trusted as they are, with no signature over them. A file that is not a
    statement is skipped with a warning. Returns how many were loaded.
    """
    entries: dict[str, MetadataEntry] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            entry = statement_entry(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, MetadataError) as exc:
            log.warning("skipping metadata statement %s: %s", path.name, exc)
            continue
        if entry is not None and entry.aaguid is not None:
            entries[entry.aaguid] = entry
    current = ctx.metadata.current
    merged = {**(current.entries if current else {}), **entries}
    if current is None:
        ctx.metadata.current = MetadataBlob(number=0, next_update=date.max, entries=MappingProxyType(merged))
    else:
        ctx.metadata.current = replace(current, entries=MappingProxyType(merged))
    return len(entries)

"""Sign up (a new account with its first passkey) and adding a passkey to an account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from passgate.core.data import RegistrationResponse
from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.core.errors import AlreadySignedIn, ChallengeMismatch, Forbidden, NotSignedIn, UsernameTaken
from passgate.core.identifiers import normalize_identifier
from passgate.core.options import CredentialDescriptor, creation_options
from passgate.core.registration import RegisteredCredential, verify_registration
from passgate.service import challenges, notify, ratelimit
from passgate.service.accounts import clean_name, clean_username
from passgate.service.context import Client, Context, audited
from passgate.service.sessions import SignedIn, require_recent_passkey
from passgate.store.base import Credential, User


@dataclass(frozen=True, kw_only=True)
class Registered:
    user: User
    credential: Credential
    new_account: bool


async def begin(
    ctx: Context,
    client: Client,
    *,
    signed_in: SignedIn | None,
    username: object = None,
    display_name: object = None,
    user_id: object = None,
    exclude_credentials: bool = False,
) -> tuple[dict[str, Any], str]:
    """Creation options for a new account (signed out) or a new passkey (signed in).

    Returns the options JSON and the browser token for the ceremony cookie.

    Raises:
        InvalidRequest: a bad or missing username.
        UsernameTaken: the username belongs to an account already.
        Forbidden: a signed-in user asked to add a passkey to another account.
        StepUpRequired: adding a passkey needs a passkey used within the step-up window (except to recover).
        AlreadySignedIn: a signed-in user asked to create a new account.
    """
    if signed_in is not None:
        account: str | None = signed_in.user.id
    else:
        account = normalize_identifier(username) if isinstance(username, str) else None
    await ratelimit.ceremony(ctx, client, "register-begin", account=account)
    if signed_in is None:
        if user_id is not None:
            raise NotSignedIn("Sign in to add a passkey to your account.")
        name = clean_username(username)
        shown = clean_name(display_name, field="displayName", required=False) or name
        if await ctx.storage.users.by_username(name) is not None:
            raise UsernameTaken()
        # The account exists only once its first passkey verifies; until then it lives in the challenge.
        user = User(
            id=b64url_encode(ctx.random(12)),
            username=name,
            display_name=shown,
            user_handle=ctx.random(32),
            created_at=ctx.clock(),
        )
        pending = {
            "id": user.id,
            "username": name,
            "display_name": shown,
            "user_handle": b64url_encode(user.user_handle),
        }
        challenge, browser = await challenges.issue(ctx, client, "registration", pending_user=pending)
        exclude: list[CredentialDescriptor] = []
    else:
        if username is not None or display_name is not None:
            raise AlreadySignedIn()
        if user_id is not None and user_id != signed_in.user.id:
            raise Forbidden("You can add passkeys only to your own account.")
        if signed_in.session.kind != "recovery":  # recovering users add a passkey straight away
            require_recent_passkey(ctx, signed_in)
        user = signed_in.user
        challenge, browser = await challenges.issue(ctx, client, "registration", user_id=user.id)
        exclude = []
        if exclude_credentials:
            exclude = [
                CredentialDescriptor(credential_id=c.credential_id, transports=c.transports)
                for c in await ctx.storage.credentials.list_for_user(user.id)
            ]
    options = creation_options(
        rp_id=ctx.rp.rp_id,
        rp_name=ctx.rp.rp_name,
        user_handle=user.user_handle,
        username=user.username,
        display_name=user.display_name,
        challenge=challenge,
        policy=ctx.rp.policy,
        exclude=exclude,
    )
    return options, browser


async def complete(ctx: Context, client: Client, response: Any, *, signed_in: SignedIn | None) -> Registered:
    """Verify the new passkey and store it, creating the account if this was a sign-up.

    Nothing is written unless everything verifies; the account and its first passkey are written together.

    Raises:
        PasskeyError: every refusal, with its code (see passgate.core.errors).
    """
    async with audited(ctx, client, "passkey.register") as audit:
        await ratelimit.ceremony(ctx, client, "register-complete")
        parsed = RegistrationResponse.parse(response)
        pending = await challenges.take(ctx, client, "registration", parsed.client_data.challenge)
        if pending.user_id is not None:
            if signed_in is None:
                raise NotSignedIn("Your session ended before the passkey was saved. Sign in and try again.")
            if signed_in.user.id != pending.user_id:
                raise ChallengeMismatch("This passkey was started for another account.")
            audit.user_id = signed_in.user.id
        registered = verify_registration(
            parsed,
            expected_challenge=pending.challenge,
            expected_rp_id=ctx.rp.rp_id,
            expected_origins=ctx.rp.origins,
            policy=ctx.rp.policy,
            metadata=ctx.models(),
        )
        audit.credential_id = registered.credential_id
        if pending.pending_user is not None:
            fields = pending.pending_user
            user = User(
                id=fields["id"],
                username=fields["username"],
                display_name=fields["display_name"],
                user_handle=b64url_decode(fields["user_handle"]),
                created_at=ctx.clock(),
            )
            audit.user_id = user.id
            credential = _credential(ctx, user.id, registered)
            await ctx.storage.users.create_with_credential(user, credential)
            audit.detail["new_account"] = True
            return Registered(user=user, credential=credential, new_account=True)
        assert signed_in is not None
        credential = _credential(ctx, signed_in.user.id, registered)
        await ctx.storage.credentials.add(credential)
        if signed_in.session.kind == "recovery":
            # A new passkey with user verification: the recovery is over.
            await ctx.storage.sessions.mark_authenticated(
                signed_in.session.token_hash,
                ctx.clock(),
                credential_id=credential.credential_id,
                user_verified=credential.user_verified,
            )
    await notify.security_event(ctx, signed_in.user, "A passkey was added to your account")
    return Registered(user=signed_in.user, credential=credential, new_account=False)


def _credential(ctx: Context, user_id: str, registered: RegisteredCredential) -> Credential:
    return Credential(
        credential_id=registered.credential_id,
        user_id=user_id,
        public_key=registered.public_key,
        algorithm=registered.algorithm,
        sign_count=registered.sign_count,
        aaguid=registered.aaguid,
        attestation_format=registered.attestation_format,
        transports=registered.transports,
        backup_eligible=registered.backup_eligible,
        backed_up=registered.backed_up,
        user_verified=registered.user_verified,
        attested=registered.aaguid_attested,
        created_at=ctx.clock(),
    )

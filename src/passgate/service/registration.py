"""Sign up (a new account with its first passkey) and adding a passkey to an account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from passgate.core.data import RegistrationResponse
from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.core.errors import (
    AlreadySignedIn,
    ChallengeMismatch,
    Forbidden,
    InvalidRequest,
    NotSignedIn,
    UpgradeNotAllowed,
    UsernameTaken,
)
from passgate.core.identifiers import normalize_identifier
from passgate.core.options import CredentialDescriptor, creation_options
from passgate.core.registration import RegisteredCredential, verify_registration
from passgate.i18n import N_
from passgate.service import challenges, notify, ratelimit, sessions, webhooks
from passgate.service.accounts import clean_name, clean_username, refuse_disabled
from passgate.service.context import Client, Context, audited, digest, event_of
from passgate.service.sessions import SignedIn, require_recent_passkey
from passgate.store.base import Credential, CredentialSource, PendingChallenge, User

# Marks the challenge of a conditional create right after a password sign-in (`pending_user`, with the session's
# sid): the one registration that may come back without user presence.
UPGRADE = "upgrade"


@dataclass(frozen=True, kw_only=True)
class Registered:
    user: User
    credential: Credential
    new_account: bool
    session_token: str | None = None  # a new account's: it is signed in


async def begin(
    ctx: Context,
    client: Client,
    *,
    signed_in: SignedIn | None,
    username: object = None,
    display_name: object = None,
    user_id: object = None,
    exclude_credentials: bool = False,
    conditional: bool = False,
) -> tuple[dict[str, Any], str]:
    """Creation options for a new account (signed out) or a new passkey (signed in).

    `conditional`: options for the upgrade, a conditional create (`mediation: "conditional"`) the page makes right
    after a password sign-in, which the browser may answer with no prompt. Only for a password session opened within
    `RelyingParty.upgrade_window`; its options exclude the account's passkeys, so no authenticator makes a second.

    Returns the options JSON and the browser token for the ceremony cookie.

    Raises:
        InvalidRequest: a bad or missing username; a conditional create with a username or another account.
        UsernameTaken: the username belongs to an account already.
        Forbidden: a signed-in user asked to add a passkey to another account.
        StepUpRequired: adding a passkey needs a passkey used within the step-up window (except to recover, and in
            a password session).
        AlreadySignedIn: a signed-in user asked to create a new account.
        UpgradeNotAllowed: `conditional` without a password session, or too long after its password sign-in.
    """
    if signed_in is not None:
        refuse_disabled(signed_in.user)
        account: str | None = signed_in.user.id
    else:
        account = normalize_identifier(username) if isinstance(username, str) else None
    await ratelimit.ceremony(ctx, client, "register-begin", account=account)
    if conditional:
        upgrading = _upgrading(ctx, signed_in)
        user = upgrading.user
        if username is not None or display_name is not None or user_id not in (None, user.id):
            raise InvalidRequest("A conditional create adds a passkey to the signed-in account only.")
        upgrade = {"purpose": UPGRADE, "sid": upgrading.session.sid}
        challenge, browser = await challenges.issue(ctx, client, "registration", user_id=user.id, pending_user=upgrade)
        exclude: list[CredentialDescriptor] = await _descriptors(ctx, user.id)
    elif signed_in is None:
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
        exclude = []
    else:
        if username is not None or display_name is not None:
            raise AlreadySignedIn()
        if user_id is not None and user_id != signed_in.user.id:
            raise Forbidden("You can add passkeys only to your own account.")
        # Recovering users add a passkey straight away, and so do users moving from a password to passkeys.
        if signed_in.session.kind not in ("recovery", "password"):
            require_recent_passkey(ctx, signed_in)
        user = signed_in.user
        challenge, browser = await challenges.issue(ctx, client, "registration", user_id=user.id)
        exclude = await _descriptors(ctx, user.id) if exclude_credentials else []
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


def _upgrading(ctx: Context, signed_in: SignedIn | None) -> SignedIn:
    """A password session still within the upgrade window; raises UpgradeNotAllowed otherwise."""
    if signed_in is None or signed_in.session.kind != "password" or signed_in.session.sid is None:
        raise UpgradeNotAllowed()
    if ctx.clock() - signed_in.session.created_at > ctx.rp.upgrade_window:
        raise UpgradeNotAllowed()
    return signed_in


async def _descriptors(ctx: Context, user_id: str) -> list[CredentialDescriptor]:
    return [
        CredentialDescriptor(credential_id=c.credential_id, transports=c.transports)
        for c in await ctx.storage.credentials.list_for_user(user_id)
    ]


def _is_upgrade(pending: PendingChallenge) -> bool:
    return pending.user_id is not None and (pending.pending_user or {}).get("purpose") == UPGRADE


async def complete(ctx: Context, client: Client, response: Any, *, signed_in: SignedIn | None) -> Registered:
    """Verify the new passkey and store it, creating the account if this was a sign-up.

    Nothing is written unless everything verifies; the account and its first passkey are written together. The
    answer to an upgrade challenge (begin's `conditional`) may have the UP and UV flags clear; every other needs UP.

    Raises:
        PasskeyError: every refusal, with its code (see passgate.core.errors).
    """
    async with audited(ctx, client, "passkey.register") as audit:
        await ratelimit.ceremony(ctx, client, "register-complete")
        parsed = RegistrationResponse.parse(response)
        pending = await challenges.take(ctx, client, "registration", parsed.client_data.challenge, audit=audit)
        upgrade = _is_upgrade(pending)
        if signed_in is not None:
            refuse_disabled(signed_in.user)
        if pending.user_id is not None:
            if signed_in is None:
                raise NotSignedIn("Your session ended before the passkey was saved. Sign in and try again.")
            if signed_in.user.id != pending.user_id:
                raise ChallengeMismatch("This passkey was started for another account.")
            audit.user_id = signed_in.user.id
        if upgrade:
            audit.detail["upgrade"] = True
            assert signed_in is not None and pending.pending_user is not None
            if signed_in.session.sid != pending.pending_user.get("sid"):
                raise ChallengeMismatch("This passkey was started in another session.")
        registered = verify_registration(
            parsed,
            expected_challenge=pending.challenge,
            expected_rp_id=ctx.rp.rp_id,
            expected_origins=ctx.rp.origins,
            policy=ctx.rp.policy,
            metadata=ctx.models(),
            require_user_presence=not upgrade,
        )
        audit.credential_id = registered.credential_id
        if pending.pending_user is not None and not upgrade:
            fields = pending.pending_user
            user = User(
                id=fields["id"],
                username=fields["username"],
                display_name=fields["display_name"],
                user_handle=b64url_decode(fields["user_handle"]),
                created_at=ctx.clock(),
            )
            audit.user_id = user.id
            audit.detail["new_account"] = True
            credential = _credential(ctx, user.id, registered)
            # The account, its passkey, its first session and the event: one write.
            token, session = sessions.new_session(
                ctx, user.id, credential_id=credential.credential_id, user_verified=credential.user_verified
            )
            queued = await ctx.storage.users.create_with_credential(
                user,
                credential,
                event=event_of(ctx, client, audit, outcome="success", reason=None),
                session=session,
                outbox=webhooks.user_created(ctx, user.id, [credential.credential_id]),
                spend=audit.unspent,
            )
            audit.recorded, audit.unspent = True, None
            webhooks.wake(ctx, queued)
            if client.session_token:  # the browser's previous session ends (rotation)
                await ctx.storage.sessions.delete(digest(client.session_token))
            return Registered(user=user, credential=credential, new_account=True, session_token=token)
        assert signed_in is not None
        await challenges.spend(ctx, audit)  # on its own: adding a passkey is not a sign-in's hot path
        source: CredentialSource = "upgrade" if upgrade else "registration"
        credential = _credential(ctx, signed_in.user.id, registered, created_by=source)
        await ctx.storage.credentials.add(
            credential, outbox=webhooks.passkey_created(ctx, signed_in.user.id, credential.credential_id)
        )
        webhooks.wake(ctx)
        # A password session stays one: a passkey made without a prompt proves nothing more than the password did.
        if signed_in.session.kind == "recovery":
            # A new passkey with user verification: the recovery is over.
            await ctx.storage.sessions.mark_authenticated(
                signed_in.session.token_hash,
                ctx.clock(),
                credential_id=credential.credential_id,
                user_verified=credential.user_verified,
            )
    if upgrade:
        what = N_("A passkey was added to your account after a password sign-in")
    else:
        what = N_("A passkey was added to your account")
    await notify.security_event(ctx, signed_in.user, what, client.language)
    return Registered(user=signed_in.user, credential=credential, new_account=False)


def _credential(
    ctx: Context, user_id: str, registered: RegisteredCredential, *, created_by: CredentialSource = "registration"
) -> Credential:
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
        created_by=created_by,
    )

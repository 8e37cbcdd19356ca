"""Sign in with a passkey: discoverable (no username) or username-first."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from passgate.core.authentication import verify_authentication
from passgate.core.data import AuthenticationResponse
from passgate.core.decoys import decoy_credentials
from passgate.core.errors import AuthenticatorCompromised, SignCountRegression, UnknownCredential, UserHandleMismatch
from passgate.core.identifiers import normalize_identifier
from passgate.core.options import CredentialDescriptor, request_options
from passgate.service import challenges, ratelimit, sessions, webhooks
from passgate.service.accounts import clean_username, refuse_disabled
from passgate.service.context import Audit, Client, Context, audited, digest, event_of
from passgate.store.base import Credential, CredentialUse, SessionKind, User, WebhookEvent

# Bound to a username that has no account: no credential can complete such a ceremony.
_NOBODY = "-"


@dataclass(frozen=True, kw_only=True)
class SignedInWith:
    user: User
    credential: Credential
    session_token: str


async def begin(
    ctx: Context, client: Client, *, username: object = None, step_up: User | None = None
) -> tuple[dict[str, Any], str]:
    """Request options: empty allowCredentials (discoverable) or the user's passkeys (username-first).

    An unknown username gets decoy credentials derived from the server secret (passgate.core.decoys),
    stable across requests, so the answer does not tell whether the account exists.

    Raises:
        AccountDisabled: the username's account (or the step-up's) is disabled: it starts no ceremony. That tells
            whoever asks that the name is a disabled account's; a discoverable sign-in is refused at `complete`.
    """
    await ratelimit.ceremony(ctx, client, "login-begin")
    allow: list[CredentialDescriptor] = []
    user_id: str | None = None
    if step_up is not None:  # the signed-in user confirms it's them before a sensitive change
        refuse_disabled(step_up)
        user_id = step_up.id
        allow = [
            CredentialDescriptor(credential_id=c.credential_id, transports=c.transports)
            for c in await ctx.storage.credentials.list_for_user(step_up.id)
        ]
    elif username is not None:
        name = clean_username(username)
        identifier = normalize_identifier(name)
        await ratelimit.ceremony(ctx, client, "login-begin", account=identifier, per_ip=False)
        user = await ctx.storage.users.by_username(name)
        if user is not None:
            refuse_disabled(user)
            user_id = user.id
            allow = [
                CredentialDescriptor(credential_id=c.credential_id, transports=c.transports)
                for c in await ctx.storage.credentials.list_for_user(user.id)
            ]
        else:
            user_id = _NOBODY
            allow = decoy_credentials(secret_key=ctx.rp.secret_key, identifier=identifier)
    # The browser binding (cookie) outlives the ceremony on purpose: a pending email link is tied to it too.
    purpose = {"purpose": "step_up"} if step_up is not None else None
    challenge, browser = await challenges.issue(ctx, client, "authentication", user_id=user_id, pending_user=purpose)
    return request_options(rp_id=ctx.rp.rp_id, challenge=challenge, policy=ctx.rp.policy, allow=allow), browser


async def complete(ctx: Context, client: Client, response: Any) -> SignedInWith:
    """Verify an assertion, then record the passkey's use, the new session (replacing the browser's previous
    one) and the event together.

    Raises:
        PasskeyError: every refusal, with its code (see passgate.core.errors).
    """
    async with audited(ctx, client, "sign_in") as audit:
        audit.failure_outbox = lambda code: _failed(ctx, audit, code)
        await ratelimit.ceremony(ctx, client, "login-complete")
        parsed = AuthenticationResponse.parse(response)
        pending = await challenges.take(ctx, client, "authentication", parsed.client_data.challenge, audit=audit)
        if pending.pending_user == {"purpose": "step_up"}:
            audit.type = "step_up"  # the signed-in user confirming it's them
        audit.credential_id = parsed.credential_id
        found = await ctx.storage.credentials.get_with_owner(parsed.credential_id)
        if found is None or (pending.user_id is not None and found[0].user_id != pending.user_id):
            raise UnknownCredential()
        credential, user = found
        audit.user_id = credential.user_id
        refuse_disabled(user)  # a discoverable sign-in learns its account only here
        await ratelimit.ceremony(ctx, client, "login-complete", account=credential.user_id, per_ip=False)
        if parsed.user_handle is None:
            if pending.user_id is None:
                raise UserHandleMismatch("A passkey used without a username must name its account.")
        elif not hmac.compare_digest(parsed.user_handle, user.user_handle):
            raise UserHandleMismatch()
        try:
            verified = verify_authentication(
                parsed,
                expected_challenge=pending.challenge,
                expected_rp_id=ctx.rp.rp_id,
                expected_origins=ctx.rp.origins,
                credential_public_key=credential.public_key,
                stored_sign_count=credential.sign_count,
                stored_backup_eligible=credential.backup_eligible,
                policy=ctx.rp.policy,
            )
        except SignCountRegression:
            audit.detail["clone_warning"] = True
            raise
        if verified.clone_warning:  # the policy flags instead of refusing; the counter is not moved back
            audit.detail["clone_warning"] = True
        kind: SessionKind = "passkey"
        # The stored AAGUID may be only the authenticator's claim: enough to refuse, as refusing is safe.
        model = ctx.models().get(credential.aaguid)
        if model is not None and model.compromised:
            audit.detail["compromised_model"] = True
            if ctx.rp.policy.on_compromised == "block":
                raise AuthenticatorCompromised()
            kind = "recovery"  # in, but only to replace this passkey before anything else
        use = CredentialUse(
            credential_id=credential.credential_id,
            sign_count=0 if verified.clone_warning else verified.sign_count,
            backed_up=verified.backed_up,
            used_at=ctx.clock(),
        )
        # A step-up is a sign-in too: the rotated session now belongs to the passkey it just proved, the
        # one the holder of this browser is known to have.
        token, session = sessions.new_session(
            ctx, user.id, kind, credential_id=credential.credential_id, user_verified=verified.user_verified
        )
        ended = digest(client.session_token) if client.session_token else None
        event = event_of(ctx, client, audit, outcome="success", reason=None)
        outbox = webhooks.signin_succeeded(ctx, user.id, credential.credential_id, session.token_hash)
        if verified.clone_warning:
            outbox += webhooks.clone_suspected(ctx, user.id, credential.credential_id)
        queued = await ctx.storage.sign_ins.record(
            use, session=session, ended_session=ended, event=event, outbox=outbox, spend=audit.unspent
        )
        if queued is None:
            # Another sign-in with a higher counter won the race: this assertion is stale.
            audit.detail["clone_warning"] = True
            raise SignCountRegression()
        audit.recorded, audit.unspent = True, None
        webhooks.wake(ctx, queued)
        return SignedInWith(user=user, credential=credential, session_token=token)


def _failed(ctx: Context, audit: Audit, code: str) -> list[WebhookEvent]:
    """signin.failed for a refused sign-in, and passkey.clone_suspected when the counter went backwards.
    A rate limit's refusal tells nothing new, and telling it would let a flood of requests become one of
    webhooks."""
    if code == "rate_limited":
        return []
    events = webhooks.signin_failed(ctx, audit.user_id, audit.credential_id, code)
    if audit.detail.get("clone_warning") and audit.user_id is not None and audit.credential_id is not None:
        events += webhooks.clone_suspected(ctx, audit.user_id, audit.credential_id)
    return events

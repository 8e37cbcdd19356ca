"""Transaction confirmation (payments): an assertion whose challenge is bound to a server-side summary.

The server keeps the transaction; the challenge is SHA-256 of a random nonce and the canonical summary,
so the signed clientDataJSON commits to exactly what the user confirmed. User verification is required
whatever the site's sign-in policy. The confirmation is recorded as an event with the summary.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from passgate.core.authentication import verify_authentication
from passgate.core.data import AuthenticationResponse
from passgate.core.encoding import b64url_encode
from passgate.core.errors import Forbidden, StepUpRequired, UnknownCredential, UserHandleMismatch
from passgate.core.options import CredentialDescriptor, request_options
from passgate.core.transactions import canonical, clean_transaction
from passgate.service import challenges, ratelimit
from passgate.service.context import Client, Context, audited, digest
from passgate.service.sessions import SignedIn
from passgate.store.base import PendingChallenge


@dataclass(frozen=True, kw_only=True)
class Confirmed:
    transaction: dict[str, str]
    transaction_hash: str


async def begin(ctx: Context, client: Client, current: SignedIn, transaction: object) -> tuple[dict[str, Any], str]:
    """Request options whose challenge commits to the transaction.

    Raises:
        Forbidden: the policy does not offer transaction confirmation.
        StepUpRequired: a password session (a passkey sign-in or step-up first).
        InvalidRequest: a bad summary (see core.transactions.clean_transaction).
    """
    if not ctx.rp.policy.confirm_transactions:
        raise Forbidden("Transaction confirmation is not enabled by this site's policy.")
    _refuse_password_session(current)
    summary = clean_transaction(transaction, today=ctx.clock().date())
    await ratelimit.ceremony(ctx, client, "confirm-begin", account=current.user.id)
    challenge = hashlib.sha256(ctx.random(32) + canonical(summary)).digest()
    browser = client.browser_token or b64url_encode(ctx.random(32))
    await ctx.storage.challenges.put(
        PendingChallenge(
            id=digest(challenge),
            challenge=challenge,
            ceremony="confirmation",
            browser=digest(browser),
            user_id=current.user.id,
            pending_user={"transaction": summary},
            expires_at=ctx.clock() + ctx.rp.challenge_ttl,
        )
    )
    allow = [
        CredentialDescriptor(credential_id=c.credential_id, transports=c.transports)
        for c in await ctx.storage.credentials.list_for_user(current.user.id)
    ]
    policy = dataclasses.replace(ctx.rp.policy, user_verification="required")
    return request_options(rp_id=ctx.rp.rp_id, challenge=challenge, policy=policy, allow=allow), browser


def _refuse_password_session(current: SignedIn) -> None:
    # A password session may add a passkey without a step-up: that passkey must not confirm payments on its own.
    if current.session.kind == "password":
        raise StepUpRequired("Confirm it's you with a passkey before confirming a payment.")


async def complete(ctx: Context, client: Client, current: SignedIn, response: Any) -> Confirmed:
    """Verify the confirming assertion (UV required) and record the confirmed transaction.

    Raises:
        PasskeyError: every refusal, with its code.
    """
    async with audited(ctx, client, "payment.confirm") as audit:
        audit.user_id = current.user.id
        _refuse_password_session(current)
        await ratelimit.ceremony(ctx, client, "confirm-complete", account=current.user.id)
        parsed = AuthenticationResponse.parse(response)
        pending = await challenges.take(ctx, client, "confirmation", parsed.client_data.challenge)
        if pending.user_id != current.user.id:
            raise UnknownCredential()
        credential = await ctx.storage.credentials.get(parsed.credential_id)
        if credential is None or credential.user_id != current.user.id:
            raise UnknownCredential()
        audit.credential_id = credential.credential_id
        if parsed.user_handle is not None and not hmac.compare_digest(parsed.user_handle, current.user.user_handle):
            raise UserHandleMismatch()
        transaction: dict[str, str] = (pending.pending_user or {})["transaction"]
        audit.detail["transaction"] = transaction
        verified = verify_authentication(
            parsed,
            expected_challenge=pending.challenge,
            expected_rp_id=ctx.rp.rp_id,
            expected_origins=ctx.rp.origins,
            credential_public_key=credential.public_key,
            stored_sign_count=credential.sign_count,
            stored_backup_eligible=credential.backup_eligible,
            policy=dataclasses.replace(ctx.rp.policy, user_verification="required", sign_count_rule="reject"),
        )
        await ctx.storage.credentials.record_use(
            credential.credential_id, sign_count=verified.sign_count, backed_up=verified.backed_up, used_at=ctx.clock()
        )
        transaction_hash = hashlib.sha256(canonical(transaction)).hexdigest()
        audit.detail["transaction_hash"] = transaction_hash
    return Confirmed(transaction=transaction, transaction_hash=transaction_hash)

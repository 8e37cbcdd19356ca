"""Files other parties fetch from this site: related origins, app associations, passkey endpoints."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from passgate.config import split_android_app
from passgate.service import keys
from passgate.web.context import ctx_of, settings_of

router = APIRouter(prefix="/.well-known", tags=["well-known"])
CACHE = {"Cache-Control": "public, max-age=3600"}


def _json(body: object) -> Response:
    return JSONResponse(body, headers=CACHE, media_type="application/json")


@router.get("/webauthn")
async def related_origins(request: Request) -> Response:
    """WebAuthn Related Origin Requests: the origins that may use this rp id."""
    settings = settings_of(request)
    if not settings.related_origins:
        return JSONResponse({"error": "not_found", "message": "No related origins are configured."}, 404)
    return _json({"origins": list(settings.allowed_origins + settings.related_origins)})


@router.get("/apple-app-site-association")
async def apple_app_site_association(request: Request) -> Response:
    """Lets the configured iOS apps use this site's passkeys (served as JSON, with no file extension)."""
    settings = settings_of(request)
    return _json({"webcredentials": {"apps": list(settings.ios_apps)}})


@router.get("/assetlinks.json")
async def asset_links(request: Request) -> Response:
    """Digital Asset Links: lets the configured Android apps use this site's passkeys."""
    settings = settings_of(request)
    statements = []
    for entry in settings.android_apps:
        package, fingerprint = split_android_app(entry)
        statements.append(
            {
                "relation": [
                    "delegate_permission/common.handle_all_urls",
                    "delegate_permission/common.get_login_creds",
                ],
                "target": {
                    "namespace": "android_app",
                    "package_name": package,
                    "sha256_cert_fingerprints": [fingerprint],
                },
            }
        )
    return _json(statements)


@router.get("/passkey-endpoints")
async def passkey_endpoints(request: Request) -> Response:
    """Where password managers send people to create and manage passkeys for this site."""
    base = settings_of(request).link_base
    return _json({"enroll": f"{base}/account", "manage": f"{base}/account"})


@router.get("/jwks.json")
async def jwks(request: Request) -> Response:
    """The public keys tokens are signed with (JWK Set): the next, the current and recently retired ones."""
    max_age = int(keys.JWKS_MAX_AGE.total_seconds())
    return JSONResponse(
        await keys.jwks(ctx_of(request)),
        headers={"Cache-Control": f"public, max-age={max_age}"},
        media_type="application/jwk-set+json",
    )

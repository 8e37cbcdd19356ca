"""The app passkey API from an app's server: registration tokens for its users, sign-in verification, and its
users' passkeys. Authenticated with one of the app's secret API keys (``pg_sk_...``).

Every call has a sync form and an async one (``a``-prefixed); both raise ``PasskeyApiError`` with Passgate's
error ``code`` (``token_used``, ``invalid_signin_token``, ``not_found``, ``invalid_api_key``...) and the HTTP status.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from .errors import PassgateError


class PasskeyApiError(PassgateError):
    """Passgate refused the request; ``code`` is its stable error code, ``status`` the HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class PasskeyApi:
    """``PasskeyApi("https://passgate.example", "pg_sk_...")``; ``transport``/``async_transport`` are httpx's."""

    def __init__(
        self,
        base_url: str,
        secret_key: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not secret_key:
            raise ValueError("secret_key is required")
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {secret_key}", "Accept": "application/json"}
        self._timeout = timeout
        self._transport = transport
        self._async_transport = async_transport

    # -- the calls ------------------------------------------------------------------------------------------

    def create_registration(self, user_id: str, username: str, display_name: str | None = None) -> dict[str, Any]:
        """``{registrationToken, expiresAt}``: give the token to the signed-in user's browser."""
        return self._call("POST", "/api/v1/registrations", _registration(user_id, username, display_name))

    async def acreate_registration(
        self, user_id: str, username: str, display_name: str | None = None
    ) -> dict[str, Any]:
        return await self._acall("POST", "/api/v1/registrations", _registration(user_id, username, display_name))

    def verify_sign_in(self, token: str) -> dict[str, Any]:
        """Who signed in: ``{userId, credentialId, userVerified, backedUp, amr, acr, origin, rpId, signedInAt}``.
        A token verifies once."""
        return self._call("POST", "/api/v1/signins/verify", {"token": token})

    async def averify_sign_in(self, token: str) -> dict[str, Any]:
        return await self._acall("POST", "/api/v1/signins/verify", {"token": token})

    def list_passkeys(self, user_id: str) -> list[dict[str, Any]]:
        passkeys: list[dict[str, Any]] = self._call("GET", _user_path(user_id) + "/passkeys")["passkeys"]
        return passkeys

    async def alist_passkeys(self, user_id: str) -> list[dict[str, Any]]:
        passkeys: list[dict[str, Any]] = (await self._acall("GET", _user_path(user_id) + "/passkeys"))["passkeys"]
        return passkeys

    def rename_passkey(self, credential_id: str, nickname: str | None) -> dict[str, Any]:
        return self._call("PATCH", _passkey_path(credential_id), {"nickname": nickname})

    async def arename_passkey(self, credential_id: str, nickname: str | None) -> dict[str, Any]:
        return await self._acall("PATCH", _passkey_path(credential_id), {"nickname": nickname})

    def remove_passkey(self, credential_id: str) -> None:
        self._call("DELETE", _passkey_path(credential_id))

    async def aremove_passkey(self, credential_id: str) -> None:
        await self._acall("DELETE", _passkey_path(credential_id))

    def remove_user(self, user_id: str) -> None:
        """Remove the user's passkeys and everything Passgate keeps of them for this app."""
        self._call("DELETE", _user_path(user_id))

    async def aremove_user(self, user_id: str) -> None:
        await self._acall("DELETE", _user_path(user_id))

    # -- one request ----------------------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        with httpx.Client(timeout=self._timeout, transport=self._transport) as client:
            response = client.request(method, self.base_url + path, json=body, headers=self._headers)
        return _answer(response)

    async def _acall(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=self._timeout, transport=self._async_transport) as client:
            response = await client.request(method, self.base_url + path, json=body, headers=self._headers)
        return _answer(response)


def _registration(user_id: str, username: str, display_name: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"userId": user_id, "username": username}
    if display_name is not None:
        body["displayName"] = display_name
    return body


def _user_path(user_id: str) -> str:
    return "/api/v1/users/" + quote(user_id, safe="")


def _passkey_path(credential_id: str) -> str:
    return "/api/v1/passkeys/" + quote(credential_id, safe="")


def _answer(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.is_success and isinstance(data, dict):
        return data
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        raise PasskeyApiError(response.status_code, data["error"], str(data.get("message") or data["error"]))
    raise PasskeyApiError(response.status_code, "unexpected_response", f"HTTP {response.status_code} from Passgate")

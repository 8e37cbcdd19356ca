"""FastAPI: ``Depends(current_user(verifier))`` gives the signed-in ``PassgateUser`` or answers 401/403/503.

verifier = PassgateVerifier("https://id.example", "https://shop.example")

@app.get("/orders")
async def orders(user: PassgateUser = Depends(current_user(verifier))) -> ...:

@app.post("/payouts")
async def payout(user: PassgateUser = Depends(current_user(verifier, require_acr="phrh", max_age=300))): ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ._http import refusal
from .errors import PassgateError
from .user import PassgateUser
from .verifier import PassgateVerifier, check_acr_name

# auto_error=False: a missing token is answered here, with the RFC 6750 challenge, not FastAPI's own 403.
_bearer = HTTPBearer(auto_error=False, description="A Passgate token")


def current_user(
    verifier: PassgateVerifier, *, require_acr: str | None = None, max_age: float | None = None
) -> Callable[[HTTPAuthorizationCredentials | None], Awaitable[PassgateUser]]:
    """A dependency giving the user of the request's bearer token.

    ``require_acr`` (``"phr"`` or ``"phrh"``) and ``max_age`` (seconds since the sign-in) add to the verifier's own.
    Answers 401 when the token is missing or refused, 403 when its sign-in is too weak or too old, 503 when the
    issuer's keys cannot be had.
    """
    check_acr_name(require_acr)  # a wrong name fails when the app is built, not on the first request

    async def passgate_user(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> PassgateUser:
        try:
            if credentials is None:
                raise _http_exception(None)
            return await verifier.averify(credentials.credentials, require_acr=require_acr, max_age=max_age)
        except PassgateError as error:
            raise _http_exception(error) from None

    return passgate_user


def _http_exception(error: PassgateError | None) -> HTTPException:
    answer = refusal(error)
    return HTTPException(status_code=answer.status, detail=answer.body, headers=answer.headers)

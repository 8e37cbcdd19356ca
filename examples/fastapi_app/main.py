"""A FastAPI app whose people sign in with Passgate: the code flow, through passgate-client's login routes.

    PASSGATE_ISSUER=http://localhost:8000 PASSGATE_CLIENT_ID=fastapi-example \
    PASSGATE_CLIENT_SECRET=... APP_URL=http://localhost:8001 \
    uvicorn --app-dir examples/fastapi_app main:app --port 8001

(examples/README.md: registering the client with Passgate.)
"""

import html
import os
import secrets
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse
from starlette.middleware.sessions import SessionMiddleware

from passgate_client import PassgateLogin, SessionUser
from passgate_client.login_starlette import login_router, session_user

APP_URL = os.environ.get("APP_URL", "http://localhost:8001").rstrip("/")

login = PassgateLogin(
    issuer=os.environ.get("PASSGATE_ISSUER", "http://localhost:8000"),
    client_id=os.environ.get("PASSGATE_CLIENT_ID", "fastapi-example"),
    client_secret=os.environ.get("PASSGATE_CLIENT_SECRET") or None,
    redirect_uri=f"{APP_URL}/auth/callback",
    post_logout_redirect_uri=f"{APP_URL}/",
)

app = FastAPI(title="Passgate example (FastAPI)")
app.add_middleware(
    SessionMiddleware,
    # Without APP_SECRET_KEY, sessions last as long as the process.
    secret_key=os.environ.get("APP_SECRET_KEY") or secrets.token_urlsafe(32),
    session_cookie="fastapi_example_session",  # Passgate on localhost:8000 shares the host's cookies
    https_only=APP_URL.startswith("https://"),
)
app.include_router(login_router(login), prefix="/auth")

User = Annotated[SessionUser | None, Depends(session_user)]


def page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{body}",
        status_code=status_code,
    )


def sign_out_form() -> str:
    return '<form method=post action="/auth/logout"><button id=sign-out type=submit>Sign out</button></form>'


@app.get("/")
def home(user: User) -> HTMLResponse:
    if user is None:
        return page("FastAPI example", '<p><a id=sign-in href="/auth/login">Sign in</a></p>')
    return page(
        "FastAPI example",
        f"<p id=signed-in-as>Signed in as {html.escape(user.display_name)}</p>"
        f'<p><a id=protected-link href="/protected">The protected page</a></p>{sign_out_form()}',
    )


@app.get("/protected")
def protected(user: User) -> HTMLResponse:
    if user is None:
        sign_in = '<p><a id=sign-in href="/auth/login?next=/protected">Sign in</a> to see this page.</p>'
        return page("Sign in first", sign_in, status_code=401)
    return page("Protected page", f"<p id=protected-for>Only for {html.escape(user.display_name)}</p>")

"""A Flask app whose people sign in with Passgate: the code flow, through passgate-client's login blueprint.

    PASSGATE_ISSUER=http://localhost:8000 PASSGATE_CLIENT_ID=flask-example \
    PASSGATE_CLIENT_SECRET=... APP_URL=http://localhost:8002 \
    flask --app examples/flask_app/app.py run --port 8002

(examples/README.md: registering the client with Passgate.)
"""

import html
import os
import secrets

from flask import Flask

from passgate_client import PassgateLogin
from passgate_client.login_flask import login_blueprint, session_user

APP_URL = os.environ.get("APP_URL", "http://localhost:8002").rstrip("/")

login = PassgateLogin(
    issuer=os.environ.get("PASSGATE_ISSUER", "http://localhost:8000"),
    client_id=os.environ.get("PASSGATE_CLIENT_ID", "flask-example"),
    client_secret=os.environ.get("PASSGATE_CLIENT_SECRET") or None,
    redirect_uri=f"{APP_URL}/auth/callback",
    post_logout_redirect_uri=f"{APP_URL}/",
)

app = Flask(__name__)
# Without APP_SECRET_KEY, sessions last as long as the process.
app.secret_key = os.environ.get("APP_SECRET_KEY") or secrets.token_urlsafe(32)
app.config.update(
    SESSION_COOKIE_NAME="flask_example_session",  # Passgate on localhost:8000 shares the host's cookies
    SESSION_COOKIE_SAMESITE="Lax",
    SESSION_COOKIE_SECURE=APP_URL.startswith("https://"),
)
app.register_blueprint(login_blueprint(login), url_prefix="/auth")


def page(title: str, body: str) -> str:
    return f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{body}"


@app.get("/")
def home() -> str:
    user = session_user()
    if user is None:
        return page("Flask example", '<p><a id=sign-in href="/auth/login">Sign in</a></p>')
    return page(
        "Flask example",
        f"<p id=signed-in-as>Signed in as {html.escape(user.display_name)}</p>"
        '<p><a id=protected-link href="/protected">The protected page</a></p>'
        '<form method=post action="/auth/logout"><button id=sign-out type=submit>Sign out</button></form>',
    )


@app.get("/protected")
def protected() -> tuple[str, int]:
    user = session_user()
    if user is None:
        sign_in = '<p><a id=sign-in href="/auth/login?next=/protected">Sign in</a> to see this page.</p>'
        return page("Sign in first", sign_in), 401
    return page("Protected page", f"<p id=protected-for>Only for {html.escape(user.display_name)}</p>"), 200

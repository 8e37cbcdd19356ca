"""An app that keeps its own users (a SQLite table with passwords) and adds passkeys to them with Passgate's app
passkey API.

    passgate apps add "App API example" --origin http://localhost:8004
    PASSGATE_URL=http://localhost:8000 PASSGATE_APP_ID=app_... PASSGATE_API_KEY=pg_sk_... \
    APP_DATABASE=example-users.db uvicorn --app-dir examples/app_api main:app --port 8004

A person signs in with a password, adds a passkey, and from then on signs in with it: the page runs the ceremony
through this app's server (which forwards the browser calls to Passgate with the `Passgate-Ceremony` header), gets
a sign-in token, and the server verifies it with the API key before it signs the person in.
"""

import hashlib
import hmac
import html
import os
import secrets
import sqlite3
from typing import Any
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware

from passgate_client import PasskeyApi, PasskeyApiError

PASSGATE_URL = os.environ.get("PASSGATE_URL", "http://localhost:8000").rstrip("/")
APP_ID = os.environ.get("PASSGATE_APP_ID", "")
DATABASE = os.environ.get("APP_DATABASE", "example-users.db")
KEY_FILE = os.environ.get("PASSGATE_API_KEY_FILE", "")


def passkey_api() -> PasskeyApi:
    """The API with the current key: read from PASSGATE_API_KEY_FILE on each call when it is set, so a rotated key
    is used at once (add the new key, write it there, then revoke the old one), else PASSGATE_API_KEY."""
    if KEY_FILE:
        with open(KEY_FILE) as file:
            return PasskeyApi(PASSGATE_URL, file.read().strip())
    return PasskeyApi(PASSGATE_URL, os.environ.get("PASSGATE_API_KEY", ""))


app = FastAPI(title="Passgate app API example")
app.add_middleware(
    SessionMiddleware,
    secret_key=os.environ.get("APP_SECRET_KEY") or secrets.token_urlsafe(32),
    session_cookie="app_api_example_session",
)


def database() -> sqlite3.Connection:
    connection = sqlite3.connect(DATABASE)
    connection.execute(
        "CREATE TABLE IF NOT EXISTS users"
        " (id INTEGER PRIMARY KEY, username TEXT UNIQUE NOT NULL, salt BLOB NOT NULL, password_hash BLOB NOT NULL)"
    )
    return connection


def password_hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)


def current_user(request: Request) -> tuple[int, str] | None:
    user_id = request.session.get("user_id")
    if user_id is None:
        return None
    with database() as connection:
        row = connection.execute("SELECT id, username FROM users WHERE id = ?", (user_id,)).fetchone()
    return (row[0], row[1]) if row else None


SCRIPT = """
const b64 = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer)))
  .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
async function call(path, body, ceremony) {
  const headers = { "Content-Type": "application/json" };
  if (ceremony) headers["Passgate-Ceremony"] = ceremony;
  const response = await fetch(path, { method: "POST", headers, body: JSON.stringify(body) });
  const data = await response.json();
  if (!response.ok) throw new Error(data.message || data.error);
  return { data, ceremony: response.headers.get("Passgate-Ceremony") };
}
function show(text) { document.getElementById("status").textContent = text; }
async function addPasskey() {
  try {
    const { data: issued } = await call("/passkeys/registration", {});
    const begun = await call("/passgate/register/begin", { registrationToken: issued.registrationToken });
    const options = PublicKeyCredential.parseCreationOptionsFromJSON(begun.data);
    const credential = await navigator.credentials.create({ publicKey: options });
    await call("/passgate/register/complete", credential.toJSON(), begun.ceremony);
    show("Passkey added");
  } catch (error) { show("Error: " + error.message); }
}
async function signInWithPasskey() {
  try {
    const begun = await call("/passgate/login/begin", { appId: APP_ID });
    const options = PublicKeyCredential.parseRequestOptionsFromJSON(begun.data);
    const credential = await navigator.credentials.get({ publicKey: options });
    const { data } = await call("/passgate/login/complete", credential.toJSON(), begun.ceremony);
    await call("/session/passkey", { token: data.token });
    location.href = "/";
  } catch (error) { show("Error: " + error.message); }
}
"""


def page(body: str) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><meta charset=utf-8><title>App API example</title><h1>App API example</h1>"
        f"{body}<p id=status role=status></p><script>const APP_ID = {APP_ID!r};{SCRIPT}</script>"
    )


@app.get("/")
def home(request: Request) -> HTMLResponse:
    user = current_user(request)
    if user is None:
        return page(
            "<form method=post action=/login><input id=username name=username placeholder=Username>"
            "<input id=password name=password type=password placeholder=Password>"
            "<button id=password-sign-in>Sign in with a password</button></form>"
            "<button id=passkey-sign-in onclick=signInWithPasskey()>Sign in with a passkey</button>"
        )
    return page(
        f"<p id=signed-in-as>Signed in as {html.escape(user[1])}</p>"
        "<button id=add-passkey onclick=addPasskey()>Add a passkey</button>"
        "<form method=post action=/logout><button id=sign-out>Sign out</button></form>"
    )


@app.post("/login")
async def login(request: Request) -> Response:
    """Signs in, or signs up a new username: the app's own accounts, before any passkey."""
    form = parse_qs((await request.body()).decode())
    username, password = form.get("username", [""])[0], form.get("password", [""])[0]
    with database() as connection:
        row = connection.execute("SELECT id, salt, password_hash FROM users WHERE username = ?", (username,)).fetchone()
        if row is None:
            salt = secrets.token_bytes(16)
            cursor = connection.execute(
                "INSERT INTO users (username, salt, password_hash) VALUES (?, ?, ?)",
                (username, salt, password_hash(password, salt)),
            )
            row = (cursor.lastrowid, salt, password_hash(password, salt))
    if not hmac.compare_digest(password_hash(password, row[1]), row[2]):
        return page("<p>Wrong password.</p>")
    request.session["user_id"] = row[0]
    return RedirectResponse("/", status_code=303)


@app.post("/logout")
def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/", status_code=303)


@app.post("/passkeys/registration")
async def registration(request: Request) -> JSONResponse:
    """A registration token for the signed-in user: the app's id for them, never anything secret."""
    user = current_user(request)
    if user is None:
        return JSONResponse({"error": "not_signed_in", "message": "Sign in first."}, status_code=401)
    return JSONResponse(await passkey_api().acreate_registration(str(user[0]), user[1]))


@app.post("/session/passkey")
async def passkey_session(request: Request) -> JSONResponse:
    """Verify the sign-in token with Passgate (once), then sign in the user it names."""
    body: dict[str, Any] = await request.json()
    try:
        who = await passkey_api().averify_sign_in(str(body.get("token", "")))
    except PasskeyApiError as error:
        return JSONResponse({"error": error.code, "message": error.message}, status_code=401)
    request.session["user_id"] = int(who["userId"])
    return JSONResponse({"signedIn": True})


@app.post("/passgate/{step:path}")
async def forward(step: str, request: Request) -> Response:
    """The browser's ceremony calls, forwarded to Passgate (no secret involved): the page stays on this origin."""
    if step not in ("register/begin", "register/complete", "login/begin", "login/complete"):
        return JSONResponse({"error": "not_found"}, status_code=404)
    headers = {"Content-Type": "application/json"}
    if "passgate-ceremony" in request.headers:
        headers["Passgate-Ceremony"] = request.headers["passgate-ceremony"]
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{PASSGATE_URL}/api/v1/passkeys/{step}", content=await request.body(), headers=headers
        )
    passed = {"Passgate-Ceremony": answer.headers["passgate-ceremony"]} if "passgate-ceremony" in answer.headers else {}
    return Response(answer.content, status_code=answer.status_code, media_type="application/json", headers=passed)

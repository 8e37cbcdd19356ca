"""The Flask extension and Flask-Login's request loader, through Flask's test client, with keys from a real issuer."""

from __future__ import annotations

from typing import Any

import flask_login
from flask import Flask

from conftest import AUDIENCE, Clock, Issuer
from passgate_client import PassgateUser, PassgateVerifier
from passgate_client.flask import PassgateFlask


def app_with(verifier: PassgateVerifier, **options: Any) -> tuple[Flask, PassgateFlask]:
    app = Flask(__name__)
    passgate = PassgateFlask(app, verifier, **options)

    @app.get("/me")
    @passgate.login_required
    def me() -> dict[str, Any]:
        assert passgate.user is not None
        return {"sub": passgate.user.sub, "amr": list(passgate.user.amr)}

    @app.post("/payouts")
    @passgate.login_required(require_acr="phrh", max_age=300)
    def payout() -> dict[str, Any]:
        return {"ok": True}

    return app, passgate


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_required_gives_the_user(issuer: Issuer, clock: Clock) -> None:
    app, _ = app_with(PassgateVerifier(issuer.url, AUDIENCE, clock=clock))

    answer = app.test_client().get("/me", headers=bearer(issuer.token()))

    assert answer.status_code == 200
    assert answer.json == {"sub": "user-1", "amr": ["pop", "user", "mfa", "swk"]}


def test_login_required_refuses_missing_and_bad_tokens_with_a_bearer_challenge(issuer: Issuer, clock: Clock) -> None:
    app, _ = app_with(PassgateVerifier(issuer.url, AUDIENCE, clock=clock))
    client = app.test_client()

    missing = client.get("/me")
    wrong_issuer = client.get("/me", headers=bearer(issuer.token(iss="http://localhost:1")))

    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert wrong_issuer.status_code == 401
    assert wrong_issuer.headers["WWW-Authenticate"] == 'Bearer error="invalid_token", error_description="wrong_issuer"'
    assert wrong_issuer.json is not None and wrong_issuer.json["error"] == "wrong_issuer"


def test_login_required_with_require_acr_answers_403(issuer: Issuer, clock: Clock) -> None:
    app, _ = app_with(PassgateVerifier(issuer.url, AUDIENCE, clock=clock))
    client = app.test_client()

    weak = client.post("/payouts", headers=bearer(issuer.token(acr="phr")))
    strong = client.post("/payouts", headers=bearer(issuer.token(acr="phrh")))

    assert weak.status_code == 403
    assert weak.headers["WWW-Authenticate"].startswith('Bearer error="insufficient_user_authentication"')
    assert 'acr_values="phrh"' in weak.headers["WWW-Authenticate"]
    assert strong.status_code == 200


def test_flask_login_current_user_comes_from_the_token(issuer: Issuer, clock: Clock) -> None:
    app = Flask(__name__)
    app.secret_key = "test"
    login_manager = flask_login.LoginManager(app)
    login_manager.user_loader(lambda user_id: None)
    local_users = {"user-1": {"name": "Ada"}}
    PassgateFlask(app, PassgateVerifier(issuer.url, AUDIENCE, clock=clock))

    @app.get("/whoami")
    @flask_login.login_required
    def whoami() -> dict[str, Any]:
        user = flask_login.current_user
        assert isinstance(user, PassgateUser)
        return {"id": user.get_id(), "name": local_users[user.sub]["name"]}

    client = app.test_client()
    good = client.get("/whoami", headers=bearer(issuer.token()))
    expired = client.get("/whoami", headers=bearer(issuer.token(exp=int(clock.now) - 600)))

    assert good.status_code == 200
    assert good.json == {"id": "user-1", "name": "Ada"}
    assert expired.status_code == 401  # Flask-Login's own refusal: the token gave no user


def test_flask_login_load_user_maps_to_the_apps_own_user(issuer: Issuer, clock: Clock) -> None:
    class LocalUser(flask_login.UserMixin):
        def __init__(self, sub: str) -> None:
            self.id = f"local-{sub}"

    app = Flask(__name__)
    app.secret_key = "test"
    flask_login.LoginManager(app).user_loader(lambda user_id: None)
    PassgateFlask(app, PassgateVerifier(issuer.url, AUDIENCE, clock=clock), load_user=lambda user: LocalUser(user.sub))

    @app.get("/whoami")
    @flask_login.login_required
    def whoami() -> dict[str, Any]:
        return {"id": flask_login.current_user.get_id()}

    assert app.test_client().get("/whoami", headers=bearer(issuer.token())).json == {"id": "local-user-1"}

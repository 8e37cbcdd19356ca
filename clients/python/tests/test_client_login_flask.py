"""The code-flow login's sync side and its Flask blueprint, against a real Passgate served over HTTP in a thread."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

from passgate_client import PassgateLogin, StateMismatch
from passgate_client.login_flask import login_blueprint, login_required, session_user
from provider import CALLBACK, SECRET, served_passgate, sign_up_sync, unused_port


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served_passgate(tmp_path_factory.mktemp("passgate")) as url:
        yield url


@pytest.fixture
def person(issuer: str) -> Iterator[httpx.Client]:
    """A browser on Passgate's site in which a new person has signed up (and so is signed in)."""
    with httpx.Client(base_url=issuer, headers={"Origin": issuer}) as client:
        sign_up_sync(client, f"ada-{secrets.token_hex(6)}")  # the served Passgate outlives each test
        yield client


@pytest.fixture
def login(issuer: str) -> PassgateLogin:
    return PassgateLogin(issuer=issuer, client_id="shop", client_secret=SECRET, redirect_uri=CALLBACK)


def shop_of(login: PassgateLogin) -> FlaskClient:
    app = Flask(__name__)
    app.secret_key = "a test secret for the shop's sessions"
    app.register_blueprint(login_blueprint(login), url_prefix="/auth")

    @app.get("/orders")
    @login_required
    def orders() -> dict[str, str]:
        user = session_user()
        assert user is not None
        return {"signed_in_as": user.display_name}

    return app.test_client()


@pytest.fixture
def shop(login: PassgateLogin) -> FlaskClient:
    return shop_of(login)


def authorize(person: httpx.Client, url: str) -> dict[str, str]:
    answer = person.get(url)
    assert answer.status_code == 302, answer.text
    assert answer.headers["location"].startswith(CALLBACK + "?")
    return {name: values[0] for name, values in parse_qs(urlsplit(answer.headers["location"]).query).items()}


def through_the_blueprint(shop: FlaskClient, person: httpx.Client, next_path: str) -> str:
    started = shop.get("/auth/login?" + urlencode({"next": next_path}))
    assert started.status_code == 303
    back = shop.get("/auth/callback?" + urlencode(authorize(person, started.headers["location"])))
    assert back.status_code == 303, back.text
    return back.headers["location"]


def test_the_sync_code_flow_signs_the_person_in(login: PassgateLogin, person: httpx.Client) -> None:
    url, pending = login.begin("/orders")

    signed_in = login.complete(authorize(person, url), pending)

    assert signed_in.sub == person.get("/auth/session").json()["user"]["id"]
    assert signed_in.userinfo["preferred_username"].startswith("ada-") and signed_in.next_path == "/orders"
    with pytest.raises(StateMismatch):
        login.complete(authorize(person, login.begin()[0]), pending)  # the pending sign-in of another request


def test_sign_out_goes_on_to_the_end_session_endpoint_only_when_advertised(login: PassgateLogin) -> None:
    metadata = login.metadata()
    assert metadata.end_session_endpoint == f"{login.issuer}/oauth2/logout"
    url = login.logout_url(metadata, id_token_hint="an-id-token")
    assert url == f"{login.issuer}/oauth2/logout?client_id=shop&id_token_hint=an-id-token"
    assert login.after_logout(id_token_hint="an-id-token", default="/bye") == url
    assert login.after_logout(id_token_hint=None, default="/bye") == "/bye"  # nobody was signed in to the app

    elsewhere = replace(metadata, end_session_endpoint=None)  # an issuer that advertises none
    assert login.logout_url(elsewhere, id_token_hint="an-id-token") is None


def test_the_blueprint_signs_in_and_out(shop: FlaskClient, login: PassgateLogin, person: httpx.Client) -> None:
    assert shop.get("/orders").status_code == 401

    assert through_the_blueprint(shop, person, "/orders") == "/orders"
    orders = shop.get("/orders")
    assert orders.status_code == 200 and orders.json == {
        "signed_in_as": person.get("/auth/session").json()["user"]["username"]
    }

    signed_out = shop.post("/auth/logout")
    assert shop.get("/orders").status_code == 401
    end_session = signed_out.headers["location"]
    assert signed_out.status_code == 303 and end_session.startswith(f"{login.issuer}/oauth2/logout?client_id=shop&")
    assert person.get(end_session).status_code == 200  # Passgate's "You are signed out": its session ended too
    assert person.get("/auth/session").status_code == 401


@pytest.mark.parametrize("next_path", ["//evil.example/", "https://evil.example/orders", "/\\evil.example"])
def test_the_blueprint_never_sends_the_person_to_another_site(
    shop: FlaskClient, person: httpx.Client, next_path: str
) -> None:
    assert through_the_blueprint(shop, person, next_path) == "/"


def test_the_blueprint_refuses_a_callback_it_did_not_start(
    shop: FlaskClient, login: PassgateLogin, person: httpx.Client
) -> None:
    answer = authorize(person, login.begin()[0])

    refused = shop.get("/auth/callback?" + urlencode(answer))

    assert refused.status_code == 400 and "state_mismatch" in refused.text
    assert shop.get("/orders").status_code == 401


def test_the_blueprint_answers_503_when_passgate_cannot_be_reached() -> None:
    login = PassgateLogin(issuer=f"http://127.0.0.1:{unused_port()}", client_id="shop", redirect_uri=CALLBACK)

    started = shop_of(login).get("/auth/login")

    assert started.status_code == 503 and "issuer_unreachable" in started.text

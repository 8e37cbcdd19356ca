"""The Django middleware, backend, decorator and DRF class, through Django's test client, with a real issuer's keys."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

import django
import httpx
import pytest
from django.conf import settings

from conftest import AUDIENCE, Clock, Issuer

settings.configure(
    SECRET_KEY="test",
    ALLOWED_HOSTS=["testserver"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions", "rest_framework"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "passgate_client.django.PassgateMiddleware",
    ],
    AUTHENTICATION_BACKENDS=["passgate_client.django.PassgateBackend"],
    REST_FRAMEWORK={"UNAUTHENTICATED_USER": None},
    USE_TZ=True,
)
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402 - Django's models need the settings above
from django.core.management import call_command  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.urls import include, path  # noqa: E402
from rest_framework.permissions import IsAuthenticated  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

from passgate_client import PassgateUser, PassgateVerifier  # noqa: E402
from passgate_client.django import passgate_required  # noqa: E402
from passgate_client.drf import PassgateAuthentication  # noqa: E402
from passgate_client.login import PassgateLogin  # noqa: E402
from passgate_client.login_django import login_required, session_user  # noqa: E402
from provider import CALLBACK, SECRET, served_passgate, sign_up_sync  # noqa: E402


def whoami(request: HttpRequest) -> JsonResponse:
    passgate_user = getattr(request, "passgate_user", None)
    return JsonResponse(
        {
            "username": request.user.get_username() if request.user.is_authenticated else None,
            "sid": passgate_user.sid if passgate_user else None,
        }
    )


@passgate_required(require_acr="phrh")
def payout(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"paid_by": request.user.get_username()})


@login_required
def orders_page(request: HttpRequest) -> JsonResponse:
    user = session_user(request)
    assert user is not None
    return JsonResponse({"signed_in_as": user.display_name})


class StrongAuthentication(PassgateAuthentication):
    require_acr = "phrh"


class Orders(APIView):
    authentication_classes = [PassgateAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request: Request) -> Response:
        assert isinstance(request.auth, PassgateUser)
        return Response({"username": request.user.get_username(), "amr": list(request.auth.amr)})


class Payouts(Orders):
    authentication_classes = [StrongAuthentication]


urlpatterns = [
    path("whoami", whoami),
    path("payout", payout),
    path("api/orders", Orders.as_view()),
    path("api/payouts", Payouts.as_view()),
    path("orders", orders_page),
    path("auth/", include("passgate_client.login_django")),
]


@pytest.fixture
def verifier(issuer: Issuer, clock: Clock) -> Iterator[PassgateVerifier]:
    call_command("migrate", run_syncdb=True, verbosity=0)
    get_user_model().objects.all().delete()
    check = PassgateVerifier(issuer.url, AUDIENCE, clock=clock)
    with override_settings(PASSGATE={"VERIFIER": check}):
        yield check


def bearer(token: str) -> dict[str, Any]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_middleware_links_a_local_user_by_sub(issuer: Issuer, verifier: PassgateVerifier) -> None:
    client = Client()

    first = client.get("/whoami", **bearer(issuer.token()))
    again = client.get("/whoami", **bearer(issuer.token(sid="session-2")))
    anonymous = client.get("/whoami")

    assert first.json() == {"username": "user-1", "sid": "session-1"}
    assert again.json() == {"username": "user-1", "sid": "session-2"}
    assert anonymous.json() == {"username": None, "sid": None}
    users = get_user_model().objects.all()
    assert [u.username for u in users] == ["user-1"]
    assert not users[0].has_usable_password()


def test_middleware_refuses_a_bad_token_with_a_bearer_challenge(issuer: Issuer, verifier: PassgateVerifier) -> None:
    answer = Client().get("/whoami", **bearer(issuer.token(aud="https://other.example")))

    assert answer.status_code == 401
    assert answer["WWW-Authenticate"] == 'Bearer error="invalid_token", error_description="wrong_audience"'
    assert get_user_model().objects.count() == 0


def test_without_create_users_only_existing_users_sign_in(issuer: Issuer, verifier: PassgateVerifier) -> None:
    with override_settings(PASSGATE={"VERIFIER": verifier, "CREATE_USERS": False}):
        unknown = Client().get("/whoami", **bearer(issuer.token()))
        get_user_model().objects.create(username="user-1")
        known = Client().get("/whoami", **bearer(issuer.token()))

    assert unknown.status_code == 401
    assert unknown.json()["error"] == "no_local_user"
    assert known.json()["username"] == "user-1"


def test_decorator_requires_a_token_and_the_acr_and_skips_csrf(issuer: Issuer, verifier: PassgateVerifier) -> None:
    client = Client(enforce_csrf_checks=True)

    missing = client.post("/payout")
    weak = client.post("/payout", **bearer(issuer.token(acr="phr")))
    strong = client.post("/payout", **bearer(issuer.token(acr="phrh")))

    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == "Bearer"
    assert weak.status_code == 403
    assert weak["WWW-Authenticate"] == (
        'Bearer error="insufficient_user_authentication", error_description="insufficient_acr", acr_values="phrh"'
    )
    assert strong.status_code == 200
    assert strong.json() == {"paid_by": "user-1"}


def test_drf_authentication_class(issuer: Issuer, verifier: PassgateVerifier, clock: Clock) -> None:
    client = Client()
    without_middleware = [m for m in settings.MIDDLEWARE if not m.startswith("passgate_client")]

    with override_settings(MIDDLEWARE=without_middleware):
        good = client.get("/api/orders", **bearer(issuer.token()))
        missing = client.get("/api/orders")
        expired = client.get("/api/orders", **bearer(issuer.token(exp=int(clock.now) - 600)))
        weak = client.get("/api/payouts", **bearer(issuer.token(acr="phr")))

    assert good.status_code == 200
    assert good.json() == {"username": "user-1", "amr": ["pop", "user", "mfa", "swk"]}
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == "Bearer"
    assert expired.status_code == 401
    assert expired["WWW-Authenticate"] == 'Bearer error="invalid_token", error_description="expired"'
    assert weak.status_code == 403
    assert 'error="insufficient_user_authentication"' in weak["WWW-Authenticate"]
    assert weak.json()["detail"] == "acr 'phr' is weaker than 'phrh'"


def test_drf_issuer_unreachable_is_a_503(issuer: Issuer, verifier: PassgateVerifier) -> None:
    token = issuer.token()
    issuer.stop()
    without_middleware = [m for m in settings.MIDDLEWARE if not m.startswith("passgate_client")]

    with override_settings(MIDDLEWARE=without_middleware):
        answer = Client().get("/api/orders", **bearer(token))
    middleware_answer = Client().get("/whoami", **bearer(token))

    assert answer.status_code == 503
    assert middleware_answer.status_code == 503
    assert middleware_answer.json()["error"] == "issuer_unreachable"


# -- the code-flow login views, against a real Passgate served over HTTP ---------------------------------------


@pytest.fixture(scope="module")
def passgate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served_passgate(tmp_path_factory.mktemp("passgate")) as issuer:
        yield issuer


@pytest.fixture
def person(passgate: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=passgate, headers={"Origin": passgate}) as client:
        sign_up_sync(client, f"grace-{secrets.token_hex(6)}")  # the served Passgate outlives each test
        yield client


@pytest.fixture
def login(passgate: str) -> Iterator[PassgateLogin]:
    login = PassgateLogin(issuer=passgate, client_id="shop", client_secret=SECRET, redirect_uri=CALLBACK)
    session = "django.contrib.sessions.backends.signed_cookies"
    with override_settings(PASSGATE_LOGIN={"LOGIN": login, "AFTER_LOGOUT": "/bye"}, SESSION_ENGINE=session):
        yield login


def authorize(person: httpx.Client, url: str) -> str:
    answer = person.get(url)
    assert answer.status_code == 302 and answer.headers["location"].startswith(CALLBACK + "?"), answer.text
    return urlsplit(answer.headers["location"]).query


def test_login_views_sign_in_and_out(login: PassgateLogin, person: httpx.Client) -> None:
    shop = Client(enforce_csrf_checks=True)
    assert shop.get("/orders").status_code == 401

    started = shop.get("/auth/login?next=/orders")
    back = shop.get("/auth/callback?" + authorize(person, started["Location"]))
    orders = shop.get("/orders")
    refused_without_csrf = shop.post("/auth/logout")

    assert started.status_code == 303 and back.status_code == 303 and back["Location"] == "/orders"
    assert orders.status_code == 200
    assert orders.json() == {"signed_in_as": person.get("/auth/session").json()["user"]["username"]}
    assert refused_without_csrf.status_code == 403 and shop.get("/orders").status_code == 200
    signed_out = Client().post("/auth/logout")
    assert signed_out.status_code == 303 and signed_out["Location"] == "/bye"


@pytest.mark.parametrize("next_path", ["//evil.example/", "https://evil.example/orders", "/\\evil.example"])
def test_login_views_never_send_the_person_to_another_site(
    login: PassgateLogin, person: httpx.Client, next_path: str
) -> None:
    shop = Client()
    started = shop.get("/auth/login?" + urlencode({"next": next_path}))
    back = shop.get("/auth/callback?" + authorize(person, started["Location"]))

    assert back.status_code == 303 and back["Location"] == "/"


def test_login_views_refuse_a_callback_they_did_not_start(login: PassgateLogin, person: httpx.Client) -> None:
    shop = Client()
    refused = shop.get("/auth/callback?" + authorize(person, login.begin()[0]))

    assert refused.status_code == 400 and b"state_mismatch" in refused.content
    assert shop.get("/orders").status_code == 401

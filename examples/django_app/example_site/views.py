import html

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token

from passgate_client.login_django import session_user


def page(title: str, body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>{body}",
        status=status,
    )


def home(request: HttpRequest) -> HttpResponse:
    user = session_user(request)
    if user is None:
        return page("Django example", '<p><a id=sign-in href="/auth/login">Sign in</a></p>')
    csrf = f'<input type=hidden name=csrfmiddlewaretoken value="{html.escape(get_token(request))}">'
    return page(
        "Django example",
        f"<p id=signed-in-as>Signed in as {html.escape(user.display_name)}</p>"
        '<p><a id=protected-link href="/protected">The protected page</a></p>'
        f'<form method=post action="/auth/logout">{csrf}<button id=sign-out type=submit>Sign out</button></form>',
    )


def protected(request: HttpRequest) -> HttpResponse:
    user = session_user(request)
    if user is None:
        sign_in = '<p><a id=sign-in href="/auth/login?next=/protected">Sign in</a> to see this page.</p>'
        return page("Sign in first", sign_in, status=401)
    return page("Protected page", f"<p id=protected-for>Only for {html.escape(user.display_name)}</p>")

"""A Django site whose people sign in with Passgate: the code flow, through passgate-client's login views.

    PASSGATE_ISSUER=http://localhost:8000 PASSGATE_CLIENT_ID=django-example \
    PASSGATE_CLIENT_SECRET=... APP_URL=http://localhost:8003 \
    python examples/django_app/manage.py runserver 8003

No database: the session is Django's signed cookie. (examples/README.md: registering the client with Passgate.)
"""

import os
import secrets
from urllib.parse import urlsplit

APP_URL = os.environ.get("APP_URL", "http://localhost:8003").rstrip("/")

# Without APP_SECRET_KEY, sessions last as long as the process.
SECRET_KEY = os.environ.get("APP_SECRET_KEY") or secrets.token_urlsafe(32)
DEBUG = False
ALLOWED_HOSTS = [urlsplit(APP_URL).hostname or "localhost", "127.0.0.1"]
CSRF_TRUSTED_ORIGINS = [APP_URL]
ROOT_URLCONF = "example_site.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
# Passgate on localhost:8000 shares the host's cookies: these names are the example's own.
SESSION_COOKIE_NAME = "django_example_session"
CSRF_COOKIE_NAME = "django_example_csrftoken"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = APP_URL.startswith("https://")
USE_TZ = True

PASSGATE_LOGIN = {
    "ISSUER": os.environ.get("PASSGATE_ISSUER", "http://localhost:8000"),
    "CLIENT_ID": os.environ.get("PASSGATE_CLIENT_ID", "django-example"),
    "CLIENT_SECRET": os.environ.get("PASSGATE_CLIENT_SECRET") or None,
    "REDIRECT_URI": f"{APP_URL}/auth/callback",
    "POST_LOGOUT_REDIRECT_URI": f"{APP_URL}/",
}

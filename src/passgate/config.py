"""Settings: from command-line flags, then PASSGATE_* environment variables, then a TOML file.

Validated at start-up so that a misconfigured server refuses to start with a message that says
what to change, instead of failing its first ceremony.
"""

from __future__ import annotations

import base64
import difflib
import ipaddress
import json
import logging
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from email.utils import formataddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from passgate.core.brand import Brand, is_asset_url, is_colour
from passgate.core.errors import InvalidClientMetadata
from passgate.core.oidc_clients import (
    DEFAULT_SCOPES,
    MIN_SECRET_LENGTH,
    OidcClient,
    canonical_scopes,
    check_client,
    hash_secret,
)
from passgate.core.policy import Policy, preset
from passgate.core.webhooks import RETRY_SECONDS
from passgate.i18n import LANGUAGES

log = logging.getLogger("passgate")


class ConfigError(ValueError):
    """The configuration is invalid; the message tells what to change."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    rp_id: str = "localhost"
    rp_name: str = "Passgate"
    # The site's look (core.brand): a logo and favicon (https URLs or paths under /static), colours as #rgb or
    # #rrggbb (empty: Passgate's own), and the small "powered by Passgate" line at the foot of the pages.
    brand_logo_url: str = ""
    brand_favicon_url: str = ""
    brand_color: str = ""  # buttons and links
    brand_text_color: str = ""  # text on brand_color
    brand_color_dark: str = ""  # buttons and links in dark mode; empty: brand_color
    brand_background: str = ""  # the page behind the card (light mode)
    powered_by: bool = True
    default_language: str = "en"  # the pages' and emails' language when the request names none Passgate has
    origins: tuple[str, ...] = ()  # default: http://localhost:<port>
    database_url: str = "sqlite:///passgate.db"
    database_pool_size: int = 20
    redis_url: str = ""
    workers: int = 1
    forwarded_allow_ips: tuple[str, ...] = ()  # proxies whose X-Forwarded-For / -Proto are believed
    policy: str = "consumer"  # the preset: consumer, enterprise, high-assurance, payments
    policy_overrides: Mapping[str, Any] = field(default_factory=dict)  # any Policy field, from [policy] in TOML
    user_verification: str = ""  # empty: the preset's
    challenge_timeout_seconds: int = 300
    session_idle_minutes: int = 12 * 60
    session_absolute_hours: int = 7 * 24
    max_body_bytes: int = 64 * 1024
    step_up_minutes: int = 5
    rate_limit_per_ip: int = 300  # ceremony steps per minute from one IP address; 0 turns the limit off
    rate_limit_per_account: int = 30  # ceremony steps per minute for one account; 0 turns the limit off
    magic_link_minutes: int = 15
    public_url: str = ""  # where links in emails point; default: the first origin
    smtp_host: str = ""  # empty: mail goes to the outbox folder instead
    smtp_port: int = 587
    smtp_security: str = "starttls"  # starttls, tls or none
    # "migrate": imported accounts may sign in with their old password (and are offered a passkey at once);
    # "off": no password sign-in at all, whatever hashes were imported.
    passwords: str = "off"
    smtp_username: str = ""
    smtp_password: str = ""
    mail_from: str = ""  # the sender; empty: "<rp_name> <noreply@<rp_id>>"
    outbox_dir: str = "outbox"
    mds_file: str = ""  # the verified FIDO metadata BLOB (written by `passgate mds refresh`); empty: no metadata
    mds_url: str = ""  # where the server refreshes the BLOB from, daily (e.g. https://mds3.fidoalliance.org/)
    cors_origins: tuple[str, ...] = ()  # other origins whose pages call the API with the person's cookies (CORS)
    related_origins: tuple[str, ...] = ()  # other sites' origins allowed to use this rp id (/.well-known/webauthn)
    ios_apps: tuple[str, ...] = ()  # "TEAMID.com.example.app": apple-app-site-association webcredentials
    android_apps: tuple[str, ...] = ()  # "com.example.app=AA:BB:...:FF" (SHA-256 signing-certificate fingerprint)
    # Seals private signing keys and queued mail, keys decoy credential ids. Unset: random per process, which only
    # a single process may run with (it is then lost at each restart).
    secret_key: str = ""
    session_token_audience: str = ""  # the `aud` of POST /auth/session/token's JWTs; default: public_url
    oidc_clients: tuple[Mapping[str, Any], ...] = ()  # [[oidc.clients]] tables of the file, as written there
    apps: tuple[Mapping[str, Any], ...] = ()  # [[apps]] tables of the file (apps of the passkey API)
    log_level: str = "info"
    log_format: str = "text"  # text (uvicorn's lines, as a terminal shows them) or json (one object per line)
    # /metrics on the main listener, for `Authorization: Bearer <metrics_token>` only; empty: not there (404).
    metrics_token: str = field(default="", repr=False)
    metrics_port: int = 0  # a second listener on host:metrics_port serving only /metrics, with no token; 0: none
    graceful_shutdown_seconds: int = 30  # after SIGTERM, how long requests in flight may take before they are cut
    # The FIDO2 conformance-test profile (web/conformance.py): for the conformance tools only, never in production.
    conformance: bool = False
    conformance_force: bool = False  # serve the profile even with an https origin that is not localhost
    # Test-only metadata: a folder of metadata statements (one JSON file each) and the MDS root trusted instead of
    # the pinned GlobalSign one (a PEM file, or the PEM itself).
    mds_statements_dir: str = ""
    mds_root_pem: str = ""
    webhooks: tuple[Mapping[str, Any], ...] = ()  # [[webhooks]] tables of the file: url, events, secret(s)
    # Deliveries to private, loopback, link-local (any non-global) addresses: refused unless this is true.
    webhooks_allow_private: bool = False
    webhook_timeout_seconds: int = 10  # to connect, and again to send and to read the answer
    # The waits between attempts (each drawn +-20% around its step); after the last, a delivery is given up.
    webhook_retry_seconds: tuple[float, ...] = RETRY_SECONDS

    @property
    def sender(self) -> str:
        return self.mail_from or formataddr((self.rp_name, f"noreply@{self.rp_id}"))

    @property
    def brand(self) -> Brand:
        return Brand(
            name=self.rp_name,
            logo_url=self.brand_logo_url,
            favicon_url=self.brand_favicon_url,
            color=self.brand_color,
            text_color=self.brand_text_color,
            color_dark=self.brand_color_dark,
            background=self.brand_background,
            powered_by=self.powered_by,
        )

    @property
    def allowed_origins(self) -> tuple[str, ...]:
        return self.origins or (f"http://{self.rp_id}:{self.port}",)

    @property
    def android_origins(self) -> tuple[str, ...]:
        """`android:apk-key-hash:` origins of the configured apps, as Android's Credential Manager sends them."""
        return tuple(
            android_origin(fingerprint) for _, fingerprint in (split_android_app(a) for a in self.android_apps)
        )

    @property
    def ceremony_origins(self) -> tuple[str, ...]:
        """Every origin a WebAuthn response may come from: this site, related sites, Android apps."""
        return self.allowed_origins + self.related_origins + self.android_origins

    @property
    def link_base(self) -> str:
        return (self.public_url or self.allowed_origins[0]).rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        return all(origin.startswith("https://") for origin in self.allowed_origins)

    @property
    def mds_root(self) -> str:
        """The MDS trust anchor as PEM text: `mds_root_pem` itself or the file it names; empty for the pinned one.

        Raises:
            OSError: the file cannot be read.
        """
        if not self.mds_root_pem or self.mds_root_pem.lstrip().startswith("-----BEGIN"):
            return self.mds_root_pem
        return Path(self.mds_root_pem).read_text(encoding="ascii")

    def effective_policy(self) -> Policy:
        """The preset with the configuration's overrides applied.

        Raises:
            ConfigError: an unknown preset or field, or an inconsistent combination.
        """
        overrides = dict(self.policy_overrides)
        overrides.setdefault("timeout_ms", self.challenge_timeout_seconds * 1000)
        if self.user_verification:
            overrides["user_verification"] = self.user_verification
        try:
            return preset(self.policy, **overrides)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"policy: {exc}") from exc

    def file_clients(self) -> dict[str, OidcClient]:
        """The OpenID Connect clients of the file's [[oidc.clients]] tables, by client_id.

        Raises:
            ConfigError: naming the client and the field: an unknown key, a value of the wrong type, a refused
                setting (see core.oidc_clients), a short secret or a client_id used twice.
        """
        clients: dict[str, OidcClient] = {}
        for number, table in enumerate(self.oidc_clients, start=1):
            client = _file_client(number, table)
            if client.client_id in clients:
                raise ConfigError(f"oidc.clients[{number}]: client_id {client.client_id!r} is used by another client.")
            clients[client.client_id] = client
        return clients

    def file_apps(self) -> list[dict[str, Any]]:
        """The apps of the file's [[apps]] tables: app_id, name, origins, rp_id (default: the server's), policy.

        Raises:
            ConfigError: naming the app and what is wrong.
        """
        from passgate.core.apps import check_app
        from passgate.core.errors import InvalidRequest

        found: list[dict[str, Any]] = []
        for number, table in enumerate(self.apps, start=1):
            unknown = set(table) - {"app_id", "name", "origins", "rp_id", "policy"}
            if unknown:
                raise ConfigError(f"apps[{number}]: unknown key(s) {', '.join(sorted(unknown))}.")
            app_id, origins = table.get("app_id"), table.get("origins")
            if not isinstance(app_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", app_id):
                raise ConfigError(f"apps[{number}]: app_id must be 1 to 32 letters, digits, - or _.")
            if app_id in {app["app_id"] for app in found}:
                raise ConfigError(f"apps[{number}]: app_id {app_id!r} is used by another app.")
            if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
                raise ConfigError(f"apps[{number}]: origins must be a list of origins.")
            name = str(table.get("name", app_id))
            cleaned = tuple(o.rstrip("/") for o in origins)
            rp_id = str(table.get("rp_id") or self.rp_id)
            policy = str(table.get("policy", ""))
            try:
                check_app(name, cleaned, rp_id, policy)
            except InvalidRequest as exc:
                raise ConfigError(f"apps[{number}]: {exc.message}") from exc
            app = {"app_id": app_id, "name": name, "origins": cleaned, "rp_id": rp_id, "policy": policy}
            found.append(app)
        return found

    def file_webhooks(self) -> list[dict[str, Any]]:
        """The endpoints of the file's [[webhooks]] tables: url, events and their secrets (newest first: `secret`,
        then `previous_secret`, or the list `secrets`).

        Raises:
            ConfigError: naming the endpoint and what is wrong.
        """
        from passgate.core.errors import InvalidRequest
        from passgate.core.webhooks import check_event_types, check_secret, check_url

        found: list[dict[str, Any]] = []
        for number, table in enumerate(self.webhooks, start=1):
            unknown = set(table) - {"url", "events", "secret", "previous_secret", "secrets"}
            if unknown:
                raise ConfigError(f"webhooks[{number}]: unknown key(s) {', '.join(sorted(unknown))}.")
            url, events = table.get("url"), table.get("events", ["*"])
            secrets_ = table.get("secrets") or [table.get("secret"), table.get("previous_secret")]
            secrets_ = [secret for secret in secrets_ if secret]
            if not isinstance(url, str):
                raise ConfigError(f"webhooks[{number}]: url must be the endpoint's URL.")
            if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
                raise ConfigError(f"webhooks[{number}]: events must be a list of event types, or ['*'].")
            if not secrets_ or not all(isinstance(secret, str) for secret in secrets_) or len(secrets_) > 2:
                raise ConfigError(
                    f"webhooks[{number}]: secret must be set (whsec_...; with previous_secret while it rotates)."
                )
            if url in {endpoint["url"] for endpoint in found}:
                raise ConfigError(f"webhooks[{number}]: url {url!r} is another endpoint's.")
            try:
                endpoint = {
                    "url": check_url(url),
                    "events": check_event_types(events),
                    "secrets": tuple(check_secret(secret) for secret in secrets_),
                }
            except InvalidRequest as exc:
                raise ConfigError(f"webhooks[{number}]: {exc.message}") from exc
            found.append(endpoint)
        return found


def _app_tables(value: object) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(value, list) or not all(isinstance(table, dict) for table in value):
        raise ConfigError("apps must be [[apps]] tables.")
    return tuple(value)


_INT_FIELDS = {f.name for f in fields(Settings) if f.type == "int"}
_BOOL_FIELDS = {f.name for f in fields(Settings) if f.type == "bool"}
# Tables of the file: no environment variable sets them.
_FILE_ONLY = {"policy_overrides", "oidc_clients", "apps", "webhooks"}
_TUPLE_FIELDS = {f.name for f in fields(Settings) if f.type.startswith("tuple")} - _FILE_ONLY
_FINGERPRINT = re.compile(r"^([0-9A-F]{2}:){31}[0-9A-F]{2}$")
_IOS_APP = re.compile(r"^[A-Z0-9]{10}\.[A-Za-z0-9.-]+$")
_PACKAGE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")


def split_android_app(entry: str) -> tuple[str, str]:
    """("com.example.app", "AA:...:FF") from "com.example.app=AA:...:FF"."""
    package, _, fingerprint = entry.partition("=")
    return package.strip(), fingerprint.strip().upper()


def android_origin(fingerprint: str) -> str:
    digest = bytes.fromhex(fingerprint.replace(":", ""))
    return "android:apk-key-hash:" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


# What Kubernetes puts in every container of the namespace for a Service named "passgate" (service links), in
# the shapes Docker's container links introduced: the name after PASSGATE_, and what its value looks like.
_ADDRESS = re.compile(r"[0-9A-Fa-f.:]+")
_NUMBER = re.compile(r"[0-9]+")
_LINK_URL = re.compile(r"(tcp|udp|sctp)://[^/\s]+:[0-9]+")
_SERVICE_LINKS = (
    (re.compile(r"SERVICE_HOST"), _ADDRESS),
    (re.compile(r"SERVICE_PORT(_[A-Z0-9_]+)?"), _NUMBER),
    (re.compile(r"PORT"), _LINK_URL),
    (re.compile(r"PORT_[0-9]+_(TCP|UDP|SCTP)"), _LINK_URL),
    (re.compile(r"PORT_[0-9]+_(TCP|UDP|SCTP)_PROTO"), re.compile(r"tcp|udp|sctp")),
    (re.compile(r"PORT_[0-9]+_(TCP|UDP|SCTP)_PORT"), _NUMBER),
    (re.compile(r"PORT_[0-9]+_(TCP|UDP|SCTP)_ADDR"), _ADDRESS),
)


def load_settings(
    flags: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | Path | None = None,
    *,
    serving: bool = True,
) -> Settings:
    """Merge the three sources (flags win over environment, environment over file) and validate.

    `serving`: the settings are a server's, so with more than one process or node they need a secret_key (a
    command such as `passgate migrate` uses none).

    Raises:
        ConfigError: an unknown key, a value of the wrong type or an inconsistent combination.
    """
    values: dict[str, Any] = {}
    environ = environ or {}
    config_file = config_file or environ.get("PASSGATE_CONFIG")
    if config_file:
        path = Path(config_file)
        try:
            document = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"Cannot read the configuration file {path}: {exc}") from exc
        values.update(document.get("passgate", document))
        if isinstance(values.get("policy"), dict):  # [policy] table: preset = "...", then any Policy field
            table = dict(values["policy"])
            values["policy"] = table.pop("preset", "consumer")
            values["policy_overrides"] = table
        if "oidc" in values:
            values["oidc_clients"] = _oidc_tables(values.pop("oidc"))
        if "apps" in values:
            values["apps"] = _app_tables(values["apps"])
        if "webhooks" in values:
            if not isinstance(values["webhooks"], list) or not all(isinstance(t, dict) for t in values["webhooks"]):
                raise ConfigError("webhooks must be [[webhooks]] tables.")
            values["webhooks"] = tuple(values["webhooks"])
    known = {f.name for f in fields(Settings)}
    links = sorted(key for key, raw in environ.items() if is_service_link(key, raw))
    if links:
        log.warning(
            "Ignoring %s: Kubernetes (or Docker) sets these for a service or link named passgate; they are not"
            " Passgate settings. Set enableServiceLinks: false in the pod spec to keep them out.",
            ", ".join(links),
        )
    for key, raw in environ.items():
        if key.startswith("PASSGATE_") and key != "PASSGATE_CONFIG" and key not in links:
            name = key.removeprefix("PASSGATE_").lower()
            if name not in known or name in _FILE_ONLY:
                raise ConfigError(f"Unknown setting {key}.{_did_you_mean(name, known - _FILE_ONLY, 'PASSGATE_')}")
            values[name] = raw.split(",") if name in _TUPLE_FIELDS else raw
    values.update({k: v for k, v in (flags or {}).items() if v is not None})
    unknown = set(values) - known
    if unknown:
        hints = "".join(_did_you_mean(name, known) for name in sorted(unknown))
        raise ConfigError(f"Unknown setting(s): {', '.join(sorted(unknown))}.{hints}")
    for name in _INT_FIELDS & set(values):
        try:
            values[name] = int(values[name])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name} must be a whole number, not {values[name]!r}.") from exc
    for name in _BOOL_FIELDS & set(values):
        values[name] = _boolean(name, values[name])
    for name in _TUPLE_FIELDS & set(values):
        items = values[name]
        items = [items] if isinstance(items, str) else items
        values[name] = tuple(str(o).strip().rstrip("/") for o in items if str(o).strip())
    _typed_webhook_settings(values)
    settings = Settings(**values)
    validate(settings, serving=serving)
    if not settings.secret_key:
        settings = replace(settings, secret_key=secrets.token_urlsafe(32))
    return settings


def _boolean(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be true or false, not {value!r}.")


def _typed_webhook_settings(values: dict[str, Any]) -> None:
    allow = values.get("webhooks_allow_private")
    if isinstance(allow, str):
        if allow.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"webhooks_allow_private must be true or false, not {allow!r}.")
        values["webhooks_allow_private"] = allow.strip().lower() in ("true", "1", "yes")
    elif allow is not None and not isinstance(allow, bool):
        raise ConfigError("webhooks_allow_private must be true or false.")
    if "webhook_retry_seconds" in values:
        try:
            values["webhook_retry_seconds"] = tuple(float(step) for step in values["webhook_retry_seconds"])
        except (TypeError, ValueError) as exc:
            raise ConfigError("webhook_retry_seconds must be a list of seconds, e.g. [5, 300, 1800].") from exc


def is_service_link(key: str, value: str) -> bool:
    """True for a service-link variable such as PASSGATE_PORT=tcp://10.0.0.5:8000 (a plain number is the port)."""
    if not key.startswith("PASSGATE_"):
        return False
    name = key.removeprefix("PASSGATE_")
    return any(shape.fullmatch(name) and looks.fullmatch(value) for shape, looks in _SERVICE_LINKS)


def _did_you_mean(name: str, known: set[str], prefix: str = "") -> str:
    """A hint naming the setting closest to a misspelt name (" Did you mean PASSGATE_RP_ID?"), or ""."""
    closest = difflib.get_close_matches(name, sorted(known), n=1)
    if not closest:
        return ""
    return f" Did you mean {prefix}{closest[0].upper()}?" if prefix else f" Did you mean {closest[0]}?"


def to_json(settings: Settings) -> str:
    """The settings as JSON, to hand them to worker processes (secret key included: workers must agree)."""
    return json.dumps(asdict(settings))


def from_json(text: str) -> Settings:
    fields_ = json.loads(text)
    for name in _TUPLE_FIELDS | {"oidc_clients", "webhooks"}:
        fields_[name] = tuple(fields_[name])
    settings = Settings(**fields_)
    validate(settings)
    return settings


def shared(settings: Settings) -> str | None:
    """Why more than one process serves this configuration (so all must agree on secret_key), or None."""
    if settings.workers > 1:
        return f"workers is {settings.workers}"
    if settings.redis_url:
        return "redis_url is set"
    if settings.database_url.startswith("postgresql"):
        return "database_url is a PostgreSQL database"
    return None


def validate(settings: Settings, *, serving: bool = True) -> None:
    """Raises ConfigError with a message naming the setting to change.

    A server (`serving`) that is one of several processes or nodes must have a secret_key: an unset one is drawn at
    random per process, and the processes must agree on it.
    """
    reason = shared(settings)
    if serving and reason and not settings.secret_key:
        raise ConfigError(
            f"secret_key (PASSGATE_SECRET_KEY) must be set: {reason}, so more than one process or node may serve this"
            " site, and all of them need the same secret to read the signing keys and the queued mail. Generate one"
            " with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    rp_id = settings.rp_id
    if rp_id != rp_id.lower() or not _DOMAIN.match(rp_id) or _is_ip(rp_id):
        raise ConfigError(f"rp_id {rp_id!r} must be a lower-case domain name such as 'example.com' or 'localhost'.")
    for origin in settings.allowed_origins:
        parts = urlsplit(origin)
        host = parts.hostname or ""
        if parts.scheme not in ("https", "http") or not host or parts.path or parts.query:
            raise ConfigError(f"Origin {origin!r} must look like https://host[:port], with no path.")
        if parts.scheme == "http" and host != "localhost" and not host.endswith(".localhost"):
            raise ConfigError(f"Origin {origin!r} must use https (plain http is allowed only for localhost).")
        if host != rp_id and not host.endswith("." + rp_id):
            raise ConfigError(
                f"Origin {origin!r}: its host {host!r} is neither the rp_id {rp_id!r} nor a subdomain of it."
            )
    if settings.user_verification not in ("", "required", "preferred", "discouraged"):
        raise ConfigError("user_verification must be 'required', 'preferred' or 'discouraged'.")
    settings.effective_policy()  # raises ConfigError naming the policy setting
    settings.file_clients()  # raises ConfigError naming the client and its field
    settings.file_apps()  # raises ConfigError naming the app
    if not 30 <= settings.challenge_timeout_seconds <= 3600:
        raise ConfigError("challenge_timeout_seconds must be between 30 and 3600.")
    if settings.session_idle_minutes < 1 or settings.session_absolute_hours < 1:
        raise ConfigError("Session lifetimes must be positive.")
    if settings.session_idle_minutes > settings.session_absolute_hours * 60:
        raise ConfigError("session_idle_minutes cannot exceed the absolute lifetime (session_absolute_hours).")
    if not 1 <= settings.port <= 65535:
        raise ConfigError(f"port {settings.port} is out of range.")
    if not settings.database_url.startswith(("sqlite", "postgresql")):
        raise ConfigError("database_url must be a sqlite:/// or postgresql:// URL.")
    if settings.redis_url and not settings.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("redis_url must be a redis://, rediss:// or unix:// URL.")
    if not 1 <= settings.workers <= 64:
        raise ConfigError("workers must be between 1 and 64.")
    for proxy in settings.forwarded_allow_ips:
        if proxy != "*" and not _is_network(proxy):
            raise ConfigError(
                f"forwarded_allow_ips: {proxy!r} is not an IP address, a network such as 10.0.0.0/8, or '*'."
            )
    _validate_cors_origins(settings)
    for origin in settings.related_origins:
        parts = urlsplit(origin)
        if parts.scheme != "https" or not parts.hostname or parts.path:
            raise ConfigError(f"Related origin {origin!r} must look like https://host[:port].")
    for app in settings.ios_apps:
        if not _IOS_APP.match(app):
            raise ConfigError(f"iOS app {app!r} must be TEAMID.bundle.identifier (a 10-character team id).")
    for app in settings.android_apps:
        package, fingerprint = split_android_app(app)
        if not _PACKAGE.match(package) or not _FINGERPRINT.match(fingerprint):
            raise ConfigError(f"Android app {app!r} must be package=SHA-256 fingerprint (32 hex pairs with colons).")
    if settings.passwords not in ("off", "migrate"):
        raise ConfigError("passwords must be 'off' or 'migrate'.")
    if settings.smtp_security not in ("starttls", "tls", "none"):
        raise ConfigError("smtp_security must be 'starttls', 'tls' or 'none'.")
    if not 1 <= settings.step_up_minutes <= 60:
        raise ConfigError("step_up_minutes must be between 1 and 60.")
    if settings.default_language not in LANGUAGES:
        raise ConfigError(f"default_language must be one of {', '.join(LANGUAGES)}, not {settings.default_language!r}.")
    if not 1 <= settings.magic_link_minutes <= 60:
        raise ConfigError("magic_link_minutes must be between 1 and 60.")
    if settings.public_url and settings.public_url.rstrip("/") not in settings.allowed_origins:
        raise ConfigError("public_url must be one of the allowed origins: links in emails open pages of this site.")
    if settings.max_body_bytes < 4096:
        raise ConfigError("max_body_bytes must be at least 4096.")
    _validate_operations(settings)
    _validate_brand(settings)


def _validate_brand(settings: Settings) -> None:
    if not settings.rp_name.strip() or len(settings.rp_name) > 64 or not settings.rp_name.isprintable():
        raise ConfigError("rp_name must be your site's name: 1 to 64 printable characters.")
    for name in ("brand_logo_url", "brand_favicon_url"):
        value = getattr(settings, name)
        if value and (len(value) > 2048 or not is_asset_url(value)):
            raise ConfigError(
                f"{name} {value!r} must be an https:// URL or a path under /static (such as /static/logo.svg),"
                " without spaces or quotes."
            )
    for name in ("brand_color", "brand_text_color", "brand_color_dark", "brand_background"):
        value = getattr(settings, name)
        if value and not is_colour(value):
            raise ConfigError(f"{name} {value!r} must be a CSS colour written #rgb or #rrggbb, such as #2450c8.")


def _validate_operations(settings: Settings) -> None:
    if settings.log_format not in ("text", "json"):
        raise ConfigError("log_format must be 'text' or 'json'.")
    if settings.metrics_token and len(settings.metrics_token) < 16:
        raise ConfigError(
            "metrics_token must be at least 16 characters"
            " (for example the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))')."
        )
    if settings.metrics_port and not 1 <= settings.metrics_port <= 65535:
        raise ConfigError(f"metrics_port {settings.metrics_port} is out of range (0 turns the listener off).")
    if settings.metrics_port and settings.metrics_port == settings.port:
        raise ConfigError("metrics_port must differ from port: the metrics listener is a second one.")
    if not 1 <= settings.graceful_shutdown_seconds <= 600:
        raise ConfigError("graceful_shutdown_seconds must be between 1 and 600.")
    if not 1 <= settings.webhook_timeout_seconds <= 60:
        raise ConfigError("webhook_timeout_seconds must be between 1 and 60.")
    if not settings.webhook_retry_seconds or any(step <= 0 for step in settings.webhook_retry_seconds):
        raise ConfigError("webhook_retry_seconds must be a list of positive waits in seconds.")
    settings.file_webhooks()  # raises ConfigError naming the endpoint
    _validate_conformance(settings)


def production_origins(settings: Settings) -> tuple[str, ...]:
    """The configured origins that look like a production site's: https, on a host other than localhost."""
    return tuple(
        origin
        for origin in settings.allowed_origins
        if urlsplit(origin).scheme == "https"
        and (urlsplit(origin).hostname or "") != "localhost"
        and not (urlsplit(origin).hostname or "").endswith(".localhost")
    )


def _validate_conformance(settings: Settings) -> None:
    if settings.conformance and not settings.conformance_force and production_origins(settings):
        raise ConfigError(
            f"conformance = true serves the FIDO conformance-test endpoints, which are for test servers only, but"
            f" {production_origins(settings)[0]} looks like a production site. Use a localhost origin, or set"
            " conformance_force = true if this really is a test server."
        )
    if settings.conformance_force and not settings.conformance:
        raise ConfigError("conformance_force needs conformance = true.")
    if settings.mds_statements_dir and not Path(settings.mds_statements_dir).is_dir():
        raise ConfigError(f"mds_statements_dir {settings.mds_statements_dir!r} is not a folder.")
    if settings.mds_root_pem:
        try:
            x509.load_pem_x509_certificate(settings.mds_root.encode("ascii"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"mds_root_pem is neither a PEM certificate nor a file holding one: {exc}") from exc


def _validate_cors_origins(settings: Settings) -> None:
    for origin in settings.cors_origins:
        parts = urlsplit(origin)
        if origin == "*" or parts.scheme not in ("https", "http") or not parts.hostname or parts.path or parts.query:
            raise ConfigError(f"cors_origins: {origin!r} must look like https://host[:port], with no path (never *).")
        if origin != origin.lower():
            raise ConfigError(f"cors_origins: write {origin!r} in lower case, as browsers send it.")
        if origin not in settings.allowed_origins:
            raise ConfigError(
                f"cors_origins: {origin!r} must also be one of the origins: its pages run passkey ceremonies against"
                " this server, so WebAuthn responses and requests from it must be accepted too."
            )


_CLIENT_KEYS: dict[str, type[Any]] = {
    "client_id": str,
    "name": str,
    "client_secret": str,
    "redirect_uris": list,
    "post_logout_redirect_uris": list,
    "backchannel_logout_uri": str,
    "scopes": list,
    "first_party": bool,
}


def _oidc_tables(oidc: Any) -> tuple[Mapping[str, Any], ...]:
    """The [[oidc.clients]] tables of the [oidc] table."""
    if not isinstance(oidc, dict):
        raise ConfigError("oidc must be a table, with its clients as [[oidc.clients]] tables.")
    unknown = sorted(set(oidc) - {"clients"})
    if unknown:
        raise ConfigError(f"oidc: unknown key {unknown[0]!r} (the [oidc] table holds [[oidc.clients]] tables).")
    clients = oidc.get("clients", [])
    if not isinstance(clients, list) or not all(isinstance(table, dict) for table in clients):
        raise ConfigError("oidc.clients must be a list of tables: write each client as an [[oidc.clients]] table.")
    return tuple(clients)


def _file_client(number: int, table: Mapping[str, Any]) -> OidcClient:
    client_id = table.get("client_id")
    where = f"oidc.clients[{number}]" + (f" ({client_id!r})" if isinstance(client_id, str) else "")
    for key, value in table.items():
        if key not in _CLIENT_KEYS:
            hint = _did_you_mean(key, set(_CLIENT_KEYS))
            raise ConfigError(f"{where}: unknown key {key!r}.{hint}")
        kind = _CLIENT_KEYS[key]
        if not isinstance(value, kind) or (isinstance(value, list) and not all(isinstance(i, str) for i in value)):
            shape = {str: "a string", list: "a list of strings", bool: "true or false"}[kind]
            raise ConfigError(f"{where}: {key} must be {shape}.")
    if not isinstance(client_id, str):
        raise ConfigError(f"{where}: client_id is required.")
    secret = table.get("client_secret")
    if secret is not None and len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"{where}: client_secret must be at least {MIN_SECRET_LENGTH} characters"
            " (for example the output of: python -c 'import secrets; print(secrets.token_urlsafe(32))')."
        )
    client = OidcClient(
        client_id=client_id,
        name=table.get("name", client_id),
        secret_hash=None if secret is None else hash_secret(secret),
        redirect_uris=tuple(table.get("redirect_uris", ())),
        post_logout_redirect_uris=tuple(table.get("post_logout_redirect_uris", ())),
        backchannel_logout_uri=table.get("backchannel_logout_uri"),
        scopes=canonical_scopes(table.get("scopes", DEFAULT_SCOPES)),
        first_party=table.get("first_party", False),
        source="file",
    )
    try:
        check_client(client)
    except InvalidClientMetadata as exc:
        raise ConfigError(f"{where}: {exc.message}.") from exc
    return client


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True

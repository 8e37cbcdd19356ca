"""The `passgate` command: the parser and serve, migrate and policy; one module here per other command group
(users, sessions, admin, apps, clients, keys, mail, mds, events, webhooks)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from passgate.config import ConfigError, Settings, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="passgate", description="Passgate, a self-hostable passkey sign-in server.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server (applies migrations first)")
    serve.add_argument("--config", help="TOML configuration file (also PASSGATE_CONFIG)")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8000)")
    serve.add_argument("--rp-id", dest="rp_id", help="relying party id: the site's domain (default localhost)")
    serve.add_argument("--rp-name", dest="rp_name", help="name shown in passkey prompts (default Passgate)")
    serve.add_argument(
        "--origin",
        dest="origins",
        action="append",
        help="an allowed origin, e.g. https://example.com (repeatable; default http://<rp id>:<port>)",
    )
    serve.add_argument("--database-url", dest="database_url", help="sqlite:///passgate.db (default) or postgresql://")
    serve.add_argument(
        "--redis-url", dest="redis_url", help="redis://host:port/db for rate-limit counters and a session cache"
    )
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")
    serve.add_argument(
        "--forwarded-allow-ips",
        dest="forwarded_allow_ips",
        action="append",
        help="a proxy (IP address or network) whose X-Forwarded-For names the client (repeatable; default none)",
    )
    serve.add_argument(
        "--user-verification", dest="user_verification", choices=["required", "preferred", "discouraged"]
    )
    serve.add_argument("--policy", help="preset: consumer (default), enterprise, high-assurance, payments")
    serve.add_argument("--log-level", dest="log_level", choices=["critical", "error", "warning", "info", "debug"])

    events = commands.add_parser("events", help="list recorded events, newest first")
    events.add_argument("--config")
    events.add_argument("--database-url", dest="database_url")
    events.add_argument("--user", help="a username or user id")
    events.add_argument("--type", help="event type, e.g. sign_in, passkey.register, passkey.remove")
    events.add_argument("--outcome", choices=["success", "failure"])
    events.add_argument("--since", help="ISO date or time, e.g. 2026-11-01 or 2026-11-01T12:00")
    events.add_argument("--limit", type=int, default=50)
    events.add_argument("--json", action="store_true", help="JSON lines instead of a table")

    policy = commands.add_parser("policy", help="the effective relying-party policy")
    policy.add_argument("action", choices=["show"])
    policy.add_argument("--config")
    policy.add_argument("--policy", help="preset: consumer, enterprise, high-assurance, payments")

    mds = commands.add_parser("mds", help="FIDO metadata (MDS3)")
    mds.add_argument("action", choices=["refresh"])
    mds.add_argument("--config")
    source = mds.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="a downloaded BLOB (JWS)")
    source.add_argument("--url", help="the BLOB's URL, e.g. https://mds3.fidoalliance.org/")
    mds.add_argument("--mds-file", dest="mds_file", help="where the verified BLOB is kept (the mds_file setting)")
    mds.add_argument(
        "--crl",
        action="append",
        default=[],
        help="a CRL file to check the chain with (repeatable); with --url the chain's own CRLs are fetched too",
    )

    mail = commands.add_parser("mail", help="the mail queue: send what is due now, or list what waits or failed")
    mail.add_argument("action", choices=["flush", "list"])
    mail.add_argument("--config")
    mail.add_argument("--database-url", dest="database_url")

    keys = commands.add_parser("keys", help="token signing keys: rotate them, or list them with their lives")
    keys.add_argument("action", choices=["rotate", "list"])
    keys.add_argument("--config")
    keys.add_argument("--database-url", dest="database_url")

    from passgate.cli import admin, apps, clients, sessions, users, webhooks

    clients.add_parser(commands)
    users.add_parser(commands)
    sessions.add_parser(commands)
    admin.add_parser(commands)
    apps.add_parser(commands)
    webhooks.add_parser(commands)

    migrate = commands.add_parser("migrate", help="apply database migrations and exit")
    migrate.add_argument("--config")
    migrate.add_argument("--database-url", dest="database_url")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    local: tuple[str, ...] = (
        *("command", "config", "user", "type", "outcome", "since", "limit", "json", "action", "file", "url", "crl"),
    )
    if arguments.command == "clients":
        from passgate.cli.clients import ARGUMENTS

        local += ARGUMENTS
    if arguments.command == "users":
        from passgate.cli.users import ARGUMENTS as USER_ARGUMENTS

        local += USER_ARGUMENTS
    if arguments.command == "apps":
        from passgate.cli.apps import ARGUMENTS as APP_ARGUMENTS

        local += APP_ARGUMENTS
    if arguments.command == "webhooks":
        from passgate.cli.webhooks import ARGUMENTS as WEBHOOK_ARGUMENTS

        local += WEBHOOK_ARGUMENTS
    if arguments.command == "admin":
        from passgate.cli.admin import ARGUMENTS as ADMIN_ARGUMENTS

        local += ADMIN_ARGUMENTS
    if arguments.command == "sessions":
        from passgate.cli.sessions import ARGUMENTS as SESSION_ARGUMENTS

        local += SESSION_ARGUMENTS
    flags: dict[str, Any] = {k: v for k, v in vars(arguments).items() if k not in local}
    try:
        settings = load_settings(flags, os.environ, arguments.config, serving=arguments.command == "serve")
    except ConfigError as exc:
        print(f"passgate: configuration error: {exc}", file=sys.stderr)
        return 2
    if arguments.command == "migrate":
        return _migrate(settings)
    if arguments.command == "mds":
        return _refresh_metadata(settings, arguments.file, arguments.url, arguments.crl)
    if arguments.command == "policy":
        return _show_policy(settings)
    if arguments.command == "mail":
        return _mail(settings, arguments.action, load_settings(flags, os.environ, arguments.config, serving=False))
    if arguments.command == "keys":
        return _keys(settings, arguments.action, load_settings(flags, os.environ, arguments.config, serving=False))
    if arguments.command == "clients":
        from passgate.cli import clients

        return clients.run(settings, arguments)
    if arguments.command == "apps":
        from passgate.cli import apps

        return apps.run(settings, arguments)
    if arguments.command == "users":
        from passgate.cli import users

        return users.run(settings, arguments, load_settings(flags, os.environ, arguments.config, serving=False))
    if arguments.command == "webhooks":
        from passgate.cli import webhooks

        return webhooks.run(settings, arguments, load_settings(flags, os.environ, arguments.config, serving=False))
    if arguments.command == "admin":
        from passgate.cli import admin

        return admin.run(settings, arguments)
    if arguments.command == "sessions":
        from passgate.cli import sessions

        return sessions.run(settings, arguments, load_settings(flags, os.environ, arguments.config, serving=False))
    if arguments.command == "events":
        from passgate.cli.events import list_events

        return list_events(settings, arguments)
    return _serve(settings)


def _mail(settings: Settings, action: str, again: Settings) -> int:
    from passgate.cli import mail

    if action == "list":
        return mail.show(settings)
    # Unset, the secret key is drawn at random each time settings load: two loads then disagree. Queued bodies
    # are sealed under the server's key, so without it nothing could be read (only pushed back).
    if settings.secret_key != again.secret_key:
        print(
            "passgate: set secret_key (PASSGATE_SECRET_KEY) as the server has it to send its queued mail",
            file=sys.stderr,
        )
        return 2
    return mail.flush(settings)


def _keys(settings: Settings, action: str, again: Settings) -> int:
    from passgate.cli import keys

    if action == "list":
        return keys.show(settings)
    # New private keys are sealed under secret_key: under a random one (unset), no server could use them.
    if settings.secret_key != again.secret_key:
        print("passgate: set secret_key (PASSGATE_SECRET_KEY) as the server has it to rotate its keys", file=sys.stderr)
        return 2
    return keys.rotate(settings)


def _refresh_metadata(settings: Settings, file: str | None, url: str | None, crls: list[str]) -> int:
    from datetime import UTC, datetime
    from pathlib import Path

    from passgate.cli.mds import refresh

    if not settings.mds_file:
        print("passgate: set mds_file (--mds-file, PASSGATE_MDS_FILE) to where the BLOB is kept", file=sys.stderr)
        return 2
    return refresh(file, url, Path(settings.mds_file), datetime.now(UTC), crl_files=crls)


def _show_policy(settings: Settings) -> int:
    import dataclasses
    import json

    from passgate.core.cose import ALGORITHM_NAMES

    policy = settings.effective_policy()
    shown: dict[str, Any] = {}
    for field in dataclasses.fields(policy):
        value = getattr(policy, field.name)
        if field.name == "allowed_algorithms":
            value = [ALGORITHM_NAMES[alg] for alg in value]
        elif field.name == "trusted_roots":
            value = {fmt: f"{len(pems)} certificate(s)" for fmt, pems in value.items()}
        elif isinstance(value, frozenset | tuple):
            value = sorted(value) if isinstance(value, frozenset) else list(value)
        shown[field.name] = value
    print(json.dumps(shown, indent=2))
    return 0


def _migrate(settings: Settings) -> int:
    from passgate.store.migrate import upgrade

    upgrade(settings.database_url)
    print(f"passgate: database is up to date ({_redacted(settings.database_url)})")
    return 0


def _serve(settings: Settings) -> int:
    from passgate.web.server import serve

    _migrate(settings)
    origins = ", ".join(settings.allowed_origins)
    print(
        f"passgate: serving rp id {settings.rp_id!r} for {origins} on http://{settings.host}:{settings.port}"
        f" with {settings.workers} worker(s)",
        flush=True,
    )
    return serve(settings)


def _redacted(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(database_url).render_as_string(hide_password=True)

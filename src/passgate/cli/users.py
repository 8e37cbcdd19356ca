"""`passgate users ...`: an administrator acts on accounts.

`list`, `show NAME`, `disable NAME`, `enable NAME`, `delete NAME --yes`: look at accounts and act on them, tables
for people and `--json` for scripts. `disable` ends the person's sessions at once and refuses every sign-in and
recovery until `enable`; `delete` erases the person's data (their events stay, pseudonymised). Each is an event
naming the admin key `cli` (passgate.service.admin).

`sign-out NAME` ends every session of one person, everywhere: each client that received tokens for one of the
sessions is told by back-channel logout (queued in the outbox, delivered by the server's worker), and every
refresh token the person's sign-ins granted is revoked.

`import FILE` takes in the accounts of another system (passgate.service.imports); `stats` tells how far the
accounts have moved from passwords.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from passgate.cli.admin import actor, context, table
from passgate.config import Settings
from passgate.core.encoding import b64url_encode
from passgate.core.errors import ClientError, InvalidRequest
from passgate.service import admin, imports, sessions
from passgate.service.accounts import clean_username
from passgate.service.context import Client, Context
from passgate.store.base import User
from passgate.store.factory import open_storage
from passgate.store.migrate import upgrade

ARGUMENTS = ("username", "file", "dry_run", "json", "user", "search", "cursor", "yes")

IMPORT_HELP = """\
Import accounts from JSON Lines, one account a line: username (required), displayName, email, emailVerified,
externalId, createdAt (RFC 3339), password (a hash as the old system stored it), userHandle (base64url; required
with passkeys) and passkeys (credentialId, publicKey as COSE_Key or SPKI DER base64url or PEM, algorithm,
signCount, transports, aaguid, backupEligible, backedUp, nickname, createdAt, lastUsedAt).

Each account is imported with its passkeys and password in one step, or not at all; the file is not one
transaction: the lines that are fine are imported even when others are refused. Running the same file again
changes nothing (every account is skipped as already imported).

Exit status: 0 when no line was refused, 1 when some were (the others are imported), 2 when the file cannot be
read or the command is wrong.
"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = commands.add_parser(
        "users",
        help="act on accounts as an administrator: list, show, disable, enable, delete, sign out, import, stats",
    )
    actions = users.add_subparsers(dest="action", required=True)
    for each in _add_account_parsers(actions):
        each.add_argument("--config")
        each.add_argument("--database-url", dest="database_url")
    sign_out = actions.add_parser(
        "sign-out", help="end every session of the person, tell the apps (back-channel logout), revoke refresh tokens"
    )
    sign_out.add_argument("username")
    sign_out.add_argument("--config")
    sign_out.add_argument("--database-url", dest="database_url")
    importing = actions.add_parser(
        "import",
        help="import accounts (passkeys, password hashes) from another system: JSON Lines, one account a line",
        description=IMPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    importing.add_argument("file", help="the JSON Lines file")
    importing.add_argument("--dry-run", dest="dry_run", action="store_true", help="check everything, write nothing")
    importing.add_argument("--json", action="store_true", help="print the report as JSON (the summary goes to stderr)")
    importing.add_argument("--config")
    importing.add_argument("--database-url", dest="database_url")
    stats = actions.add_parser("stats", help="how many accounts still have or depend on a password, by hash scheme")
    stats.add_argument("--json", action="store_true", help="print the numbers as JSON")
    stats.add_argument("--config")
    stats.add_argument("--database-url", dest="database_url")


def run(settings: Settings, arguments: argparse.Namespace, again: Settings) -> int:
    if arguments.action in ACTIONS:
        return _run_account_action(settings, arguments, again)
    if arguments.action == "import":
        return _import(settings, Path(arguments.file), dry_run=arguments.dry_run, as_json=arguments.json)
    if arguments.action == "stats":
        upgrade(settings.database_url)
        return asyncio.run(_stats(settings, as_json=arguments.json))
    # Back-channel logout jobs are sealed under secret_key: under a random one (unset), no server could read them.
    if settings.secret_key != again.secret_key:
        print("passgate: set secret_key (PASSGATE_SECRET_KEY) as the server has it to sign people out", file=sys.stderr)
        return 2
    upgrade(settings.database_url)
    return asyncio.run(_sign_out(settings, arguments.username))


async def _sign_out(settings: Settings, username: str) -> int:
    from passgate.web.app import relying_party

    storage, close = open_storage(settings.database_url)
    ctx = Context(rp=relying_party(settings), storage=storage, file_clients=settings.file_clients())
    try:
        try:
            user = await storage.users.by_username(clean_username(username))
        except ClientError as exc:
            print(f"passgate: {exc.message}", file=sys.stderr)
            return 2
        if user is None:
            print(f"passgate: there is no account {username!r}", file=sys.stderr)
            return 1
        ended = await sessions.end_everywhere(ctx, Client(ip=None, user_agent="passgate users sign-out"), user)
    finally:
        await close()
    print(
        f"passgate: signed {user.username!r} out: {ended.sessions} session(s) ended, "
        f"{ended.logout_tokens} back-channel logout(s) queued, {ended.refresh_tokens} refresh token(s) revoked"
    )
    return 0


def _import(settings: Settings, path: Path, *, dry_run: bool, as_json: bool) -> int:
    try:
        source = path.open("rb")
    except OSError as exc:
        print(f"passgate: cannot read {str(path)!r}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    with source:
        upgrade(settings.database_url)
        try:
            # Bytes: a line that is not UTF-8 is refused on its own, as any other malformed line.
            report = asyncio.run(_import_lines(settings, source, dry_run=dry_run))
        except OSError as exc:
            print(f"passgate: cannot read {str(path)!r}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    summary = (
        f"{report.count('imported')} imported, {report.count('skipped')} skipped, {report.count('refused')} refused"
    )
    if dry_run:
        summary += " (dry run: nothing was written; 'imported' is what an import would do)"
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        for outcome in report.lines:
            print(_shown(outcome))
    print(f"passgate: {summary}", file=sys.stderr if as_json else sys.stdout)
    return 1 if report.count("refused") else 0


async def _import_lines(settings: Settings, lines: Iterable[bytes], *, dry_run: bool) -> imports.ImportReport:
    from passgate.web.app import relying_party

    storage, close = open_storage(settings.database_url)
    ctx = Context(rp=relying_party(settings), storage=storage, file_clients=settings.file_clients())
    try:
        client = Client(ip=None, user_agent="passgate users import")
        return await imports.import_accounts(ctx, client, lines, dry_run=dry_run)
    finally:
        await close()


def _shown(outcome: imports.LineOutcome) -> str:
    who = f" {outcome.username}" if outcome.username else ""
    if outcome.status == "imported":
        return f"line {outcome.line}: imported{who}"
    where = f" ({outcome.field})" if outcome.field else ""
    return f"line {outcome.line}: {outcome.status}{who}{where}: {outcome.reason} [{outcome.code}]"


async def _stats(settings: Settings, *, as_json: bool) -> int:
    from passgate.web.app import relying_party

    storage, close = open_storage(settings.database_url)
    ctx = Context(rp=relying_party(settings), storage=storage, file_clients=settings.file_clients())
    try:
        stats = await imports.migration_stats(ctx)
    finally:
        await close()
    if as_json:
        print(json.dumps(stats.to_json(), indent=2))
        return 0
    print(f"accounts: {stats.accounts}")
    print(f"with a password: {stats.with_password}")
    print(f"depending on a password (no passkey): {stats.password_only}")
    print(f"moved (made a passkey after a password sign-in): {stats.upgraded}")
    print("password hashes by scheme:" + ("" if stats.schemes else " none"))
    for scheme, count in stats.schemes.items():
        print(f"  {scheme}: {count}")
    return 0


# What an administrator looks at and does to accounts.
ACTIONS = ("list", "show", "disable", "enable", "delete")
# These queue back-channel logout (sealed under secret_key), or pseudonymise with it.
NEED_SECRET = ("disable", "delete")


def _add_account_parsers(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> list[argparse.ArgumentParser]:
    listing = actions.add_parser("list", help="accounts, by id; --search matches username, email or external id")
    listing.add_argument("--search")
    listing.add_argument("--cursor", help="continue after this user id (the last one listed)")
    listing.add_argument("--limit", type=int, default=50)
    show = actions.add_parser("show", help="an account with its passkeys, sessions, recovery state, recent events")
    disable = actions.add_parser("disable", help="refuse every sign-in and recovery, and end the sessions at once")
    enable = actions.add_parser("enable", help="let a disabled account sign in again")
    delete = actions.add_parser("delete", help="erase the account and the person's data (events kept, pseudonymised)")
    delete.add_argument("--yes", action="store_true", help="required: there is no undo")
    for each in (show, disable, enable, delete):
        each.add_argument("user", help="a username or user id")
    for each in (listing, show, disable, enable, delete):
        each.add_argument("--json", action="store_true")
    return [listing, show, disable, enable, delete]


def _run_account_action(settings: Settings, arguments: argparse.Namespace, again: Settings) -> int:
    if arguments.action in NEED_SECRET and settings.secret_key != again.secret_key:
        print(
            f"passgate: set secret_key (PASSGATE_SECRET_KEY) as the server has it to {arguments.action}",
            file=sys.stderr,
        )
        return 2
    if arguments.action == "delete" and not arguments.yes:
        print("passgate: deleting erases the account for good: add --yes", file=sys.stderr)
        return 2
    upgrade(settings.database_url)
    return asyncio.run(_account_action(settings, arguments))


async def _account_action(settings: Settings, arguments: argparse.Namespace) -> int:
    async with context(settings) as ctx:
        if arguments.action == "list":
            return await _list(ctx, arguments)
        user = await admin.find(ctx, arguments.user)
        if user is None:
            print(f"passgate: there is no account {arguments.user!r}", file=sys.stderr)
            return 1
        if arguments.action == "show":
            return await _show(ctx, user, as_json=arguments.json)
        program = f"passgate users {arguments.action}"
        outcome: dict[str, Any] = {"userId": user.id, "username": user.username}
        if arguments.action == "disable":
            ended = await admin.disable(ctx, actor(program), user.id)
            outcome.update({"disabled": True, "sessionsEnded": ended.sessions})
        elif arguments.action == "enable":
            await admin.enable(ctx, actor(program), user.id)
            outcome["disabled"] = False
        else:
            ended = await admin.delete(ctx, actor(program), user.id)
            outcome.update({"deleted": True, "sessionsEnded": ended.sessions})
    if arguments.json:
        print(json.dumps(outcome))
    else:
        done = {"disable": "disabled", "enable": "enabled", "delete": "deleted"}[arguments.action]
        ended_text = f", {outcome['sessionsEnded']} session(s) ended" if "sessionsEnded" in outcome else ""
        print(f"passgate: {done} {user.username!r}{ended_text}")
    return 0


async def _list(ctx: Context, arguments: argparse.Namespace) -> int:
    try:
        page = await admin.list_users(ctx, search=arguments.search, cursor=arguments.cursor, limit=arguments.limit)
    except InvalidRequest as exc:
        print(f"passgate: {exc.message}", file=sys.stderr)
        return 2
    if arguments.json:
        for user in page.users:
            print(json.dumps(admin.user_json(user)))
        return 0
    table(
        ("id", "username", "email", "created", "disabled"),
        [
            (
                u.id,
                u.username,
                u.email,
                f"{u.created_at:%Y-%m-%d}",
                f"{u.disabled_at:%Y-%m-%d %H:%M}" if u.disabled_at else "",
            )
            for u in page.users
        ],
    )
    if page.next_cursor:
        print(f"(more: --cursor {page.next_cursor})")
    return 0


async def _show(ctx: Context, user: User, *, as_json: bool) -> int:
    found = await admin.details(ctx, user.id)
    if as_json:
        shown = {
            **admin.user_json(found.user),
            "passkeys": [
                {"id": b64url_encode(c.credential_id), "nickname": c.nickname, "createdAt": c.created_at.isoformat()}
                for c in found.passkeys
            ],
            "sessions": [{"sid": s.sid, "kind": s.kind, "createdAt": s.created_at.isoformat()} for s in found.sessions],
            "recovery": {
                "backupCodesLeft": found.recovery.backup_codes_left,
                "emailVerified": found.recovery.email_verified,
                "password": found.recovery.password,
            },
            "recentEvents": [admin.event_json(e) for e in found.recent_events],
        }
        print(json.dumps(shown))
        return 0
    shown_user = found.user
    print(f"{shown_user.username} ({shown_user.id})")
    print(f"  display name: {shown_user.display_name}")
    print(f"  email: {shown_user.email or '-'}{' (verified)' if found.recovery.email_verified else ''}")
    print(f"  disabled: {shown_user.disabled_at:%Y-%m-%d %H:%M}" if shown_user.disabled_at else "  disabled: no")
    print(
        f"  backup codes left: {found.recovery.backup_codes_left}; "
        f"password: {'yes' if found.recovery.password else 'no'}"
    )
    print(f"passkeys ({len(found.passkeys)}):")
    table(
        ("id", "nickname", "created", "last used"),
        [
            (
                b64url_encode(c.credential_id)[:22],
                c.nickname,
                f"{c.created_at:%Y-%m-%d}",
                f"{c.last_used_at:%Y-%m-%d}" if c.last_used_at else "",
            )
            for c in found.passkeys
        ],
    )
    print(f"sessions ({len(found.sessions)}):")
    table(
        ("sid", "kind", "created", "last seen"),
        [(s.sid, s.kind, f"{s.created_at:%Y-%m-%d %H:%M}", f"{s.last_seen_at:%Y-%m-%d %H:%M}") for s in found.sessions],
    )
    print("recent events:")
    table(
        ("time", "type", "outcome", "reason"),
        [(f"{e.created_at:%Y-%m-%d %H:%M:%S}", e.type, e.outcome, e.reason) for e in found.recent_events],
    )
    return 0

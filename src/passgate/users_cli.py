"""`passgate users ...`: an administrator acts on accounts.

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

from passgate.config import Settings
from passgate.core.errors import ClientError
from passgate.service import imports, sessions
from passgate.service.accounts import clean_username
from passgate.service.context import Client, Context
from passgate.store.factory import open_storage
from passgate.store.migrate import upgrade

ARGUMENTS = ("username", "file", "dry_run", "json")

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
    users = commands.add_parser("users", help="act on accounts as an administrator: sign out, import, stats")
    actions = users.add_subparsers(dest="action", required=True)
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

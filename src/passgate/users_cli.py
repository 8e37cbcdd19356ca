"""`passgate users sign-out NAME`: an administrator ends every session of one person, everywhere.

Each client that received tokens for one of the sessions is told by back-channel logout (queued in the outbox,
delivered by the server's worker), and every refresh token the person's sign-ins granted is revoked.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from passgate.config import Settings
from passgate.core.errors import ClientError
from passgate.service import sessions
from passgate.service.accounts import clean_username
from passgate.service.context import Client, Context
from passgate.store.factory import open_storage
from passgate.store.migrate import upgrade

ARGUMENTS = ("username",)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = commands.add_parser("users", help="act on one person's account as an administrator")
    actions = users.add_subparsers(dest="action", required=True)
    sign_out = actions.add_parser(
        "sign-out", help="end every session of the person, tell the apps (back-channel logout), revoke refresh tokens"
    )
    sign_out.add_argument("username")
    sign_out.add_argument("--config")
    sign_out.add_argument("--database-url", dest="database_url")


def run(settings: Settings, arguments: argparse.Namespace, again: Settings) -> int:
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

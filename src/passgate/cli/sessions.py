"""`passgate sessions end USER [--session SID]`: end one session of a person, or all of them.

All of them: as `passgate users sign-out` (back-channel logout for each client, refresh tokens revoked). One: the
session named by its public id (`sid`, as `passgate users show` lists them), with back-channel logout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from passgate.cli.admin import actor, context
from passgate.config import Settings
from passgate.core.errors import NotFound
from passgate.service import admin
from passgate.store.migrate import upgrade

ARGUMENTS = ("sessions_action", "user", "session", "json")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("sessions", help="end a person's sessions: one, or all of them")
    actions = parser.add_subparsers(dest="sessions_action", required=True)
    end = actions.add_parser("end", help="end every session of USER (a username or user id), or one with --session")
    end.add_argument("user")
    end.add_argument("--session", metavar="SID", help="the session's public id (from `passgate users show`)")
    end.add_argument("--json", action="store_true")
    end.add_argument("--config")
    end.add_argument("--database-url", dest="database_url")


def run(settings: Settings, arguments: argparse.Namespace, again: Settings) -> int:
    # Back-channel logout jobs are sealed under secret_key: under a random one (unset), no server could read them.
    if settings.secret_key != again.secret_key:
        print("passgate: set secret_key (PASSGATE_SECRET_KEY) as the server has it to end sessions", file=sys.stderr)
        return 2
    upgrade(settings.database_url)
    return asyncio.run(_end(settings, arguments.user, arguments.session, as_json=arguments.json))


async def _end(settings: Settings, who: str, sid: str | None, *, as_json: bool) -> int:
    async with context(settings) as ctx:
        user = await admin.find(ctx, who)
        if user is None:
            print(f"passgate: there is no account {who!r}", file=sys.stderr)
            return 1
        if sid is not None:
            try:
                await admin.end_session(ctx, actor("passgate sessions end"), user.id, sid)
            except NotFound:
                print(f"passgate: {user.username!r} has no session {sid!r}", file=sys.stderr)
                return 1
            outcome = {"userId": user.id, "sessionsEnded": 1}
        else:
            ended = await admin.end_sessions(ctx, actor("passgate sessions end"), user.id)
            outcome = {
                "userId": user.id,
                "sessionsEnded": ended.sessions,
                "logoutTokens": ended.logout_tokens,
                "refreshTokensRevoked": ended.refresh_tokens,
            }
    if as_json:
        print(json.dumps(outcome))
    else:
        print(f"passgate: ended {outcome['sessionsEnded']} session(s) of {user.username!r}")
    return 0

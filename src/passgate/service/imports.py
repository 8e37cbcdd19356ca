"""Take in the accounts of another system (JSON Lines, one account a line), and tell how far they have moved.

Each account is written with its passkeys and password hash in one step, or not at all; a file is not one
transaction: the lines that are fine are imported, the others reported with their line number and why.

Running the same file again changes nothing: an account already there (the same external id, or, without
one, the same username with the line's passkeys, or with a password) is skipped as already imported. A dry run
checks everything the import would, clashes with the database and within the file included, and writes nothing.
Every look-up is by an indexed key (username, external id, user handle, credential id, verified address).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from passgate.core.encoding import b64url_encode
from passgate.core.errors import (
    CredentialExists,
    EmailTaken,
    InvalidImportRecord,
    InvalidRequest,
    PasskeyError,
    UserHandleTaken,
    UsernameTaken,
)
from passgate.core.identifiers import normalize_identifier
from passgate.core.imports import ImportRecord, parse_record
from passgate.core.passwords import scheme_of
from passgate.service import webhooks
from passgate.service.accounts import clean_name, clean_username
from passgate.service.context import Client, Context
from passgate.service.recovery import clean_email
from passgate.store.base import Credential, Event, StoredPassword, User

LineStatus = Literal["imported", "skipped", "refused"]
ALREADY_IMPORTED = "already_imported"


@dataclass(frozen=True, kw_only=True)
class LineOutcome:
    """What became of one line. `code` says why a line was skipped ("already_imported") or refused (an error
    code); `field` names the part of the line at fault, when one is."""

    line: int
    status: LineStatus
    username: str | None = None
    user_id: str | None = None
    code: str | None = None
    field: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        shown = {"line": self.line, "status": self.status, "username": self.username, "userId": self.user_id}
        shown |= {"code": self.code, "field": self.field, "reason": self.reason}
        return {name: value for name, value in shown.items() if value is not None}


@dataclass(frozen=True, kw_only=True)
class ImportReport:
    dry_run: bool
    lines: tuple[LineOutcome, ...]

    def count(self, status: LineStatus) -> int:
        return sum(outcome.status == status for outcome in self.lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "dryRun": self.dry_run,
            **{status: self.count(status) for status in ("imported", "skipped", "refused")},
            "lines": [outcome.to_json() for outcome in self.lines],
        }


class _Refused(Exception):
    def __init__(self, error: PasskeyError, field: str | None) -> None:
        self.error, self.field = error, field


@dataclass
class _Seen:
    """The keys of the lines taken so far (imported, to be imported in a dry run, or already there), each with
    its line: a later line with one of them is refused, naming the first."""

    keys: dict[tuple[str, str | bytes], int] = field(default_factory=dict)

    def check(self, key: tuple[str, str | bytes], field: str) -> None:
        if (first := self.keys.get(key)) is not None:
            raise _Refused(InvalidImportRecord(f"{field} is the same as on line {first}.", field=field), field)

    def add(self, keys: Iterable[tuple[str, str | bytes]], line: int) -> None:
        for key in keys:
            self.keys.setdefault(key, line)


@dataclass(frozen=True, kw_only=True)
class _Account:
    user: User
    credentials: tuple[Credential, ...]
    password: StoredPassword | None
    scheme: str | None
    keys: tuple[tuple[tuple[str, str | bytes], str], ...]  # (key, field) pairs unique across the file


async def import_accounts(
    ctx: Context, client: Client, lines: Iterable[str | bytes], *, dry_run: bool = False
) -> ImportReport:
    """Import every account of `lines` (JSON Lines; blank lines are passed over), one at a time.

    Never raises for what a line holds: every refusal is reported with the line's number. Errors of the
    storage itself (StorageUnavailable) propagate: the lines before were imported, the rest were not.
    """
    seen = _Seen()
    outcomes: list[LineOutcome] = []
    for number, line in enumerate(lines, start=1):
        if number == 1:  # a byte order mark, as some spreadsheet exports begin with
            line = line.removeprefix(codecs.BOM_UTF8) if isinstance(line, bytes) else line.removeprefix("\ufeff")
        if not line.strip():
            continue
        outcomes.append(await _import_line(ctx, client, number, line, seen, dry_run=dry_run))
    return ImportReport(dry_run=dry_run, lines=tuple(outcomes))


async def _import_line(
    ctx: Context, client: Client, number: int, line: str | bytes, seen: _Seen, *, dry_run: bool
) -> LineOutcome:
    username: str | None = None
    try:
        record = parse_record(line, now=ctx.clock(), allowed_algorithms=ctx.rp.policy.allowed_algorithms)
        username = record.username
        account = _account(ctx, record)
        username = account.user.username
        for key, key_field in account.keys:
            seen.check(key, key_field)
        existing = await _already_imported(ctx, account)
        if existing is not None:
            seen.add((key for key, _ in account.keys), number)
            reason = f"already imported as {existing.username!r}"
            return LineOutcome(
                line=number,
                status="skipped",
                username=username,
                user_id=existing.id,
                code=ALREADY_IMPORTED,
                reason=reason,
            )
        await _check_clashes(ctx, account)
        if not dry_run:
            await _store(ctx, client, account)
    except InvalidImportRecord as exc:
        return _refused(number, username, exc, exc.field)
    except _Refused as exc:
        return _refused(number, username, exc.error, exc.field)
    seen.add((key for key, _ in account.keys), number)
    # A dry run made no account: the id it would have had is no one's.
    user_id = None if dry_run else account.user.id
    return LineOutcome(line=number, status="imported", username=username, user_id=user_id)


def _refused(number: int, username: str | None, error: PasskeyError, field: str | None) -> LineOutcome:
    return LineOutcome(
        line=number, status="refused", username=username, code=error.code, field=field, reason=error.message
    )


def _cleaned(clean: Any, value: object, at: str, **options: Any) -> Any:
    """`clean(value)`, a refusal of it reported at field `at`."""
    try:
        return clean(value, **options)
    except InvalidRequest as exc:
        raise _Refused(exc, at) from exc


def _account(ctx: Context, record: ImportRecord) -> _Account:
    """The account, its passkeys and password as they would be stored, cleaned as sign-up cleans them."""
    now = ctx.clock()
    username = _cleaned(clean_username, record.username, "username")
    display_name = _cleaned(clean_name, record.display_name, "displayName", field="displayName", required=False)
    email = _cleaned(clean_email, record.email, "email") if record.email is not None else None
    if record.email_verified and email is None:
        raise _Refused(InvalidImportRecord("emailVerified is true but there is no email."), "emailVerified")
    user = User(
        id=b64url_encode(ctx.random(12)),
        username=username,
        display_name=display_name or username,
        user_handle=record.user_handle or ctx.random(32),
        created_at=record.created_at,
        email=email,
        # When the old system verified it is not known: the address is taken as verified from now on.
        email_verified_at=now if email is not None and record.email_verified else None,
        external_id=record.external_id,
    )
    credentials = []
    for index, passkey in enumerate(record.passkeys):
        nickname_field = f"passkeys[{index}].nickname"
        nickname = _cleaned(clean_name, passkey.nickname, nickname_field, field=nickname_field, required=False)
        credentials.append(
            Credential(
                credential_id=passkey.credential_id,
                user_id=user.id,
                public_key=passkey.public_key,
                algorithm=passkey.algorithm,
                sign_count=passkey.sign_count,
                aaguid=passkey.aaguid,
                attestation_format="none",
                transports=passkey.transports,
                backup_eligible=passkey.backup_eligible,
                backed_up=passkey.backed_up,
                user_verified=False,
                created_at=passkey.created_at,
                last_used_at=passkey.last_used_at,
                nickname=nickname or None,
                attested=False,
                created_by="import",
            )
        )
    password = None
    if record.password is not None:
        password = StoredPassword(user_id=user.id, hash=record.password, created_at=now, updated_at=now)
    keys: list[tuple[tuple[str, str | bytes], str]] = [(("username", normalize_identifier(username)), "username")]
    if user.external_id is not None:
        keys.append((("external_id", user.external_id), "externalId"))
    if record.user_handle is not None:
        keys.append((("user_handle", record.user_handle), "userHandle"))
    keys += [
        (("credential_id", c.credential_id), f"passkeys[{index}].credentialId") for index, c in enumerate(credentials)
    ]
    if user.email_verified_at is not None and email is not None:
        keys.append((("email", normalize_identifier(email)), "email"))
    return _Account(
        user=user, credentials=tuple(credentials), password=password, scheme=record.password_scheme, keys=tuple(keys)
    )


async def _already_imported(ctx: Context, account: _Account) -> User | None:
    """The account this line made on an earlier run, if there is one."""
    users = ctx.storage.users
    if account.user.external_id is not None:
        return await users.by_external_id(account.user.external_id)
    existing = await users.by_username(account.user.username)
    if existing is None or existing.external_id is not None:
        return None
    if account.credentials:
        for credential in account.credentials:
            stored = await ctx.storage.credentials.get(credential.credential_id)
            if stored is None or stored.user_id != existing.id:
                return None
        return existing
    # No passkeys to recognise it by: an account with a password came from an import (sign-up makes none).
    return existing if await ctx.storage.passwords.get(existing.id) is not None else None


async def _check_clashes(ctx: Context, account: _Account) -> None:
    user, storage = account.user, ctx.storage
    if await storage.users.by_username(user.username) is not None:
        raise _Refused(UsernameTaken("Another account has this username."), "username")
    for index, credential in enumerate(account.credentials):
        if await storage.credentials.get(credential.credential_id) is not None:
            error = CredentialExists("This passkey belongs to another account already.")
            raise _Refused(error, f"passkeys[{index}].credentialId")
    if await storage.users.by_user_handle(user.user_handle) is not None:
        raise _Refused(UserHandleTaken(), "userHandle")
    verified = user.email if user.email_verified_at is not None else None
    if verified is not None and await storage.users.by_email(verified) is not None:
        raise _Refused(EmailTaken("Another account has verified this email address."), "email")


async def _store(ctx: Context, client: Client, account: _Account) -> None:
    user = account.user
    # Never the hash itself: events are read by more people than the password table.
    detail = {"external_id": user.external_id, "passkeys": len(account.credentials), "password_scheme": account.scheme}
    event = Event(
        type="user.imported",
        outcome="success",
        created_at=ctx.clock(),
        user_id=user.id,
        ip=client.ip,
        user_agent=(client.user_agent or "")[:512] or None,
        detail=detail,
    )
    try:
        created = webhooks.user_created(ctx, user.id, [c.credential_id for c in account.credentials])
        await ctx.storage.users.create_imported(
            user, account.credentials, account.password, event=event, outbox=created
        )
        webhooks.wake(ctx)
    except CredentialExists as exc:  # stored since the checks, by another import or a sign-up
        raise _Refused(exc, "passkeys") from exc
    except EmailTaken as exc:
        raise _Refused(exc, "email") from exc
    except UsernameTaken as exc:
        raise _Refused(exc, "username") from exc


@dataclass(frozen=True, kw_only=True)
class MigrationStats:
    """How far the accounts have moved from passwords."""

    accounts: int
    with_password: int
    password_only: int  # a password and no passkey: they still depend on it
    upgraded: int  # made a passkey right after a password sign-in
    schemes: dict[str, int]  # password hashes by scheme ("bcrypt", "argon2id", ...)

    def to_json(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "withPassword": self.with_password,
            "passwordOnly": self.password_only,
            "upgraded": self.upgraded,
            "schemes": self.schemes,
        }


async def migration_stats(ctx: Context) -> MigrationStats:
    """Counts from one aggregated query; the hashes are grouped by their leading tag, each named by its scheme."""
    stats = await ctx.storage.users.stats()
    schemes: dict[str, int] = {}
    for group in stats.passwords:
        try:
            scheme = scheme_of(group.sample)
        except PasskeyError:
            scheme = "unknown"
        schemes[scheme] = schemes.get(scheme, 0) + group.accounts
    return MigrationStats(
        accounts=stats.accounts,
        with_password=sum(group.accounts for group in stats.passwords),
        password_only=sum(group.without_passkey for group in stats.passwords),
        upgraded=stats.upgraded,
        schemes=dict(sorted(schemes.items())),
    )

"""SQL storage through SQLAlchemy Core: SQLite by default, PostgreSQL (async, pooled) for scale-out."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, Protocol, TypeVar

import asyncpg
from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Executable,
    FunctionElement,
    Integer,
    Select,
    String,
    Table,
    bindparam,
    case,
    delete,
    event,
    exists,
    func,
    insert,
    literal,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.ext.compiler import compiles

from passgate.core.apps import App, AppKey
from passgate.core.errors import (
    AdminKeyExists,
    ChallengeNotFound,
    ClientExists,
    CredentialExists,
    EmailTaken,
    PasskeyError,
    UsernameTaken,
)
from passgate.core.identifiers import normalize_identifier
from passgate.core.oidc_clients import OidcClient
from passgate.store import asyncpg_direct, schema
from passgate.store.base import (
    AccountStats,
    AdminKey,
    AppUser,
    AuthorizationCode,
    BackupCode,
    Consent,
    Credential,
    CredentialUse,
    DeliveryStatus,
    EmailPurpose,
    EmailToken,
    Event,
    EventQuery,
    MailStatus,
    OutboxOfEnded,
    PasswordGroup,
    PendingChallenge,
    QueuedMail,
    RefreshToken,
    Removal,
    Session,
    SessionClient,
    SigningKey,
    Spend,
    Storage,
    StoredPassword,
    TakenCode,
    TakenRefreshToken,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
    without_person,
)
from passgate.store.memory import MemoryCounters
from passgate.store.sqlite_direct import Direct, Prepared, PreparedQuery

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}


def async_url(database_url: str) -> str:
    """The URL with the async driver Passgate uses for its backend (`sqlite:///x.db` -> aiosqlite)."""
    url = make_url(database_url)
    return url.set(drivername=_ASYNC_DRIVERS.get(url.get_backend_name(), url.drivername)).render_as_string(
        hide_password=False
    )


def sync_url(database_url: str) -> str:
    """The URL with a synchronous driver, for migrations."""
    url = make_url(database_url)
    return url.set(drivername=_SYNC_DRIVERS.get(url.get_backend_name(), url.drivername)).render_as_string(
        hide_password=False
    )


class _Connection(Protocol):
    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]: ...


class _InLoop:
    """A synchronous connection used from the event loop: for SQLite, whose statements take microseconds,
    a thread hop per statement (aiosqlite) costs more than the statement itself."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def execute(self, statement: Executable, parameters: Any = None) -> CursorResult[Any]:
        return self._connection.execute(statement, parameters)


class Database:
    """One database: SQLite run in the event loop, or PostgreSQL through asyncpg with a connection pool."""

    def __init__(self, database_url: str, *, pool_size: int = 20) -> None:
        self.url = database_url
        self.direct: Direct | None = None  # SQLite's driver, for the sign-in's statements (store.sqlite_direct)
        self.asyncpg: asyncpg_direct.Direct | None = None  # PostgreSQL's, for the same (store.asyncpg_direct)
        self._sync: Engine | None = None
        self._async: AsyncEngine | None = None
        if make_url(database_url).get_backend_name() == "sqlite":
            self._sync = sa_create_engine(sync_url(database_url), connect_args={"check_same_thread": False})
            event.listen(self._sync, "connect", _sqlite_pragmas)
            event.listen(self._sync, "begin", _sqlite_begin)
            self.direct = Direct(self._sync)
        else:
            self._async = create_async_engine(
                async_url(database_url),
                # A fixed pool, its connections opened as needed and kept: connections opened beyond a pool
                # were closed when given back and opened again at the next burst, a new PostgreSQL backend each
                # time (a third of the database's CPU per sign-in under load).
                pool_size=pool_size,
                max_overflow=0,
                # No pre-ping: it cost a round trip per checkout (a tenth of the server's CPU per sign-in).
                # After a database restart, the first statement on a dead connection fails (503), and
                # SQLAlchemy then discards every pooled connection made before, so the next request reconnects.
                pool_pre_ping=False,
                pool_recycle=1800,
                pool_timeout=5,
            )
            # Reads in autocommit, as on SQLite: each statement reads the latest committed state, which is what
            # READ COMMITTED gives each statement of a transaction anyway, without a BEGIN and a ROLLBACK around
            # every read (two of its three round trips).
            self._reads = self._async.execution_options(isolation_level="AUTOCOMMIT")
            self.asyncpg = asyncpg_direct.Direct(self._reads)

    @property
    def dialect(self) -> str:
        engine = self._sync or self._async
        assert engine is not None
        return engine.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[_Connection]:
        """A transaction, committed when the block ends and rolled back if it raises."""
        if self._sync is not None:
            with self._sync.connect() as connection:
                connection.execution_options(**_WRITE)
                with connection.begin():
                    yield _InLoop(connection)
        else:
            assert self._async is not None
            async with self._async.begin() as async_connection:
                yield async_connection

    @asynccontextmanager
    async def read(self) -> AsyncIterator[_Connection]:
        if self._sync is not None:
            with self._sync.connect() as connection:
                yield _InLoop(connection)
        else:
            async with self._reads.connect() as async_connection:
                yield async_connection

    async def dispose(self) -> None:
        if self._sync is not None:
            self._sync.dispose()
        if self._async is not None:
            await self._async.dispose()


_WRITE = {"passgate_write": True}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling begins only before the first INSERT, UPDATE or DELETE, so a
    # transaction's reads would run before it, unserialised; Passgate begins transactions itself instead.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # The busy timeout queues writers instead of failing.
    cursor.execute("PRAGMA busy_timeout=5000")
    _use_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _use_wal(cursor: Any) -> None:
    # WAL lets readers run beside the writer, and the file keeps it once set. Switching to it needs the
    # database alone, and SQLite answers "locked" at once there instead of waiting out the busy timeout,
    # so nodes opening a new database together try again for as long as a writer would wait.
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + 5
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _sqlite_begin(connection: Connection) -> None:
    # A write transaction takes the database's write lock when it begins (IMMEDIATE), so what it reads
    # stays true until it commits: every write transaction runs alone, across processes too (the busy
    # timeout queues them). Reads run in autocommit, each statement on the latest committed state.
    if connection.get_execution_options().get("passgate_write"):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


class _Tables:
    def __init__(self, database: Database) -> None:
        self._write = database.write
        self._read = database.read
        self._direct = database.direct  # SQLite's driver, for the statements on the hot path (store.sqlite_direct)


# Statements are built once: building SQLAlchemy expressions per call costs more than running them.
_backup_codes, _email_tokens = schema.backup_codes, schema.email_tokens
_users, _credentials, _challenges, _sessions, _events = (
    schema.users,
    schema.credentials,
    schema.challenges,
    schema.sessions,
    schema.events,
)
INSERT_USER = insert(_users)
INSERT_CREDENTIAL = insert(_credentials)
INSERT_CHALLENGE = insert(_challenges)
INSERT_SESSION = insert(_sessions)
INSERT_EVENT = insert(_events)
USER_BY_ID = select(_users).where(_users.c.id == bindparam("id"))
USER_BY_NAME = select(_users).where(_users.c.username_normalized == bindparam("name"))
USER_BY_EXTERNAL_ID = select(_users).where(_users.c.external_id == bindparam("external_id"))
_passwords = schema.passwords
INSERT_PASSWORD = insert(_passwords)
PASSWORD_OF_USER = select(_passwords).where(_passwords.c.user_id == bindparam("user_id"))
# Compare-and-set: a rehash after a sign-in never overwrites a password removed or replaced meanwhile.
REHASH_PASSWORD = (
    update(_passwords)
    .where(_passwords.c.user_id == bindparam("owner"), _passwords.c.hash == bindparam("old_hash"))
    .values(hash=bindparam("new_hash"), updated_at=bindparam("at"))
)
DELETE_PASSWORD = delete(_passwords).where(_passwords.c.user_id == bindparam("user_id"))
COUNT_PASSWORDS = select(func.count()).select_from(_passwords)
USER_BY_HANDLE = select(_users).where(_users.c.user_handle == bindparam("user_handle"))


class _position(FunctionElement[int]):
    """Where a substring first occurs (1-based, 0 if nowhere): instr() in SQLite, strpos() in PostgreSQL."""

    type = Integer()
    inherit_cache = True


@compiles(_position)
def _instr(element: _position, compiler: Any, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(_position, "postgresql")
def _strpos(element: _position, compiler: Any, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


# base.hash_tag in SQL (literals, not parameters: GROUP BY repeats the expression, which must be the same).
_HASH_TAG = func.substr(
    _passwords.c.hash,
    literal_column("1"),
    literal_column("1") + _position(func.substr(_passwords.c.hash, literal_column("2")), literal_column("'$'")),
)
_HAS_PASSKEY = exists().where(_credentials.c.user_id == _users.c.id)
_UPGRADED = exists().where(
    _credentials.c.user_id == _users.c.id, _credentials.c.created_by == literal_column("'upgrade'")
)
# One row per hash tag, and one (tag NULL) for the accounts without a password: every account counted once.
ACCOUNT_STATS = (
    select(
        _HASH_TAG.label("tag"),
        func.min(_passwords.c.hash).label("sample"),
        func.count().label("accounts"),
        func.sum(case((_HAS_PASSKEY, literal_column("0")), else_=literal_column("1"))).label("without_passkey"),
        func.sum(case((_UPGRADED, literal_column("1")), else_=literal_column("0"))).label("upgraded"),
    )
    .select_from(_users.outerjoin(_passwords, _passwords.c.user_id == _users.c.id))
    .group_by(_HASH_TAG)
)
CREDENTIAL_BY_ID = select(_credentials).where(_credentials.c.credential_id == bindparam("id"))
CREDENTIAL_WITH_OWNER = (
    select(_credentials, *(column.label(f"owner_{column.name}") for column in _users.c))
    .join(_users, _users.c.id == _credentials.c.user_id)
    .where(_credentials.c.credential_id == bindparam("id"))
)
CREDENTIALS_OF_USER = (
    select(_credentials).where(_credentials.c.user_id == bindparam("user_id")).order_by(_credentials.c.created_at)
)
# A non-zero counter is written only if it moves forward, in the same statement that checks it.
RECORD_COUNTED_USE = (
    update(_credentials)
    .where(_credentials.c.credential_id == bindparam("id"), _credentials.c.sign_count < bindparam("sign_count"))
    .values(sign_count=bindparam("sign_count"), backed_up=bindparam("backed_up"), last_used_at=bindparam("used_at"))
)
RECORD_USE = (
    update(_credentials)
    .where(_credentials.c.credential_id == bindparam("id"))
    .values(backed_up=bindparam("backed_up"), last_used_at=bindparam("used_at"))
)
# DELETE ... RETURNING: of two concurrent takes, exactly one gets the row.
TAKE_CHALLENGE = delete(_challenges).where(_challenges.c.id == bindparam("id")).returning(*_challenges.c)
PURGE_CHALLENGES = delete(_challenges).where(_challenges.c.expires_at < bindparam("now"))
SPEND_CHALLENGE = insert(schema.used_challenges)
PURGE_USED_CHALLENGES = delete(schema.used_challenges).where(schema.used_challenges.c.expires_at < bindparam("now"))
SESSION_BY_SID = select(_sessions).where(_sessions.c.sid == bindparam("sid"))
SESSION_BY_HASH = select(_sessions).where(_sessions.c.token_hash == bindparam("hash"))
TOUCH_SESSION = (
    update(_sessions).where(_sessions.c.token_hash == bindparam("hash")).values(last_seen_at=bindparam("at"))
)
DELETE_SESSION = delete(_sessions).where(_sessions.c.token_hash == bindparam("hash"))
USER_BY_EMAIL = select(_users).where(_users.c.email_normalized == bindparam("email"))
RENAME_CREDENTIAL = (
    update(_credentials)
    .where(_credentials.c.credential_id == bindparam("id"), _credentials.c.user_id == bindparam("owner"))
    .values(nickname=bindparam("nickname"))
)
LOCK_USER = select(_users.c.id).where(_users.c.id == bindparam("id")).with_for_update()
COUNT_CREDENTIALS = select(
    func.count().label("total"),
    func.count(case((_credentials.c.credential_id == bindparam("id"), 1))).label("this"),
).where(_credentials.c.user_id == bindparam("user_id"))
# Another way back in than a passkey: a verified address that sign-in links are sent for (its normalized
# form is set once verified, and belongs to one account), or an unused backup code.
OTHER_WAY_IN = select(
    or_(
        exists().where(_users.c.id == bindparam("user_id"), _users.c.email_normalized.is_not(None)),
        exists().where(_backup_codes.c.user_id == bindparam("user_id"), _backup_codes.c.used_at.is_(None)),
    )
)
DELETE_CREDENTIAL = delete(_credentials).where(
    _credentials.c.credential_id == bindparam("id"), _credentials.c.user_id == bindparam("user_id")
)
END_SESSIONS_OF_CREDENTIAL = (
    delete(_sessions)
    .where(
        _sessions.c.user_id == bindparam("user_id"),
        _sessions.c.credential_id == bindparam("id"),
        _sessions.c.token_hash != bindparam("keep"),
    )
    .returning(_sessions.c.token_hash)
)
MARK_AUTHENTICATED = (
    update(_sessions)
    .where(_sessions.c.token_hash == bindparam("hash"))
    .values(
        authenticated_at=bindparam("at"),
        kind="passkey",
        credential_id=bindparam("credential_id"),
        user_verified=bindparam("user_verified"),
    )
)
UNUSED_CODES = (
    select(_backup_codes)
    .where(_backup_codes.c.user_id == bindparam("user_id"), _backup_codes.c.used_at.is_(None))
    .order_by(_backup_codes.c.number)
)
USE_CODE = (
    update(_backup_codes)
    .where(
        _backup_codes.c.user_id == bindparam("owner"),
        _backup_codes.c.number == bindparam("code_number"),
        _backup_codes.c.used_at.is_(None),
    )
    .values(used_at=bindparam("at"))
)
EMAIL_TOKEN_BY_HASH = select(_email_tokens).where(_email_tokens.c.token_hash == bindparam("hash"))
# One statement checks the purpose and the browser binding and deletes: a link opened elsewhere stays.
TAKE_EMAIL_TOKEN = (
    delete(_email_tokens)
    .where(
        _email_tokens.c.token_hash == bindparam("hash"),
        _email_tokens.c.purpose == bindparam("purpose"),
        or_(_email_tokens.c.browser.is_(None), _email_tokens.c.browser == bindparam("browser")),
    )
    .returning(*_email_tokens.c)
)
_mail = schema.mail_outbox
# One statement chooses and leases: PostgreSQL skips rows another worker's statement has locked (that worker
# leases them), SQLite runs one writer at a time (FOR UPDATE is not rendered there, nor needed).
CLAIM_MAIL = (
    update(_mail)
    .where(
        _mail.c.id.in_(
            select(_mail.c.id)
            .where(
                _mail.c.status == "queued",
                _mail.c.next_attempt_at <= bindparam("now"),
                or_(_mail.c.claimed_until.is_(None), _mail.c.claimed_until < bindparam("now")),
            )
            .order_by(_mail.c.next_attempt_at, _mail.c.created_at)
            .limit(bindparam("limit"))
            .with_for_update(skip_locked=True)
        )
    )
    .values(claimed_by=bindparam("worker"), claimed_until=bindparam("until"), attempts=_mail.c.attempts + 1)
    .returning(*_mail.c)
)
_HELD_MAIL = (
    _mail.c.id == bindparam("mail_id"),
    _mail.c.claimed_by == bindparam("worker"),
    _mail.c.status == "queued",
)
DELETE_SENT_MAIL = delete(_mail).where(*_HELD_MAIL)
RETRY_MAIL = (
    update(_mail)
    .where(*_HELD_MAIL)
    .values(next_attempt_at=bindparam("at"), claimed_by=None, claimed_until=None, last_error=bindparam("error"))
)
FAIL_MAIL = (
    update(_mail)
    .where(*_HELD_MAIL)
    .values(status="failed", claimed_by=None, claimed_until=None, last_error=bindparam("error"))
)
_oidc_clients = schema.oidc_clients
OIDC_CLIENT_BY_ID = select(_oidc_clients).where(_oidc_clients.c.client_id == bindparam("client_id"))
OIDC_CLIENTS = select(_oidc_clients).order_by(_oidc_clients.c.created_at, _oidc_clients.c.client_id)
DELETE_OIDC_CLIENT = delete(_oidc_clients).where(_oidc_clients.c.client_id == bindparam("client_id"))
PURGE_SESSIONS = delete(_sessions).where(
    or_(_sessions.c.expires_at < bindparam("now"), _sessions.c.last_seen_at < bindparam("idle_since"))
)
COUNT_ACTIVE_SESSIONS = (
    select(func.count())
    .select_from(_sessions)
    .where(_sessions.c.expires_at > bindparam("now"), _sessions.c.last_seen_at > bindparam("idle_since"))
)


Record = TypeVar("Record")


def _from_row(cls: type[Record], row: Any) -> Record:
    """A stored record from a row whose columns are named as the record's fields."""
    return cls(**{field.name: row._mapping[field.name] for field in dataclasses.fields(cls)})  # type: ignore[arg-type]


def _fields(record: Any) -> dict[str, Any]:
    # dataclasses.asdict deep-copies every value; a shallow copy is all a statement needs.
    return {field.name: getattr(record, field.name) for field in dataclasses.fields(record)}


def _user(row: Any) -> User:
    return User(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        user_handle=row.user_handle,
        created_at=row.created_at,
        email=row.email,
        email_verified_at=row.email_verified_at,
        nudge_dismissed=row.nudge_dismissed,
        external_id=row.external_id,
        disabled_at=row.disabled_at,
    )


def _verified_address(email: str | None, verified_at: datetime | None) -> str | None:
    return normalize_identifier(email) if email and verified_at else None


def _user_values(user: User) -> dict[str, Any]:
    return {
        **_fields(user),
        "username_normalized": normalize_identifier(user.username),
        "email_normalized": _verified_address(user.email, user.email_verified_at),
    }


def _credential(row: Any) -> Credential:
    return Credential(
        credential_id=row.credential_id,
        user_id=row.user_id,
        public_key=row.public_key,
        algorithm=row.algorithm,
        sign_count=row.sign_count,
        aaguid=row.aaguid,
        attestation_format=row.attestation_format,
        transports=tuple(row.transports),
        backup_eligible=row.backup_eligible,
        backed_up=row.backed_up,
        user_verified=row.user_verified,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        nickname=row.nickname,
        attested=row.attested,
        # App passkeys (app_credentials) are all made by registration ceremonies: the column is the accounts' only.
        created_by=getattr(row, "created_by", "registration"),
    )


def _credential_values(credential: Credential) -> dict[str, Any]:
    values = _fields(credential)
    values["transports"] = list(credential.transports)
    return values


def _session(row: Any) -> Session:
    return _from_row(Session, row)


def _session_values(session: Session) -> dict[str, Any]:
    return _fields(session)


def _event_values(event: Event) -> dict[str, Any]:
    values = _fields(event)
    del values["id"]
    return values


def _use_statement(use: CredentialUse) -> tuple[Any, dict[str, Any]]:
    parameters = {"id": use.credential_id, "backed_up": use.backed_up, "used_at": use.used_at}
    if use.sign_count:
        return RECORD_COUNTED_USE, {**parameters, "sign_count": use.sign_count}
    return RECORD_USE, parameters


class SqlUsers(_Tables):
    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self._asyncpg = database.asyncpg
        self._creations: dict[tuple[tuple[Any, tuple[str, ...]], ...], Prepared] = {}

    async def get(self, user_id: str) -> User | None:
        async with self._read() as connection:
            row = (await connection.execute(USER_BY_ID, {"id": user_id})).first()
        return _user(row) if row else None

    async def by_username(self, username: str) -> User | None:
        async with self._read() as connection:
            row = (await connection.execute(USER_BY_NAME, {"name": normalize_identifier(username)})).first()
        return _user(row) if row else None

    async def create_with_credential(
        self,
        user: User,
        credential: Credential,
        *,
        event: Event | None = None,
        session: Session | None = None,
        outbox: Sequence[WebhookEvent] = (),
        spend: Spend | None = None,
    ) -> int:
        return await self._create(user, [credential], None, event=event, session=session, outbox=outbox, spend=spend)

    async def by_external_id(self, external_id: str) -> User | None:
        async with self._read() as connection:
            row = (await connection.execute(USER_BY_EXTERNAL_ID, {"external_id": external_id})).first()
        return _user(row) if row else None

    async def by_user_handle(self, user_handle: bytes) -> User | None:
        async with self._read() as connection:
            row = (await connection.execute(USER_BY_HANDLE, {"user_handle": user_handle})).first()
        return _user(row) if row else None

    async def create_imported(
        self,
        user: User,
        credentials: Sequence[Credential],
        password: StoredPassword | None,
        *,
        event: Event | None = None,
        outbox: Sequence[WebhookEvent] = (),
    ) -> None:
        await self._create(user, credentials, password, event=event, outbox=outbox)

    async def _create(
        self,
        user: User,
        credentials: Sequence[Credential],
        password: StoredPassword | None,
        *,
        event: Event | None,
        outbox: Sequence[WebhookEvent],
        session: Session | None = None,
        spend: Spend | None = None,
    ) -> int:
        writes: list[tuple[Any, dict[str, Any]]] = [] if spend is None else [(SPEND_CHALLENGE, _spend_values(spend))]
        writes.append((INSERT_USER, _user_values(user)))
        writes.extend((INSERT_CREDENTIAL, _credential_values(credential)) for credential in credentials)
        if password is not None:
            writes.append((INSERT_PASSWORD, _fields(password)))
        if event is not None:
            writes.append((INSERT_EVENT, _event_values(event)))
        if session is not None:
            writes.append((INSERT_SESSION, _session_values(session)))
        writes.extend((QUEUE_WEBHOOK, _queue_values(webhook)) for webhook in outbox)
        queued = 0
        if (direct := self._direct) is not None:  # every sign-up: the same statements, on the driver
            try:
                with direct.write() as driver:
                    for statement, values in writes:
                        rows = direct.run(driver, statement, values).rowcount
                        queued += rows if statement is QUEUE_WEBHOOK else 0
            except sqlite3.IntegrityError as exc:
                raise _creation_refused(str(exc)) from exc
            return queued
        if self._asyncpg is not None and len(credentials) == 1:  # PostgreSQL: one statement (CTEs run unordered)
            shape = tuple((statement, tuple(values)) for statement, values in writes)
            if (one := self._creations.get(shape)) is None:
                one = self._creations[shape] = Prepared(_creation_statement(shape), self._asyncpg.dialect)
            numbered = {f"{name}_{n}": value for n, (_, values) in enumerate(writes) for name, value in values.items()}
            try:
                async with self._asyncpg.connection() as driver:
                    return int(await driver.fetchval(one.sql, *one.parameters(numbered)))
            except asyncpg.UniqueViolationError as exc:
                raise _creation_refused(f"{exc.constraint_name} {exc}") from exc
        try:
            async with self._write() as connection:
                for statement, values in writes:
                    rows = (await connection.execute(statement, values)).rowcount
                    queued += rows if statement is QUEUE_WEBHOOK else 0
        except IntegrityError as exc:
            raise _creation_refused(str(exc.orig)) from exc
        return queued

    async def stats(self) -> AccountStats:
        async with self._read() as connection:
            rows = (await connection.execute(ACCOUNT_STATS)).all()
        groups = [
            PasswordGroup(tag=row.tag, sample=row.sample, accounts=row.accounts, without_passkey=row.without_passkey)
            for row in rows
            if row.tag is not None
        ]
        return AccountStats(
            accounts=sum(row.accounts for row in rows),
            upgraded=sum(row.upgraded for row in rows),
            passwords=tuple(sorted(groups, key=lambda group: group.tag)),
        )

    async def by_email(self, email: str) -> User | None:
        async with self._read() as connection:
            row = (await connection.execute(USER_BY_EMAIL, {"email": normalize_identifier(email)})).first()
        return _user(row) if row else None

    async def set_display_name(self, user_id: str, display_name: str) -> None:
        await self._update(user_id, display_name=display_name)

    async def set_email(self, user_id: str, email: str | None, *, verified_at: datetime | None) -> None:
        try:
            await self._update(
                user_id,
                email=email,
                email_verified_at=verified_at,
                email_normalized=_verified_address(email, verified_at),
            )
        except IntegrityError as exc:  # the unique index: another account verified this address
            raise EmailTaken() from exc

    async def dismiss_nudge(self, user_id: str) -> None:
        await self._update(user_id, nudge_dismissed=True)

    async def _update(self, user_id: str, **values: Any) -> None:
        async with self._write() as connection:
            await connection.execute(update(_users).where(_users.c.id == user_id).values(**values))


class SqlPasswords(_Tables):
    async def get(self, user_id: str) -> StoredPassword | None:
        async with self._read() as connection:
            row = (await connection.execute(PASSWORD_OF_USER, {"user_id": user_id})).first()
        return _from_row(StoredPassword, row) if row else None

    async def rehash(self, user_id: str, *, old_hash: str, new_hash: str, at: datetime) -> bool:
        async with self._write() as connection:
            result = await connection.execute(
                REHASH_PASSWORD, {"owner": user_id, "old_hash": old_hash, "new_hash": new_hash, "at": at}
            )
        return bool(result.rowcount)

    async def remove(self, user_id: str) -> bool:
        async with self._write() as connection:
            result = await connection.execute(DELETE_PASSWORD, {"user_id": user_id})
        return bool(result.rowcount)

    async def count(self) -> int:
        async with self._read() as connection:
            return int((await connection.execute(COUNT_PASSWORDS)).scalar_one())


class SqlCredentials(_Tables):
    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self._asyncpg = database.asyncpg
        if database.direct is not None:
            self._with_owner = PreparedQuery(CREDENTIAL_WITH_OWNER, database.direct.dialect)
        elif database.asyncpg is not None:
            self._with_owner = PreparedQuery(CREDENTIAL_WITH_OWNER, database.asyncpg.dialect)

    async def get(self, credential_id: bytes) -> Credential | None:
        async with self._read() as connection:
            row = (await connection.execute(CREDENTIAL_BY_ID, {"id": credential_id})).first()
        return _credential(row) if row else None

    async def get_with_owner(self, credential_id: bytes) -> tuple[Credential, User] | None:
        if self._direct is not None:  # every sign-in's look-up
            query = self._with_owner
            with self._direct.read() as driver:
                raw = driver.execute(query.sql, query.parameters({"id": credential_id})).fetchone()
            if raw is None:
                return None
            values = query.row(raw)
        elif self._asyncpg is not None:  # the same, on PostgreSQL's driver (store.asyncpg_direct)
            query = self._with_owner
            async with self._asyncpg.connection() as driver:
                raw = await driver.fetchrow(query.sql, *query.parameters({"id": credential_id}))
            if raw is None:
                return None
            values = query.row(raw)
        else:
            async with self._read() as connection:
                row = (await connection.execute(CREDENTIAL_WITH_OWNER, {"id": credential_id})).first()
            if row is None:
                return None
            values = dict(row._mapping)
        owner = {name.removeprefix("owner_"): value for name, value in values.items() if name.startswith("owner_")}
        own = {name: value for name, value in values.items() if not name.startswith("owner_")}
        return _credential(SimpleNamespace(**own)), _user(SimpleNamespace(**owner))

    async def list_for_user(self, user_id: str) -> list[Credential]:
        async with self._read() as connection:
            return [_credential(row) for row in await connection.execute(CREDENTIALS_OF_USER, {"user_id": user_id})]

    async def add(self, credential: Credential, *, outbox: Sequence[WebhookEvent] = ()) -> None:
        try:
            async with self._write() as connection:
                await connection.execute(INSERT_CREDENTIAL, _credential_values(credential))
                await _queue(connection, outbox)
        except IntegrityError as exc:
            raise CredentialExists() from exc

    async def rename(
        self, credential_id: bytes, user_id: str, nickname: str | None, *, outbox: Sequence[WebhookEvent] = ()
    ) -> bool:
        async with self._write() as connection:
            result = await connection.execute(
                RENAME_CREDENTIAL, {"id": credential_id, "owner": user_id, "nickname": nickname}
            )
            if result.rowcount:
                await _queue(connection, outbox)
        return bool(result.rowcount)

    async def remove(
        self,
        credential_id: bytes,
        user_id: str,
        *,
        keep_session: bytes | None = None,
        outbox: OutboxOfEnded | None = None,
    ) -> Removal:
        async with self._write() as connection:
            # PostgreSQL: the account's row lock serialises this with the account's other removals and
            # address changes; what it counts and reads below is read after the lock is held. SQLite: the
            # write transaction runs alone (BEGIN IMMEDIATE).
            await connection.execute(LOCK_USER, {"id": user_id})
            owned = (await connection.execute(COUNT_CREDENTIALS, {"user_id": user_id, "id": credential_id})).one()
            if not owned.this:
                return Removal(outcome="not_found")
            if owned.total <= 1 and not (await connection.execute(OTHER_WAY_IN, {"user_id": user_id})).scalar():
                return Removal(outcome="last_passkey")
            await connection.execute(DELETE_CREDENTIAL, {"id": credential_id, "user_id": user_id})
            # No session has an empty token hash: b"" keeps none.
            ended = await connection.execute(
                END_SESSIONS_OF_CREDENTIAL, {"user_id": user_id, "id": credential_id, "keep": keep_session or b""}
            )
            removal = Removal(outcome="removed", ended_sessions=tuple(ended.scalars()))
            if outbox is not None:
                await _queue(connection, outbox(removal.ended_sessions))
            return removal

    async def record_use(self, credential_id: bytes, *, sign_count: int, backed_up: bool, used_at: datetime) -> bool:
        statement, parameters = _use_statement(
            CredentialUse(credential_id=credential_id, sign_count=sign_count, backed_up=backed_up, used_at=used_at)
        )
        async with self._write() as connection:
            result = await connection.execute(statement, parameters)
        return bool(result.rowcount)


class SqlChallenges(_Tables):
    spent_with_sign_in = True  # a sign-in's mark is written in its own transaction (SqlSignIns.record)

    async def issued(self, challenge_id: bytes, expires_at: datetime) -> None:
        return None  # begin writes nothing: spending marks it

    async def spend(self, challenge_id: bytes, expires_at: datetime) -> bool:
        if (direct := self._direct) is not None:  # every ceremony's, when several processes share the file
            try:
                with direct.write() as driver:
                    direct.run(driver, SPEND_CHALLENGE, {"id": challenge_id, "expires_at": expires_at})
            except sqlite3.IntegrityError:
                return False
            return True
        try:
            async with self._write() as connection:
                await connection.execute(SPEND_CHALLENGE, {"id": challenge_id, "expires_at": expires_at})
        except IntegrityError:  # the primary key: answered before (on PostgreSQL, after the other one commits)
            return False
        return True

    async def put(self, challenge: PendingChallenge) -> None:
        async with self._write() as connection:
            await connection.execute(INSERT_CHALLENGE, _fields(challenge))

    async def take(self, challenge_id: bytes) -> PendingChallenge | None:
        async with self._write() as connection:
            row = (await connection.execute(TAKE_CHALLENGE, {"id": challenge_id})).first()
        if row is None:
            return None
        return _from_row(PendingChallenge, row)

    async def purge_expired(self, now: datetime) -> int:
        async with self._write() as connection:
            result = await connection.execute(PURGE_CHALLENGES, {"now": now})
            await connection.execute(PURGE_USED_CHALLENGES, {"now": now})
        return int(result.rowcount)


class SqlSessions(_Tables):
    async def create(self, session: Session) -> None:
        async with self._write() as connection:
            await connection.execute(INSERT_SESSION, _session_values(session))

    async def get(self, token_hash: bytes) -> Session | None:
        async with self._read() as connection:
            row = (await connection.execute(SESSION_BY_HASH, {"hash": token_hash})).first()
        return _session(row) if row else None

    async def touch(self, token_hash: bytes, at: datetime) -> None:
        async with self._write() as connection:
            await connection.execute(TOUCH_SESSION, {"hash": token_hash, "at": at})

    async def delete(self, token_hash: bytes, *, outbox: Sequence[WebhookEvent] = ()) -> bool:
        async with self._write() as connection:
            deleted = bool((await connection.execute(DELETE_SESSION, {"hash": token_hash})).rowcount)
            if deleted:
                await _queue(connection, outbox)
        return deleted

    async def by_sid(self, sid: str) -> Session | None:
        async with self._read() as connection:
            row = (await connection.execute(SESSION_BY_SID, {"sid": sid})).first()
        return _session(row) if row else None

    async def mark_authenticated(
        self, token_hash: bytes, at: datetime, *, credential_id: bytes, user_verified: bool
    ) -> None:
        parameters = {"hash": token_hash, "at": at, "credential_id": credential_id, "user_verified": user_verified}
        async with self._write() as connection:
            await connection.execute(MARK_AUTHENTICATED, parameters)

    async def delete_for_user(
        self, user_id: str, *, keep: bytes | None = None, outbox: OutboxOfEnded | None = None
    ) -> tuple[bytes, ...]:
        statement = delete(_sessions).where(_sessions.c.user_id == user_id)
        if keep is not None:
            statement = statement.where(_sessions.c.token_hash != keep)
        async with self._write() as connection:
            ended = tuple((await connection.execute(statement.returning(_sessions.c.token_hash))).scalars())
            if outbox is not None and ended:
                await _queue(connection, outbox(ended))
        return ended

    async def purge_expired(self, now: datetime, idle: timedelta) -> int:
        async with self._write() as connection:
            result = await connection.execute(PURGE_SESSIONS, {"now": now, "idle_since": now - idle})
        return int(result.rowcount)

    async def count_active(self, now: datetime, idle: timedelta) -> int:
        async with self._read() as connection:
            result = await connection.execute(COUNT_ACTIVE_SESSIONS, {"now": now, "idle_since": now - idle})
            return int(result.scalar_one())


class SqlEvents(_Tables):
    async def record(self, event: Event, *, outbox: Sequence[WebhookEvent] = ()) -> None:
        async with self._write() as connection:
            await connection.execute(INSERT_EVENT, [_event_values(event)])
            await _queue(connection, outbox)

    async def list(
        self,
        *,
        user_id: str | None = None,
        type: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[Event]:
        query = select(_events).order_by(_events.c.id.desc()).limit(limit)
        if user_id is not None:
            query = query.where(_events.c.user_id == user_id)
        if type is not None:
            query = query.where(_events.c.type == type)
        if outcome is not None:
            query = query.where(_events.c.outcome == outcome)
        if since is not None:
            query = query.where(_events.c.created_at >= since)
        async with self._read() as connection:
            rows = await connection.execute(query)
            return [_from_row(Event, row) for row in rows]


class SqlBackupCodes(_Tables):
    async def replace(self, user_id: str, codes: list[BackupCode]) -> None:
        async with self._write() as connection:
            await connection.execute(delete(_backup_codes).where(_backup_codes.c.user_id == user_id))
            if codes:
                await connection.execute(insert(_backup_codes), [_fields(code) for code in codes])

    async def unused(self, user_id: str) -> list[BackupCode]:
        async with self._read() as connection:
            rows = await connection.execute(UNUSED_CODES, {"user_id": user_id})
            return [_from_row(BackupCode, row) for row in rows]

    async def use(self, user_id: str, number: int, at: datetime, *, outbox: Sequence[WebhookEvent] = ()) -> bool:
        async with self._write() as connection:
            result = await connection.execute(USE_CODE, {"owner": user_id, "code_number": number, "at": at})
            if result.rowcount:
                await _queue(connection, outbox)
        return bool(result.rowcount)


class SqlEmailTokens(_Tables):
    async def put(self, token: EmailToken) -> None:
        async with self._write() as connection:
            await connection.execute(insert(_email_tokens), _fields(token))

    async def get(self, token_hash: bytes) -> EmailToken | None:
        async with self._read() as connection:
            row = (await connection.execute(EMAIL_TOKEN_BY_HASH, {"hash": token_hash})).first()
        return _from_row(EmailToken, row) if row else None

    async def take(self, token_hash: bytes, *, purpose: EmailPurpose, browser: bytes | None) -> EmailToken | None:
        parameters = {"hash": token_hash, "purpose": purpose, "browser": browser}
        async with self._write() as connection:
            row = (await connection.execute(TAKE_EMAIL_TOKEN, parameters)).first()
        return _from_row(EmailToken, row) if row else None

    async def purge_expired(self, now: datetime) -> int:
        async with self._write() as connection:
            statement = delete(_email_tokens).where(_email_tokens.c.expires_at < now)
            return int((await connection.execute(statement)).rowcount)


class SqlMail(_Tables):
    async def enqueue(self, mail: QueuedMail) -> None:
        async with self._write() as connection:
            await connection.execute(insert(_mail), _fields(mail))

    async def claim(self, *, worker: str, now: datetime, lease: timedelta, limit: int) -> list[QueuedMail]:
        async with self._write() as connection:
            rows = await connection.execute(
                CLAIM_MAIL, {"now": now, "limit": limit, "worker": worker, "until": now + lease}
            )
            claimed = [_from_row(QueuedMail, row) for row in rows]
        return sorted(claimed, key=lambda mail: (mail.next_attempt_at, mail.created_at))

    async def sent(self, mail_id: str, *, worker: str) -> bool:
        async with self._write() as connection:
            result = await connection.execute(DELETE_SENT_MAIL, {"mail_id": mail_id, "worker": worker})
        return bool(result.rowcount)

    async def replace(self, mail_id: str, *, worker: str, by: QueuedMail) -> bool:
        async with self._write() as connection:
            if not (await connection.execute(DELETE_SENT_MAIL, {"mail_id": mail_id, "worker": worker})).rowcount:
                return False
            await connection.execute(insert(_mail), _fields(by))
        return True

    async def retry(self, mail_id: str, *, worker: str, at: datetime, error: str) -> bool:
        async with self._write() as connection:
            result = await connection.execute(
                RETRY_MAIL, {"mail_id": mail_id, "worker": worker, "at": at, "error": error[:512]}
            )
        return bool(result.rowcount)

    async def fail(self, mail_id: str, *, worker: str, error: str) -> bool:
        async with self._write() as connection:
            result = await connection.execute(FAIL_MAIL, {"mail_id": mail_id, "worker": worker, "error": error[:512]})
        return bool(result.rowcount)

    async def list(self, *, status: MailStatus | None = None, limit: int = 100) -> list[QueuedMail]:
        query = select(_mail).order_by(_mail.c.created_at).limit(limit)
        if status is not None:
            query = query.where(_mail.c.status == status)
        async with self._read() as connection:
            return [_from_row(QueuedMail, row) for row in await connection.execute(query)]


def _oidc_client(row: Any) -> OidcClient:
    return OidcClient(
        client_id=row.client_id,
        name=row.name,
        secret_hash=row.secret_hash,
        redirect_uris=tuple(row.redirect_uris),
        post_logout_redirect_uris=tuple(row.post_logout_redirect_uris),
        backchannel_logout_uri=row.backchannel_logout_uri,
        scopes=tuple(row.scopes),
        first_party=row.first_party,
        created_at=row.created_at,
    )


class SqlOidcClients(_Tables):
    async def add(self, client: OidcClient) -> None:
        values = _fields(client)
        del values["source"]  # every stored client came from the CLI
        for name in ("redirect_uris", "post_logout_redirect_uris", "scopes"):
            values[name] = list(values[name])
        try:
            async with self._write() as connection:
                await connection.execute(insert(_oidc_clients), values)
        except IntegrityError as exc:
            raise ClientExists() from exc

    async def get(self, client_id: str) -> OidcClient | None:
        async with self._read() as connection:
            row = (await connection.execute(OIDC_CLIENT_BY_ID, {"client_id": client_id})).first()
        return _oidc_client(row) if row else None

    async def list(self) -> list[OidcClient]:
        async with self._read() as connection:
            return [_oidc_client(row) for row in await connection.execute(OIDC_CLIENTS)]

    async def remove(self, client_id: str) -> bool:
        async with self._write() as connection:
            result = await connection.execute(DELETE_OIDC_CLIENT, {"client_id": client_id})
        return bool(result.rowcount)


_keys = schema.signing_keys
SIGNING_KEYS = select(_keys).order_by(_keys.c.generation, _keys.c.alg)
RETIRE_KEYS = (
    update(_keys)
    .where(_keys.c.retired_at.is_(None))
    .values(retired_at=bindparam("retire_at"), remove_after=bindparam("remove_after"))
)


class SqlSigningKeys(_Tables):
    async def all(self) -> list[SigningKey]:
        async with self._read() as connection:
            return [_from_row(SigningKey, row) for row in await connection.execute(SIGNING_KEYS)]

    async def add_generation(self, keys: list[SigningKey], *, retire_at: datetime, remove_after: datetime) -> bool:
        try:
            async with self._write() as connection:
                await connection.execute(RETIRE_KEYS, {"retire_at": retire_at, "remove_after": remove_after})
                # The unique (alg, generation) index: of two nodes adding one generation, the second fails here
                # (PostgreSQL makes it wait for the first to commit), and its retirement is rolled back with it.
                await connection.execute(insert(_keys), [_fields(key) for key in keys])
        except IntegrityError:
            return False
        return True

    async def purge(self, now: datetime) -> int:
        async with self._write() as connection:
            result = await connection.execute(delete(_keys).where(_keys.c.remove_after <= now))
        return int(result.rowcount)


_codes = schema.authorization_codes
CODE_BY_HASH = select(_codes).where(_codes.c.code_hash == bindparam("hash"))
TAKE_CODE = (
    update(_codes)
    .where(_codes.c.code_hash == bindparam("hash"), _codes.c.used_at.is_(None))
    .values(used_at=bindparam("now"))
)
REVOKE_CODE = update(_codes).where(_codes.c.code_hash == bindparam("hash")).values(revoked=True)
CODE_ISSUED = update(_codes).where(_codes.c.code_hash == bindparam("hash")).values(access_token_jti=bindparam("jti"))
REVOKED_JTI = select(_codes.c.code_hash).where(_codes.c.access_token_jti == bindparam("jti"), _codes.c.revoked)


def _authorization_code(row: Any) -> AuthorizationCode:
    values = dict(row._mapping)
    values["amr"] = tuple(values["amr"])
    return AuthorizationCode(**values)


class SqlAuthorizationCodes(_Tables):
    async def add(self, code: AuthorizationCode) -> None:
        values = _fields(code)
        values["amr"] = list(code.amr)
        async with self._write() as connection:
            await connection.execute(insert(_codes), values)

    async def take(self, code_hash: bytes, now: datetime) -> TakenCode | None:
        async with self._write() as connection:
            # The conditional update is the lock: of two exchanges at once, one updates the row and the other,
            # finding it used, revokes it.
            first = bool((await connection.execute(TAKE_CODE, {"hash": code_hash, "now": now})).rowcount)
            if not first:
                await connection.execute(REVOKE_CODE, {"hash": code_hash})
            row = (await connection.execute(CODE_BY_HASH, {"hash": code_hash})).first()
        return TakenCode(code=_authorization_code(row), first=first) if row else None

    async def record_issued(self, code_hash: bytes, access_token_jti: str) -> None:
        async with self._write() as connection:
            await connection.execute(CODE_ISSUED, {"hash": code_hash, "jti": access_token_jti})

    async def revoked(self, access_token_jti: str) -> bool:
        async with self._read() as connection:
            return (await connection.execute(REVOKED_JTI, {"jti": access_token_jti})).first() is not None

    async def purge(self, expired_before: datetime) -> int:
        async with self._write() as connection:
            result = await connection.execute(delete(_codes).where(_codes.c.expires_at <= expired_before))
        return int(result.rowcount)


class SqlSessionClients(_Tables):
    async def record(self, entry: SessionClient) -> None:
        table = schema.session_clients
        async with self._write() as connection:
            known = (
                await connection.execute(
                    select(table.c.sid).where(
                        table.c.token_hash == entry.token_hash, table.c.client_id == entry.client_id
                    )
                )
            ).first()
            if known is None:
                await connection.execute(insert(table), _fields(entry))

    async def take(self, token_hashes: Sequence[bytes]) -> list[SessionClient]:
        if not token_hashes:
            return []
        table = schema.session_clients
        async with self._write() as connection:
            # Each entry is returned by the caller whose DELETE removed it, so two nodes never both tell a client.
            taken = []
            for row in (await connection.execute(select(table).where(table.c.token_hash.in_(token_hashes)))).all():
                gone = await connection.execute(
                    delete(table).where(table.c.token_hash == row.token_hash, table.c.client_id == row.client_id)
                )
                if gone.rowcount:
                    taken.append(SessionClient(**dict(row._mapping)))
        return taken

    async def purge(self, recorded_before: datetime) -> int:
        table = schema.session_clients
        async with self._write() as connection:
            result = await connection.execute(delete(table).where(table.c.recorded_at < recorded_before))
        return int(result.rowcount)


_refresh, _revoked_jtis = schema.refresh_tokens, schema.revoked_access_tokens
REFRESH_BY_HASH = select(_refresh).where(_refresh.c.token_hash == bindparam("hash"))
USE_REFRESH = (
    update(_refresh)
    .where(_refresh.c.token_hash == bindparam("hash"), _refresh.c.used_at.is_(None), ~_refresh.c.revoked)
    .values(used_at=bindparam("now"))
)
REVOKE_FAMILY = update(_refresh).where(_refresh.c.family_id == bindparam("family")).values(revoked=True)
REFRESH_BY_JTI = select(_refresh).where(_refresh.c.access_token_jti == bindparam("jti"))


def _refresh_token(row: Any) -> RefreshToken:
    values = dict(row._mapping)
    values["amr"] = tuple(values["amr"])
    return RefreshToken(**values)


def _refresh_values(token: RefreshToken) -> dict[str, Any]:
    values = _fields(token)
    values["amr"] = list(token.amr)
    return values


class SqlRefreshTokens(_Tables):
    async def add(self, token: RefreshToken) -> None:
        async with self._write() as connection:
            await connection.execute(insert(_refresh), _refresh_values(token))

    async def get(self, token_hash: bytes) -> RefreshToken | None:
        async with self._read() as connection:
            row = (await connection.execute(REFRESH_BY_HASH, {"hash": token_hash})).first()
        return _refresh_token(row) if row else None

    async def rotate(self, token_hash: bytes, replacement: RefreshToken, now: datetime) -> TakenRefreshToken | None:
        async with self._write() as connection:
            # The conditional update is the lock: of two uses at once, one updates the row (and adds the
            # replacement in the same transaction); the other, finding it used, revokes the family.
            first = bool((await connection.execute(USE_REFRESH, {"hash": token_hash, "now": now})).rowcount)
            row = (await connection.execute(REFRESH_BY_HASH, {"hash": token_hash})).first()
            if row is None:
                return None
            if first:
                await connection.execute(insert(_refresh), _refresh_values(replacement))
            else:
                await connection.execute(REVOKE_FAMILY, {"family": row.family_id})
                row = (await connection.execute(REFRESH_BY_HASH, {"hash": token_hash})).first()
        return TakenRefreshToken(token=_refresh_token(row), first=first)

    async def revoke_family(self, family_id: str) -> None:
        async with self._write() as connection:
            await connection.execute(REVOKE_FAMILY, {"family": family_id})

    async def revoke_for_user(self, user_id: str, *, client_id: str | None = None) -> int:
        statement = update(_refresh).where(_refresh.c.user_id == user_id, ~_refresh.c.revoked).values(revoked=True)
        if client_id is not None:
            statement = statement.where(_refresh.c.client_id == client_id)
        async with self._write() as connection:
            return int((await connection.execute(statement)).rowcount)

    async def by_access_token(self, access_token_jti: str) -> RefreshToken | None:
        async with self._read() as connection:
            row = (await connection.execute(REFRESH_BY_JTI, {"jti": access_token_jti})).first()
        return _refresh_token(row) if row else None

    async def revoke_access_token(self, jti: str, expires_at: datetime) -> None:
        try:
            async with self._write() as connection:
                await connection.execute(insert(_revoked_jtis), {"jti": jti, "expires_at": expires_at})
        except IntegrityError:
            pass  # revoked already

    async def access_token_revoked(self, jti: str) -> bool:
        async with self._read() as connection:
            found = await connection.execute(select(_revoked_jtis.c.jti).where(_revoked_jtis.c.jti == jti))
            return found.first() is not None

    async def purge(self, now: datetime) -> int:
        async with self._write() as connection:
            tokens = await connection.execute(delete(_refresh).where(_refresh.c.family_expires_at <= now))
            jtis = await connection.execute(delete(_revoked_jtis).where(_revoked_jtis.c.expires_at <= now))
        return int(tokens.rowcount) + int(jtis.rowcount)


_consents = schema.consents
CONSENT_OF = select(_consents).where(
    _consents.c.user_id == bindparam("user"), _consents.c.client_id == bindparam("client")
)


def _consent(row: Any) -> Consent:
    return Consent(
        user_id=row.user_id,
        client_id=row.client_id,
        scopes=frozenset(row.scopes.split()),
        granted_at=row.granted_at,
        updated_at=row.updated_at,
    )


class SqlConsents(_Tables):
    async def grant(self, user_id: str, client_id: str, scopes: Sequence[str], at: datetime) -> Consent:
        key = {"user": user_id, "client": client_id}
        mine = (_consents.c.user_id == user_id, _consents.c.client_id == client_id)
        while True:
            known = await self.get(user_id, client_id)
            try:
                async with self._write() as connection:
                    if known is None:
                        await connection.execute(
                            insert(_consents),
                            {
                                "user_id": user_id,
                                "client_id": client_id,
                                "scopes": " ".join(sorted(set(scopes))),
                                "granted_at": at,
                                "updated_at": at,
                            },
                        )
                    else:
                        # Written only if the scopes are still those read (else read them again): of two grants
                        # at once, neither's scopes are lost.
                        read = " ".join(sorted(known.scopes))
                        widened = " ".join(sorted(known.scopes | set(scopes)))
                        written = await connection.execute(
                            update(_consents)
                            .where(*mine, _consents.c.scopes == read)
                            .values(scopes=widened, updated_at=at)
                        )
                        if not written.rowcount:
                            continue
                    row = (await connection.execute(CONSENT_OF, key)).one()
            except IntegrityError:
                continue  # another grant made the row first: widen it
            return _consent(row)

    async def get(self, user_id: str, client_id: str) -> Consent | None:
        async with self._read() as connection:
            row = (await connection.execute(CONSENT_OF, {"user": user_id, "client": client_id})).first()
        return _consent(row) if row else None

    async def list_for_user(self, user_id: str) -> list[Consent]:
        statement = (
            select(_consents)
            .where(_consents.c.user_id == user_id)
            .order_by(_consents.c.granted_at, _consents.c.client_id)
        )
        async with self._read() as connection:
            return [_consent(row) for row in (await connection.execute(statement)).all()]

    async def withdraw(self, user_id: str, client_id: str) -> bool:
        async with self._write() as connection:
            result = await connection.execute(
                delete(_consents).where(_consents.c.user_id == user_id, _consents.c.client_id == client_id)
            )
        return bool(result.rowcount)

    async def forget_client(self, client_id: str) -> int:
        async with self._write() as connection:
            result = await connection.execute(delete(_consents).where(_consents.c.client_id == client_id))
        return int(result.rowcount)


class SqlSignIns(_Tables):
    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self._asyncpg = database.asyncpg
        self._statements: dict[tuple[bool, bool, bool, int], Prepared] = {}

    async def record(
        self,
        use: CredentialUse,
        *,
        session: Session,
        ended_session: bytes | None,
        event: Event,
        outbox: Sequence[WebhookEvent] = (),
        spend: Spend | None = None,
    ) -> int | None:
        statement, parameters = _use_statement(use)
        # The counter first: a stale assertion writes nothing, so its refusal spends the challenge on its own.
        if (direct := self._direct) is not None:  # every sign-in: the same statements, on the driver
            with direct.write() as driver:
                if not direct.run(driver, statement, parameters).rowcount:
                    return None
                if spend is not None:
                    try:
                        direct.run(driver, SPEND_CHALLENGE, _spend_values(spend))
                    except sqlite3.IntegrityError:
                        raise ChallengeNotFound() from None  # answered before: all of this is rolled back
                if ended_session is not None:
                    direct.run(driver, DELETE_SESSION, {"hash": ended_session})
                direct.run(driver, INSERT_SESSION, _session_values(session))
                direct.run(driver, INSERT_EVENT, _event_values(event))
                return sum(direct.run(driver, QUEUE_WEBHOOK, _queue_values(webhook)).rowcount for webhook in outbox)
        if self._asyncpg is not None:  # PostgreSQL: one statement, one round trip, on the driver
            shape = (statement is RECORD_COUNTED_USE, ended_session is not None, spend is not None, len(outbox))
            if (one := self._statements.get(shape)) is None:
                one = self._statements[shape] = Prepared(_sign_in_statement(*shape), self._asyncpg.dialect)
            values = {**parameters, **_prefixed("session_", _session_values(session))}
            values.update(_prefixed("event_", _event_values(event)))
            if ended_session is not None:
                values["hash"] = ended_session
            if spend is not None:
                values.update(_prefixed("spend_", _spend_values(spend)))
            for number, webhook in enumerate(outbox):
                values.update({f"{name}_{number}": value for name, value in _queue_values(webhook).items()})
            try:
                async with self._asyncpg.connection() as driver:
                    moved, queued = await driver.fetchrow(one.sql, *one.parameters(values))
            except asyncpg.UniqueViolationError:  # the challenge's mark: answered before (once the other commits)
                raise ChallengeNotFound() from None
            return int(queued) if moved else None
        async with self._write() as connection:
            if not (await connection.execute(statement, parameters)).rowcount:
                return None
            if spend is not None:
                try:
                    await connection.execute(SPEND_CHALLENGE, _spend_values(spend))
                except IntegrityError:  # on PostgreSQL, once the other answer commits
                    raise ChallengeNotFound() from None
            if ended_session is not None:
                await connection.execute(DELETE_SESSION, {"hash": ended_session})
            await connection.execute(INSERT_SESSION, _session_values(session))
            await connection.execute(INSERT_EVENT, [_event_values(event)])
            return await _queue(connection, outbox)


def _creation_statement(shape: tuple[tuple[Any, tuple[str, ...]], ...]) -> Select[Any]:
    """PostgreSQL: a new account's writes (`SqlUsers._create`, each an INSERT and the names of its values) as one
    statement of data-modifying CTEs, the parameters of the n-th named `<name>_<n>`. Foreign keys are checked when
    the statement ends, so the account and the rows that refer to it may come in one. Selects the webhook
    deliveries queued."""
    parts, queued = [], []
    for n, (statement, names) in enumerate(shape):
        if statement is QUEUE_WEBHOOK:
            queued.append(_queued(n))
        else:
            parts.append(_insert_row(statement.table, names, suffix=f"_{n}").cte(f"written_{n}"))
    return select(_deliveries(queued)).add_cte(*parts, *queued)


def _creation_refused(violated: str) -> PasskeyError:
    """What a new account's refused INSERT means, from the constraint it violated."""
    constraint = violated.lower()
    if "used_challenges" in constraint:  # answered before (on PostgreSQL, once the other answer commits)
        return ChallengeNotFound()
    if "credential" in constraint:
        return CredentialExists()
    if "email" in constraint:
        return EmailTaken()
    if "username" in constraint:
        return UsernameTaken()
    return UsernameTaken("An account with this external id or user handle exists already.")


def _sign_in_statement(counted: bool, ended: bool, spend: bool, webhooks: int) -> Select[Any]:
    """PostgreSQL: a sign-in recorded by one statement. The passkey's use comes first and, only if it was written
    (its counter moved), the rest: the challenge's mark, the ended session, the new one, the event and the webhook
    events, as data-modifying CTEs. Atomic, as every statement is, in one round trip instead of a transaction's
    eight. Selects whether the sign-in was recorded (1, or 0 if the counter did not move and nothing is written)
    and the number of webhook deliveries queued."""
    use = (RECORD_COUNTED_USE if counted else RECORD_USE).returning(_credentials.c.credential_id).cte("used")
    moved = exists(select(use.c.credential_id))
    parts: list[Any] = []
    if spend:
        parts.append(_insert_if(schema.used_challenges, "spend_", moved))
    if ended:
        parts.append(delete(_sessions).where(_sessions.c.token_hash == bindparam("hash"), moved))
    parts.append(_insert_if(_sessions, "session_", moved))
    parts.append(_insert_if(_events, "event_", moved, skip="id"))
    queued = [_queued(n, moved) for n in range(webhooks)]
    return select(select(func.count()).select_from(use).scalar_subquery(), _deliveries(queued)).add_cte(
        *(part.cte(f"written_{number}") for number, part in enumerate(parts))
    )


def _insert_if(table: Table, prefix: str, condition: Any, *, skip: str = "") -> Any:
    """An INSERT of one row, its values the parameters named `prefix` and the column's name, if `condition`."""
    names = [column.name for column in table.c if column.name != skip]
    return _insert_row(table, names, prefix=prefix, condition=condition)


def _insert_row(
    table: Table, names: Sequence[str], *, prefix: str = "", suffix: str = "", condition: Any = None
) -> Any:
    """An INSERT ... SELECT of one row into the columns `names`, each the parameter `<prefix><name><suffix>` (only
    if `condition`, given): a statement that can be a CTE."""
    values = select(*(bindparam(prefix + name + suffix, type_=table.c[name].type) for name in names))
    return insert(table).from_select(list(names), values if condition is None else values.where(condition))


def _queued(n: int, condition: Any = None) -> Any:
    """The n-th webhook event's outbox rows (its parameters named `<name>_<n>`), only if `condition` given, as a
    CTE returning their ids."""
    rows = _queue_rows(f"_{n}")
    return (
        insert(_outbox)
        .from_select(_QUEUED, rows if condition is None else rows.where(condition))
        .returning(_outbox.c.id)
        .cte(f"queued_{n}")
    )


def _deliveries(queued: Sequence[Any]) -> Any:
    """How many rows the `_queued` CTEs inserted."""
    return sum((select(func.count()).select_from(each).scalar_subquery() for each in queued), literal(0))


def _prefixed(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    return {prefix + name: value for name, value in values.items()}


_apps, _app_keys, _app_users, _app_credentials = schema.apps, schema.app_keys, schema.app_users, schema.app_credentials
APP_BY_ID = select(_apps).where(_apps.c.app_id == bindparam("b_app"))
APPS = select(_apps).order_by(_apps.c.created_at, _apps.c.app_id)
APP_KEY_BY_HASH = select(_app_keys).where(_app_keys.c.key_hash == bindparam("key_hash"))
APP_KEYS = select(_app_keys).where(_app_keys.c.app_id == bindparam("b_app")).order_by(_app_keys.c.created_at)
REVOKE_APP_KEY = (
    update(_app_keys)
    .where(
        _app_keys.c.app_id == bindparam("b_app"),
        _app_keys.c.key_id == bindparam("b_key"),
        _app_keys.c.revoked_at.is_(None),
    )
    .values(revoked_at=bindparam("at"))
)
APP_USER = select(_app_users).where(
    _app_users.c.app_id == bindparam("b_app"), _app_users.c.user_id == bindparam("b_user")
)
RENAME_APP_USER = (
    update(_app_users)
    .where(_app_users.c.app_id == bindparam("b_app"), _app_users.c.user_id == bindparam("b_user"))
    .values(username=bindparam("b_username"), display_name=bindparam("b_display_name"))
)
DELETE_APP_USER = delete(_app_users).where(
    _app_users.c.app_id == bindparam("b_app"), _app_users.c.user_id == bindparam("b_user")
)
DELETE_APP_USER_CREDENTIALS = delete(_app_credentials).where(
    _app_credentials.c.app_id == bindparam("b_app"), _app_credentials.c.user_id == bindparam("b_user")
)
_THIS_APP_CREDENTIAL = (
    _app_credentials.c.app_id == bindparam("b_app"),
    _app_credentials.c.credential_id == bindparam("id"),
)
APP_CREDENTIAL = select(_app_credentials).where(*_THIS_APP_CREDENTIAL)
APP_CREDENTIALS_OF_USER = (
    select(_app_credentials)
    .where(_app_credentials.c.app_id == bindparam("b_app"), _app_credentials.c.user_id == bindparam("b_user"))
    .order_by(_app_credentials.c.created_at)
)
RENAME_APP_CREDENTIAL = update(_app_credentials).where(*_THIS_APP_CREDENTIAL).values(nickname=bindparam("b_nickname"))
DELETE_APP_CREDENTIAL = delete(_app_credentials).where(*_THIS_APP_CREDENTIAL)
RECORD_APP_USE = (
    update(_app_credentials)
    .where(*_THIS_APP_CREDENTIAL)
    .values(backed_up=bindparam("backed_up"), last_used_at=bindparam("used_at"))
)
RECORD_COUNTED_APP_USE = (
    update(_app_credentials)
    .where(*_THIS_APP_CREDENTIAL, _app_credentials.c.sign_count < bindparam("sign_count"))
    .values(sign_count=bindparam("sign_count"), backed_up=bindparam("backed_up"), last_used_at=bindparam("used_at"))
)


def _app(row: Any) -> App:
    return App(
        app_id=row.app_id,
        name=row.name,
        origins=tuple(row.origins),
        rp_id=row.rp_id,
        policy=row.policy,
        created_at=row.created_at,
    )


def _app_key(row: Any) -> AppKey:
    return AppKey(
        key_id=row.key_id,
        app_id=row.app_id,
        key_hash=row.key_hash,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _app_user(row: Any) -> AppUser:
    return AppUser(
        app_id=row.app_id,
        user_id=row.user_id,
        user_handle=row.user_handle,
        username=row.username,
        display_name=row.display_name,
        created_at=row.created_at,
    )


class SqlApps(_Tables):
    async def add(self, app: App) -> None:
        values = _fields(app)
        values["origins"] = list(app.origins)
        try:
            async with self._write() as connection:
                await connection.execute(insert(_apps), values)
        except IntegrityError as exc:
            raise ClientExists("An app has this id already.") from exc

    async def put(self, app: App) -> None:
        values = {"name": app.name, "origins": list(app.origins), "rp_id": app.rp_id, "policy": app.policy}
        async with self._write() as connection:
            updated = await connection.execute(update(_apps).where(_apps.c.app_id == app.app_id).values(**values))
            if not updated.rowcount:
                await connection.execute(insert(_apps), {**values, "app_id": app.app_id, "created_at": app.created_at})

    async def get(self, app_id: str) -> App | None:
        async with self._read() as connection:
            row = (await connection.execute(APP_BY_ID, {"b_app": app_id})).first()
        return _app(row) if row else None

    async def list_apps(self) -> list[App]:
        async with self._read() as connection:
            return [_app(row) for row in await connection.execute(APPS)]

    async def remove(self, app_id: str) -> bool:
        async with self._write() as connection:
            for table in (_app_credentials, _app_users, _app_keys):
                await connection.execute(delete(table).where(table.c.app_id == app_id))
            result = await connection.execute(delete(_apps).where(_apps.c.app_id == app_id))
        return bool(result.rowcount)

    async def add_key(self, key: AppKey) -> None:
        async with self._write() as connection:
            await connection.execute(insert(_app_keys), _fields(key))

    async def key_by_hash(self, key_hash: bytes) -> AppKey | None:
        async with self._read() as connection:
            row = (await connection.execute(APP_KEY_BY_HASH, {"key_hash": key_hash})).first()
        return _app_key(row) if row else None

    async def list_keys(self, app_id: str) -> list[AppKey]:
        async with self._read() as connection:
            return [_app_key(row) for row in await connection.execute(APP_KEYS, {"b_app": app_id})]

    async def revoke_key(self, app_id: str, key_id: str, at: datetime) -> bool:
        async with self._write() as connection:
            result = await connection.execute(REVOKE_APP_KEY, {"b_app": app_id, "b_key": key_id, "at": at})
        return bool(result.rowcount)

    async def put_user(self, user: AppUser) -> AppUser:
        keys = {"b_app": user.app_id, "b_user": user.user_id}
        async with self._write() as connection:
            names = {"b_username": user.username, "b_display_name": user.display_name}
            if not (await connection.execute(RENAME_APP_USER, {**keys, **names})).rowcount:
                await connection.execute(insert(_app_users), _fields(user))
            row = (await connection.execute(APP_USER, keys)).one()
        return _app_user(row)

    async def get_user(self, app_id: str, user_id: str) -> AppUser | None:
        async with self._read() as connection:
            row = (await connection.execute(APP_USER, {"b_app": app_id, "b_user": user_id})).first()
        return _app_user(row) if row else None

    async def remove_user(self, app_id: str, user_id: str) -> bool:
        keys = {"b_app": app_id, "b_user": user_id}
        async with self._write() as connection:
            await connection.execute(DELETE_APP_USER_CREDENTIALS, keys)
            result = await connection.execute(DELETE_APP_USER, keys)
        return bool(result.rowcount)

    async def add_credential(self, app_id: str, credential: Credential) -> None:
        try:
            async with self._write() as connection:
                values = {**_credential_values(credential), "app_id": app_id}
                del values["created_by"]
                await connection.execute(insert(_app_credentials), values)
        except IntegrityError as exc:
            raise CredentialExists() from exc

    async def get_credential(self, app_id: str, credential_id: bytes) -> Credential | None:
        async with self._read() as connection:
            row = (await connection.execute(APP_CREDENTIAL, {"b_app": app_id, "id": credential_id})).first()
        return _credential(row) if row else None

    async def list_credentials(self, app_id: str, user_id: str) -> list[Credential]:
        parameters = {"b_app": app_id, "b_user": user_id}
        async with self._read() as connection:
            return [_credential(row) for row in await connection.execute(APP_CREDENTIALS_OF_USER, parameters)]

    async def rename_credential(self, app_id: str, credential_id: bytes, nickname: str | None) -> bool:
        parameters = {"b_app": app_id, "id": credential_id, "b_nickname": nickname}
        async with self._write() as connection:
            return bool((await connection.execute(RENAME_APP_CREDENTIAL, parameters)).rowcount)

    async def remove_credential(self, app_id: str, credential_id: bytes) -> bool:
        async with self._write() as connection:
            return bool(
                (await connection.execute(DELETE_APP_CREDENTIAL, {"b_app": app_id, "id": credential_id})).rowcount
            )

    async def record_use(
        self, app_id: str, credential_id: bytes, *, sign_count: int, backed_up: bool, used_at: datetime
    ) -> bool:
        parameters: dict[str, Any] = {"b_app": app_id, "id": credential_id, "backed_up": backed_up, "used_at": used_at}
        statement = RECORD_APP_USE
        if sign_count:
            statement, parameters["sign_count"] = RECORD_COUNTED_APP_USE, sign_count
        async with self._write() as connection:
            return bool((await connection.execute(statement, parameters)).rowcount)


_endpoints, _outbox = schema.webhook_endpoints, schema.webhook_outbox
# One statement per event: a delivery for each enabled endpoint subscribed to its type (" * ", " passkey.created "
# or " passkey.* " among its events), inside the transaction of the change.
_QUEUED = ["endpoint_id", "message_id", "type", "body", "created_at", "next_attempt_at", "attempts", "status"]


def _queue_rows(suffix: str = "") -> Select[Any]:
    """A webhook event's outbox rows, one per endpoint subscribed to it; its parameters' names end in `suffix`."""
    return select(
        _endpoints.c.id,
        bindparam("message_id" + suffix, type_=String()),
        bindparam("type" + suffix, type_=String()),
        bindparam("body" + suffix, type_=String()),
        bindparam("at" + suffix, type_=schema.UTCDateTime()),
        bindparam("at" + suffix, type_=schema.UTCDateTime()),
        literal(0, type_=Integer()),
        literal("queued", type_=String()),
    ).where(
        _endpoints.c.enabled.is_(True),
        # `LIKE '%' || ? || '%'`, not `LIKE ?`: SQLite recompiles a statement whose LIKE pattern is a bare
        # parameter each time it is bound (the pattern might allow an index): 15-30 µs per event, measured.
        or_(
            _endpoints.c.events.contains(literal(" * ", type_=String())),
            _endpoints.c.events.contains(bindparam("exact" + suffix, type_=String())),
            _endpoints.c.events.contains(bindparam("group" + suffix, type_=String())),
        ),
    )


QUEUE_WEBHOOK = insert(_outbox).from_select(_QUEUED, _queue_rows())
CLAIM_WEBHOOKS = (
    update(_outbox)
    .where(
        _outbox.c.id.in_(
            select(_outbox.c.id)
            .join(_endpoints, _endpoints.c.id == _outbox.c.endpoint_id)
            .where(
                _outbox.c.status == "queued",
                _outbox.c.next_attempt_at <= bindparam("now"),
                or_(_outbox.c.claimed_until.is_(None), _outbox.c.claimed_until < bindparam("now")),
                _endpoints.c.enabled.is_(True),
            )
            .order_by(_outbox.c.next_attempt_at, _outbox.c.id)
            .limit(bindparam("limit"))
            .with_for_update(of=_outbox, skip_locked=True)
        )
    )
    .values(claimed_by=bindparam("worker"), claimed_until=bindparam("until"), attempts=_outbox.c.attempts + 1)
    .returning(*_outbox.c)
)
_HELD_DELIVERY = (
    _outbox.c.id == bindparam("delivery_id"),
    _outbox.c.claimed_by == bindparam("worker"),
    _outbox.c.status == "queued",
)
FINISH_DELIVERY = (
    update(_outbox)
    .where(*_HELD_DELIVERY)
    .values(
        status=bindparam("status"),
        claimed_by=None,
        claimed_until=None,
        finished_at=bindparam("at"),
        last_status=bindparam("http_status"),
        last_error=bindparam("error"),
    )
)
RETRY_DELIVERY = (
    update(_outbox)
    .where(*_HELD_DELIVERY)
    .values(
        next_attempt_at=bindparam("at"),
        claimed_by=None,
        claimed_until=None,
        last_status=bindparam("http_status"),
        last_error=bindparam("error"),
    )
)


def _matching(event_type: str) -> dict[str, str]:
    """What an endpoint's events (space-separated, a space at each end) contain when it subscribes to `event_type`."""
    return {"exact": f" {event_type} ", "group": f" {event_type.split('.')[0]}.* "}


async def _queue(connection: _Connection, outbox: Sequence[WebhookEvent]) -> int:
    """Queue each event for its subscribed endpoints on `connection`, inside its transaction."""
    queued = 0
    for webhook in outbox:
        queued += int((await connection.execute(QUEUE_WEBHOOK, _queue_values(webhook))).rowcount)
    return queued


def _spend_values(spend: Spend) -> dict[str, Any]:
    return {"id": spend.challenge_id, "expires_at": spend.until}


def _queue_values(webhook: WebhookEvent) -> dict[str, Any]:
    return {
        "message_id": webhook.message_id,
        "type": webhook.type,
        "body": webhook.body,
        "at": webhook.created_at,
        **_matching(webhook.type),
    }


def _endpoint(row: Any) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        url=row.url,
        events=tuple(row.events.split()),
        secrets=row.secrets,
        created_at=row.created_at,
        source=row.source,
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
        disabled_at=row.disabled_at,
    )


def _endpoint_values(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {**_fields(endpoint), "events": f" {' '.join(endpoint.events)} "}


class SqlWebhooks(_Tables):
    async def put_endpoint(self, endpoint: WebhookEndpoint) -> None:
        values = _endpoint_values(endpoint)
        changed = {k: v for k, v in values.items() if k not in ("id", "created_at")}
        try:
            async with self._write() as connection:
                updated = await connection.execute(
                    update(_endpoints).where(_endpoints.c.id == endpoint.id).values(changed)
                )
                if not updated.rowcount:
                    await connection.execute(insert(_endpoints), values)
        except IntegrityError:
            # Another node, starting with the same file, stored it first: this one's copy replaces it.
            async with self._write() as connection:
                await connection.execute(update(_endpoints).where(_endpoints.c.id == endpoint.id).values(changed))

    async def get_endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        async with self._read() as connection:
            row = (await connection.execute(select(_endpoints).where(_endpoints.c.id == endpoint_id))).first()
        return _endpoint(row) if row else None

    async def list_endpoints(self) -> list[WebhookEndpoint]:
        async with self._read() as connection:
            rows = await connection.execute(select(_endpoints).order_by(_endpoints.c.created_at, _endpoints.c.id))
            return [_endpoint(row) for row in rows]

    async def remove_endpoint(self, endpoint_id: str) -> bool:
        async with self._write() as connection:
            # Explicitly: SQLite enforces the cascade only with foreign keys on, which every connection sets,
            # but the deliveries are this table's to remove either way.
            await connection.execute(delete(_outbox).where(_outbox.c.endpoint_id == endpoint_id))
            result = await connection.execute(delete(_endpoints).where(_endpoints.c.id == endpoint_id))
        return bool(result.rowcount)

    async def set_enabled(
        self, endpoint_id: str, enabled: bool, *, reason: str | None = None, at: datetime | None = None
    ) -> bool:
        values: dict[str, Any] = {
            "enabled": enabled,
            "disabled_reason": None if enabled else reason,
            "disabled_at": None if enabled else at,
        }
        async with self._write() as connection:
            result = await connection.execute(update(_endpoints).where(_endpoints.c.id == endpoint_id).values(values))
        return bool(result.rowcount)

    async def enqueue(self, events: Sequence[WebhookEvent]) -> int:
        queued = 0
        for webhook in events:  # each alone: one queued already (the unique index) leaves the others be
            try:
                async with self._write() as connection:
                    queued += await _queue(connection, [webhook])
            except IntegrityError:
                continue
        return queued

    async def claim(self, *, worker: str, now: datetime, lease: timedelta, limit: int) -> list[WebhookDelivery]:
        async with self._write() as connection:
            rows = await connection.execute(
                CLAIM_WEBHOOKS, {"now": now, "limit": limit, "worker": worker, "until": now + lease}
            )
            claimed = [_from_row(WebhookDelivery, row) for row in rows]
        return sorted(claimed, key=lambda delivery: (delivery.next_attempt_at, delivery.id))

    async def _finish(self, statement: Any, parameters: dict[str, Any]) -> bool:
        async with self._write() as connection:
            return bool((await connection.execute(statement, parameters)).rowcount)

    async def delivered(self, delivery_id: int, *, worker: str, at: datetime, status: int) -> bool:
        parameters = {"delivery_id": delivery_id, "worker": worker, "at": at, "http_status": status, "error": None}
        return await self._finish(FINISH_DELIVERY, {**parameters, "status": "delivered"})

    async def retry(
        self, delivery_id: int, *, worker: str, at: datetime, error: str, status: int | None = None
    ) -> bool:
        parameters = {"delivery_id": delivery_id, "worker": worker, "at": at, "http_status": status}
        return await self._finish(RETRY_DELIVERY, {**parameters, "error": error[:512]})

    async def fail(self, delivery_id: int, *, worker: str, at: datetime, error: str, status: int | None = None) -> bool:
        parameters = {"delivery_id": delivery_id, "worker": worker, "at": at, "http_status": status}
        return await self._finish(FINISH_DELIVERY, {**parameters, "error": error[:512], "status": "failed"})

    async def redeliver(self, delivery_id: int, *, at: datetime) -> bool:
        statement = (
            update(_outbox)
            .where(_outbox.c.id == delivery_id)
            .values(
                status="queued", next_attempt_at=at, attempts=0, claimed_by=None, claimed_until=None, finished_at=None
            )
        )
        async with self._write() as connection:
            return bool((await connection.execute(statement)).rowcount)

    async def get_delivery(self, delivery_id: int) -> WebhookDelivery | None:
        async with self._read() as connection:
            row = (await connection.execute(select(_outbox).where(_outbox.c.id == delivery_id))).first()
        return _from_row(WebhookDelivery, row) if row else None

    async def list_deliveries(
        self, *, endpoint_id: str | None = None, status: DeliveryStatus | None = None, limit: int = 100
    ) -> list[WebhookDelivery]:
        query = select(_outbox).order_by(_outbox.c.id.desc()).limit(limit)
        if endpoint_id is not None:
            query = query.where(_outbox.c.endpoint_id == endpoint_id)
        if status is not None:
            query = query.where(_outbox.c.status == status)
        async with self._read() as connection:
            return [_from_row(WebhookDelivery, row) for row in await connection.execute(query)]

    async def purge(self, finished_before: datetime) -> int:
        statement = delete(_outbox).where(_outbox.c.status != "queued", _outbox.c.finished_at < finished_before)
        async with self._write() as connection:
            return int((await connection.execute(statement)).rowcount)


# Administration: admin keys, and what only an administrator does to accounts (store.base.AccountAdminStore).

_admin_keys = schema.admin_keys
ADMIN_KEY_BY_HASH = select(_admin_keys).where(_admin_keys.c.key_hash == bindparam("hash"))
ADMIN_KEYS = select(_admin_keys).order_by(_admin_keys.c.created_at, _admin_keys.c.name)
ADMIN_KEY_IN_USE = select(_admin_keys.c.key_hash).where(
    _admin_keys.c.name == bindparam("name"), _admin_keys.c.revoked_at.is_(None)
)
REVOKE_ADMIN_KEY = (
    update(_admin_keys)
    .where(_admin_keys.c.name == bindparam("key_name"), _admin_keys.c.revoked_at.is_(None))
    .values(revoked_at=bindparam("at"))
)
SESSIONS_OF_USER = select(_sessions).where(_sessions.c.user_id == bindparam("user_id")).order_by(_sessions.c.created_at)
END_SESSIONS_OF_USER = (
    delete(_sessions).where(_sessions.c.user_id == bindparam("user_id")).returning(_sessions.c.token_hash)
)
DISABLE_USER = (
    update(_users)
    .where(_users.c.id == bindparam("target"))
    .values(disabled_at=func.coalesce(_users.c.disabled_at, bindparam("at")))
)
ENABLE_USER = update(_users).where(_users.c.id == bindparam("target")).values(disabled_at=None)
REVOKE_REFRESH_OF_USER = (
    update(schema.refresh_tokens)
    .where(schema.refresh_tokens.c.user_id == bindparam("owner"), ~schema.refresh_tokens.c.revoked)
    .values(revoked=True)
)
USER_EVENTS = select(_events.c.id, _events.c.detail).where(_events.c.user_id == bindparam("user_id"))
PSEUDONYMISE_EVENT = (
    update(_events)
    .where(_events.c.id == bindparam("event_id"))
    .values(user_id=bindparam("pseudonym"), detail=bindparam("scrubbed"))
)
# Every table that names an account by its id: what deleting the account erases (events are pseudonymised).
_OWNED_BY_USER = (
    schema.credentials,
    schema.passwords,
    schema.sessions,
    schema.backup_codes,
    schema.email_tokens,
    schema.challenges,
    schema.authorization_codes,
    schema.session_clients,
    schema.refresh_tokens,
    schema.consents,
)


def _admin_key(row: Any) -> AdminKey:
    return AdminKey(
        name=row.name,
        key_hash=row.key_hash,
        scopes=tuple(row.scopes),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class SqlAdminKeys(_Tables):
    async def add(self, key: AdminKey) -> None:
        async with self._write() as connection:
            # SQLite: the write transaction runs alone. PostgreSQL: two adds of one name at once could both
            # pass the check; the name is an operator's label, the key its secret, so that harms nothing.
            if (await connection.execute(ADMIN_KEY_IN_USE, {"name": key.name})).first() is not None:
                raise AdminKeyExists()
            await connection.execute(insert(_admin_keys), {**_fields(key), "scopes": list(key.scopes)})

    async def by_hash(self, key_hash: bytes) -> AdminKey | None:
        async with self._read() as connection:
            row = (await connection.execute(ADMIN_KEY_BY_HASH, {"hash": key_hash})).first()
        return _admin_key(row) if row else None

    async def list(self) -> list[AdminKey]:
        async with self._read() as connection:
            return [_admin_key(row) for row in await connection.execute(ADMIN_KEYS)]

    async def revoke(self, name: str, at: datetime) -> bool:
        async with self._write() as connection:
            return bool((await connection.execute(REVOKE_ADMIN_KEY, {"key_name": name, "at": at})).rowcount)


class SqlAdmin(_Tables):
    async def list_users(self, *, search: str | None, after: str | None, limit: int) -> list[User]:
        statement = select(_users).order_by(_users.c.id).limit(limit)
        if after is not None:
            statement = statement.where(_users.c.id > after)
        if search:
            wanted = normalize_identifier(search)
            statement = statement.where(
                or_(
                    _users.c.username_normalized.contains(wanted, autoescape=True),
                    func.lower(_users.c.email).contains(wanted.lower(), autoescape=True),
                    _users.c.external_id == search,
                )
            )
        async with self._read() as connection:
            return [_user(row) for row in await connection.execute(statement)]

    async def sessions_for_user(self, user_id: str) -> list[Session]:
        async with self._read() as connection:
            return [_session(row) for row in await connection.execute(SESSIONS_OF_USER, {"user_id": user_id})]

    async def disable(
        self, user_id: str, at: datetime, *, event: Event, outbox: OutboxOfEnded | None = None
    ) -> tuple[bytes, ...] | None:
        async with self._write() as connection:
            if not (await connection.execute(DISABLE_USER, {"target": user_id, "at": at})).rowcount:
                return None
            ended = tuple((await connection.execute(END_SESSIONS_OF_USER, {"user_id": user_id})).scalars())
            await connection.execute(REVOKE_REFRESH_OF_USER, {"owner": user_id})
            await connection.execute(INSERT_EVENT, [_event_values(event)])
            if outbox is not None:
                await _queue(connection, outbox(ended))
        return ended

    async def enable(self, user_id: str, *, event: Event) -> bool:
        async with self._write() as connection:
            if not (await connection.execute(ENABLE_USER, {"target": user_id})).rowcount:
                return False
            await connection.execute(INSERT_EVENT, [_event_values(event)])
        return True

    async def delete_user(
        self, user_id: str, *, pseudonym: str, event: Event, outbox: OutboxOfEnded | None = None
    ) -> tuple[bytes, ...] | None:
        async with self._write() as connection:
            row = (await connection.execute(USER_BY_ID.with_for_update(), {"id": user_id})).first()
            if row is None:
                return None
            user = _user(row)
            ended = tuple((await connection.execute(END_SESSIONS_OF_USER, {"user_id": user_id})).scalars())
            for table in _OWNED_BY_USER:
                await connection.execute(delete(table).where(table.c.user_id == user_id))
            if user.email:
                await connection.execute(delete(_mail).where(func.lower(_mail.c.recipient) == user.email.lower()))
            for found in (await connection.execute(USER_EVENTS, {"user_id": user_id})).all():
                await connection.execute(
                    PSEUDONYMISE_EVENT,
                    {"event_id": found.id, "pseudonym": pseudonym, "scrubbed": without_person(found.detail, user)},
                )
            await connection.execute(delete(_users).where(_users.c.id == user_id))
            await connection.execute(INSERT_EVENT, [_event_values(event)])
            if outbox is not None:
                await _queue(connection, outbox(ended))
        return ended

    async def events(self, query: EventQuery, *, limit: int) -> list[Event]:
        statement = select(_events).order_by(_events.c.id.desc()).limit(limit)
        if query.user_id is not None:
            statement = statement.where(_events.c.user_id == query.user_id)
        if query.type is not None:
            statement = statement.where(_events.c.type == query.type)
        if query.outcome is not None:
            statement = statement.where(_events.c.outcome == query.outcome)
        if query.since is not None:
            statement = statement.where(_events.c.created_at >= query.since)
        if query.until is not None:
            statement = statement.where(_events.c.created_at < query.until)
        if query.before_id is not None:
            statement = statement.where(_events.c.id < query.before_id)
        async with self._read() as connection:
            return [_from_row(Event, row) for row in await connection.execute(statement)]


def sql_storage(database: Database) -> Storage:
    return Storage(
        users=SqlUsers(database),
        passwords=SqlPasswords(database),
        credentials=SqlCredentials(database),
        challenges=SqlChallenges(database),
        sessions=SqlSessions(database),
        events=SqlEvents(database),
        sign_ins=SqlSignIns(database),
        backup_codes=SqlBackupCodes(database),
        email_tokens=SqlEmailTokens(database),
        counters=MemoryCounters(),  # per process; Redis shares them between nodes
        mail=SqlMail(database),
        oidc_clients=SqlOidcClients(database),
        signing_keys=SqlSigningKeys(database),
        authorization_codes=SqlAuthorizationCodes(database),
        session_clients=SqlSessionClients(database),
        refresh_tokens=SqlRefreshTokens(database),
        consents=SqlConsents(database),
        apps=SqlApps(database),
        webhooks=SqlWebhooks(database),
        admin_keys=SqlAdminKeys(database),
        admin=SqlAdmin(database),
    )

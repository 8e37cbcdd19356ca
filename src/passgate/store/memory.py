"""In-process storage: for tests and for embedding Passgate in one process without a database."""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from passgate.core.apps import App, AppKey
from passgate.core.errors import AdminKeyExists, ClientExists, CredentialExists, EmailTaken, UsernameTaken
from passgate.core.identifiers import normalize_identifier
from passgate.core.oidc_clients import OidcClient
from passgate.core.webhooks import subscribed
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
    hash_tag,
    without_person,
)

NEVER = datetime.min.replace(tzinfo=UTC)


def _verified_address(user: User) -> str | None:
    """The normalized address that routes to `user`: set only once verified."""
    return normalize_identifier(user.email) if user.email and user.email_verified_at else None


class MemoryUsers:
    def __init__(self, credentials: MemoryCredentials) -> None:
        self._users: dict[str, User] = {}
        # Indexes, as the SQL adapter's unique columns: an import of many accounts looks each one up.
        self._by_name: dict[str, str] = {}
        self._by_handle: dict[bytes, str] = {}
        self._by_external_id: dict[str, str] = {}
        self._by_email: dict[str, str] = {}  # verified addresses only
        self._credentials = credentials
        self.passwords: MemoryPasswords | None = None  # set by memory_storage: an import writes both
        self.outbox = MemoryWebhooks()  # the storage's, set by memory_storage: webhook events go there
        self.events: MemoryEvents | None = None  # set by memory_storage: an import records its event with it
        self.sessions: MemorySessions | None = None  # set by memory_storage: a sign-up starts its session

    async def get(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    async def by_email(self, email: str) -> User | None:
        user_id = self._by_email.get(normalize_identifier(email))
        return self._users.get(user_id) if user_id else None

    async def set_display_name(self, user_id: str, display_name: str) -> None:
        self._update(user_id, display_name=display_name)

    async def set_email(self, user_id: str, email: str | None, *, verified_at: datetime | None) -> None:
        if email is not None and verified_at is not None:
            owner = self._by_email.get(normalize_identifier(email))
            if owner is not None and owner != user_id:
                raise EmailTaken()
        self._update(user_id, email=email, email_verified_at=verified_at)

    async def dismiss_nudge(self, user_id: str) -> None:
        self._update(user_id, nudge_dismissed=True)

    def _update(self, user_id: str, **changes: Any) -> None:
        if user_id in self._users:
            before = self._users[user_id]
            self._users[user_id] = after = dataclasses.replace(before, **changes)
            if (address := _verified_address(before)) is not None:
                del self._by_email[address]
            if (address := _verified_address(after)) is not None:
                self._by_email[address] = user_id

    async def by_username(self, username: str) -> User | None:
        user_id = self._by_name.get(normalize_identifier(username))
        return self._users.get(user_id) if user_id else None

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
        assert spend is None, "memory challenges are spent when taken (spent_with_sign_in is False)"
        queued = await self._create(user, [credential], None, event=event, outbox=outbox)
        if session is not None:
            assert self.sessions is not None
            await self.sessions.create(session)
        return queued

    async def by_external_id(self, external_id: str) -> User | None:
        user_id = self._by_external_id.get(external_id)
        return self._users.get(user_id) if user_id else None

    async def by_user_handle(self, user_handle: bytes) -> User | None:
        user_id = self._by_handle.get(user_handle)
        return self._users.get(user_id) if user_id else None

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
    ) -> int:
        assert self.passwords is not None and self.events is not None
        name, address = normalize_identifier(user.username), _verified_address(user)
        if any(c.credential_id in self._credentials.rows for c in credentials):
            raise CredentialExists()
        if len({c.credential_id for c in credentials}) < len(credentials):
            raise CredentialExists()
        if address is not None and address in self._by_email:
            raise EmailTaken()
        if name in self._by_name:
            raise UsernameTaken()
        if user.user_handle in self._by_handle or (user.external_id and user.external_id in self._by_external_id):
            raise UsernameTaken("An account with this external id or user handle exists already.")
        self._users[user.id] = user
        self._by_name[name] = self._by_handle[user.user_handle] = user.id
        if user.external_id:
            self._by_external_id[user.external_id] = user.id
        if address is not None:
            self._by_email[address] = user.id
        for credential in credentials:
            self._credentials.rows[credential.credential_id] = credential
        if password is not None:
            self.passwords.rows[user.id] = password
        if event is not None:
            await self.events.record(event)
        return self.outbox.queue_events(outbox)

    async def stats(self) -> AccountStats:
        assert self.passwords is not None
        with_passkey = {c.user_id for c in self._credentials.rows.values()}
        upgraded = {c.user_id for c in self._credentials.rows.values() if c.created_by == "upgrade"}
        groups: dict[str, list[StoredPassword]] = {}
        for password in self.passwords.rows.values():
            groups.setdefault(hash_tag(password.hash), []).append(password)
        return AccountStats(
            accounts=len(self._users),
            upgraded=len(upgraded & self._users.keys()),
            passwords=tuple(
                PasswordGroup(
                    tag=tag,
                    sample=min(p.hash for p in members),
                    accounts=len(members),
                    without_passkey=sum(p.user_id not in with_passkey for p in members),
                )
                for tag, members in sorted(groups.items())
            ),
        )


class MemoryPasswords:
    def __init__(self) -> None:
        self.rows: dict[str, StoredPassword] = {}

    async def get(self, user_id: str) -> StoredPassword | None:
        return self.rows.get(user_id)

    async def rehash(self, user_id: str, *, old_hash: str, new_hash: str, at: datetime) -> bool:
        current = self.rows.get(user_id)
        if current is None or current.hash != old_hash:
            return False
        self.rows[user_id] = dataclasses.replace(current, hash=new_hash, updated_at=at)
        return True

    async def remove(self, user_id: str) -> bool:
        return self.rows.pop(user_id, None) is not None

    async def count(self) -> int:
        return len(self.rows)


class MemoryCredentials:
    def __init__(self) -> None:
        self.rows: dict[bytes, Credential] = {}
        self.users: MemoryUsers | None = None  # set by memory_storage: sign-in looks both up at once
        # Also set by memory_storage: removing the last passkey looks for another way in, and a removal
        # ends the sessions the passkey opened.
        self.backup_codes: MemoryBackupCodes | None = None
        self.sessions: MemorySessions | None = None
        self.outbox = MemoryWebhooks()  # the storage's, set by memory_storage: webhook events go there

    async def get_with_owner(self, credential_id: bytes) -> tuple[Credential, User] | None:
        credential = self.rows.get(credential_id)
        user = await self.users.get(credential.user_id) if credential is not None and self.users else None
        return (credential, user) if credential is not None and user is not None else None

    async def get(self, credential_id: bytes) -> Credential | None:
        return self.rows.get(credential_id)

    async def list_for_user(self, user_id: str) -> list[Credential]:
        return sorted((c for c in self.rows.values() if c.user_id == user_id), key=lambda c: c.created_at)

    async def add(self, credential: Credential, *, outbox: Sequence[WebhookEvent] = ()) -> None:
        if credential.credential_id in self.rows:
            raise CredentialExists()
        self.rows[credential.credential_id] = credential
        self.outbox.queue_events(outbox)

    async def rename(
        self, credential_id: bytes, user_id: str, nickname: str | None, *, outbox: Sequence[WebhookEvent] = ()
    ) -> bool:
        current = self.rows.get(credential_id)
        if current is None or current.user_id != user_id:
            return False
        self.rows[credential_id] = dataclasses.replace(current, nickname=nickname)
        self.outbox.queue_events(outbox)
        return True

    async def remove(
        self,
        credential_id: bytes,
        user_id: str,
        *,
        keep_session: bytes | None = None,
        outbox: OutboxOfEnded | None = None,
    ) -> Removal:
        assert self.users is not None and self.backup_codes is not None and self.sessions is not None
        # Nothing here waits on anything: the check and the removal are one step on the event loop.
        current = self.rows.get(credential_id)
        if current is None or current.user_id != user_id:
            return Removal(outcome="not_found")
        if sum(1 for c in self.rows.values() if c.user_id == user_id) <= 1:
            user = await self.users.get(user_id)
            # A verified address counts only if sign-in links for it reach this account.
            routed = await self.users.by_email(user.email) if user is not None and user.email else None
            verified = routed is not None and routed.id == user_id
            if not verified and not await self.backup_codes.unused(user_id):
                return Removal(outcome="last_passkey")
        del self.rows[credential_id]
        removal = Removal(outcome="removed", ended_sessions=self.sessions.end_opened_with(credential_id, keep_session))
        if outbox is not None:
            self.outbox.queue_events(outbox(removal.ended_sessions))
        return removal

    async def record_use(self, credential_id: bytes, *, sign_count: int, backed_up: bool, used_at: datetime) -> bool:
        current = self.rows.get(credential_id)
        if current is None or (sign_count and sign_count <= current.sign_count):
            return False
        self.rows[credential_id] = dataclasses.replace(
            current, sign_count=max(sign_count, current.sign_count), backed_up=backed_up, last_used_at=used_at
        )
        return True


class MemoryChallenges:
    """In one process: the outstanding sealed challenges are remembered (so memory holds only ceremonies in
    flight, not every challenge answered within its lifetime), and spending one forgets it."""

    spent_with_sign_in = False  # spending is forgetting: no write to join

    def __init__(self) -> None:
        self._rows: dict[bytes, PendingChallenge] = {}
        self._outstanding: dict[bytes, datetime] = {}

    async def issued(self, challenge_id: bytes, expires_at: datetime) -> None:
        self._outstanding[challenge_id] = expires_at

    async def spend(self, challenge_id: bytes, expires_at: datetime) -> bool:
        return self._outstanding.pop(challenge_id, None) is not None

    async def put(self, challenge: PendingChallenge) -> None:
        self._rows[challenge.id] = challenge

    async def take(self, challenge_id: bytes) -> PendingChallenge | None:
        return self._rows.pop(challenge_id, None)

    async def purge_expired(self, now: datetime) -> int:
        expired = [key for key, row in self._rows.items() if row.expires_at < now]
        for key in expired:
            del self._rows[key]
        abandoned = [key for key, expires_at in self._outstanding.items() if expires_at < now]
        for key in abandoned:
            del self._outstanding[key]
        return len(expired) + len(abandoned)


class MemorySessions:
    def __init__(self) -> None:
        self.outbox = MemoryWebhooks()  # the storage's, set by memory_storage: webhook events go there
        self._rows: dict[bytes, Session] = {}

    async def create(self, session: Session) -> None:
        self._rows[session.token_hash] = session

    async def get(self, token_hash: bytes) -> Session | None:
        return self._rows.get(token_hash)

    async def touch(self, token_hash: bytes, at: datetime) -> None:
        if token_hash in self._rows:
            self._rows[token_hash] = dataclasses.replace(self._rows[token_hash], last_seen_at=at)

    async def delete(self, token_hash: bytes, *, outbox: Sequence[WebhookEvent] = ()) -> bool:
        if self._rows.pop(token_hash, None) is None:
            return False
        self.outbox.queue_events(outbox)
        return True

    async def by_sid(self, sid: str) -> Session | None:
        return next((row for row in self._rows.values() if row.sid is not None and row.sid == sid), None)

    async def mark_authenticated(
        self, token_hash: bytes, at: datetime, *, credential_id: bytes, user_verified: bool
    ) -> None:
        if token_hash in self._rows:
            self._rows[token_hash] = dataclasses.replace(
                self._rows[token_hash],
                authenticated_at=at,
                kind="passkey",
                credential_id=credential_id,
                user_verified=user_verified,
            )

    def end_opened_with(self, credential_id: bytes, keep: bytes | None) -> tuple[bytes, ...]:
        doomed = tuple(key for key, row in self._rows.items() if row.credential_id == credential_id and key != keep)
        for key in doomed:
            del self._rows[key]
        return doomed

    async def delete_for_user(
        self, user_id: str, *, keep: bytes | None = None, outbox: OutboxOfEnded | None = None
    ) -> tuple[bytes, ...]:
        doomed = tuple(key for key, row in self._rows.items() if row.user_id == user_id and key != keep)
        for key in doomed:
            del self._rows[key]
        if outbox is not None and doomed:
            self.outbox.queue_events(outbox(doomed))
        return doomed

    async def count_active(self, now: datetime, idle: timedelta) -> int:
        return sum(1 for s in self._rows.values() if s.expires_at > now and s.last_seen_at > now - idle)

    async def purge_expired(self, now: datetime, idle: timedelta) -> int:
        expired = [key for key, row in self._rows.items() if row.expires_at < now or row.last_seen_at + idle < now]
        for key in expired:
            del self._rows[key]
        return len(expired)


class MemoryEvents:
    def __init__(self) -> None:
        self.outbox = MemoryWebhooks()  # the storage's, set by memory_storage: webhook events go there
        self._rows: list[Event] = []

    async def record(self, event: Event, *, outbox: Sequence[WebhookEvent] = ()) -> None:
        self._rows.append(dataclasses.replace(event, id=len(self._rows) + 1))
        self.outbox.queue_events(outbox)

    async def list(
        self,
        *,
        user_id: str | None = None,
        type: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[Event]:
        rows = [
            e
            for e in reversed(self._rows)
            if (user_id is None or e.user_id == user_id)
            and (type is None or e.type == type)
            and (outcome is None or e.outcome == outcome)
            and (since is None or e.created_at >= since)
        ]
        return rows[:limit]


class MemoryBackupCodes:
    def __init__(self) -> None:
        self.outbox = MemoryWebhooks()  # the storage's, set by memory_storage: webhook events go there
        self._rows: dict[str, list[BackupCode]] = {}

    async def replace(self, user_id: str, codes: list[BackupCode]) -> None:
        self._rows[user_id] = list(codes)

    async def unused(self, user_id: str) -> list[BackupCode]:
        return [code for code in self._rows.get(user_id, []) if code.used_at is None]

    async def use(self, user_id: str, number: int, at: datetime, *, outbox: Sequence[WebhookEvent] = ()) -> bool:
        codes = self._rows.get(user_id, [])
        for index, code in enumerate(codes):
            if code.number == number and code.used_at is None:
                codes[index] = dataclasses.replace(code, used_at=at)
                self.outbox.queue_events(outbox)
                return True
        return False


class MemoryEmailTokens:
    def __init__(self) -> None:
        self._rows: dict[bytes, EmailToken] = {}

    async def put(self, token: EmailToken) -> None:
        self._rows[token.token_hash] = token

    async def get(self, token_hash: bytes) -> EmailToken | None:
        return self._rows.get(token_hash)

    async def take(self, token_hash: bytes, *, purpose: EmailPurpose, browser: bytes | None) -> EmailToken | None:
        token = self._rows.get(token_hash)
        if token is None or token.purpose != purpose:
            return None
        if token.browser is not None and (browser is None or not hmac.compare_digest(token.browser, browser)):
            return None
        return self._rows.pop(token_hash)

    async def purge_expired(self, now: datetime) -> int:
        expired = [key for key, row in self._rows.items() if row.expires_at < now]
        for key in expired:
            del self._rows[key]
        return len(expired)


class MemoryCounters:
    """Rate-limit counters of this process (each node counts alone unless Redis is configured)."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, int]] = {}

    async def hit(self, key: str, window_seconds: int, now: datetime) -> tuple[int, int]:
        current = int(now.timestamp()) // window_seconds
        window, count = self._windows.get(key, (current, 0))
        if window != current:
            count = 0
            if len(self._windows) > 100_000:  # forget old windows instead of growing without bound
                self._windows = {k: v for k, v in self._windows.items() if v[0] == current}
        self._windows[key] = (current, count + 1)
        return count + 1, (current + 1) * window_seconds - int(now.timestamp())


class MemoryMail:
    """The outbox of this process: nothing survives it (the SQL adapter keeps mail across restarts)."""

    def __init__(self) -> None:
        self._rows: dict[str, QueuedMail] = {}

    async def enqueue(self, mail: QueuedMail) -> None:
        self._rows[mail.id] = mail

    async def claim(self, *, worker: str, now: datetime, lease: timedelta, limit: int) -> list[QueuedMail]:
        # No await between choosing and leasing: atomic on the event loop.
        due = sorted(
            (
                mail
                for mail in self._rows.values()
                if mail.status == "queued"
                and mail.next_attempt_at <= now
                and (mail.claimed_until is None or mail.claimed_until < now)
            ),
            key=lambda mail: (mail.next_attempt_at, mail.created_at),
        )[:limit]
        claimed = []
        for mail in due:
            leased = dataclasses.replace(mail, claimed_by=worker, claimed_until=now + lease, attempts=mail.attempts + 1)
            self._rows[mail.id] = leased
            claimed.append(leased)
        return claimed

    def _held(self, mail_id: str, worker: str) -> QueuedMail | None:
        mail = self._rows.get(mail_id)
        return mail if mail is not None and mail.claimed_by == worker and mail.status == "queued" else None

    async def sent(self, mail_id: str, *, worker: str) -> bool:
        if self._held(mail_id, worker) is None:
            return False
        del self._rows[mail_id]
        return True

    async def replace(self, mail_id: str, *, worker: str, by: QueuedMail) -> bool:
        if self._held(mail_id, worker) is None:
            return False
        del self._rows[mail_id]
        self._rows[by.id] = by
        return True

    async def retry(self, mail_id: str, *, worker: str, at: datetime, error: str) -> bool:
        mail = self._held(mail_id, worker)
        if mail is None:
            return False
        self._rows[mail_id] = dataclasses.replace(
            mail, next_attempt_at=at, claimed_by=None, claimed_until=None, last_error=error
        )
        return True

    async def fail(self, mail_id: str, *, worker: str, error: str) -> bool:
        mail = self._held(mail_id, worker)
        if mail is None:
            return False
        self._rows[mail_id] = dataclasses.replace(
            mail, status="failed", claimed_by=None, claimed_until=None, last_error=error
        )
        return True

    async def list(self, *, status: MailStatus | None = None, limit: int = 100) -> list[QueuedMail]:
        rows = sorted(self._rows.values(), key=lambda mail: mail.created_at)
        return [mail for mail in rows if status is None or mail.status == status][:limit]


class MemoryOidcClients:
    def __init__(self) -> None:
        self._clients: dict[str, OidcClient] = {}

    async def add(self, client: OidcClient) -> None:
        if client.client_id in self._clients:
            raise ClientExists()
        self._clients[client.client_id] = client

    async def get(self, client_id: str) -> OidcClient | None:
        return self._clients.get(client_id)

    async def list(self) -> list[OidcClient]:
        return sorted(self._clients.values(), key=lambda client: (client.created_at or NEVER, client.client_id))

    async def remove(self, client_id: str) -> bool:
        return self._clients.pop(client_id, None) is not None


class MemorySigningKeys:
    def __init__(self) -> None:
        self._rows: dict[str, SigningKey] = {}

    async def all(self) -> list[SigningKey]:
        return sorted(self._rows.values(), key=lambda key: (key.generation, key.alg))

    async def add_generation(self, keys: list[SigningKey], *, retire_at: datetime, remove_after: datetime) -> bool:
        taken = {(key.alg, key.generation) for key in self._rows.values()}
        if any((key.alg, key.generation) in taken or key.kid in self._rows for key in keys):
            return False
        for kid, key in list(self._rows.items()):
            if key.retired_at is None:
                self._rows[kid] = dataclasses.replace(key, retired_at=retire_at, remove_after=remove_after)
        self._rows.update({key.kid: key for key in keys})
        return True

    async def purge(self, now: datetime) -> int:
        gone = [kid for kid, key in self._rows.items() if key.remove_after is not None and key.remove_after <= now]
        for kid in gone:
            del self._rows[kid]
        return len(gone)


class MemoryAuthorizationCodes:
    def __init__(self) -> None:
        self._codes: dict[bytes, AuthorizationCode] = {}

    async def add(self, code: AuthorizationCode) -> None:
        self._codes[code.code_hash] = code

    async def take(self, code_hash: bytes, now: datetime) -> TakenCode | None:
        code = self._codes.get(code_hash)
        if code is None:
            return None
        first = code.used_at is None
        code = dataclasses.replace(code, used_at=now) if first else dataclasses.replace(code, revoked=True)
        self._codes[code_hash] = code
        return TakenCode(code=code, first=first)

    async def record_issued(self, code_hash: bytes, access_token_jti: str) -> None:
        if code_hash in self._codes:
            self._codes[code_hash] = dataclasses.replace(self._codes[code_hash], access_token_jti=access_token_jti)

    async def revoked(self, access_token_jti: str) -> bool:
        return any(code.revoked and code.access_token_jti == access_token_jti for code in self._codes.values())

    async def purge(self, expired_before: datetime) -> int:
        gone = [key for key, code in self._codes.items() if code.expires_at <= expired_before]
        for key in gone:
            del self._codes[key]
        return len(gone)


class MemorySessionClients:
    def __init__(self) -> None:
        self._rows: dict[tuple[bytes, str], SessionClient] = {}

    async def record(self, entry: SessionClient) -> None:
        self._rows.setdefault((entry.token_hash, entry.client_id), entry)

    async def take(self, token_hashes: Sequence[bytes]) -> list[SessionClient]:
        wanted = set(token_hashes)
        taken = [key for key in self._rows if key[0] in wanted]
        return [self._rows.pop(key) for key in taken]

    async def purge(self, recorded_before: datetime) -> int:
        gone = [key for key, entry in self._rows.items() if entry.recorded_at < recorded_before]
        for key in gone:
            del self._rows[key]
        return len(gone)


class MemoryRefreshTokens:
    def __init__(self) -> None:
        self._tokens: dict[bytes, RefreshToken] = {}
        self._revoked_jtis: dict[str, datetime] = {}

    async def add(self, token: RefreshToken) -> None:
        self._tokens[token.token_hash] = token

    async def get(self, token_hash: bytes) -> RefreshToken | None:
        return self._tokens.get(token_hash)

    async def rotate(self, token_hash: bytes, replacement: RefreshToken, now: datetime) -> TakenRefreshToken | None:
        # No await between the check and the writes: atomic on the event loop.
        token = self._tokens.get(token_hash)
        if token is None:
            return None
        if token.used_at is not None or token.revoked:
            await self.revoke_family(token.family_id)
            return TakenRefreshToken(token=self._tokens[token_hash], first=False)
        token = self._tokens[token_hash] = dataclasses.replace(token, used_at=now)
        self._tokens[replacement.token_hash] = replacement
        return TakenRefreshToken(token=token, first=True)

    async def revoke_family(self, family_id: str) -> None:
        for key, token in self._tokens.items():
            if token.family_id == family_id:
                self._tokens[key] = dataclasses.replace(token, revoked=True)

    async def revoke_for_user(self, user_id: str, *, client_id: str | None = None) -> int:
        doomed = [
            key
            for key, token in self._tokens.items()
            if token.user_id == user_id and not token.revoked and client_id in (None, token.client_id)
        ]
        for key in doomed:
            self._tokens[key] = dataclasses.replace(self._tokens[key], revoked=True)
        return len(doomed)

    async def by_access_token(self, access_token_jti: str) -> RefreshToken | None:
        return next((t for t in self._tokens.values() if t.access_token_jti == access_token_jti), None)

    async def revoke_access_token(self, jti: str, expires_at: datetime) -> None:
        self._revoked_jtis[jti] = expires_at

    async def access_token_revoked(self, jti: str) -> bool:
        return jti in self._revoked_jtis

    async def purge(self, now: datetime) -> int:
        tokens = [key for key, token in self._tokens.items() if token.family_expires_at <= now]
        jtis = [jti for jti, expires_at in self._revoked_jtis.items() if expires_at <= now]
        for key in tokens:
            del self._tokens[key]
        for jti in jtis:
            del self._revoked_jtis[jti]
        return len(tokens) + len(jtis)


class MemoryConsents:
    def __init__(self) -> None:
        self._consents: dict[tuple[str, str], Consent] = {}

    async def grant(self, user_id: str, client_id: str, scopes: Sequence[str], at: datetime) -> Consent:
        known = self._consents.get((user_id, client_id))
        if known is None:
            granted = Consent(
                user_id=user_id, client_id=client_id, scopes=frozenset(scopes), granted_at=at, updated_at=at
            )
        else:
            granted = dataclasses.replace(known, scopes=known.scopes | frozenset(scopes), updated_at=at)
        self._consents[(user_id, client_id)] = granted
        return granted

    async def get(self, user_id: str, client_id: str) -> Consent | None:
        return self._consents.get((user_id, client_id))

    async def list_for_user(self, user_id: str) -> list[Consent]:
        mine = [consent for (owner, _), consent in self._consents.items() if owner == user_id]
        return sorted(mine, key=lambda consent: (consent.granted_at, consent.client_id))

    async def withdraw(self, user_id: str, client_id: str) -> bool:
        return self._consents.pop((user_id, client_id), None) is not None

    async def forget_client(self, client_id: str) -> int:
        given = [key for key in self._consents if key[1] == client_id]
        for key in given:
            del self._consents[key]
        return len(given)


class MemorySignIns:
    def __init__(self, credentials: MemoryCredentials, sessions: MemorySessions, events: MemoryEvents) -> None:
        self._credentials, self._sessions, self._events = credentials, sessions, events

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
        assert spend is None, "memory challenges are spent when taken (spent_with_sign_in is False)"
        # No await before the counter is checked and written: atomic on the event loop.
        if not await self._credentials.record_use(
            use.credential_id, sign_count=use.sign_count, backed_up=use.backed_up, used_at=use.used_at
        ):
            return None
        if ended_session is not None:
            await self._sessions.delete(ended_session)
        await self._sessions.create(session)
        await self._events.record(event)
        return self._events.outbox.queue_events(outbox)


class MemoryApps:
    def __init__(self) -> None:
        self._apps: dict[str, App] = {}
        self._keys: dict[bytes, AppKey] = {}
        self._users: dict[tuple[str, str], AppUser] = {}
        self._credentials: dict[bytes, tuple[str, Credential]] = {}

    async def add(self, app: App) -> None:
        if app.app_id in self._apps:
            raise ClientExists("An app has this id already.")
        self._apps[app.app_id] = app

    async def put(self, app: App) -> None:
        current = self._apps.get(app.app_id)
        self._apps[app.app_id] = app if current is None else dataclasses.replace(app, created_at=current.created_at)

    async def get(self, app_id: str) -> App | None:
        return self._apps.get(app_id)

    async def list_apps(self) -> list[App]:
        return sorted(self._apps.values(), key=lambda app: (app.created_at, app.app_id))

    async def remove(self, app_id: str) -> bool:
        if self._apps.pop(app_id, None) is None:
            return False
        self._keys = {h: k for h, k in self._keys.items() if k.app_id != app_id}
        self._users = {key: u for key, u in self._users.items() if u.app_id != app_id}
        self._credentials = {i: row for i, row in self._credentials.items() if row[0] != app_id}
        return True

    async def add_key(self, key: AppKey) -> None:
        self._keys[key.key_hash] = key

    async def key_by_hash(self, key_hash: bytes) -> AppKey | None:
        return self._keys.get(key_hash)

    async def list_keys(self, app_id: str) -> list[AppKey]:
        keys = (k for k in self._keys.values() if k.app_id == app_id)
        return sorted(keys, key=lambda k: (k.created_at, k.key_id))

    async def revoke_key(self, app_id: str, key_id: str, at: datetime) -> bool:
        for key_hash, key in self._keys.items():
            if key.app_id == app_id and key.key_id == key_id and key.revoked_at is None:
                self._keys[key_hash] = dataclasses.replace(key, revoked_at=at)
                return True
        return False

    async def put_user(self, user: AppUser) -> AppUser:
        current = self._users.get((user.app_id, user.user_id))
        if current is not None:
            user = dataclasses.replace(current, username=user.username, display_name=user.display_name)
        self._users[(user.app_id, user.user_id)] = user
        return user

    async def get_user(self, app_id: str, user_id: str) -> AppUser | None:
        return self._users.get((app_id, user_id))

    async def remove_user(self, app_id: str, user_id: str) -> bool:
        if self._users.pop((app_id, user_id), None) is None:
            return False
        self._credentials = {
            i: row for i, row in self._credentials.items() if row[0] != app_id or row[1].user_id != user_id
        }
        return True

    async def add_credential(self, app_id: str, credential: Credential) -> None:
        if credential.credential_id in self._credentials:
            raise CredentialExists()
        self._credentials[credential.credential_id] = (app_id, credential)

    async def get_credential(self, app_id: str, credential_id: bytes) -> Credential | None:
        row = self._credentials.get(credential_id)
        return row[1] if row is not None and row[0] == app_id else None

    async def list_credentials(self, app_id: str, user_id: str) -> list[Credential]:
        mine = (c for a, c in self._credentials.values() if a == app_id and c.user_id == user_id)
        return sorted(mine, key=lambda c: c.created_at)

    async def rename_credential(self, app_id: str, credential_id: bytes, nickname: str | None) -> bool:
        current = await self.get_credential(app_id, credential_id)
        if current is None:
            return False
        self._credentials[credential_id] = (app_id, dataclasses.replace(current, nickname=nickname))
        return True

    async def remove_credential(self, app_id: str, credential_id: bytes) -> bool:
        if await self.get_credential(app_id, credential_id) is None:
            return False
        del self._credentials[credential_id]
        return True

    async def record_use(
        self, app_id: str, credential_id: bytes, *, sign_count: int, backed_up: bool, used_at: datetime
    ) -> bool:
        current = await self.get_credential(app_id, credential_id)
        if current is None or (sign_count and sign_count <= current.sign_count):
            return False
        updated = dataclasses.replace(
            current, sign_count=max(sign_count, current.sign_count), backed_up=backed_up, last_used_at=used_at
        )
        self._credentials[credential_id] = (app_id, updated)
        return True


class MemoryWebhooks:
    """Endpoints and their outbox in this process; the other stores queue events here (`queue`)."""

    def __init__(self) -> None:
        self._endpoints: dict[str, WebhookEndpoint] = {}
        self._deliveries: dict[int, WebhookDelivery] = {}

    def queue_events(self, events: Sequence[WebhookEvent]) -> int:
        queued = 0
        for webhook in events:
            for endpoint in self._endpoints.values():
                if endpoint.enabled and subscribed(endpoint.events, webhook.type):
                    delivery_id = len(self._deliveries) + 1
                    self._deliveries[delivery_id] = WebhookDelivery(
                        id=delivery_id,
                        endpoint_id=endpoint.id,
                        message_id=webhook.message_id,
                        type=webhook.type,
                        body=webhook.body,
                        created_at=webhook.created_at,
                        next_attempt_at=webhook.created_at,
                    )
                    queued += 1
        return queued

    async def put_endpoint(self, endpoint: WebhookEndpoint) -> None:
        current = self._endpoints.get(endpoint.id)
        if current is not None:
            endpoint = dataclasses.replace(endpoint, created_at=current.created_at)
        self._endpoints[endpoint.id] = endpoint

    async def get_endpoint(self, endpoint_id: str) -> WebhookEndpoint | None:
        return self._endpoints.get(endpoint_id)

    async def list_endpoints(self) -> list[WebhookEndpoint]:
        return sorted(self._endpoints.values(), key=lambda endpoint: (endpoint.created_at, endpoint.id))

    async def remove_endpoint(self, endpoint_id: str) -> bool:
        if self._endpoints.pop(endpoint_id, None) is None:
            return False
        for key in [key for key, row in self._deliveries.items() if row.endpoint_id == endpoint_id]:
            del self._deliveries[key]
        return True

    async def set_enabled(
        self, endpoint_id: str, enabled: bool, *, reason: str | None = None, at: datetime | None = None
    ) -> bool:
        current = self._endpoints.get(endpoint_id)
        if current is None:
            return False
        self._endpoints[endpoint_id] = dataclasses.replace(
            current,
            enabled=enabled,
            disabled_reason=None if enabled else reason,
            disabled_at=None if enabled else at,
        )
        return True

    async def enqueue(self, events: Sequence[WebhookEvent]) -> int:
        queued = {row.message_id for row in self._deliveries.values()}
        return self.queue_events([webhook for webhook in events if webhook.message_id not in queued])

    async def claim(self, *, worker: str, now: datetime, lease: timedelta, limit: int) -> list[WebhookDelivery]:
        # No await between choosing and leasing: atomic on the event loop.
        due = sorted(
            (
                row
                for row in self._deliveries.values()
                if row.status == "queued"
                and row.next_attempt_at <= now
                and (row.claimed_until is None or row.claimed_until < now)
                and self._endpoints[row.endpoint_id].enabled
            ),
            key=lambda row: (row.next_attempt_at, row.id),
        )[:limit]
        claimed = []
        for row in due:
            leased = dataclasses.replace(row, claimed_by=worker, claimed_until=now + lease, attempts=row.attempts + 1)
            self._deliveries[row.id] = leased
            claimed.append(leased)
        return claimed

    def _held(self, delivery_id: int, worker: str) -> WebhookDelivery | None:
        row = self._deliveries.get(delivery_id)
        return row if row is not None and row.claimed_by == worker and row.status == "queued" else None

    def _release(self, delivery_id: int, worker: str, **values: Any) -> bool:
        row = self._held(delivery_id, worker)
        if row is None:
            return False
        self._deliveries[delivery_id] = dataclasses.replace(row, claimed_by=None, claimed_until=None, **values)
        return True

    async def delivered(self, delivery_id: int, *, worker: str, at: datetime, status: int) -> bool:
        return self._release(
            delivery_id, worker, status="delivered", finished_at=at, last_status=status, last_error=None
        )

    async def retry(
        self, delivery_id: int, *, worker: str, at: datetime, error: str, status: int | None = None
    ) -> bool:
        return self._release(delivery_id, worker, next_attempt_at=at, last_status=status, last_error=error[:512])

    async def fail(self, delivery_id: int, *, worker: str, at: datetime, error: str, status: int | None = None) -> bool:
        return self._release(
            delivery_id, worker, status="failed", finished_at=at, last_status=status, last_error=error[:512]
        )

    async def redeliver(self, delivery_id: int, *, at: datetime) -> bool:
        row = self._deliveries.get(delivery_id)
        if row is None:
            return False
        self._deliveries[delivery_id] = dataclasses.replace(
            row, status="queued", next_attempt_at=at, attempts=0, claimed_by=None, claimed_until=None, finished_at=None
        )
        return True

    async def get_delivery(self, delivery_id: int) -> WebhookDelivery | None:
        return self._deliveries.get(delivery_id)

    async def list_deliveries(
        self, *, endpoint_id: str | None = None, status: DeliveryStatus | None = None, limit: int = 100
    ) -> list[WebhookDelivery]:
        rows = [
            row
            for row in sorted(self._deliveries.values(), key=lambda row: row.id, reverse=True)
            if (endpoint_id is None or row.endpoint_id == endpoint_id) and (status is None or row.status == status)
        ]
        return rows[:limit]

    async def purge(self, finished_before: datetime) -> int:
        done = [
            key
            for key, row in self._deliveries.items()
            if row.status != "queued" and row.finished_at is not None and row.finished_at < finished_before
        ]
        for key in done:
            del self._deliveries[key]
        return len(done)


# Administration: admin keys, and what only an administrator does to accounts (store.base.AccountAdminStore).


class MemoryAdminKeys:
    def __init__(self) -> None:
        self._keys: dict[bytes, AdminKey] = {}

    async def add(self, key: AdminKey) -> None:
        if any(k.name == key.name and k.revoked_at is None for k in self._keys.values()):
            raise AdminKeyExists()
        self._keys[key.key_hash] = key

    async def by_hash(self, key_hash: bytes) -> AdminKey | None:
        return self._keys.get(key_hash)

    async def list(self) -> list[AdminKey]:
        return sorted(self._keys.values(), key=lambda key: (key.created_at, key.name))

    async def revoke(self, name: str, at: datetime) -> bool:
        for key_hash, key in self._keys.items():
            if key.name == name and key.revoked_at is None:
                self._keys[key_hash] = dataclasses.replace(key, revoked_at=at)
                return True
        return False


class MemoryAdmin:
    """Reads and changes the other memory stores' rows; each change runs with no await between its steps, so it is
    atomic on the event loop as the SQL adapter's transaction is."""

    def __init__(self) -> None:
        self.storage: Storage | None = None  # set by memory_storage

    def _parts(self) -> Storage:
        assert self.storage is not None
        return self.storage

    async def list_users(self, *, search: str | None, after: str | None, limit: int) -> list[User]:
        users: MemoryUsers = self._parts().users  # type: ignore[assignment]
        wanted = normalize_identifier(search) if search else None
        found = [
            user
            for user in sorted(users._users.values(), key=lambda user: user.id)
            if (after is None or user.id > after)
            and (
                wanted is None
                or wanted in normalize_identifier(user.username)
                or (user.email is not None and wanted.lower() in user.email.lower())
                or user.external_id == search
            )
        ]
        return found[:limit]

    async def sessions_for_user(self, user_id: str) -> list[Session]:
        sessions: MemorySessions = self._parts().sessions  # type: ignore[assignment]
        return sorted((s for s in sessions._rows.values() if s.user_id == user_id), key=lambda s: s.created_at)

    async def disable(
        self, user_id: str, at: datetime, *, event: Event, outbox: OutboxOfEnded | None = None
    ) -> tuple[bytes, ...] | None:
        parts = self._parts()
        users: MemoryUsers = parts.users  # type: ignore[assignment]
        user = users._users.get(user_id)
        if user is None:
            return None
        users._update(user_id, disabled_at=user.disabled_at or at)
        sessions: MemorySessions = parts.sessions  # type: ignore[assignment]
        refresh: MemoryRefreshTokens = parts.refresh_tokens  # type: ignore[assignment]
        ended = tuple(key for key, row in sessions._rows.items() if row.user_id == user_id)
        for key in ended:
            del sessions._rows[key]
        for key, token in refresh._tokens.items():
            if token.user_id == user_id:
                refresh._tokens[key] = dataclasses.replace(token, revoked=True)
        self._record(event)
        if outbox is not None:
            parts.webhooks.queue_events(outbox(ended))  # type: ignore[attr-defined]
        return ended

    async def enable(self, user_id: str, *, event: Event) -> bool:
        users: MemoryUsers = self._parts().users  # type: ignore[assignment]
        if user_id not in users._users:
            return False
        users._update(user_id, disabled_at=None)
        self._record(event)
        return True

    async def delete_user(
        self, user_id: str, *, pseudonym: str, event: Event, outbox: OutboxOfEnded | None = None
    ) -> tuple[bytes, ...] | None:
        parts = self._parts()
        users: MemoryUsers = parts.users  # type: ignore[assignment]
        user = users._users.get(user_id)
        if user is None:
            return None
        sessions: MemorySessions = parts.sessions  # type: ignore[assignment]
        ended = tuple(key for key, row in sessions._rows.items() if row.user_id == user_id)
        sessions._rows = {key: row for key, row in sessions._rows.items() if row.user_id != user_id}
        credentials: MemoryCredentials = parts.credentials  # type: ignore[assignment]
        credentials.rows = {key: row for key, row in credentials.rows.items() if row.user_id != user_id}
        passwords: MemoryPasswords = parts.passwords  # type: ignore[assignment]
        passwords.rows.pop(user_id, None)
        codes: MemoryBackupCodes = parts.backup_codes  # type: ignore[assignment]
        codes._rows.pop(user_id, None)
        tokens: MemoryEmailTokens = parts.email_tokens  # type: ignore[assignment]
        tokens._rows = {key: row for key, row in tokens._rows.items() if row.user_id != user_id}
        if isinstance(parts.challenges, MemoryChallenges):  # Redis forgets its challenges by itself
            challenges = parts.challenges._rows
            parts.challenges._rows = {key: row for key, row in challenges.items() if row.user_id != user_id}
        codes_: MemoryAuthorizationCodes = parts.authorization_codes  # type: ignore[assignment]
        codes_._codes = {key: row for key, row in codes_._codes.items() if row.user_id != user_id}
        told: MemorySessionClients = parts.session_clients  # type: ignore[assignment]
        told._rows = {key: row for key, row in told._rows.items() if row.user_id != user_id}
        refresh: MemoryRefreshTokens = parts.refresh_tokens  # type: ignore[assignment]
        refresh._tokens = {key: row for key, row in refresh._tokens.items() if row.user_id != user_id}
        consents: MemoryConsents = parts.consents  # type: ignore[assignment]
        consents._consents = {key: row for key, row in consents._consents.items() if row.user_id != user_id}
        if user.email:
            mail: MemoryMail = parts.mail  # type: ignore[assignment]
            address = user.email.lower()
            mail._rows = {key: row for key, row in mail._rows.items() if row.recipient.lower() != address}
        events: MemoryEvents = parts.events  # type: ignore[assignment]
        events._rows = [
            dataclasses.replace(row, user_id=pseudonym, detail=without_person(row.detail, user))
            if row.user_id == user_id
            else row
            for row in events._rows
        ]
        users._update(user_id, email=None, email_verified_at=None)  # drops the verified address's index entry
        del users._users[user_id]
        users._by_name.pop(normalize_identifier(user.username), None)
        users._by_handle.pop(user.user_handle, None)
        if user.external_id:
            users._by_external_id.pop(user.external_id, None)
        self._record(event)
        if outbox is not None:
            parts.webhooks.queue_events(outbox(ended))  # type: ignore[attr-defined]
        return ended

    async def events(self, query: EventQuery, *, limit: int) -> list[Event]:
        events: MemoryEvents = self._parts().events  # type: ignore[assignment]
        found = [
            e
            for e in reversed(events._rows)
            if (query.user_id is None or e.user_id == query.user_id)
            and (query.type is None or e.type == query.type)
            and (query.outcome is None or e.outcome == query.outcome)
            and (query.since is None or e.created_at >= query.since)
            and (query.until is None or e.created_at < query.until)
            and (query.before_id is None or (e.id is not None and e.id < query.before_id))
        ]
        return found[:limit]

    def _record(self, event: Event) -> None:
        events: MemoryEvents = self._parts().events  # type: ignore[assignment]
        events._rows.append(dataclasses.replace(event, id=len(events._rows) + 1))


def memory_storage() -> Storage:
    credentials, sessions, events = MemoryCredentials(), MemorySessions(), MemoryEvents()
    backup_codes = MemoryBackupCodes()
    credentials.users, credentials.backup_codes, credentials.sessions = MemoryUsers(credentials), backup_codes, sessions
    credentials.users.passwords = passwords = MemoryPasswords()
    credentials.users.events, credentials.users.sessions = events, sessions
    webhooks = MemoryWebhooks()
    for store in (credentials.users, credentials, sessions, events, backup_codes):
        store.outbox = webhooks
    admin = MemoryAdmin()
    admin.storage = Storage(
        users=credentials.users,
        passwords=passwords,
        credentials=credentials,
        challenges=MemoryChallenges(),
        sessions=sessions,
        events=events,
        sign_ins=MemorySignIns(credentials, sessions, events),
        backup_codes=backup_codes,
        email_tokens=MemoryEmailTokens(),
        counters=MemoryCounters(),
        mail=MemoryMail(),
        oidc_clients=MemoryOidcClients(),
        signing_keys=MemorySigningKeys(),
        authorization_codes=MemoryAuthorizationCodes(),
        session_clients=MemorySessionClients(),
        refresh_tokens=MemoryRefreshTokens(),
        consents=MemoryConsents(),
        apps=MemoryApps(),
        webhooks=webhooks,
        admin_keys=MemoryAdminKeys(),
        admin=admin,
    )
    return admin.storage

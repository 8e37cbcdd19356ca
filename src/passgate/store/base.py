"""What the service layer keeps, and the small protocols each storage adapter implements.

Adapters: `memory` (tests, embedding) and `sql` (SQLite and PostgreSQL through SQLAlchemy). Every
adapter passes the same contract suite in tests/store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

Ceremony = Literal["registration", "authentication"]


@dataclass(frozen=True, kw_only=True)
class User:
    id: str
    username: str
    display_name: str
    user_handle: bytes
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class Credential:
    credential_id: bytes
    user_id: str
    public_key: bytes
    algorithm: int
    sign_count: int
    aaguid: str
    attestation_format: str
    transports: tuple[str, ...]
    backup_eligible: bool
    backed_up: bool
    user_verified: bool
    created_at: datetime
    last_used_at: datetime | None = None
    nickname: str | None = None


@dataclass(frozen=True, kw_only=True)
class PendingChallenge:
    """A challenge issued by a `begin`, waiting for its `complete`.

    `id` is SHA-256 of the challenge; `browser` is SHA-256 of the ceremony cookie it is bound to.
    `pending_user` holds a sign-up's user until its first passkey verifies.
    """

    id: bytes
    challenge: bytes
    ceremony: Ceremony
    browser: bytes
    user_id: str | None
    pending_user: dict[str, Any] | None
    expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class Session:
    token_hash: bytes
    user_id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # the absolute end; idleness is judged from last_seen_at


@dataclass(frozen=True, kw_only=True)
class Event:
    type: str
    outcome: Literal["success", "failure"]
    created_at: datetime
    reason: str | None = None
    user_id: str | None = None
    credential_id: bytes | None = None
    ip: str | None = None
    user_agent: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


class UserStore(Protocol):
    async def get(self, user_id: str) -> User | None: ...
    async def by_username(self, username: str) -> User | None:
        """Case-insensitive: `username` is compared by its normalized form."""
        ...

    async def create_with_credential(self, user: User, credential: Credential) -> None:
        """Create the account and its first passkey together, or neither.

        Raises UsernameTaken or CredentialExists.
        """
        ...


class CredentialStore(Protocol):
    async def get(self, credential_id: bytes) -> Credential | None: ...
    async def list_for_user(self, user_id: str) -> list[Credential]: ...
    async def add(self, credential: Credential) -> None:
        """Raises CredentialExists."""
        ...

    async def record_use(self, credential_id: bytes, *, sign_count: int, backed_up: bool, used_at: datetime) -> bool:
        """Store a sign-in's counter and backup state.

        A non-zero `sign_count` is written only if it is above the stored one, atomically, so two
        concurrent sign-ins cannot both move the counter to the same value. Returns False if refused.
        """
        ...


class ChallengeStore(Protocol):
    async def put(self, challenge: PendingChallenge) -> None: ...
    async def take(self, challenge_id: bytes) -> PendingChallenge | None:
        """Remove and return the challenge in one atomic step: a challenge is taken at most once."""
        ...

    async def purge_expired(self, now: datetime) -> int:
        """Delete challenges that expired before `now` (abandoned ceremonies); returns how many."""
        ...


class SessionStore(Protocol):
    async def create(self, session: Session) -> None: ...
    async def get(self, token_hash: bytes) -> Session | None: ...
    async def touch(self, token_hash: bytes, at: datetime) -> None: ...
    async def delete(self, token_hash: bytes) -> None: ...

    async def purge_expired(self, now: datetime, idle: timedelta) -> int:
        """Delete sessions past their absolute end or idle longer than `idle`; returns how many."""
        ...


class EventStore(Protocol):
    async def record(self, event: Event) -> None: ...
    async def list(self, *, user_id: str | None = None, limit: int = 100) -> list[Event]:
        """Newest first."""
        ...


@dataclass(frozen=True, kw_only=True)
class CredentialUse:
    credential_id: bytes
    sign_count: int
    backed_up: bool
    used_at: datetime


class SignInStore(Protocol):
    async def record(self, use: CredentialUse, *, session: Session, ended_session: bytes | None, event: Event) -> bool:
        """Record a verified sign-in in one step: the passkey's use (counter moved forward atomically, as in
        `CredentialStore.record_use`), the new session replacing `ended_session`, and the event.

        Returns False, writing nothing, if the counter did not move forward.
        """
        ...


@dataclass(frozen=True, kw_only=True)
class Storage:
    users: UserStore
    credentials: CredentialStore
    challenges: ChallengeStore
    sessions: SessionStore
    events: EventStore
    sign_ins: SignInStore


def normalize_username(username: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKC", username).casefold().strip()

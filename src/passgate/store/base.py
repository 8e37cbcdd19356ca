"""What the service layer keeps, and the small protocols each storage adapter implements.

Adapters: `memory` (tests, embedding) and `sql` (SQLite and PostgreSQL through SQLAlchemy). Every
adapter passes the same contract suite in tests/store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from passgate.core.apps import App, AppKey
from passgate.core.oidc_clients import OidcClient

Ceremony = Literal[
    "registration", "authentication", "confirmation", "consent", "app_token", "app_register", "app_login", "app_signin"
]
# "password": a sign-in with a password imported from the system an account came from, allowed only while
# `passwords = "migrate"`; it proves no passkey, so it is never a step-up.
SessionKind = Literal["passkey", "recovery", "password"]
# How a passkey came to be stored: a registration ceremony, a conditional create right after a password sign-in
# (the upgrade), or an import from another WebAuthn server.
CredentialSource = Literal["registration", "upgrade", "import"]
EmailPurpose = Literal["verify_email", "sign_in"]
RemoveOutcome = Literal["removed", "not_found", "last_passkey"]
MailStatus = Literal["queued", "failed"]
# "message": mail to send as it is. "sign_in_link": a request for a sign-in link, which the delivery worker turns
# into a message if the recipient is an account's verified address, and drops otherwise. "logout_token": not mail
# but an OpenID Connect back-channel logout token (the body) to POST to the client named by the recipient.
MailKind = Literal["message", "sign_in_link", "logout_token"]
SigningAlgorithm = Literal["ES256", "RS256"]
# "queued": waiting for its (next) attempt; "delivered": the endpoint answered 2xx; "failed": given up (the
# schedule ran out, or the endpoint answered 410 Gone and was disabled).
DeliveryStatus = Literal["queued", "delivered", "failed"]
EndpointSource = Literal["file", "stored"]


@dataclass(frozen=True, kw_only=True)
class WebhookEvent:
    """One event to tell subscribed endpoints, written with the change it reports (the `outbox=` argument of
    the store's write methods): one delivery per endpoint subscribed to its type, in the same transaction.

    `message_id` is the Standard Webhooks `webhook-id`: the same on every attempt and every endpoint, so a
    receiver told twice knows it. `body` is the JSON payload, ids only.
    """

    message_id: str
    type: str
    body: str
    created_at: datetime


# The events to queue with a change whose ended sessions are known only inside its transaction (a passkey's
# removal, the end of all of a person's sessions): given their token hashes, the events.
OutboxOfEnded = Callable[[Sequence[bytes]], Sequence[WebhookEvent]]


@dataclass(frozen=True, kw_only=True)
class WebhookEndpoint:
    """A subscription: where to POST which event types. `secrets` is sealed by the service (the signing
    secrets, the newest first: two while one rotates); file endpoints are copied from the configuration."""

    id: str
    url: str
    events: tuple[str, ...]
    secrets: bytes
    created_at: datetime
    source: EndpointSource = "stored"
    enabled: bool = True
    disabled_reason: str | None = None
    disabled_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class WebhookDelivery:
    """One event for one endpoint: the outbox row its delivery worker leases, and its log once delivered or
    failed. `attempts` counts claims; `last_status` is the endpoint's last HTTP status (None: no answer)."""

    id: int
    endpoint_id: str
    message_id: str
    type: str
    body: str
    created_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    status: DeliveryStatus = "queued"
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    last_error: str | None = None
    last_status: int | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class User:
    id: str
    username: str
    display_name: str
    user_handle: bytes
    created_at: datetime
    email: str | None = None
    email_verified_at: datetime | None = None
    nudge_dismissed: bool = False
    # The account's id in the system it was imported from, kept as given (unique among accounts).
    external_id: str | None = None
    # When an administrator disabled the account (None: enabled). A disabled account has no session and can
    # start no ceremony or recovery.
    disabled_at: datetime | None = None


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
    # A verified attestation chained to a trust anchor proved the model (RegisteredCredential.aaguid_attested).
    attested: bool = False
    created_by: CredentialSource = "registration"


@dataclass(frozen=True, kw_only=True)
class StoredPassword:
    """A password hash kept for the move to passkeys: as the old system stored it (any scheme
    passgate.core.passwords verifies) until a sign-in rehashes it to argon2id."""

    user_id: str
    hash: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, kw_only=True)
class PasswordGroup:
    """The accounts whose password hashes share a leading tag (`hash_tag`: "$2b$", "$argon2id$",
    "pbkdf2_sha256$"), which names one hash scheme. `sample` is one of the hashes, to name the scheme by."""

    tag: str
    sample: str
    accounts: int
    without_passkey: int  # the password is their only way in


@dataclass(frozen=True, kw_only=True)
class AccountStats:
    accounts: int
    upgraded: int  # accounts with a passkey made by the upgrade right after a password sign-in
    passwords: tuple[PasswordGroup, ...]  # by tag, sorted


def hash_tag(stored: str) -> str:
    """A password hash's leading tag: up to its first "$" after the first character ("$2b$12$..." gives "$2b$",
    "pbkdf2_sha256$..." gives "pbkdf2_sha256$"); the first character if there is none."""
    end = stored.find("$", 1)
    return stored[: end + 1] if end >= 0 else stored[:1]


@dataclass(frozen=True, kw_only=True)
class PendingChallenge:
    """A challenge issued by a `begin`, waiting for its `complete`.

    `id` is SHA-256 of the challenge; `browser` is SHA-256 of the ceremony cookie it is bound to.
    `pending_user` holds a sign-up's user until its first passkey verifies, or, for a confirmation, the
    transaction being confirmed, or, for a consent page's confirmation (`browser` then being bound to the
    session), the request being allowed.
    """

    id: bytes
    challenge: bytes
    ceremony: Ceremony
    browser: bytes
    user_id: str | None
    pending_user: dict[str, Any] | None
    expires_at: datetime


@dataclass(frozen=True)
class Spend:
    """A sealed challenge to mark answered (`ChallengeStore.spend`) in the write that records its outcome."""

    challenge_id: bytes
    until: datetime  # the mark is kept till then


@dataclass(frozen=True, kw_only=True)
class Session:
    token_hash: bytes
    user_id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # the absolute end; idleness is judged from last_seen_at
    # When the user last proved possession of a passkey (sign-in, sign-up or step-up); None when the
    # session came from a recovery path (backup code, email link) and no passkey has been used since.
    authenticated_at: datetime | None = None
    kind: SessionKind = "passkey"
    # The passkey whose use opened the session or last proved it (a step-up, or the passkey a recovery
    # session added); removing that passkey ends the session. None for a session a recovery path opened.
    credential_id: bytes | None = None
    # Whether the passkey that opened the session or last proved it verified its user (the UV flag).
    # False for a session a recovery path opened.
    user_verified: bool = False
    # The session's public identifier, named in signed tokens (`sid`): random, neither its token nor derived
    # from it, so a token's reader learns nothing that opens the session. None only for sessions stored
    # before sessions had one.
    sid: str | None = None


@dataclass(frozen=True, kw_only=True)
class Removal:
    """What removing a passkey did: its outcome and the sessions that ended with it (token hashes)."""

    outcome: RemoveOutcome
    ended_sessions: tuple[bytes, ...] = ()


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


@dataclass(frozen=True, kw_only=True)
class BackupCode:
    user_id: str
    number: int
    code_hash: bytes
    salt: bytes
    created_at: datetime
    used_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class EmailToken:
    token_hash: bytes
    purpose: EmailPurpose
    user_id: str
    email: str
    browser: bytes | None
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, kw_only=True)
class QueuedMail:
    """A message waiting in the outbox. `body` is the text as the service sealed it (it holds single-use links).

    `attempts` counts claims, so a node that died while sending still used one; `claimed_by` and `claimed_until`
    are the lease of the worker sending it now. A job (`kind` other than "message") is carried out by the worker:
    its body holds what the worker needs, its recipient is the address it concerns.
    """

    id: str
    recipient: str
    subject: str
    body: bytes
    created_at: datetime
    next_attempt_at: datetime
    kind: MailKind = "message"
    attempts: int = 0
    status: MailStatus = "queued"
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True, kw_only=True)
class SigningKey:
    """A key that signs tokens, with its life: published from `publish_at`, signing from `signs_from` until
    `retired_at`, published until `remove_after` (when the last token it may have signed has expired).

    `generation` counts key sets: the first start makes generation 1, each rotation the next. There is one key of
    each algorithm per generation, which is what keeps two nodes from making two sets at once. `private_key` is
    sealed (passgate.service.sealing); `public_jwk` is the public key as a JWK, `kid` included.
    """

    kid: str
    alg: SigningAlgorithm
    generation: int
    public_jwk: dict[str, Any]
    private_key: bytes
    created_at: datetime
    publish_at: datetime
    signs_from: datetime
    retired_at: datetime | None = None
    remove_after: datetime | None = None


class UserStore(Protocol):
    async def get(self, user_id: str) -> User | None: ...
    async def by_email(self, email: str) -> User | None:
        """The user whose *verified* address this is, compared by `normalize_identifier` forms."""
        ...

    async def set_display_name(self, user_id: str, display_name: str) -> None: ...
    async def set_email(self, user_id: str, email: str | None, *, verified_at: datetime | None) -> None:
        """Set the address, verified or not. A verified address belongs to one account: its normalized form
        is unique among verified addresses.

        Raises EmailTaken, changing nothing, if another account has verified the same address.
        """
        ...

    async def dismiss_nudge(self, user_id: str) -> None: ...
    async def by_username(self, username: str) -> User | None:
        """Case-insensitive: `username` is compared by its `normalize_identifier` form."""
        ...

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
        """Create the account and its first passkey together, with the sign-up's `event`, its first `session`,
        the webhook events of `outbox` and (given only where `ChallengeStore.spent_with_sign_in`) its challenge's
        mark: all of it, or nothing. Returns the number of webhook deliveries queued.

        Raises UsernameTaken or CredentialExists; ChallengeNotFound if `spend`'s challenge was answered before.
        """
        ...

    async def by_external_id(self, external_id: str) -> User | None:
        """The imported account that had this id in the system it came from (compared exactly)."""
        ...

    async def by_user_handle(self, user_handle: bytes) -> User | None:
        """The account whose WebAuthn user handle (user.id) this is."""
        ...

    async def create_imported(
        self,
        user: User,
        credentials: Sequence[Credential],
        password: StoredPassword | None,
        *,
        event: Event | None = None,
        outbox: Sequence[WebhookEvent] = (),
    ) -> None:
        """Create an imported account with its passkeys and password (and record `event`, queue `outbox`)
        together, or nothing.

        Raises CredentialExists if one of the passkeys is stored already, EmailTaken if another account has
        verified the user's (verified) address, UsernameTaken if the username, the external id or the user
        handle belongs to an account already.
        """
        ...

    async def stats(self) -> AccountStats:
        """How many accounts there are, and how far they have moved from passwords, in one aggregated query."""
        ...


class PasswordStore(Protocol):
    """Imported password hashes, one per account at most."""

    async def get(self, user_id: str) -> StoredPassword | None: ...
    async def rehash(self, user_id: str, *, old_hash: str, new_hash: str, at: datetime) -> bool:
        """Replace the hash only if it is still `old_hash`; False, changing nothing, if it changed or went."""
        ...

    async def remove(self, user_id: str) -> bool:
        """False if the account had no password."""
        ...

    async def count(self) -> int:
        """How many accounts still have a password."""
        ...


class CredentialStore(Protocol):
    async def get(self, credential_id: bytes) -> Credential | None: ...
    async def list_for_user(self, user_id: str) -> list[Credential]: ...
    async def get_with_owner(self, credential_id: bytes) -> tuple[Credential, User] | None:
        """The credential and its user, in one look-up (sign-in needs both)."""
        ...

    async def add(self, credential: Credential, *, outbox: Sequence[WebhookEvent] = ()) -> None:
        """Store the passkey (and queue `outbox`). Raises CredentialExists, storing nothing."""
        ...

    async def rename(
        self, credential_id: bytes, user_id: str, nickname: str | None, *, outbox: Sequence[WebhookEvent] = ()
    ) -> bool:
        """Rename one of `user_id`'s passkeys (and queue `outbox`); False, queueing nothing, if it is not theirs."""
        ...

    async def remove(
        self,
        credential_id: bytes,
        user_id: str,
        *,
        keep_session: bytes | None = None,
        outbox: OutboxOfEnded | None = None,
    ) -> Removal:
        """Remove one of `user_id`'s passkeys and end the sessions it opened, except `keep_session`; the events
        `outbox` gives for the ended sessions are queued in the same step, and only if the passkey is removed.

        The account's last passkey is removed only if the account has another way in: a verified email
        address or an unused backup code. That is decided in the same atomic step as the removal, so
        concurrent removals (or a concurrent change of the address or the codes) cannot leave an account
        with no way in.
        """
        ...

    async def record_use(self, credential_id: bytes, *, sign_count: int, backed_up: bool, used_at: datetime) -> bool:
        """Store a sign-in's counter and backup state.

        A non-zero `sign_count` is written only if it is above the stored one, atomically, so two
        concurrent sign-ins cannot both move the counter to the same value. Returns False if refused.
        """
        ...


class ChallengeStore(Protocol):
    """Single use of challenges.

    A ceremony's challenge carries its own sealed state (passgate.service.challenges), so a store only has to
    make sure each is answered once: `issued` at `begin` (a no-op where `spend` remembers spent ones instead),
    `spend` at `complete`. Stored challenges (`put`/`take`) remain for what must be looked up by a token.

    A store with `spent_with_sign_in` keeps its marks in the database the sign-ins are recorded in: a sign-in
    then marks its challenge in its own transaction (`SignInStore.record(spend=...)`), and only a refused one
    spends it on its own.
    """

    spent_with_sign_in: bool

    async def issued(self, challenge_id: bytes, expires_at: datetime) -> None:
        """A sealed challenge was handed out (kept only by a store that remembers the outstanding ones)."""
        ...

    async def spend(self, challenge_id: bytes, expires_at: datetime) -> bool:
        """Mark a sealed challenge answered, atomically; False if it was answered before (or, for a store of the
        outstanding ones, never issued or purged). Of two concurrent calls for one id, exactly one gets True."""
        ...

    async def put(self, challenge: PendingChallenge) -> None: ...
    async def take(self, challenge_id: bytes) -> PendingChallenge | None:
        """Remove and return the challenge in one atomic step: a challenge is taken at most once."""
        ...

    async def purge_expired(self, now: datetime) -> int:
        """Delete challenges, and spent marks, that expired before `now`; returns how many challenges."""
        ...


class SessionStore(Protocol):
    async def create(self, session: Session) -> None: ...
    async def get(self, token_hash: bytes) -> Session | None: ...
    async def touch(self, token_hash: bytes, at: datetime) -> None: ...
    async def by_sid(self, sid: str) -> Session | None:
        """The session with this public identifier (`Session.sid`), as signed tokens name it."""
        ...

    async def mark_authenticated(
        self, token_hash: bytes, at: datetime, *, credential_id: bytes, user_verified: bool
    ) -> None:
        """The user proved possession of passkey `credential_id` now (verifying the user or not): a recovery
        session becomes a passkey session, ended when that passkey is removed."""
        ...

    async def delete_for_user(
        self, user_id: str, *, keep: bytes | None = None, outbox: OutboxOfEnded | None = None
    ) -> tuple[bytes, ...]:
        """End all of the user's sessions but `keep` (queueing the events `outbox` gives for them); returns
        their token hashes."""
        ...

    async def delete(self, token_hash: bytes, *, outbox: Sequence[WebhookEvent] = ()) -> bool:
        """End the session (queueing `outbox` if there was one); False, queueing nothing, if there was none."""
        ...

    async def purge_expired(self, now: datetime, idle: timedelta) -> int:
        """Delete sessions past their absolute end or idle longer than `idle`; returns how many."""
        ...

    async def count_active(self, now: datetime, idle: timedelta) -> int:
        """How many sessions are neither past their absolute end nor idle longer than `idle`."""
        ...


class BackupCodeStore(Protocol):
    async def replace(self, user_id: str, codes: list[BackupCode]) -> None:
        """Store a new set of codes; the previous set stops working in the same step."""
        ...

    async def unused(self, user_id: str) -> list[BackupCode]: ...
    async def use(self, user_id: str, number: int, at: datetime, *, outbox: Sequence[WebhookEvent] = ()) -> bool:
        """Mark a code used (queueing `outbox`); False, queueing nothing, if it was used already (so each code
        works once, even concurrently)."""
        ...


class EmailTokenStore(Protocol):
    async def put(self, token: EmailToken) -> None: ...
    async def get(self, token_hash: bytes) -> EmailToken | None:
        """The token, left in place (to tell why `take` refused it)."""
        ...

    async def take(self, token_hash: bytes, *, purpose: EmailPurpose, browser: bytes | None) -> EmailToken | None:
        """Remove and return the token atomically, if it is for `purpose` and bound to `browser` or to no
        browser: a link works once, and opening it elsewhere (or for another purpose) does not use it up."""
        ...

    async def purge_expired(self, now: datetime) -> int: ...


class CounterStore(Protocol):
    async def hit(self, key: str, window_seconds: int, now: datetime) -> tuple[int, int]:
        """Count one event in the current fixed window of `key`; returns the count so far in this window
        and the seconds until the window ends."""
        ...


class EventStore(Protocol):
    async def record(self, event: Event, *, outbox: Sequence[WebhookEvent] = ()) -> None:
        """Record the event, and queue the webhook events of `outbox` with it."""
        ...

    async def list(
        self,
        *,
        user_id: str | None = None,
        type: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[Event]:
        """Newest first, filtered by whichever of user, type, outcome and time are given."""
        ...


class MailOutbox(Protocol):
    """Mail stored before the request that caused it is answered, and sent afterwards by a delivery worker."""

    async def enqueue(self, mail: QueuedMail) -> None: ...
    async def claim(self, *, worker: str, now: datetime, lease: timedelta, limit: int) -> list[QueuedMail]:
        """Claim up to `limit` queued messages due by `now` (oldest first) whose lease is free or has run out.

        Each is leased to `worker` until `now + lease` and its `attempts` counted, atomically: two workers,
        on one node or several, never hold the same message at once.
        """
        ...

    async def sent(self, mail_id: str, *, worker: str) -> bool:
        """Delete a delivered message, or a job carried out; False if `worker` no longer holds its lease."""
        ...

    async def replace(self, mail_id: str, *, worker: str, by: QueuedMail) -> bool:
        """Put `by` in the place of a held job, atomically; False, changing nothing, if `worker` no longer holds it.

        `by` is stored as given, its lease included: the worker that turned the job into a message sends it.
        """
        ...

    async def retry(self, mail_id: str, *, worker: str, at: datetime, error: str) -> bool:
        """Release the lease and queue the message again for `at`; False if `worker` no longer holds it."""
        ...

    async def fail(self, mail_id: str, *, worker: str, error: str) -> bool:
        """Keep the message as failed (never claimed again); False if `worker` no longer holds it."""
        ...

    async def list(self, *, status: MailStatus | None = None, limit: int = 100) -> list[QueuedMail]:
        """Messages oldest first, of one status if given."""
        ...


class OidcClientStore(Protocol):
    """OpenID Connect clients added with the CLI (clients from the configuration file are never stored)."""

    async def add(self, client: OidcClient) -> None:
        """Raises ClientExists, storing nothing, if a client has this `client_id`."""
        ...

    async def get(self, client_id: str) -> OidcClient | None: ...
    async def list(self) -> list[OidcClient]:
        """Oldest first."""
        ...

    async def remove(self, client_id: str) -> bool:
        """False if there was no such client."""
        ...


@dataclass(frozen=True, kw_only=True)
class AuthorizationCode:
    """An OAuth 2 authorization code, stored as its SHA-256 with what its authorization request asked for and
    what the session behind it proved."""

    code_hash: bytes
    client_id: str
    user_id: str
    redirect_uri: str
    scope: str  # space-separated, as granted
    nonce: str | None
    code_challenge: str  # the S256 PKCE challenge
    sid: str  # the session's public id
    auth_time: datetime
    amr: tuple[str, ...]
    acr: str | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    access_token_jti: str | None = None  # the access token the exchange issued
    revoked: bool = False  # presented again after its exchange: what it issued is revoked


@dataclass(frozen=True, kw_only=True)
class TakenCode:
    code: AuthorizationCode
    first: bool  # False: it had been taken before, and is now revoked with what it issued


class AuthorizationCodeStore(Protocol):
    """Authorization codes: each exchanged once; one presented again revokes what it issued."""

    async def add(self, code: AuthorizationCode) -> None: ...

    async def take(self, code_hash: bytes, now: datetime) -> TakenCode | None:
        """Take the code, atomically: the first call gets it with `first` True and marks it used at `now`; every
        later call gets it with `first` False and marks it revoked. None for an unknown code."""
        ...

    async def record_issued(self, code_hash: bytes, access_token_jti: str) -> None:
        """Record the access token the code's exchange issued."""
        ...

    async def revoked(self, access_token_jti: str) -> bool:
        """True if the access token came from a code that was presented again."""
        ...

    async def purge(self, expired_before: datetime) -> int:
        """Delete codes whose `expires_at` is `expired_before` or earlier; returns how many."""
        ...


@dataclass(frozen=True, kw_only=True)
class RefreshToken:
    """An OAuth 2 refresh token (offline_access), stored as its SHA-256. Each use rotates it: the token is
    marked used and a new one of the same family issued; the family shares the grant's absolute expiry."""

    token_hash: bytes
    family_id: str
    client_id: str
    user_id: str
    sid: str  # the session that signed in; the family outlives it
    scope: str  # space-separated, as granted to this token
    auth_time: datetime
    amr: tuple[str, ...]
    acr: str | None
    generation: int  # 0: issued by the code exchange; n: by the n-th refresh
    access_token_jti: str  # the access token issued with it
    created_at: datetime
    expires_at: datetime  # idle expiry: the family's absolute expiry at the latest
    family_expires_at: datetime
    used_at: datetime | None = None
    revoked: bool = False  # its family was revoked (reuse, revocation)


@dataclass(frozen=True, kw_only=True)
class TakenRefreshToken:
    token: RefreshToken
    first: bool  # False: it had been used before, and its whole family is now revoked


class RefreshTokenStore(Protocol):
    """Refresh tokens and revoked access tokens."""

    async def add(self, token: RefreshToken) -> None: ...

    async def get(self, token_hash: bytes) -> RefreshToken | None: ...

    async def rotate(self, token_hash: bytes, replacement: RefreshToken, now: datetime) -> TakenRefreshToken | None:
        """Use the token, atomically: if it is unused and its family not revoked, mark it used at `now` and add
        `replacement`, in one step (`first` True). Otherwise revoke its whole family, adding nothing (`first`
        False). None for an unknown token."""
        ...

    async def revoke_family(self, family_id: str) -> None: ...

    async def revoke_for_user(self, user_id: str, *, client_id: str | None = None) -> int:
        """Revoke every family of the user's refresh tokens (for one client only, with `client_id`) that is not
        revoked yet; returns how many tokens were revoked."""
        ...

    async def by_access_token(self, access_token_jti: str) -> RefreshToken | None:
        """The refresh token issued with this access token, if any."""
        ...

    async def revoke_access_token(self, jti: str, expires_at: datetime) -> None:
        """Record an access token revoked (kept until `expires_at`, when it would have expired anyway)."""
        ...

    async def access_token_revoked(self, jti: str) -> bool: ...

    async def purge(self, now: datetime) -> int:
        """Delete refresh tokens expired or used whose family has expired, and revoked access tokens that have
        expired, at `now`; returns how many."""
        ...


class SigningKeyStore(Protocol):
    """The keys every node signs with (passgate.service.keys decides their lives)."""

    async def all(self) -> list[SigningKey]:
        """Every stored key, oldest generation first."""
        ...

    async def add_generation(self, keys: list[SigningKey], *, retire_at: datetime, remove_after: datetime) -> bool:
        """Store a new generation's keys (all of one `generation`) and retire, at `retire_at` and to be removed
        after `remove_after`, every key of an earlier generation not retired yet, in one atomic step.

        Returns False, changing nothing, if keys of that generation exist already: another node made them first.
        """
        ...

    async def purge(self, now: datetime) -> int:
        """Delete keys whose `remove_after` is `now` or earlier (no longer published); returns how many."""
        ...


@dataclass(frozen=True, kw_only=True)
class CredentialUse:
    credential_id: bytes
    sign_count: int
    backed_up: bool
    used_at: datetime


class SignInStore(Protocol):
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
        """Record a verified sign-in in one step: the passkey's use (counter moved forward atomically, as in
        `CredentialStore.record_use`), the new session replacing `ended_session`, the event, the webhook
        events of `outbox` and, given only where `ChallengeStore.spent_with_sign_in`, the challenge's mark.

        Returns the number of webhook deliveries queued (0 when no endpoint subscribes), or None, writing
        nothing, if the counter did not move forward.

        Raises:
            ChallengeNotFound: `spend`'s challenge was answered before; nothing is written.
        """
        ...


@dataclass(frozen=True, kw_only=True)
class SessionClient:
    """A client that received tokens for a session: told by back-channel logout when the session ends."""

    token_hash: bytes  # the session's (a session that ended is known by it: `Removal.ended_sessions`)
    sid: str
    user_id: str
    client_id: str
    recorded_at: datetime


class SessionClientStore(Protocol):
    async def record(self, entry: SessionClient) -> None:
        """Remember that the client received tokens for the session (once per session and client)."""
        ...

    async def take(self, token_hashes: Sequence[bytes]) -> list[SessionClient]:
        """Delete and return what was recorded for these sessions: of two callers, only one gets each entry."""
        ...

    async def purge(self, recorded_before: datetime) -> int:
        """Delete entries recorded before `recorded_before` (their session has ended by itself)."""
        ...


@dataclass(frozen=True, kw_only=True)
class Consent:
    """What a person allowed a client that is not first-party: the scopes, widened by each later grant."""

    user_id: str
    client_id: str
    scopes: frozenset[str]
    granted_at: datetime  # the first grant
    updated_at: datetime  # the latest


class ConsentStore(Protocol):
    """Consents remembered per user and client."""

    async def grant(self, user_id: str, client_id: str, scopes: Sequence[str], at: datetime) -> Consent:
        """Remember `scopes` for the user and client, beside those remembered already (a grant never narrows),
        and return what is now remembered."""
        ...

    async def get(self, user_id: str, client_id: str) -> Consent | None: ...

    async def list_for_user(self, user_id: str) -> list[Consent]:
        """Oldest grant first."""
        ...

    async def withdraw(self, user_id: str, client_id: str) -> bool:
        """Forget the consent; False if there was none."""
        ...

    async def forget_client(self, client_id: str) -> int:
        """Forget every consent given to the client (it was removed); returns how many."""
        ...


@dataclass(frozen=True, kw_only=True)
class AppUser:
    """One of an app's own users, by the app's id for them; `user_handle` is the random WebAuthn user.id."""

    app_id: str
    user_id: str
    user_handle: bytes
    username: str
    display_name: str
    created_at: datetime


class AppStore(Protocol):
    """Apps of the passkey API, their keys, and their users' passkeys (kept apart from Passgate's accounts).

    Every look-up of a user or passkey is by app: another app's ids are not found.
    """

    async def add(self, app: App) -> None:
        """Raises ClientExists, storing nothing, if an app has this id."""
        ...

    async def put(self, app: App) -> None:
        """Store the app, or replace the name, origins, rp id and policy of the one with its id (keeping its
        keys, users and passkeys): how the configuration file's apps are kept current."""
        ...

    async def get(self, app_id: str) -> App | None: ...
    async def list_apps(self) -> list[App]:
        """Oldest first."""
        ...

    async def remove(self, app_id: str) -> bool:
        """Remove the app with its keys, users and passkeys; False if there was none."""
        ...

    async def add_key(self, key: AppKey) -> None: ...
    async def key_by_hash(self, key_hash: bytes) -> AppKey | None: ...
    async def list_keys(self, app_id: str) -> list[AppKey]:
        """Oldest first, revoked ones too."""
        ...

    async def revoke_key(self, app_id: str, key_id: str, at: datetime) -> bool:
        """False if the app has no such key that is not revoked already."""
        ...

    async def put_user(self, user: AppUser) -> AppUser:
        """Store the user, or update the names of the one with its app and user id; returns what is stored
        (whose user_handle is the first one's)."""
        ...

    async def get_user(self, app_id: str, user_id: str) -> AppUser | None: ...
    async def remove_user(self, app_id: str, user_id: str) -> bool:
        """Remove the user and their passkeys; False if there was none."""
        ...

    async def add_credential(self, app_id: str, credential: Credential) -> None:
        """`credential.user_id` is the app's user id. Raises CredentialExists."""
        ...

    async def get_credential(self, app_id: str, credential_id: bytes) -> Credential | None: ...
    async def list_credentials(self, app_id: str, user_id: str) -> list[Credential]:
        """Oldest first."""
        ...

    async def rename_credential(self, app_id: str, credential_id: bytes, nickname: str | None) -> bool: ...
    async def remove_credential(self, app_id: str, credential_id: bytes) -> bool: ...
    async def record_use(
        self, app_id: str, credential_id: bytes, *, sign_count: int, backed_up: bool, used_at: datetime
    ) -> bool:
        """As CredentialStore.record_use: a non-zero sign_count is written only if above the stored one."""
        ...


class WebhookStore(Protocol):
    """Webhook endpoints and the outbox of their deliveries (passgate.service.webhooks sends them)."""

    async def put_endpoint(self, endpoint: WebhookEndpoint) -> None:
        """Store the endpoint, or replace the one with its id (keeping its deliveries; enabled as given)."""
        ...

    async def get_endpoint(self, endpoint_id: str) -> WebhookEndpoint | None: ...
    async def list_endpoints(self) -> list[WebhookEndpoint]:
        """Oldest first."""
        ...

    async def remove_endpoint(self, endpoint_id: str) -> bool:
        """Remove the endpoint with its deliveries; False if there was none."""
        ...

    async def set_enabled(
        self, endpoint_id: str, enabled: bool, *, reason: str | None = None, at: datetime | None = None
    ) -> bool:
        """Enable or disable the endpoint (recording why and when); False if there is none."""
        ...

    async def enqueue(self, events: Sequence[WebhookEvent]) -> int:
        """Queue the events on their own (for changes no other write method records); returns how many
        deliveries that made. An event whose `message_id` is queued already is skipped: nodes that notice one
        change each queue it, and it goes out once."""
        ...

    async def claim(self, *, worker: str, now: datetime, lease: timedelta, limit: int) -> list[WebhookDelivery]:
        """Claim up to `limit` queued deliveries due by `now` (oldest first) whose lease is free or has run out,
        for enabled endpoints; each is leased to `worker` until `now + lease` and its `attempts` counted,
        atomically: two workers never hold the same delivery at once."""
        ...

    async def delivered(self, delivery_id: int, *, worker: str, at: datetime, status: int) -> bool:
        """Record the delivery done (kept for the log); False if `worker` no longer holds its lease."""
        ...

    async def retry(
        self, delivery_id: int, *, worker: str, at: datetime, error: str, status: int | None = None
    ) -> bool:
        """Release the lease and queue the delivery again for `at`; False if `worker` no longer holds it."""
        ...

    async def fail(self, delivery_id: int, *, worker: str, at: datetime, error: str, status: int | None = None) -> bool:
        """Give the delivery up (never claimed again, kept for the log); False if `worker` no longer holds it."""
        ...

    async def redeliver(self, delivery_id: int, *, at: datetime) -> bool:
        """Queue a delivery again for `at`, whatever its status, with its attempts counted anew and its lease
        dropped; False if there is none."""
        ...

    async def get_delivery(self, delivery_id: int) -> WebhookDelivery | None: ...
    async def list_deliveries(
        self, *, endpoint_id: str | None = None, status: DeliveryStatus | None = None, limit: int = 100
    ) -> list[WebhookDelivery]:
        """Newest first."""
        ...

    async def purge(self, finished_before: datetime) -> int:
        """Delete deliveries delivered or failed before `finished_before` (the log's end); returns how many."""
        ...


# Administration: the admin API's keys, and what only an administrator does to accounts.

AdminScope = Literal["users:read", "users:write", "sessions:write", "events:read", "apps:write"]
ADMIN_SCOPES: tuple[AdminScope, ...] = ("users:read", "users:write", "sessions:write", "events:read", "apps:write")


@dataclass(frozen=True, kw_only=True)
class AdminKey:
    """A key of the admin API, stored as the SHA-256 of its secret (`pga_...`), with the scopes it was given."""

    name: str
    key_hash: bytes
    scopes: tuple[AdminScope, ...]
    created_at: datetime
    revoked_at: datetime | None = None


class AdminKeyStore(Protocol):
    async def add(self, key: AdminKey) -> None:
        """Raises AdminKeyExists, storing nothing, if an unrevoked key has this name."""
        ...

    async def by_hash(self, key_hash: bytes) -> AdminKey | None: ...
    async def list(self) -> list[AdminKey]:
        """Oldest first, revoked ones too."""
        ...

    async def revoke(self, name: str, at: datetime) -> bool:
        """Revoke the unrevoked key of this name; False if there is none."""
        ...


@dataclass(frozen=True, kw_only=True)
class EventQuery:
    """Which events to read: every field given narrows; `before_id` continues a page (keyset, newest first)."""

    user_id: str | None = None
    type: str | None = None
    outcome: str | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    before_id: int | None = None


# Event details that name a person: dropped from a deleted account's events, beside any value that is their
# username or address.
PERSONAL_DETAIL_KEYS = frozenset({"username", "email", "display_name", "displayName", "external_id", "externalId"})


def without_person(detail: dict[str, Any], user: User) -> dict[str, Any]:
    """An event's detail with nothing left that names the person: see PERSONAL_DETAIL_KEYS."""
    named = {value.casefold() for value in (user.username, user.email, user.display_name, user.external_id) if value}
    return {
        key: value
        for key, value in detail.items()
        if key not in PERSONAL_DETAIL_KEYS and not (isinstance(value, str) and value.casefold() in named)
    }


class AccountAdminStore(Protocol):
    """What an administrator does to accounts, each change in one transaction with its event."""

    async def list_users(self, *, search: str | None, after: str | None, limit: int) -> list[User]:
        """Accounts ordered by id, those after the id `after` (a page's cursor). `search` keeps those whose
        username or email contains it (compared as normalize_identifier forms) or whose external id is it."""
        ...

    async def sessions_for_user(self, user_id: str) -> list[Session]:
        """Oldest first."""
        ...

    async def disable(
        self, user_id: str, at: datetime, *, event: Event, outbox: OutboxOfEnded | None = None
    ) -> tuple[bytes, ...] | None:
        """Disable the account, end all its sessions, revoke its refresh tokens, record `event` and queue the
        webhook events `outbox` gives for the ended sessions, in one transaction. Returns the ended sessions'
        token hashes; None, changing nothing, if there is no such user. An account disabled already keeps its
        first `disabled_at`."""
        ...

    async def enable(self, user_id: str, *, event: Event) -> bool:
        """Enable the account and record `event` together; False, changing nothing, if there is no such user."""
        ...

    async def delete_user(
        self, user_id: str, *, pseudonym: str, event: Event, outbox: OutboxOfEnded | None = None
    ) -> tuple[bytes, ...] | None:
        """Erase the account and everything kept of the person, in one transaction: passkeys, password, sessions,
        backup codes, email tokens, pending challenges, authorization codes, refresh tokens, consents, the
        clients told of their sessions, and mail queued to their address. Their events stay, with `pseudonym` in
        place of the user id and no username, email or display name in their details; `event` is recorded, and
        the webhook events `outbox` gives for the ended sessions queued.
        Returns the ended sessions' token hashes; None, changing nothing, if there is no such user."""
        ...

    async def events(self, query: EventQuery, *, limit: int) -> list[Event]:
        """Up to `limit` events matching `query`, newest (highest id) first."""
        ...


@dataclass(frozen=True, kw_only=True)
class Storage:
    users: UserStore
    passwords: PasswordStore
    credentials: CredentialStore
    challenges: ChallengeStore
    sessions: SessionStore
    events: EventStore
    sign_ins: SignInStore
    backup_codes: BackupCodeStore
    email_tokens: EmailTokenStore
    counters: CounterStore
    mail: MailOutbox
    oidc_clients: OidcClientStore
    signing_keys: SigningKeyStore
    authorization_codes: AuthorizationCodeStore
    session_clients: SessionClientStore
    refresh_tokens: RefreshTokenStore
    consents: ConsentStore
    apps: AppStore
    webhooks: WebhookStore
    admin_keys: AdminKeyStore
    admin: AccountAdminStore

"""The SQL schema, shared by the SQL adapter and the Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    TypeDecorator,
    false,
)
from sqlalchemy.engine import Dialect


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("username", String(64), nullable=False),
    Column("username_normalized", String(64), nullable=False, unique=True),
    Column("display_name", String(64), nullable=False),
    Column("user_handle", LargeBinary(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("email", String(254), nullable=True),
    Column("email_verified_at", UTCDateTime(), nullable=True),
    # The address's normalize_identifier form, set only while it is verified: a verified address belongs to
    # one account. Unverified addresses are NULL, and NULLs never collide (SQLite and PostgreSQL alike).
    Column("email_normalized", String(254), nullable=True),
    Column("nudge_dismissed", Boolean, nullable=False, server_default=false()),
    # An imported account's id in the system it came from; NULL for accounts made here.
    Column("external_id", String(255), nullable=True),
    # Set while an administrator has disabled the account: no ceremony or recovery lets it in.
    Column("disabled_at", UTCDateTime(), nullable=True),
    Index("ux_users_email_normalized", "email_normalized", unique=True),
    Index("ux_users_external_id", "external_id", unique=True),
)

credentials = Table(
    "credentials",
    metadata,
    Column("credential_id", LargeBinary(1023), primary_key=True),
    Column("user_id", String(32), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("public_key", LargeBinary, nullable=False),
    Column("algorithm", Integer, nullable=False),
    Column("sign_count", BigInteger, nullable=False),
    Column("aaguid", String(36), nullable=False),
    Column("attestation_format", String(32), nullable=False),
    Column("transports", JSON, nullable=False),
    Column("backup_eligible", Boolean, nullable=False),
    Column("backed_up", Boolean, nullable=False),
    Column("user_verified", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("nickname", String(64), nullable=True),
    # A verified attestation chained to a trust anchor proved the model: with BE clear, a hardware-bound key.
    Column("attested", Boolean, nullable=False, server_default=false()),
    Column("created_by", String(16), nullable=False, server_default="registration"),
)

# Imported password hashes (the move to passkeys), as the old system stored them until rehashed to argon2id.
passwords = Table(
    "passwords",
    metadata,
    Column("user_id", String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("hash", String(1024), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

challenges = Table(
    "challenges",
    metadata,
    Column("id", LargeBinary(32), primary_key=True),
    Column("challenge", LargeBinary(64), nullable=False),
    Column("ceremony", String(16), nullable=False),
    Column("browser", LargeBinary(32), nullable=False),
    Column("user_id", String(32), nullable=True),
    Column("pending_user", JSON, nullable=True),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

# The spent sealed challenges (passgate.service.challenges): a challenge carries its own state, so what must be
# stored is only that it has been answered, till it would have expired anyway. The unique key makes the second
# answer of one challenge fail, whichever node it reaches.
used_challenges = Table(
    "used_challenges",
    metadata,
    Column("id", LargeBinary(32), primary_key=True),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("user_id", String(32), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    # When the user last proved possession of a passkey (sign-in or step-up); None for recovery sessions.
    Column("authenticated_at", UTCDateTime(), nullable=True),
    Column("kind", String(16), nullable=False, server_default="passkey"),
    # The passkey that opened the session or last proved it; None for recovery sessions. No foreign key:
    # removing a passkey ends these sessions itself, all but the one the removal was made from.
    Column("credential_id", LargeBinary(1023), nullable=True),
    # Whether that passkey verified its user (UV); false for recovery sessions.
    Column("user_verified", Boolean, nullable=False, server_default=false()),
    # The public identifier signed tokens name (random, not derived from the token).
    Column("sid", String(43), nullable=True),
    Index("ux_sessions_sid", "sid", unique=True),
)

backup_codes = Table(
    "backup_codes",
    metadata,
    Column("user_id", String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("code_hash", LargeBinary(64), nullable=False),
    Column("salt", LargeBinary(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
)

# Single-use tokens sent by email: address verification and sign-in links. Stored as SHA-256 only.
email_tokens = Table(
    "email_tokens",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("purpose", String(16), nullable=False),
    Column("user_id", String(32), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("email", String(254), nullable=False),
    Column("browser", LargeBinary(32), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("type", String(48), nullable=False),
    Column("outcome", String(8), nullable=False),
    Column("reason", String(64), nullable=True),
    Column("user_id", String(32), nullable=True),
    Column("credential_id", LargeBinary(1023), nullable=True),
    Column("ip", String(64), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("detail", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_events_user_created", "user_id", "created_at"),
)

# Mail waiting to be sent: stored before the request that caused it is answered, deleted once delivered.
# `kind` tells a message from a job the worker turns into one (a sign-in link request: see store.base.MailKind).
# `body` is sealed by the service (AES-GCM, a key derived from secret_key): it holds single-use links.
mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("recipient", String(254), nullable=False),
    Column("subject", String(512), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("claimed_by", String(32), nullable=True),
    Column("claimed_until", UTCDateTime(), nullable=True),
    Column("last_error", String(512), nullable=True),
    Index("ix_mail_outbox_due", "status", "next_attempt_at"),
)

# OpenID Connect clients added with the CLI; the configuration file's clients are never stored. A secret is kept
# as its SHA-256 only (NULL for a public client); the URI lists and scopes are JSON arrays of strings.
oidc_clients = Table(
    "oidc_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("secret_hash", LargeBinary(32), nullable=True),
    Column("redirect_uris", JSON, nullable=False),
    Column("post_logout_redirect_uris", JSON, nullable=False),
    Column("backchannel_logout_uri", String(2048), nullable=True),
    Column("scopes", JSON, nullable=False),
    Column("first_party", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Token signing keys, shared by every node. One key of each algorithm per generation (the unique index): of two
# nodes making the first keys, or rotating, at once, one wins and the other uses its keys. `private_key` is
# sealed (AES-GCM under a key derived from secret_key, bound to the kid).
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(8), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("public_jwk", JSON, nullable=False),
    Column("private_key", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("publish_at", UTCDateTime(), nullable=False),
    Column("signs_from", UTCDateTime(), nullable=False),
    Column("retired_at", UTCDateTime(), nullable=True),
    Column("remove_after", UTCDateTime(), nullable=True),
    Index("ux_signing_keys_generation", "alg", "generation", unique=True),
)

# Authorization codes, kept as their SHA-256 after their exchange too: one presented again revokes the access
# token its exchange issued (`access_token_jti`), which userinfo then refuses.
authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", LargeBinary(32), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("user_id", String(32), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("redirect_uri", String(2048), nullable=False),
    Column("scope", String(1024), nullable=False),
    Column("nonce", String(512), nullable=True),
    Column("code_challenge", String(128), nullable=False),
    Column("sid", String(64), nullable=False),
    Column("auth_time", UTCDateTime(), nullable=False),
    Column("amr", JSON, nullable=False),
    Column("acr", String(16), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    Column("access_token_jti", String(64), nullable=True),
    Column("revoked", Boolean, nullable=False),
    Index("ix_authorization_codes_jti", "access_token_jti"),
)

# The clients that received tokens for a session, told by back-channel logout when it ends. Keyed by the
# session's token hash, not a foreign key: the entries are taken just after their session is deleted.
session_clients = Table(
    "session_clients",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("client_id", String(64), primary_key=True),
    Column("sid", String(64), nullable=False),
    Column("user_id", String(32), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("family_id", String(64), nullable=False),
    Column("client_id", String(64), nullable=False),
    Column("user_id", String(32), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("sid", String(64), nullable=False),
    Column("scope", String(1024), nullable=False),
    Column("auth_time", UTCDateTime(), nullable=False),
    Column("amr", JSON, nullable=False),
    Column("acr", String(16), nullable=True),
    Column("generation", Integer, nullable=False),
    Column("access_token_jti", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("family_expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    Column("revoked", Boolean, nullable=False),
    Index("ix_refresh_tokens_family", "family_id"),
    Index("ix_refresh_tokens_jti", "access_token_jti"),
)

revoked_access_tokens = Table(
    "revoked_access_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("expires_at", UTCDateTime(), nullable=False),
)

# What a person allowed a client that is not first-party; `scopes` space-separated and sorted, a string so that a
# grant can widen it only if it is still what the grant read (a JSON column cannot be compared on PostgreSQL).
consents = Table(
    "consents",
    metadata,
    Column("user_id", String(32), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("client_id", String(64), primary_key=True),
    Column("scopes", String(1024), nullable=False),
    Column("granted_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Apps of the passkey API, their API keys (SHA-256 hashes), their own users (by the app's id for them) and those
# users' passkeys: apart from Passgate's accounts, and removed with their app.
apps = Table(
    "apps",
    metadata,
    Column("app_id", String(32), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("origins", JSON, nullable=False),
    Column("rp_id", String(253), nullable=False),
    Column("policy", String(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

app_keys = Table(
    "app_keys",
    metadata,
    Column("key_hash", LargeBinary(32), primary_key=True),
    Column("key_id", String(32), nullable=False),
    Column("app_id", String(32), ForeignKey("apps.app_id", ondelete="CASCADE"), nullable=False, index=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

app_users = Table(
    "app_users",
    metadata,
    Column("app_id", String(32), ForeignKey("apps.app_id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", String(64), primary_key=True),
    Column("user_handle", LargeBinary(64), nullable=False),
    Column("username", String(64), nullable=False),
    Column("display_name", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

app_credentials = Table(
    "app_credentials",
    metadata,
    Column("credential_id", LargeBinary(1023), primary_key=True),
    Column("app_id", String(32), ForeignKey("apps.app_id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("public_key", LargeBinary, nullable=False),
    Column("algorithm", Integer, nullable=False),
    Column("sign_count", BigInteger, nullable=False),
    Column("aaguid", String(36), nullable=False),
    Column("attestation_format", String(32), nullable=False),
    Column("transports", JSON, nullable=False),
    Column("backup_eligible", Boolean, nullable=False),
    Column("backed_up", Boolean, nullable=False),
    Column("user_verified", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("nickname", String(64), nullable=True),
    Column("attested", Boolean, nullable=False),
    Index("ix_app_credentials_user", "app_id", "user_id"),
)

# Webhook subscriptions: those of the configuration file (copied here at start-up, `source` "file") and those
# added with the CLI or the admin API. `events` is the subscribed types between spaces (" passkey.created * "),
# so one LIKE per pattern finds the endpoints of a type inside the transaction that queues an event.
# `secrets` is sealed (AES-GCM under a key derived from secret_key): the signing secrets, newest first.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("url", String(2048), nullable=False),
    Column("events", String(1024), nullable=False),
    Column("secrets", LargeBinary, nullable=False),
    Column("source", String(8), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", String(200), nullable=True),
    Column("disabled_at", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

# The webhook outbox: one row per event and subscribed endpoint, written in the transaction of the change it
# reports; delivery workers lease rows as they do mail. Delivered and failed rows stay a while as the log.
webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("endpoint_id", String(32), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("message_id", String(40), nullable=False),
    Column("type", String(48), nullable=False),
    Column("body", String(4096), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("claimed_by", String(32), nullable=True),
    Column("claimed_until", UTCDateTime(), nullable=True),
    Column("last_error", String(512), nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("finished_at", UTCDateTime(), nullable=True),
    Index("ux_webhook_outbox_message", "message_id", "endpoint_id", unique=True),
    Index("ix_webhook_outbox_due", "status", "next_attempt_at"),
    Index("ix_webhook_outbox_endpoint", "endpoint_id", "id"),
)

# Keys of the admin API (/admin/v1), kept as their SHA-256 only, each with the scopes it was given (a JSON array of
# strings). A revoked key stays, so the events that name it can be read against it; one unrevoked key per name.
admin_keys = Table(
    "admin_keys",
    metadata,
    Column("key_hash", LargeBinary(32), primary_key=True),
    Column("name", String(64), nullable=False, index=True),
    Column("scopes", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

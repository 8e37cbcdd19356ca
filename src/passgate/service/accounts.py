"""Usernames and display names: what an account may be called; and whether it may sign in at all."""

from __future__ import annotations

import unicodedata

from passgate.core.errors import AccountDisabled, InvalidRequest
from passgate.core.identifiers import normalize_identifier
from passgate.store.base import User

MAX_NAME = 64


def clean_name(value: object, *, field: str, required: bool) -> str:
    """Trim, normalize (NFC) and check a username or display name.

    Raises:
        InvalidRequest: missing when required, too long, or containing control characters.
    """
    if value is None or value == "":
        if required:
            raise InvalidRequest(f"{field} is required.")
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(f"{field} must be a string.")
    text = unicodedata.normalize("NFC", value).strip()
    if required and not text:
        raise InvalidRequest(f"{field} is required.")
    if len(text) > MAX_NAME:
        raise InvalidRequest(f"{field} must be at most {MAX_NAME} characters.")
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise InvalidRequest(f"{field} must not contain control or invisible formatting characters.")
    return text


def clean_username(value: object, *, field: str = "username") -> str:
    """A required username, checked as typed and in its normalized form (which is what is stored and unique).

    NFKC can expand a character into many ("ﷺ" becomes 18), so the length is checked after normalizing too.

    Raises:
        InvalidRequest: as `clean_name`, or the normalized form is empty or too long.
    """
    name = clean_name(value, field=field, required=True)
    normalized = normalize_identifier(name)
    if not normalized:
        raise InvalidRequest(f"{field} is required.")
    if len(normalized) > MAX_NAME:
        raise InvalidRequest(f"{field} must be at most {MAX_NAME} characters once normalized.")
    return name


def refuse_disabled(user: User) -> None:
    """Every ceremony and recovery step calls this once it knows the account.

    Raises:
        AccountDisabled: an administrator disabled the account (passgate.service.admin.disable).
    """
    if user.disabled_at is not None:
        raise AccountDisabled()

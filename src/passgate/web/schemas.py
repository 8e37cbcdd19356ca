"""Request bodies of the JSON API (validated strictly; sizes bounded)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from passgate.core.passwords import MAX_PASSWORD_LENGTH


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterBegin(_Body):
    username: str | None = Field(default=None, max_length=64, description="Signed out: the new account's username.")
    displayName: str | None = Field(default=None, max_length=64, description="Signed out: the name shown to people.")
    userId: str | None = Field(
        default=None, max_length=64, description="Signed in: the current user's id (any other id is refused)."
    )
    excludeCredentials: bool = Field(default=False, description="List the account's passkeys in excludeCredentials.")
    conditional: bool = Field(
        default=False,
        description="Signed in with a password, within five minutes: options for a conditional create (mediation: "
        '"conditional"), the upgrade to a passkey the browser may make with no prompt.',
    )


class LoginBegin(_Body):
    username: str | None = Field(
        default=None, max_length=64, description="Username-first sign-in; omit the body for discoverable sign-in."
    )
    stepUp: bool = Field(
        default=False, description="Signed in: confirm it's you with one of your passkeys before a sensitive change."
    )


class PasswordAvailable(_Body):
    username: str = Field(max_length=64)


class PasswordLogin(_Body):
    username: str = Field(max_length=64)
    password: str = Field(max_length=MAX_PASSWORD_LENGTH)


class CredentialResponse(BaseModel):
    """A RegistrationResponseJSON or AuthenticationResponseJSON (`PublicKeyCredential.toJSON()`)."""

    model_config = ConfigDict(extra="allow")
    id: str = Field(max_length=1400)
    rawId: str | None = Field(default=None, max_length=1400)
    type: str = Field(max_length=16)
    response: dict[str, Any]
    authenticatorAttachment: str | None = Field(default=None, max_length=32)
    clientExtensionResults: dict[str, Any] | None = None


class AccountUpdate(_Body):
    displayName: str = Field(max_length=64)


class PasskeyUpdate(_Body):
    nickname: str | None = Field(default=None, max_length=64, description="Empty or null: back to the default name.")


class CodeSignIn(_Body):
    username: str = Field(max_length=64)
    code: str = Field(max_length=64)


class EmailAddress(_Body):
    email: str = Field(max_length=254)


class EmailToken(_Body):
    token: str = Field(max_length=128)


class Transaction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payee: str = Field(max_length=128)
    amount: str = Field(
        max_length=32,
        description='A positive decimal string with at most the currency\'s minor units: "12.50" EUR, "1200" JPY. '
        "Not a JSON number (a float loses the exact amount).",
    )
    currency: str = Field(max_length=3, description="The ISO 4217 code of a currency in use, e.g. EUR.")
    reference: str | None = Field(default=None, max_length=128)


class ConfirmBegin(_Body):
    transaction: Transaction

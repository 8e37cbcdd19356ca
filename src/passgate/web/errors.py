"""The one table from error to HTTP status, and the JSON error body."""

from __future__ import annotations

from starlette.responses import JSONResponse

from passgate.core import errors

# Looked up along the exception's class hierarchy: the most specific entry wins.
STATUS: dict[type[errors.PasskeyError], int] = {
    errors.PasskeyError: 400,
    errors.BackupEligibilityChanged: 400,  # like every refused assertion: the request is what is wrong
    errors.NotSignedIn: 401,
    errors.UnknownCredential: 401,
    errors.UserHandleMismatch: 401,
    errors.Forbidden: 403,
    errors.UnknownConsent: 404,
    errors.PasswordIncorrect: 401,
    errors.PasswordsOff: 403,
    errors.UpgradeNotAllowed: 403,
    errors.NoPassword: 404,
    errors.StepUpRequired: 403,
    errors.LinkOtherBrowser: 403,
    errors.LastPasskey: 409,
    errors.EmailTaken: 409,
    errors.RateLimited: 429,
    errors.OriginNotAllowed: 403,
    errors.UsernameTaken: 409,
    errors.AlreadySignedIn: 409,
    errors.CredentialExists: 409,
    errors.UserHandleTaken: 409,
    errors.InvalidImportRecord: 400,
    errors.BodyTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.InvalidClient: 401,  # RFC 6749 section 5.2
    errors.ClientExists: 409,
    errors.InvalidToken: 401,  # RFC 6750 section 3.1
    errors.StorageUnavailable: 503,
    errors.InvalidApiKey: 401,
    errors.NotFound: 404,
    errors.InvalidRegistrationToken: 400,
    errors.InvalidSignInToken: 401,
    errors.TokenUsed: 410,
    errors.UnknownWebhookEndpoint: 404,
    errors.UnknownWebhookDelivery: 404,
    errors.WebhookAddressRefused: 400,
    errors.AccountDisabled: 403,
    errors.InvalidAdminKey: 401,
    errors.InsufficientScope: 403,
    errors.AdminKeyExists: 409,
}


def status_for(error: errors.PasskeyError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def error_response(error: errors.PasskeyError) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if isinstance(error, errors.RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse({"error": error.code, "message": error.message}, status_code=status_for(error), headers=headers)

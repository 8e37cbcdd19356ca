"""Every failure Passgate reports, each with a stable snake_case ``code``.

    PasskeyError
    ├── MalformedResponse            malformed_response
    ├── CeremonyError  (the response does not belong to this ceremony)
    │   ├── ChallengeMismatch        challenge_mismatch
    │   ├── ChallengeNotFound        challenge_not_found   (unknown, replayed or already used)
    │   ├── ChallengeExpired         challenge_expired
    │   ├── TypeMismatch             type_mismatch         (clientData.type)
    │   ├── OriginMismatch           origin_mismatch
    │   ├── CrossOriginNotAllowed    cross_origin_not_allowed
    │   ├── RpIdMismatch             rp_id_mismatch
    │   └── TokenBindingInvalid      token_binding_invalid
    ├── AuthenticatorError  (the authenticator's statement is not acceptable)
    │   ├── UserNotPresent           user_not_present
    │   ├── UserNotVerified          user_not_verified
    │   ├── BadSignature             bad_signature
    │   ├── SignCountRegression      sign_count_regression
    │   ├── BackupEligibilityChanged backup_eligibility_changed  (the BE flag differs from registration's)
    │   ├── UnsupportedAlgorithm     unsupported_algorithm
    │   ├── UnsupportedAttestation   unsupported_attestation_format
    │   ├── AttestationInvalid       attestation_invalid
    │   ├── AttestationUntrusted     attestation_untrusted
    │   ├── AuthenticatorNotAllowed  authenticator_not_allowed   (AAGUID allow/block lists)
    │   ├── DeviceBoundRequired      device_bound_required       (synced passkeys refused)
    │   ├── AuthenticatorCompromised authenticator_compromised   (FIDO metadata: revoked or compromised)
    │   └── AuthenticatorNotCertified authenticator_not_certified
    ├── AccountError  (the request does not fit the account's state)
    │   ├── UnknownCredential        unknown_credential
    │   ├── UserHandleMismatch       user_handle_mismatch
    │   ├── UsernameTaken            username_taken
    │   ├── CredentialExists         credential_exists
    │   ├── NotSignedIn              not_signed_in
    │   ├── AlreadySignedIn          already_signed_in
    │   ├── StepUpRequired           step_up_required      (confirm with a passkey first)
    │   ├── LastPasskey              last_passkey
    │   ├── InvalidCode              invalid_code          (backup code wrong or used)
    │   ├── InvalidLink              invalid_link          (email link unknown, used or expired)
    │   ├── LinkOtherBrowser         link_other_browser
    │   ├── EmailTaken               email_taken           (verified by another account first)
    │   ├── RateLimited              rate_limited
    │   ├── Forbidden                forbidden
    │   ├── UnknownConsent           unknown_consent       (no consent remembered for this client)
    │   ├── UserHandleTaken          user_handle_taken     (an imported user handle belongs to another account)
    │   ├── PasswordIncorrect        password_incorrect    (unknown user, no password or a wrong one: one answer)
    │   ├── PasswordsOff             passwords_off         (password sign-in is not offered: passwords = "off")
    │   ├── UpgradeNotAllowed        upgrade_not_allowed   (a conditional create only right after a password sign-in)
    │   ├── NoPassword               no_password           (the account has no password to remove)
    │   └── AccountDisabled          account_disabled      (an administrator disabled the account)
    ├── RequestError  (the HTTP request itself is unacceptable)
    │   ├── InvalidRequest           invalid_request
    │   ├── UnsupportedMediaType     unsupported_media_type
    │   ├── BodyTooLarge             body_too_large
    │   ├── OriginNotAllowed         origin_not_allowed
    │   ├── InvalidImportRecord      invalid_import_record (a line of an import file; `field` names what is wrong)
    │   └── PasswordFormatUnknown    password_format_unknown  (an imported password hash no scheme verifies)
    ├── ClientError  (an OpenID Connect client is unknown, or its settings are unacceptable)
    │   ├── InvalidClient            invalid_client        (unknown client, wrong secret: one answer for each)
    │   ├── InvalidClientMetadata    invalid_client_metadata  (a redirect URI, scope or name is refused)
    │   └── ClientExists             client_exists
    ├── AuthorizationError  (an OAuth 2 / OpenID Connect request is refused; the codes are RFC 6749's and OIDC's)
    │   ├── UnsupportedResponseType  unsupported_response_type
    │   ├── InvalidScope             invalid_scope
    │   ├── LoginRequired            login_required        (prompt=none, and nobody is signed in)
    │   ├── ConsentRequired          consent_required      (prompt=none, and the person has not consented)
    │   ├── AccessDenied             access_denied         (the person denied the client on the consent page)
    │   ├── UnmetAuthenticationRequirements  unmet_authentication_requirements  (acr_values not met by a sign-in)
    │   ├── RequestNotSupported      request_not_supported      (a request object, `request`)
    │   ├── RequestUriNotSupported   request_uri_not_supported  (a request object by reference, `request_uri`)
    │   ├── RegistrationNotSupported registration_not_supported (client metadata in the request, `registration`)
    │   ├── InvalidGrant             invalid_grant         (code unknown, used, expired, or not this request's)
    │   ├── UnsupportedGrantType     unsupported_grant_type
    │   └── InvalidToken             invalid_token         (an access token refused: bad, expired or revoked)
    ├── AdminError  (a request of the admin API is refused)
    │   ├── InvalidAdminKey          invalid_admin_key     (unknown, revoked or missing admin key)
    │   ├── InsufficientScope        insufficient_scope    (the admin key lacks the scope the action needs)
    │   └── AdminKeyExists           admin_key_exists      (an admin key of this name is in use)
    ├── AppError  (a request of the app passkey API is refused)
    │   ├── InvalidApiKey            invalid_api_key       (unknown, revoked or missing app API key)
    │   ├── InvalidRegistrationToken invalid_registration_token  (unknown, used or expired)
    │   ├── InvalidSignInToken       invalid_signin_token  (not a sign-in token of this app, or expired)
    │   └── TokenUsed                token_used            (a sign-in token verified once already)
    ├── WebhookError  (a webhook endpoint or delivery is unknown, or an address is refused)
    │   ├── UnknownWebhookEndpoint   unknown_webhook_endpoint
    │   ├── UnknownWebhookDelivery   unknown_webhook_delivery
    │   └── WebhookAddressRefused    webhook_address_refused  (private, loopback, link-local... and not allowed)
    ├── NotFound                     not_found             (the admin or app API has nothing with this id)
    └── StorageUnavailable           storage_unavailable   (a database or Redis cannot be reached; retry)

Catch ``PasskeyError`` to handle them all; ``code`` is what clients should branch on,
``message`` is for people and may change.
"""

from __future__ import annotations


class PasskeyError(Exception):
    code = "passkey_error"
    default_message = "The passkey could not be verified."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class MalformedResponse(PasskeyError):
    code = "malformed_response"
    default_message = "The response is not a well-formed WebAuthn credential."


class CeremonyError(PasskeyError):
    code = "ceremony_error"


class ChallengeMismatch(CeremonyError):
    code = "challenge_mismatch"
    default_message = "The response answers a different challenge."


class ChallengeNotFound(CeremonyError):
    code = "challenge_not_found"
    default_message = "This sign-in attempt is unknown or was already used. Please start again."


class ChallengeExpired(CeremonyError):
    code = "challenge_expired"
    default_message = "This attempt took too long and has expired. Please start again."


class TypeMismatch(CeremonyError):
    code = "type_mismatch"
    default_message = "The response is for a different kind of ceremony."


class OriginMismatch(CeremonyError):
    code = "origin_mismatch"
    default_message = "The response was made for a different website."


class CrossOriginNotAllowed(CeremonyError):
    code = "cross_origin_not_allowed"
    default_message = "Passkeys cannot be used from an embedded frame of another site here."


class RpIdMismatch(CeremonyError):
    code = "rp_id_mismatch"
    default_message = "The authenticator signed for a different relying party."


class TokenBindingInvalid(CeremonyError):
    code = "token_binding_invalid"
    default_message = "The response carries an invalid token binding."


class AuthenticatorError(PasskeyError):
    code = "authenticator_error"


class UserNotPresent(AuthenticatorError):
    code = "user_not_present"
    default_message = "The authenticator did not confirm that a person was present."


class UserNotVerified(AuthenticatorError):
    code = "user_not_verified"
    default_message = "The authenticator did not verify the user (fingerprint, face or PIN)."


class BadSignature(AuthenticatorError):
    code = "bad_signature"
    default_message = "The signature does not verify."


class SignCountRegression(AuthenticatorError):
    code = "sign_count_regression"
    default_message = "The authenticator's counter went backwards: the passkey may have been cloned."


class BackupEligibilityChanged(AuthenticatorError):
    code = "backup_eligibility_changed"
    default_message = "This passkey no longer reports what it did when it was registered, so it cannot be used."


class UnsupportedAlgorithm(AuthenticatorError):
    code = "unsupported_algorithm"
    default_message = "The passkey uses an algorithm this site does not accept."


class UnsupportedAttestation(AuthenticatorError):
    code = "unsupported_attestation_format"
    default_message = "The authenticator's attestation format is not supported."


class AttestationInvalid(AuthenticatorError):
    code = "attestation_invalid"
    default_message = "The authenticator's attestation does not verify."


class AttestationUntrusted(AuthenticatorError):
    code = "attestation_untrusted"
    default_message = "The authenticator's attestation does not chain to a trusted root."


class AuthenticatorNotAllowed(AuthenticatorError):
    code = "authenticator_not_allowed"
    default_message = "This kind of authenticator is not accepted here."


class DeviceBoundRequired(AuthenticatorError):
    code = "device_bound_required"
    default_message = "Only passkeys that stay on one device (such as a security key) are accepted here."


class AuthenticatorCompromised(AuthenticatorError):
    code = "authenticator_compromised"
    default_message = "This authenticator model has been reported compromised and is no longer accepted."


class AuthenticatorNotCertified(AuthenticatorError):
    code = "authenticator_not_certified"
    default_message = "This authenticator model is not certified to the level this site requires."


class AccountError(PasskeyError):
    code = "account_error"


class UnknownCredential(AccountError):
    code = "unknown_credential"
    default_message = "This passkey is not registered here."


class UserHandleMismatch(AccountError):
    code = "user_handle_mismatch"
    default_message = "This passkey belongs to a different account."


class UsernameTaken(AccountError):
    code = "username_taken"
    default_message = "That username is already taken."


class CredentialExists(AccountError):
    code = "credential_exists"
    default_message = "This passkey is already registered."


class NotSignedIn(AccountError):
    code = "not_signed_in"
    default_message = "You are not signed in."


class AlreadySignedIn(AccountError):
    code = "already_signed_in"
    default_message = "You are signed in already: sign out before creating another account."


class StepUpRequired(AccountError):
    code = "step_up_required"
    default_message = "For your security, confirm it's you with a passkey first."


class LastPasskey(AccountError):
    code = "last_passkey"
    default_message = (
        "This is your only passkey. Add another passkey, backup codes or a verified email first, "
        "so you can still get back into your account."
    )


class InvalidCode(AccountError):
    code = "invalid_code"
    default_message = "That code is not valid. Backup codes work once each."


class InvalidLink(AccountError):
    code = "invalid_link"
    default_message = "This link is not valid: it was used already or has expired. Ask for a new one."


class LinkOtherBrowser(AccountError):
    code = "link_other_browser"
    default_message = "Open this link in the browser where you asked for it."


class EmailTaken(AccountError):
    code = "email_taken"
    default_message = (
        "This email address is already confirmed for another account. Use another address, or sign in to that account."
    )


class RateLimited(AccountError):
    code = "rate_limited"
    default_message = "Too many attempts. Please wait a little and try again."

    def __init__(self, message: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Forbidden(AccountError):
    code = "forbidden"
    default_message = "You may not do that."


class UnknownConsent(AccountError):
    code = "unknown_consent"
    default_message = "You have not connected this application."


class UserHandleTaken(AccountError):
    code = "user_handle_taken"
    default_message = "Another account has this WebAuthn user handle."


class PasswordIncorrect(AccountError):
    """The one answer to a refused password sign-in, whether the account is unknown, has no password, or the
    password is wrong: telling them apart would tell which usernames exist."""

    code = "password_incorrect"
    default_message = "That username and password do not match."


class PasswordsOff(AccountError):
    code = "passwords_off"
    default_message = "This site no longer signs in with passwords. Sign in with a passkey."


class UpgradeNotAllowed(AccountError):
    code = "upgrade_not_allowed"
    default_message = "A passkey can be made without asking only right after signing in with a password."


class NoPassword(AccountError):
    code = "no_password"
    default_message = "Your account has no password."


class AccountDisabled(AccountError):
    code = "account_disabled"
    default_message = "This account is disabled. Contact the site's support to enable it again."


class RequestError(PasskeyError):
    code = "request_error"


class InvalidRequest(RequestError):
    code = "invalid_request"
    default_message = "The request is invalid."


class UnsupportedMediaType(RequestError):
    code = "unsupported_media_type"
    default_message = "Request bodies must be JSON (Content-Type: application/json)."


class BodyTooLarge(RequestError):
    code = "body_too_large"
    default_message = "The request body is too large."


class OriginNotAllowed(RequestError):
    code = "origin_not_allowed"
    default_message = "Requests from this origin are not allowed."


class InvalidImportRecord(RequestError):
    """An account to import is refused as written: `field` names the part that is wrong ("passkeys[0].publicKey")."""

    code = "invalid_import_record"
    default_message = "The account to import is invalid."

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PasswordFormatUnknown(RequestError):
    """A password hash to import is in no format passgate.core.passwords verifies, or is malformed."""

    code = "password_format_unknown"
    default_message = "The password hash is not in a format this server verifies."


class ClientError(PasskeyError):
    code = "client_error"


class InvalidClient(ClientError):
    code = "invalid_client"
    default_message = "Client authentication failed."


class InvalidClientMetadata(ClientError):
    """A client setting is refused; `field` names it (`redirect_uris`, `scopes`, ...), as RFC 7591 reports it."""

    code = "invalid_client_metadata"
    default_message = "The client's settings are invalid."

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class ClientExists(ClientError):
    code = "client_exists"
    default_message = "A client with this client_id exists already."


class AuthorizationError(PasskeyError):
    code = "authorization_error"


class UnsupportedResponseType(AuthorizationError):
    code = "unsupported_response_type"
    default_message = "Only response_type=code is supported."


class InvalidScope(AuthorizationError):
    code = "invalid_scope"
    default_message = "The scope must include openid, and only scopes this client may ask for."


class LoginRequired(AuthorizationError):
    code = "login_required"
    default_message = "Nobody is signed in."


class ConsentRequired(AuthorizationError):
    code = "consent_required"
    default_message = "The person has not allowed this application what it asks for, and prompt=none forbids asking."


class AccessDenied(AuthorizationError):
    code = "access_denied"
    default_message = "The person did not allow this application what it asked for."


class UnmetAuthenticationRequirements(AuthorizationError):
    """OpenID Connect Core Error Code unmet_authentication_requirements (registered in IANA's OAuth Extensions
    Error registry): even a fresh sign-in did not reach an asked-for `acr`."""

    code = "unmet_authentication_requirements"
    default_message = "The sign-in did not meet the authentication requirements asked for (acr_values)."


class RequestNotSupported(AuthorizationError):
    """OpenID Connect Core 3.1.2.6: this provider does not take request objects."""

    code = "request_not_supported"
    default_message = "Request objects (request) are not supported."


class RequestUriNotSupported(AuthorizationError):
    code = "request_uri_not_supported"
    default_message = "Request objects by reference (request_uri) are not supported."


class RegistrationNotSupported(AuthorizationError):
    code = "registration_not_supported"
    default_message = "Client metadata in the request (registration) is not supported."


class InvalidGrant(AuthorizationError):
    code = "invalid_grant"
    default_message = "The authorization code is invalid, expired, used, or was issued for another request."


class UnsupportedGrantType(AuthorizationError):
    code = "unsupported_grant_type"
    default_message = "Only grant_type=authorization_code is supported."


class InvalidToken(AuthorizationError):
    code = "invalid_token"
    default_message = "The access token is invalid, expired or revoked."


class StorageUnavailable(PasskeyError):
    code = "storage_unavailable"
    default_message = "The service is briefly unavailable. Nothing was changed; please try again."


class NotFound(PasskeyError):
    """The admin API or the app API has nothing with the id asked for (user, passkey, session, client, app...)."""

    code = "not_found"
    default_message = "There is nothing with this id."


class AdminError(PasskeyError):
    code = "admin_error"


class InvalidAdminKey(AdminError):
    code = "invalid_admin_key"
    default_message = "The admin key is unknown or revoked. The admin API takes admin keys only."


class InsufficientScope(AdminError):
    code = "insufficient_scope"
    default_message = "The admin key does not have the scope this action needs."


class AdminKeyExists(AdminError):
    code = "admin_key_exists"
    default_message = "An admin key with this name is in use; revoke it first or choose another name."


class AppError(PasskeyError):
    code = "app_error"


class InvalidApiKey(AppError):
    code = "invalid_api_key"
    default_message = "The API key is unknown or revoked."


class InvalidRegistrationToken(AppError):
    code = "invalid_registration_token"
    default_message = "The registration token is unknown, used or expired. Ask the app for a new one."


class InvalidSignInToken(AppError):
    code = "invalid_signin_token"
    default_message = "The sign-in token is not one of this app's, or it has expired."


class TokenUsed(AppError):
    code = "token_used"
    default_message = "This sign-in token was verified already."


class WebhookError(PasskeyError):
    code = "webhook_error"


class UnknownWebhookEndpoint(WebhookError):
    code = "unknown_webhook_endpoint"
    default_message = "No webhook endpoint has this id."


class UnknownWebhookDelivery(WebhookError):
    code = "unknown_webhook_delivery"
    default_message = "No webhook delivery has this id."


class WebhookAddressRefused(WebhookError):
    code = "webhook_address_refused"
    default_message = (
        "The webhook URL leads to a private, loopback, link-local or otherwise non-public address, which"
        " webhooks_allow_private = false refuses."
    )

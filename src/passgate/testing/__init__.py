"""Tools for testing a Passgate (or any WebAuthn) integration without a browser or a security key."""

from passgate.testing.authenticator import (
    ALG_EDDSA,
    ALG_ES256,
    ALG_RS256,
    CredentialPrivateKey,
    SoftwareAuthenticator,
    SoftwareAuthenticatorError,
    SoftwareCredential,
)

__all__ = [
    "ALG_EDDSA",
    "ALG_ES256",
    "ALG_RS256",
    "CredentialPrivateKey",
    "SoftwareAuthenticator",
    "SoftwareAuthenticatorError",
    "SoftwareCredential",
]

"""Passgate: a self-hostable passkey sign-in server.

The public Python API is the pure WebAuthn core: verify a browser's registration or authentication
response against what the relying party expects, under a `Policy`.
"""

from passgate.core.authentication import VerifiedSignIn, verify_authentication
from passgate.core.errors import *  # noqa: F403 - the error tree is part of the public API
from passgate.core.errors import PasskeyError
from passgate.core.options import CredentialDescriptor, creation_options, request_options
from passgate.core.policy import Policy
from passgate.core.registration import RegisteredCredential, verify_registration

__version__ = "0.1.0"

__all__ = [
    "CredentialDescriptor",
    "PasskeyError",
    "Policy",
    "RegisteredCredential",
    "VerifiedSignIn",
    "creation_options",
    "request_options",
    "verify_authentication",
    "verify_registration",
]

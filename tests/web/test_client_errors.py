"""OpenID Connect client errors: their HTTP statuses, and their place in the error tree."""

from __future__ import annotations

import json

import pytest

from passgate.core import errors
from passgate.core.errors import ClientExists, InvalidClient, InvalidClientMetadata, PasskeyError
from passgate.web.errors import error_response, status_for


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (InvalidClient(), 401, "invalid_client"),  # RFC 6749 section 5.2
        (InvalidClientMetadata("redirect_uris", "must use https"), 400, "invalid_client_metadata"),
        (ClientExists(), 409, "client_exists"),
    ],
)
def test_client_errors_have_a_status_and_a_code(error: PasskeyError, status: int, code: str) -> None:
    response = error_response(error)
    assert status_for(error) == status == response.status_code
    assert json.loads(bytes(response.body))["error"] == code


def test_the_tree_in_the_docstring_names_them() -> None:
    tree = errors.__doc__ or ""
    assert "├── ClientError" in tree
    for error in (InvalidClient, InvalidClientMetadata, ClientExists):
        assert issubclass(error, errors.ClientError)
        [line] = [line for line in tree.splitlines() if f"── {error.__name__} " in line]
        assert line.split("── ")[1].split()[:2] == [error.__name__, error.code]

"""The reference server: discoverable sign-in with SimpleWebAuthn (`@simplewebauthn/server`) on Node, users and
passkeys in SQLite (bench/simplewebauthn/server.mjs). It answers Passgate's two sign-in requests, so the same
virtual browsers and ceremonies drive both; it is seeded with the passkeys the generator's authenticators hold.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.services import PassgateProcess as Process
from tests.services import free_port

from bench.servers import Nodes
from bench.settings import ORIGIN, RP_ID
from passgate.core.encoding import b64url_encode
from passgate.testing import SoftwareAuthenticator

DIRECTORY = Path(__file__).with_name("simplewebauthn")
SERVER = DIRECTORY / "server.mjs"


class NotInstalled(RuntimeError):
    """Node or the reference server's packages are missing."""


def seed_document(authenticators: Sequence[SoftwareAuthenticator]) -> dict[str, list[dict[str, Any]]]:
    """The users and passkeys the authenticators hold, as server.mjs reads them (base64url bytes, COSE keys)."""
    users: dict[bytes, dict[str, Any]] = {}
    for authenticator in authenticators:
        for credential in authenticator.credentials:
            handle = b64url_encode(credential.user_handle)
            user = users.setdefault(
                credential.user_handle,
                {"id": handle, "username": credential.user_name, "userHandle": handle, "credentials": []},
            )
            key = b64url_encode(credential.public_key_cose)
            user["credentials"].append({"id": b64url_encode(credential.credential_id), "publicKey": key, "counter": 0})
    return {"users": list(users.values())}


def command(port: int, database: Path, seed: Path) -> list[str]:
    """The command that starts server.mjs on 127.0.0.1:port for Passgate's rp id and origin.

    Raises:
        NotInstalled: no `node` on PATH, or bench/simplewebauthn has no node_modules (`make bench` installs it).
    """
    node = shutil.which("node")
    if node is None:
        raise NotInstalled("node is not installed")
    if not (DIRECTORY / "node_modules" / "@simplewebauthn" / "server").is_dir():
        raise NotInstalled(f"run `npm ci` in {DIRECTORY} (make bench does)")
    arguments = ["--port", str(port), "--database", str(database), "--seed", str(seed)]
    return [node, str(SERVER), *arguments, "--origin", ORIGIN, "--rp-id", RP_ID]


def start(
    stack: contextlib.ExitStack, workdir: Path, name: str, authenticators: Sequence[SoftwareAuthenticator]
) -> Nodes:
    """Start the reference server on a new SQLite file seeded with the authenticators' passkeys; stopped by `stack`.

    Raises:
        NotInstalled: see `command`.
        tests.services.ServerFailed: it exited or did not listen.
    """
    seed = workdir / f"{name}-seed.json"
    seed.write_text(json.dumps(seed_document(authenticators)))
    port = free_port()
    process = Process(
        port=port,
        command=command(port, workdir / f"{name}.db", seed),
        log=workdir / f"{name}.log",
        new_session=True,
    )
    group = Nodes(nodes=[process])
    stack.callback(group.stop)
    process.start()
    return group

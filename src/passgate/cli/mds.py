"""`passgate mds refresh`: read or fetch the FIDO metadata BLOB, verify it, and keep it if it is not older.

The verified BLOB is stored as the JWS itself, so whoever loads it verifies it again (``load_stored``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from cryptography import x509

from passgate.core.mds import GLOBALSIGN_ROOT_R3, MetadataBlob, MetadataError, accept_update, verify_blob

MDS_URL = "https://mds3.fidoalliance.org/"
MAX_BLOB_BYTES = 64 * 1024 * 1024  # the BLOB was ~1 MB in 2021 and grows slowly
MAX_CRL_BYTES = 16 * 1024 * 1024


def refresh(
    file: str | None,
    url: str | None,
    store_path: Path,
    now: datetime,
    *,
    crl_files: Sequence[str | Path] = (),
    fetch_crls: bool | None = None,
    trust_anchor_pem: str = GLOBALSIGN_ROOT_R3,
    timeout: float = 30.0,
) -> int:
    """Read the BLOB from `file` or fetch it from `url` (https), verify it at `now`, and store it.

    `store_path` is replaced atomically, and only by a BLOB that verifies and is newer than the one
    stored there. `crl_files` (DER or PEM) are checked against the BLOB's certificate chain; with
    `fetch_crls` (the default when fetching from a URL) the CRLs named by the chain's certificates
    (CRL distribution points) are fetched too, and a CRL that cannot be fetched refuses the BLOB.
    Prints a one-line summary, or the reason on stderr.

    Returns 0 when the stored BLOB is now current (replaced, or already this number), 1 when the BLOB
    could not be obtained or was refused, 2 for bad arguments.
    """
    if (file is None) == (url is None):
        return _fail("give either a file or a URL for the metadata BLOB", status=2)
    if url is not None and not url.startswith("https://"):
        return _fail(f"the metadata BLOB URL must be https: {url}", status=2)
    try:
        crls = [Path(path).read_bytes() for path in crl_files]
        jws = Path(file).read_text(encoding="ascii") if file is not None else _fetch(url or "", timeout)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return _fail(f"could not read the metadata BLOB: {exc}")
    if fetch_crls if fetch_crls is not None else url is not None:
        try:
            crls += [_fetch_crl(address, timeout) for address in crl_urls(jws)]
        except (OSError, ValueError) as exc:
            return _fail(f"could not fetch a CRL of the metadata BLOB's certificates: {exc}")
    try:
        candidate = verify_blob(jws, trust_anchor_pem=trust_anchor_pem, crls_der_or_pem=crls, now=now)
        current = _stored_or_none(store_path, now=now, trust_anchor_pem=trust_anchor_pem)
        kept = accept_update(current, candidate)
    except MetadataError as exc:
        return _fail(f"metadata BLOB refused ({exc.code}): {exc.message}")
    if kept is current:
        print(f"{_summary(candidate)}; already stored in {store_path}")
        return 0
    try:
        _write_atomically(store_path, candidate.jws)
    except OSError as exc:
        return _fail(f"could not store the metadata BLOB in {store_path}: {exc}")
    print(f"{_summary(candidate)}; stored in {store_path}")
    return 0


def load_stored(store_path: Path, *, now: datetime, trust_anchor_pem: str = GLOBALSIGN_ROOT_R3) -> MetadataBlob | None:
    """The BLOB stored by `refresh`, verified again at `now`; None if nothing is stored yet.

    Raises:
        MetadataError: the stored BLOB no longer verifies (for example its signing certificate expired).
        OSError: the file cannot be read.
    """
    try:
        jws = store_path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    return verify_blob(jws, trust_anchor_pem=trust_anchor_pem, now=now)


def _stored_or_none(store_path: Path, *, now: datetime, trust_anchor_pem: str) -> MetadataBlob | None:
    # A stored BLOB that no longer verifies (its certificate expired) cannot be rolled back to either:
    # every BLOB signed before it carries a certificate that expired no later.
    try:
        return load_stored(store_path, now=now, trust_anchor_pem=trust_anchor_pem)
    except (MetadataError, OSError, UnicodeDecodeError) as exc:
        print(f"passgate: warning: ignoring the stored metadata BLOB {store_path}: {exc}", file=sys.stderr)
        return None


def _fetch(url: str, timeout: float) -> str:
    if not url.startswith("https://"):
        raise ValueError(f"not an https URL: {url}")
    request = urllib.request.Request(url, headers={"User-Agent": "passgate-mds-refresh"})  # noqa: S310 (https)
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (https only)
        body: bytes = response.read(MAX_BLOB_BYTES + 1)
    if len(body) > MAX_BLOB_BYTES:
        raise ValueError(f"the response is larger than {MAX_BLOB_BYTES} bytes")
    return body.decode("ascii")


def crl_urls(jws: str) -> list[str]:
    """The CRL distribution points (http or https) of the certificates in the JWS header's x5c."""
    try:
        header = json.loads(base64.urlsafe_b64decode(jws.split(".")[0] + "=" * (-len(jws.split(".")[0]) % 4)))
        chain = [x509.load_der_x509_certificate(base64.b64decode(der)) for der in header.get("x5c", [])]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"unreadable JWS header: {exc}") from exc
    addresses: list[str] = []
    for certificate in chain:
        try:
            points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        except x509.ExtensionNotFound:
            continue
        for point in points:
            for general_name in point.full_name or []:
                if isinstance(general_name, x509.UniformResourceIdentifier) and general_name.value.startswith(
                    ("http://", "https://")
                ):
                    addresses.append(general_name.value)
    return list(dict.fromkeys(addresses))


def _fetch_crl(address: str, timeout: float) -> bytes:
    # CRLs are signed, so plain http (as distribution points usually are) is fine: the signature is checked.
    request = urllib.request.Request(address, headers={"User-Agent": "passgate-mds-refresh"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) only, checked above)
        body: bytes = response.read(MAX_CRL_BYTES + 1)
    if len(body) > MAX_CRL_BYTES:
        raise ValueError(f"the CRL at {address} is larger than {MAX_CRL_BYTES} bytes")
    return body


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)  # public data, read by the server's user
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _summary(blob: MetadataBlob) -> str:
    return (
        f"FIDO metadata BLOB no. {blob.number}: {len(blob.entries)} authenticators by AAGUID, "
        f"{len(blob.by_key_identifier)} U2F key identifiers, next update {blob.next_update.isoformat()}"
    )


def _fail(message: str, *, status: int = 1) -> int:
    print(f"passgate: {message}", file=sys.stderr)
    return status

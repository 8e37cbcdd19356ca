"""Pages that ask the signed-in person to confirm something (sign out, allow an application) post back a value
bound to their session: an HMAC of the session's token hash under the site's secret key, which no other site,
and no other session, can make."""

from __future__ import annotations

import hashlib
import hmac

from passgate.core.encoding import b64url_encode
from passgate.service.context import Context
from passgate.service.sessions import SignedIn


def session_bound(ctx: Context, current: SignedIn, label: bytes) -> str:
    """The value bound to `current`'s session for the confirmation `label` names."""
    mac = hmac.new(ctx.rp.secret_key, label + current.session.token_hash, hashlib.sha256)
    return b64url_encode(mac.digest())

"""base64url without padding, as WebAuthn's JSON forms use it; JSON text with bounded nesting."""

from __future__ import annotations

import base64
import binascii
import json
import operator
import re
from itertools import accumulate, repeat
from typing import Any

from passgate.core.errors import MalformedResponse, PasskeyError

# Far above any WebAuthn structure (a credential with extension results nests 4 or 5 levels), and far below the
# depth where Python's recursive JSON and CBOR decoders run out of stack.
MAX_NESTING = 32

# A JSON string (escapes included), or a run of anything that is neither a string nor a bracket.
_NOT_BRACKETS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[^"\[\]{}]+', re.DOTALL)
_BRACKET_STEPS = str.maketrans({"[": "\x02", "{": "\x02", "]": "\x00", "}": "\x00", '"': ""})


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: object, *, field: str = "value") -> bytes:
    """Decode base64url (padding optional; standard base64 alphabet tolerated).

    Raises:
        MalformedResponse: `value` is not a string of base64url.
    """
    if not isinstance(value, str):
        raise MalformedResponse(f"{field} must be a base64url string")
    text = value.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedResponse(f"{field} is not valid base64url") from exc


def nesting_depth(text: str) -> int:
    """How deeply the arrays and objects of JSON text nest (0 for a scalar), measured without recursion.

    Brackets inside strings do not count. On text that is not JSON the answer is some number, never an error.
    """
    brackets = _NOT_BRACKETS.sub("", text).translate(_BRACKET_STEPS)
    # Each opening bracket steps +1 and each closing one -1; the deepest point is the largest running sum.
    steps: map[int] = map(operator.sub, brackets.encode("ascii"), repeat(1))
    return max(accumulate(steps, initial=0))


def load_json(
    raw: bytes | str, *, what: str, error: type[PasskeyError] = MalformedResponse, max_depth: int = MAX_NESTING
) -> Any:
    """Parse UTF-8 JSON text, refusing nesting deeper than `max_depth` before the recursive parser sees it.

    Raises:
        `error` (MalformedResponse unless told otherwise): not UTF-8, not JSON, or nested too deeply.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not UTF-8 JSON.") from exc
    # Counting every bracket, even in strings, bounds the depth from above: most texts need no closer look.
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        raise error(f"{what} nests more than {max_depth} levels deep.")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise error(f"{what} is not valid JSON.") from exc

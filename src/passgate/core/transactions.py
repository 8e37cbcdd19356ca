"""The summary of a payment a user confirms with a passkey: validated, normalised, and its canonical bytes.

Currencies and their minor units come from the Unicode CLDR data that Babel ships: a currency is accepted when it
is legal tender somewhere on the day of the confirmation, so withdrawn codes (DEM), codes that are no currency
(XXX, XTS) and made-up ones (ZZZ) are refused.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from datetime import date
from functools import lru_cache

from babel.core import get_global
from babel.numbers import get_currency_precision, get_territory_currencies

from passgate.core.errors import InvalidRequest

REQUIRED = ("payee", "amount", "currency")
MAX_TEXT = {"payee": 128, "reference": 128}
MAX_AMOUNT = 32

# Digits only, as ASCII: no sign, exponent, spaces, separators or NaN. JSON numbers are refused by type: a float has
# already lost the exact amount, and an integer leaves open whether it counts units or cents.
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?", re.ASCII)
_CURRENCY = re.compile(r"[A-Z]{3}", re.ASCII)
# Control and format characters (bidirectional overrides among them) could make the text a user confirms read
# differently from what is stored; unassigned, private-use and surrogate code points have no agreed look. The
# zero-width (non-)joiners stay allowed: Persian and Indic names and emoji sequences need them.
_UNSHOWABLE = {"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"}
_JOINERS = {"\u200c", "\u200d"}


@lru_cache(maxsize=4)
def currencies_in_use(today: date) -> frozenset[str]:
    """The ISO 4217 codes that are legal tender in some territory on `today`, per CLDR."""
    territories: Mapping[str, object] = get_global("territory_currencies")
    return frozenset(code for territory in territories for code in get_territory_currencies(territory, today))


def clean_transaction(value: object, *, today: date) -> dict[str, str]:
    """The transaction {payee, amount, currency[, reference]}, normalised so that equal inputs read the same.

    The amount is a positive decimal string with at most the currency's minor units, written back with exactly
    that many ("12.5" EUR becomes "12.50"); payee and reference are NFC-normalised and trimmed.

    Raises:
        InvalidRequest: naming the first field that is missing, unknown or does not fit.
    """
    if isinstance(value, dict):
        value = {name: text for name, text in value.items() if text is not None}
    if not isinstance(value, dict) or not set(REQUIRED) <= set(value) or set(value) - {*REQUIRED, "reference"}:
        raise InvalidRequest("transaction must have payee, amount and currency (and optionally reference).")
    currency = _currency(value["currency"], today)
    cleaned = {
        "payee": _text("payee", value["payee"]),
        "amount": _amount(value["amount"], currency),
        "currency": currency,
    }
    if "reference" in value:
        cleaned["reference"] = _text("reference", value["reference"])
    return cleaned


def canonical(transaction: dict[str, str]) -> bytes:
    """The bytes the confirmation challenge commits to."""
    return json.dumps(transaction, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _currency(value: object, today: date) -> str:
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value) or value not in currencies_in_use(today):
        raise InvalidRequest('transaction.currency must be the ISO 4217 code of a currency in use, such as "EUR".')
    return value


def _amount(value: object, currency: str) -> str:
    digits = get_currency_precision(currency)
    if not isinstance(value, str) or len(value) > MAX_AMOUNT:
        raise InvalidRequest(f'transaction.amount must be a decimal string such as "12.50", at most {MAX_AMOUNT} long.')
    match = _AMOUNT.fullmatch(value)
    if match is None or not value.strip("0."):
        raise InvalidRequest('transaction.amount must be a positive decimal number written like "12.50".')
    units, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > digits:
        raise InvalidRequest(f"transaction.amount may have at most {digits} decimal places in {currency}.")
    # Written back as text, not through Decimal: no context precision to overflow, no exponent notation.
    units = units.lstrip("0") or "0"
    return f"{units}.{fraction.ljust(digits, '0')}" if digits else units


def _text(name: str, value: object) -> str:
    text = unicodedata.normalize("NFC", value).strip() if isinstance(value, str) else ""
    if not 0 < len(text) <= MAX_TEXT[name]:
        raise InvalidRequest(f"transaction.{name} must be text of 1 to {MAX_TEXT[name]} characters.")
    if any(unicodedata.category(c) in _UNSHOWABLE and c not in _JOINERS for c in text):
        raise InvalidRequest(f"transaction.{name} contains control or invisible characters.")
    return text

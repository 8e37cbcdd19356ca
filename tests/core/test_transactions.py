"""The payment summary a passkey confirms: amounts and currencies checked against CLDR data, then normalised."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from passgate.core.errors import InvalidRequest
from passgate.core.transactions import canonical, clean_transaction

TODAY = date(2026, 6, 1)


def clean(today: date = TODAY, **fields: Any) -> dict[str, str]:
    return clean_transaction({"payee": "Bakery Ltd", "amount": "12.50", "currency": "EUR", **fields}, today=today)


@pytest.mark.parametrize(
    ("amount", "currency", "normalised"),
    [
        ("12.50", "EUR", "12.50"),
        ("12.5", "EUR", "12.50"),
        ("0012", "EUR", "12.00"),
        ("0.01", "USD", "0.01"),
        ("1200", "JPY", "1200"),
        ("0.125", "BHD", "0.125"),
        ("9" * 32, "EUR", "9" * 32 + ".00"),
    ],
)
def test_amounts_are_written_with_the_currencys_minor_units(amount: str, currency: str, normalised: str) -> None:
    assert clean(amount=amount, currency=currency)["amount"] == normalised


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("-1e9 or not a number", "EUR"),
        ("-12.50", "EUR"),
        ("+12.50", "EUR"),
        ("1e3", "EUR"),
        ("12.505", "EUR"),
        ("12.500", "EUR"),
        ("1.0", "JPY"),
        ("0", "EUR"),
        ("0.00", "EUR"),
        (".5", "EUR"),
        ("5.", "EUR"),
        ("1,000.00", "EUR"),
        (" 12.50", "EUR"),
        ("NaN", "EUR"),
        ("Infinity", "EUR"),
        ("١٢", "EUR"),  # Arabic-Indic digits
        ("1" * 33, "EUR"),
        ("", "EUR"),
        (12, "EUR"),  # a JSON number, even an integer: units or cents?
        (12.5, "EUR"),
    ],
)
def test_amounts_that_are_not_positive_decimals_of_the_currency(amount: object, currency: str) -> None:
    with pytest.raises(InvalidRequest, match=r"transaction\.amount"):
        clean(amount=amount, currency=currency)


@pytest.mark.parametrize("currency", ["ZZ", "ZZZ", "eur", "EURO", "XXX", "XTS", "DEM", "", 978])
def test_currencies_that_are_not_in_use(currency: object) -> None:
    with pytest.raises(InvalidRequest, match=r"transaction\.currency"):
        clean(currency=currency)


def test_a_currency_is_in_use_on_the_day_of_the_confirmation() -> None:
    assert clean(date(1990, 1, 1), currency="DEM", amount="5")["amount"] == "5.00"
    with pytest.raises(InvalidRequest, match=r"transaction\.currency"):
        clean(date(2003, 1, 1), currency="DEM")


@pytest.mark.parametrize("name", ["payee", "reference"])
@pytest.mark.parametrize(
    "text",
    ["", "   ", "x" * 129, "Bakery\nLtd", "Bakery\x00", "\u202eevil", "Bakery\u2066Ltd", "zero\u200bwidth", "\ue000"],
)
def test_payees_and_references_must_be_plain_bounded_text(name: str, text: str) -> None:
    with pytest.raises(InvalidRequest, match=rf"transaction\.{name}"):
        clean(**{name: text})


def test_equal_summaries_have_equal_canonical_bytes() -> None:
    written = [
        clean(payee="Bäckerei", amount="12.5", reference=" order 42 "),
        clean(payee="Ba\u0308ckerei", amount="012.50", reference="order 42"),
        clean(payee=" Bäckerei", amount="12.50", reference="order 42"),
    ]
    assert len({canonical(summary) for summary in written}) == 1
    assert written[0] == {"payee": "Bäckerei", "amount": "12.50", "currency": "EUR", "reference": "order 42"}
    assert canonical(clean(amount="12.51")) != canonical(clean(amount="12.50"))


def test_joiners_stay_allowed() -> None:
    persian = "کتاب\u200cفروشی"
    assert clean(payee=persian)["payee"] == persian


@pytest.mark.parametrize(
    "value",
    [
        None,
        [],
        "EUR 12.50",
        {"payee": "x", "amount": "1"},
        {"payee": "x", "amount": "1", "currency": "EUR", "tip": "1"},
    ],
)
def test_a_transaction_needs_its_fields_and_no_others(value: object) -> None:
    with pytest.raises(InvalidRequest, match="transaction must have"):
        clean_transaction(value, today=TODAY)

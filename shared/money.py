"""Money: amounts as ``Decimal`` (never a float: 0.1 + 0.2 is not a charge anyone agreed)
and currencies as ISO 4217 codes. On the wire an amount is decimal text with its currency,
``{"value": "49.90", "unit": "EUR"}`` (TMF's ``Money``); the domains keep the text.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

#: Active ISO 4217 currency codes (funds, metals and test codes left out on purpose).
ISO_CURRENCIES = frozenset((
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD",
    "CAD", "CDF", "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUC", "CUP",
    "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP",
    "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS",
    "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW",
    "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD",
    "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN",
    "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR",
    "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SLL",
    "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY",
    "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES",
    "VND", "VUV", "WST", "XAF", "XCD", "XCG", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG", "ZWL",
))

def normalise_currency(value: str) -> str:
    """An ISO 4217 code in upper case; ``ValueError`` if not a known code."""
    code = value.strip().upper() if isinstance(value, str) else ""
    if code not in ISO_CURRENCIES:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code such as EUR or USD")
    return code


def normalise_money(value: Any) -> str:
    """A non-negative decimal amount as a string (``Decimal`` text, never a float)."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an amount")
    try:
        amount = Decimal(str(value).strip()) if isinstance(value, int | float | str) else value
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal amount such as 49.90") from None
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise ValueError(f"{value!r} is not a decimal amount such as 49.90")
    if amount < 0:
        raise ValueError(f"amount {value} is negative; it must be 0 or more")
    return str(amount)


def as_decimal(amount: str | int | Decimal) -> Decimal:
    """A stored amount (decimal text) for arithmetic."""
    return amount if isinstance(amount, Decimal) else Decimal(str(amount))

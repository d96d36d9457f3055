"""Amounts as decimal strings with an ISO 4217 currency, never floats (docs/protocol.md
"Capabilities and envelopes")."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

# ISO 4217 active currency codes and their minor units (list one, 2026).
_ISO_4217 = """
AED2 AFN2 ALL2 AMD2 AOA2 ARS2 AUD2 AWG2 AZN2 BAM2 BBD2 BDT2 BHD3 BIF0 BMD2 BND2 BOB2 BRL2
BSD2 BTN2 BWP2 BYN2 BZD2 CAD2 CDF2 CHF2 CLF4 CLP0 CNY2 COP2 CRC2 CUP2 CVE2 CZK2 DJF0 DKK2
DOP2 DZD2 EGP2 ERN2 ETB2 EUR2 FJD2 FKP2 GBP2 GEL2 GHS2 GIP2 GMD2 GNF0 GTQ2 GYD2 HKD2 HNL2
HTG2 HUF2 IDR2 ILS2 INR2 IQD3 IRR2 ISK0 JMD2 JOD3 JPY0 KES2 KGS2 KHR2 KMF0 KPW2 KRW0 KWD3
KYD2 KZT2 LAK2 LBP2 LKR2 LRD2 LSL2 LYD3 MAD2 MDL2 MGA2 MKD2 MMK2 MNT2 MOP2 MRU2 MUR2 MVR2
MWK2 MXN2 MYR2 MZN2 NAD2 NGN2 NIO2 NOK2 NPR2 NZD2 OMR3 PAB2 PEN2 PGK2 PHP2 PKR2 PLN2 PYG0
QAR2 RON2 RSD2 RUB2 RWF0 SAR2 SBD2 SCR2 SDG2 SEK2 SGD2 SHP2 SLE2 SOS2 SRD2 SSP2 STN2 SVC2
SYP2 SZL2 THB2 TJS2 TMT2 TND3 TOP2 TRY2 TTD2 TWD2 TZS2 UAH2 UGX0 USD2 UYU2 UYW4 UZS2 VED2
VES2 VND0 VUV0 WST2 XAF0 XCD2 XCG2 XOF0 XPF0 YER2 ZAR2 ZMW2 ZWG2
"""
MINOR_UNITS: Mapping[str, int] = {code[:3]: int(code[3]) for code in _ISO_4217.split()}
_AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,14})(?:\.([0-9]{1,4}))?$")


@dataclass(frozen=True, slots=True)
class Money:
    """A non-negative amount in one currency, exact to the currency's minor unit."""

    value: Decimal
    currency: str

    @property
    def minor_units(self) -> int:
        """The amount in the currency's smallest unit (cents for EUR), for atomic counters."""
        return int(self.value.scaleb(MINOR_UNITS[self.currency]))

    def __str__(self) -> str:
        return f"{self.value:.{MINOR_UNITS[self.currency]}f} {self.currency}"

    def to_dict(self) -> dict[str, str]:
        return {"value": f"{self.value:.{MINOR_UNITS[self.currency]}f}", "currency": self.currency}


def parse_amount(value: object, currency: object, *, positive: bool = True) -> Money:
    """Parse a decimal-string amount; raises ``ValueError`` with a human-readable reason."""
    if not isinstance(currency, str) or currency not in MINOR_UNITS:
        raise ValueError("currency must be an ISO 4217 code such as EUR")
    if not isinstance(value, str):
        raise ValueError('amounts are decimal strings such as "12.50", never numbers')
    match = _AMOUNT.match(value)
    if not match:
        raise ValueError(f"invalid amount {value[:20]!r}")
    if match.group(2) and len(match.group(2)) > MINOR_UNITS[currency]:
        raise ValueError(f"{currency} has {MINOR_UNITS[currency]} decimal places")
    amount = Decimal(value)
    if positive and amount <= 0:
        raise ValueError("the amount must be greater than zero")
    return Money(amount, currency)


def parse_money(
    obj: object, *, positive: bool = True, extra: frozenset[str] = frozenset()
) -> Money:
    """Parse ``{"value": "12.50", "currency": "EUR"}`` (plus allowed ``extra`` members)."""
    if not isinstance(obj, Mapping):
        raise ValueError('an amount is an object {"value": "12.50", "currency": "EUR"}')
    unknown = set(obj) - {"value", "currency"} - extra
    if unknown:
        raise ValueError(f"unknown member {sorted(unknown)[0]!r} in an amount")
    return parse_amount(obj.get("value"), obj.get("currency"), positive=positive)

"""Exact money arithmetic. Money is `Decimal` in code and a decimal string on the wire."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# Costs per attempt are tiny (a token of a small model costs ~1e-8 USD), so keep 12 places
# in stored values; reports round for display only.
STORAGE_QUANTUM = Decimal("0.000000000001")
MILLION = Decimal(1_000_000)
# The largest amount a caller may give (a budget, a cost cap): a trillion USD is past any real
# bill, so anything larger is a mistake to refuse, not a number to store.
MAX_AMOUNT = Decimal(10) ** 12


def usd(value: str | int | Decimal) -> Decimal:
    """Parse a USD amount; floats are refused because they are not exact."""
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    return amount


def amount(value: str) -> Decimal:
    """A positive amount given by a caller; ValueError says what is wrong with it (the caller
    names the field): not a decimal, not positive, too large, or finer than the 1e-12 USD kept."""
    try:
        parsed = usd(value)
    except ValueError:
        raise ValueError("is not a finite decimal amount") from None
    if parsed <= 0:
        raise ValueError("must be positive")
    if parsed > MAX_AMOUNT:
        raise ValueError(f"is over the largest amount accepted, {MAX_AMOUNT:,.0f} USD")
    if parsed != quantize(parsed):
        raise ValueError("has more decimal places than the 12 kept (1e-12 USD is the smallest unit)")
    return parsed


def quantize(amount: Decimal) -> Decimal:
    return amount.quantize(STORAGE_QUANTUM)


def to_wire(amount: Decimal) -> str:
    """Decimal -> fixed-point string (no exponent), as carried in protos."""
    return format(quantize(amount), "f")


def token_cost(tokens: int, usd_per_million: Decimal) -> Decimal:
    return quantize(Decimal(tokens) * usd_per_million / MILLION)

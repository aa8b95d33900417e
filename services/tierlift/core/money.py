"""Exact money arithmetic. Money is `Decimal` in code and a decimal string on the wire."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# Costs per attempt are tiny (a token of a small model costs ~1e-8 USD), so keep 12 places
# in stored values; reports round for display only.
STORAGE_QUANTUM = Decimal("0.000000000001")
MILLION = Decimal(1_000_000)


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


def quantize(amount: Decimal) -> Decimal:
    return amount.quantize(STORAGE_QUANTUM)


def to_wire(amount: Decimal) -> str:
    """Decimal -> fixed-point string (no exponent), as carried in protos."""
    return format(quantize(amount), "f")


def token_cost(tokens: int, usd_per_million: Decimal) -> Decimal:
    return quantize(Decimal(tokens) * usd_per_million / MILLION)

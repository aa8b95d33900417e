"""Spend by token kind: a ledger row's (an attempt's, or a spend line's sums) tokens and cost split
into the kinds priced apart and the text that is left (ledger.proto's KindSpend)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tierlift.ledger._schema import KIND_COST_COLUMNS, KIND_TOKEN_COLUMNS, REPORTED_KINDS

# the attempt columns that make a common.proto Usage
USAGE_COLUMNS = ("input_tokens", "output_tokens", *KIND_TOKEN_COLUMNS)
# each reported kind's token column ("cache_write": both lifetimes)
_TOKENS = {
    "cache_read": "cache_read_input_tokens",
    "cache_write": "cache_write_input_tokens",
    "image_input": "image_input_tokens",
    "audio_input": "audio_input_tokens",
    "reasoning": "reasoning_output_tokens",
}


@dataclass(frozen=True)
class KindTotal:
    kind: str
    tokens: int
    cost_usd: Decimal


def kind_spend(row: Mapping[str, Any]) -> list[KindTotal]:
    """The row's kinds in REPORTED_KINDS order, then "text": every other input and output token
    and the rest of cost_usd. The kinds' costs sum to cost_usd exactly (rows stored before kinds
    were kept are all text)."""
    kinds = [KindTotal(kind, int(row[_TOKENS[kind]]), row[f"{kind}_cost_usd"]) for kind in REPORTED_KINDS]
    text_tokens = int(row["input_tokens"]) + int(row["output_tokens"]) - sum(k.tokens for k in kinds)
    text_cost = row["cost_usd"] - sum((k.cost_usd for k in kinds), Decimal(0))
    return [*kinds, KindTotal("text", text_tokens, text_cost)]


def summed_kinds(rows: Iterable[Sequence[KindTotal]]) -> list[KindTotal]:
    """Kind by kind, the sum of several rows' kinds (each in kind_spend's order)."""
    tokens: dict[str, int] = {}
    costs: dict[str, Decimal] = {}
    for kinds in rows:
        for k in kinds:
            tokens[k.kind] = tokens.get(k.kind, 0) + k.tokens
            costs[k.kind] = costs.get(k.kind, Decimal(0)) + k.cost_usd
    return [KindTotal(kind, tokens.get(kind, 0), costs.get(kind, Decimal(0))) for kind in (*REPORTED_KINDS, "text")]


def kinds_of_sum(rows: Sequence[Mapping[str, Any]]) -> list[KindTotal]:
    """What `summed_kinds` gives for the rows' `kind_spend`s, from one `kind_spend` of their sums
    (each kind, and the text left, is a sum or a difference of sums): for a reader that wants the
    window's kinds, not each of ~1,200 lines'."""
    if not rows:
        return summed_kinds([])
    tokens = {name: sum(int(row[name]) for row in rows) for name in USAGE_COLUMNS}
    costs = {name: sum((row[name] for row in rows), Decimal(0)) for name in ("cost_usd", *KIND_COST_COLUMNS)}
    return kind_spend(tokens | costs)

"""Spend reports as files: CSV rows (day, tier, attempts, tokens, cost, and the tokens and cost of
each kind: cache reads and writes, images, audio, reasoning, text) and a self-contained
HTML page with a stacked bar chart of daily spend by tier (inline SVG, no scripts)."""

from __future__ import annotations

import csv
import html
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from tierlift.core.catalog import tier_name
from tierlift.v1 import ledger_pb2

# ledger.proto's KindSpend kinds, in its order
KINDS = ("cache_read", "cache_write", "image_input", "audio_input", "reasoning", "text")
TIER_COLOURS = {"LOCAL": "#2a9d8f", "HOSTED_OPEN": "#8ab17d", "CLOSED": "#e9c46a", "FRONTIER": "#e76f51"}


def write_csv(report: ledger_pb2.Report, path: Path) -> None:
    """One row a day and tier; after the totals, each kind's tokens and cost (ledger.proto's
    KindSpend: cache reads, cache writes, images, audio, reasoning, and text, the rest)."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["day", "tier", "attempts", "input_tokens", "output_tokens", "cost_usd",
                         *(f"{kind}_{part}" for kind in KINDS for part in ("tokens", "cost_usd"))])  # fmt: skip
        for d in report.days:
            by_kind = {k.kind: (k.tokens, k.cost_usd) for k in d.kinds}
            kinds = (v for kind in KINDS for v in by_kind.get(kind, (0, "0")))
            writer.writerow([d.day, tier_name(d.tier), d.attempts, d.input_tokens, d.output_tokens, d.cost_usd, *kinds])


def write_html(report: ledger_pb2.Report, path: Path, title: str) -> None:
    spend: dict[str, dict[str, Decimal]] = defaultdict(dict)
    for d in report.days:
        spend[d.day][tier_name(d.tier)] = Decimal(d.cost_usd)
    days = sorted(spend)
    top = max((sum(v.values(), Decimal(0)) for v in spend.values()), default=Decimal(0)) or Decimal(1)
    width, height, bar = max(320, 40 * len(days) + 60), 260, 28
    bars = []
    for i, day in enumerate(days):
        y = Decimal(220)
        for tier, colour in TIER_COLOURS.items():
            cost = spend[day].get(tier, Decimal(0))
            h = cost / top * 200
            y -= h
            if cost:
                bars.append(f'<rect x="{50 + 40 * i}" y="{y:.2f}" width="{bar}" height="{h:.2f}" fill="{colour}">'
                            f"<title>{day} {tier}: {cost} USD</title></rect>")  # fmt: skip
        bars.append(f'<text x="{50 + 40 * i}" y="240" font-size="9">{day[5:]}</text>')
    legend = " ".join(f'<span style="color:{c}">&#9632; {t}</span>' for t, c in TIER_COLOURS.items())
    summary = (f"{report.requests} requests, {report.answered} answered, escalation rate "
               f"{report.escalation_rate:.1%}, total {report.total_cost_usd} USD, "
               f"{report.cost_per_1k_requests_usd} USD per 1,000 requests")  # fmt: skip
    path.write_text(
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(summary)}</p><p>{legend}</p>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f'<text x="4" y="20" font-size="10">{top:.6f} USD</text><line x1="45" y1="220" x2="{width}" y2="220" '
        f'stroke="#999"/>{"".join(bars)}</svg>\n'
    )

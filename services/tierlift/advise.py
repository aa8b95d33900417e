"""The traffic `tierlift advise` weighs: a workload's volume and token mix as the ledger measured
them (the last 30 days), scaled to a month. The arithmetic is in `tierlift.economics`; the
command is `tierlift.cli.advise`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tierlift.economics import DAYS_PER_MONTH, Workload
from tierlift.v1 import ledger_pb2

WINDOW_DAYS = 30


def measured_workload(
    report: ledger_pb2.Report, today: date, peak_factor: Decimal, window_days: int = WINDOW_DAYS
) -> tuple[Workload, int]:
    """A month of the measured traffic: the window's totals scaled from the days it covers
    (from the first day with traffic to today, at most the window's `window_days`) to a month.
    Returns it and the days."""
    if not report.days:
        return Workload(0, 0, 0, peak_factor), 0
    first = min(date.fromisoformat(d.day) for d in report.days)
    days = max(1, min(window_days, (today - first).days + 1))
    scale = DAYS_PER_MONTH / days
    tokens_in = sum(d.input_tokens for d in report.days)
    tokens_out = sum(d.output_tokens for d in report.days)
    return Workload(int(tokens_in * scale), int(tokens_out * scale), int(report.requests * scale), peak_factor), days

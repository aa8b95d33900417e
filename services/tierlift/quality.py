"""The quality report as `tierlift quality` shows it: a table per workload and model path (the
ledger's GetQuality), and the same rows as CSV and an HTML chart like `report`'s. The commands
are in `tierlift.cli.quality`."""

from __future__ import annotations

import csv
import html
from decimal import Decimal
from pathlib import Path

from tierlift.v1 import ledger_pb2

COLUMNS = ["workload", "model", "tier", "requests", "share", "scored", "agreement", "feedback", "feedback_score",
           "regeneration_rate", "escalation_rate", "p50_latency_ms", "p95_latency_ms", "cost_usd",
           "cost_per_quality_point", "suite_score"]  # fmt: skip


def _share(value: float) -> str:
    return "-" if value < 0 else f"{value:.1%}"


def _agreement(line: ledger_pb2.QualityLine) -> str:
    return _share(line.agreement)


def table(report: ledger_pb2.QualityReport) -> str:
    head = (f"{'workload':<14} {'model':<28} {'tier':<11} {'requests':>8} {'share':>6} {'scored':>6} "
            f"{'agree':>6} {'fb':>4} {'fb avg':>6} {'regen':>6} {'escal':>6} {'p50 ms':>7} {'p95 ms':>7} "
            f"{'cost USD':>14} {'USD/quality pt':>14} {'suite':>6}")  # fmt: skip
    rows = [head]
    for q in report.lines:
        per_point = f"{Decimal(q.cost_per_quality_point):.6f}" if q.cost_per_quality_point else "-"
        rows.append(
            f"{q.workload:<14} {q.model:<28} {q.tier:<11} {q.requests:>8} {q.share:>6.0%} {q.scored:>6} "
            f"{_agreement(q):>6} {q.feedback:>4} {q.feedback_score:>+6.2f} {q.regeneration_rate:>6.1%} "
            f"{q.escalation_rate:>6.1%} {q.p50_latency_ms:>7.0f} {q.p95_latency_ms:>7.0f} "
            f"{Decimal(q.cost_usd):>14.6f} {per_point:>14} {_share(q.suite_score):>6}"
        )
    rows.append(
        f"shadow runs: {report.shadow_cost_usd} USD, judge and golden-set calls: {report.judge_cost_usd} USD "
        "(apart from live spend)"
    )
    for a in report.alerts:
        rows.append(f"ALERT {a.occurred_at[:19]} {a.workload}/{a.model}: {a.reason}")
    return "\n".join(rows)


def write_csv(report: ledger_pb2.QualityReport, path: Path) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for q in report.lines:
            writer.writerow([getattr(q, c) for c in COLUMNS])


def write_html(report: ledger_pb2.QualityReport, path: Path, title: str) -> None:
    """Agreement (bar) and cost per quality point (label) per model path."""
    bars = []
    for i, q in enumerate(report.lines):
        agreement = max(q.agreement, 0.0)
        y = 30 + 34 * i
        label = html.escape(f"{q.workload} / {q.model}")
        cost = html.escape(f"{_agreement(q)} agreement, {q.cost_per_quality_point or '-'} USD per quality point")
        bars.append(f'<text x="4" y="{y + 16}" font-size="11">{label}</text>'
                    f'<rect x="260" y="{y}" width="{agreement * 300:.1f}" height="22" fill="#2a9d8f"/>'
                    f'<text x="{266 + agreement * 300:.1f}" y="{y + 16}" font-size="11">{cost}</text>')  # fmt: skip
    height = 40 + 34 * len(report.lines)
    alerts = "".join(f"<li>{html.escape(a.workload + '/' + a.model + ': ' + a.reason)}</li>" for a in report.alerts)
    path.write_text(
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title><h1>{html.escape(title)}</h1>"
        f"<p>shadow runs: {html.escape(report.shadow_cost_usd)} USD</p>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="900" height="{height}">{"".join(bars)}</svg>'
        f"<ul>{alerts}</ul>\n"
    )

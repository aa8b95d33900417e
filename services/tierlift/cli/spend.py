"""`tierlift spend` (by tenant, workload, tier and model) and `tierlift report` (by day and
tier, the routing distribution and the escalation rate, as CSV and an HTML chart too)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from tierlift import reports
from tierlift.cli._connect import KEY_HELP, LEDGER_HELP, Stub
from tierlift.core.catalog import tier_name
from tierlift.v1 import ledger_pb2


def cmd_spend(args: argparse.Namespace, ledger: Stub) -> int:
    query = ledger_pb2.SpendQuery(tenant=args.tenant or "", workload=args.workload or "")
    report = ledger(args).GetSpend(query, timeout=10)
    print(f"{'tenant':<12} {'workload':<12} {'tier':<12} {'model':<34} {'attempts':>8} {'in':>8} {'out':>8} cost USD")
    for line in report.lines:
        print(
            f"{line.tenant:<12} {line.workload:<12} {tier_name(line.tier):<12} {line.model:<34} "
            f"{line.attempts:>8} {line.input_tokens:>8} {line.output_tokens:>8} {line.cost_usd}"
        )
        _print_kinds(line.kinds, indent=4)
    print(f"total: {report.total_attempts} attempts, {report.total_cost_usd} USD")
    _print_kinds(report.kinds, indent=2)
    return 0


def _print_kinds(kinds: Sequence[ledger_pb2.KindSpend], indent: int) -> None:
    """The kinds of token that were used (cache reads, writes, images, audio, reasoning, text), one a line."""
    for kind in kinds:
        if kind.tokens or Decimal(kind.cost_usd or "0"):
            print(f"{' ' * indent}{kind.kind:<12} {kind.tokens:>10} tokens  {kind.cost_usd} USD")


def cmd_report(args: argparse.Namespace, ledger: Stub) -> int:
    query = ledger_pb2.SpendQuery(tenant=args.tenant or "", workload=args.workload or "", since=args.since or "")
    report = ledger(args).GetReport(query, timeout=30)
    for d in report.days:
        print(f"{d.day}  {tier_name(d.tier):<12} {d.attempts:>8} attempts  {d.cost_usd} USD")
    shares = ", ".join(f"{tier} {share:.0%}" for tier, share in sorted(report.answered_by_tier.items()))
    print(f"requests {report.requests} (answered {report.answered}: {shares or 'none'}), "
          f"escalation rate {report.escalation_rate:.1%}, total {report.total_cost_usd} USD, "
          f"{report.cost_per_1k_requests_usd} USD per 1,000 requests")  # fmt: skip
    if args.csv:
        reports.write_csv(report, Path(args.csv))
        print(f"wrote {args.csv}")
    if args.html:
        reports.write_html(report, Path(args.html), f"Tierlift spend {args.tenant or 'all tenants'}")
        print(f"wrote {args.html}")
    return 0


def register(sub: Any, ledger: Stub) -> None:
    spend = sub.add_parser("spend", help="spend by tenant, workload, tier and model")
    spend.add_argument("--tenant")
    spend.add_argument("--workload")
    spend.add_argument("--ledger", help=LEDGER_HELP)
    spend.add_argument("--key", help=KEY_HELP)
    spend.set_defaults(func=lambda args: cmd_spend(args, ledger))
    report = sub.add_parser("report", help="spend by day and tier, routing distribution, escalation rate")
    report.add_argument("--tenant")
    report.add_argument("--workload")
    report.add_argument("--since", help="RFC 3339 timestamp")
    report.add_argument("--csv", help="also write the rows to this CSV file")
    report.add_argument("--html", help="also write a chart of spend over time by tier to this HTML file")
    report.add_argument("--ledger", help=LEDGER_HELP)
    report.add_argument("--key", help=KEY_HELP)
    report.set_defaults(func=lambda args: cmd_report(args, ledger))

"""`tierlift reconcile --provider openai|anthropic --from DAY --to DAY`: the provider's usage and
cost reports against the ledger, per UTC day and model, as a table (and `--json FILE`). Use a
finance or admin key: a viewer's GetSpend sees one tenant, and the provider bills them all.

A line past a threshold is an alert: printed to stderr, `"alert": true` in the JSON, and exit
status 3, for a cron job or CI step to page on. (Alerts go on the bus as a service identity;
this command holds only an API key, so it does not publish one.)"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from tierlift.cli._connect import KEY_HELP, LEDGER_HELP, Stub
from tierlift.core.catalog import load_catalog
from tierlift.core.config import DEFAULT_CATALOG, secret
from tierlift.reconcile import _anthropic, _openai
from tierlift.reconcile._compare import MATCHED, Line, Reconciliation, ReportError, Thresholds, compare
from tierlift.reconcile._ledger import ledger_rows, provider_models

ALERT_EXIT = 3
MAX_DAYS = 366
FETCHERS = {"openai": (_openai.fetch, "OPENAI_ADMIN_KEY"), "anthropic": (_anthropic.fetch, "ANTHROPIC_ADMIN_KEY")}


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a YYYY-MM-DD day") from None


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a number of 0 or more")
    return value


def register(sub: Any, ledger: Stub) -> None:
    p = sub.add_parser("reconcile", help="the provider's own usage and cost reports against the ledger, per day")
    p.add_argument("--provider", choices=sorted(FETCHERS), required=True)
    p.add_argument("--from", dest="first_day", type=_day, required=True, help="first UTC day, YYYY-MM-DD")
    p.add_argument("--to", dest="last_day", type=_day, required=True, help="last UTC day (included)")
    p.add_argument("--json", dest="json_file", help="also write the lines and totals to this JSON file")
    p.add_argument(
        "--max-diff-usd",
        type=_decimal,
        default=Thresholds.max_diff_usd,
        help="a day and model whose cost differs by more alerts (default %(default)s)",
    )
    p.add_argument("--max-diff-share", type=_decimal, default=Thresholds.max_diff_share,
                   help="... or by more than this share of its larger side (default %(default)s)")  # fmt: skip
    p.add_argument("--catalog", help="catalog YAML naming the provider's models (default: the packaged one)")
    p.add_argument("--provider-url", default="", help="the provider's API base URL (default: its own)")
    p.add_argument("--ledger", help=LEDGER_HELP)
    p.add_argument("--key", help=KEY_HELP)
    p.set_defaults(func=lambda args: cmd_reconcile(args, ledger(args)))


def cmd_reconcile(args: argparse.Namespace, ledger: Any) -> int:
    if args.last_day < args.first_day:
        raise ValueError("--to: before --from")
    if (args.last_day - args.first_day).days >= MAX_DAYS:
        raise ValueError(f"--from/--to: at most {MAX_DAYS} days at a time")
    if args.last_day >= datetime.now(UTC).date():
        print("tierlift: reconcile: today is not over; providers report a day some hours after it ends",
              file=sys.stderr)  # fmt: skip
    fetch, key_variable = FETCHERS[args.provider]
    admin_key = secret(key_variable)
    if not admin_key:
        raise ValueError(f"{key_variable}: set it to an admin key of the {args.provider} organization")
    catalog = load_catalog(Path(args.catalog) if args.catalog else DEFAULT_CATALOG)
    models = provider_models(catalog, args.provider)
    try:
        theirs = fetch(admin_key, args.provider_url, args.first_day, args.last_day, models.values())
    except ReportError as exc:
        print(f"tierlift: reconcile: {exc}", file=sys.stderr)
        return 1
    ours = ledger_rows(ledger, models, args.first_day, args.last_day)
    limits = Thresholds(args.max_diff_usd, args.max_diff_share)
    result = compare(args.provider, args.first_day, args.last_day, theirs, ours, limits)
    print(table(result))
    if args.json_file:
        Path(args.json_file).write_text(json.dumps(result.as_json(), indent=2) + "\n")
        print(f"wrote {args.json_file}")
    if result.alerts:
        print(alert_text(result), file=sys.stderr)
        return ALERT_EXIT
    return 0


def _pair(line: Line, name: str) -> str:
    """Ledger/provider counts of one kind of token, "-" for a side with none."""
    return "/".join("-" if u is None else f"{getattr(u, name):,}" for u in (line.ledger, line.provider))


def table(result: Reconciliation) -> str:
    rows = [f"{'day':<10} {'model':<28} {'status':<19} {'in (ledger/provider)':>23} "
            f"{'out (ledger/provider)':>23} {'ledger USD':>12} {'provider USD':>12} {'diff USD':>10}"]  # fmt: skip
    for line in result.lines:
        led, prov = line.ledger, line.provider
        mark = "  ALERT" if line.alert else ""
        rows.append(
            f"{line.day.isoformat():<10} {line.model[:28]:<28} {line.status:<19} "
            f"{_pair(line, 'input_tokens'):>23} {_pair(line, 'output_tokens'):>23} "
            f"{f'{led.cost_usd:.4f}' if led else '-':>12} {f'{prov.cost_usd:.4f}' if prov else '-':>12} "
            f"{line.diff_usd:>+10.4f}{mark}"
        )
    counts = ", ".join(f"{n} {status}" for status, n in result.counts().items() if n)
    rows.append(f"{result.provider} {result.first_day}..{result.last_day}: ledger {result.total('ledger'):.4f} USD, "
                f"provider {result.total('provider'):.4f} USD; {counts or 'nothing on either side'}")  # fmt: skip
    return "\n".join(rows)


def alert_text(result: Reconciliation) -> str:
    worst = max(result.alerts, key=lambda line: abs(line.diff_usd))
    off = [f"{line.day} {line.model} {line.status} {line.diff_usd:+.4f} USD" for line in result.alerts
           if line.status != MATCHED]  # fmt: skip
    return (
        f"tierlift: ALERT reconcile {result.provider} {result.first_day}..{result.last_day}: "
        f"{len(result.alerts)} day/model lines differ past {result.thresholds.max_diff_usd} USD or "
        f"{result.thresholds.max_diff_share:.1%} (worst {worst.day} {worst.model} {worst.diff_usd:+.4f} USD): "
        + "; ".join(off[:20])
    )

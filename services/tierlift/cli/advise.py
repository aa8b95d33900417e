"""`tierlift advise`: should this workload self-host or call an API? The workload's volume and
token mix are measured by the ledger (last 30 days); `--tokens-per-day N` asks "what if" at
the same mix. The arithmetic is in `tierlift.economics`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import grpc

from tierlift.advise import WINDOW_DAYS, measured_workload
from tierlift.cli._connect import KEY_HELP, LEDGER_HELP, Stub
from tierlift.core.catalog import load_catalog, tier_name
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.devstack import StackError
from tierlift.economics import DAYS_PER_MONTH, Advice, Ops, SelfHostedOption, Workload, advise
from tierlift.router._policy_source import DEFAULT_POLICY, load_policy
from tierlift.v1 import ledger_pb2


def _number(low: Decimal, high: Decimal | None = None) -> Callable[[str], Decimal]:
    """An argparse `type=`: a decimal at least `low` and at most `high`; argparse names the flag
    in its error and exits 2."""

    def parse(text: str) -> Decimal:
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value.is_finite() or value < low or (high is not None and value > high):
            most = "" if high is None else f" and at most {high}"
            raise argparse.ArgumentTypeError(f"{text}: must be at least {low}{most}")
        return value

    return parse


def _count(low: int) -> Callable[[str], int]:
    """An argparse `type=`: a whole number at least `low`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{text}: must be at least {low}")
        return value

    return parse


def cmd_advise(args: argparse.Namespace, ledger: Stub) -> int:
    peak = Decimal(args.peak_factor)
    since = (datetime.now(UTC) - timedelta(days=WINDOW_DAYS)).isoformat()
    query = ledger_pb2.SpendQuery(tenant=args.tenant or "", workload=args.workload or "", since=since)
    who = f"workload {args.workload or '(all)'}, tenant {args.tenant or '(all)'}"
    try:
        report = ledger(args).GetReport(query, timeout=30)
    except (StackError, grpc.RpcError) as exc:
        if args.tokens_per_day is None:
            raise
        print(f"{who}: no ledger to measure it ({exc.__class__.__name__}); what if at the flags' mix")
        report = ledger_pb2.Report()  # a what-if needs no running stack
    workload, days = measured_workload(report, datetime.now(UTC).date(), peak)
    if days:
        print(f"{who}: measured over {days} day(s), scaled to a month")
    elif args.tokens_per_day is None:  # advice on no traffic at all is advice on nothing
        flag = f"--workload {args.workload}" if args.workload else f"--tenant {args.tenant}" if args.tenant else who
        raise ValueError(
            f"{flag}: no traffic in the ledger over the last {WINDOW_DAYS} days "
            "(check the name, or ask what if with --tokens-per-day N)"
        )
    if args.tokens_per_day is not None:
        if not workload.tokens:  # nothing measured: the mix comes from the flags
            tokens_in = int(Decimal(args.input_share) * 1_000_000)
            workload = Workload(
                tokens_in, 1_000_000 - tokens_in, int(1_000_000 / Decimal(args.tokens_per_request)), peak
            )
        workload = workload.scaled_to(Decimal(args.tokens_per_day) * DAYS_PER_MONTH)
        print(f"what if: {args.tokens_per_day:,} tokens/day at that mix")
    print(
        f"  {workload.tokens_per_day:,.0f} tokens/day, {workload.requests:,} requests/month, "
        f"{workload.tokens_per_request:,.0f} tokens per request, {workload.input_share:.0%} input; "
        f"peak hour {peak}x the average (--peak-factor)"
    )
    catalog = load_catalog(Path(args.catalog) if args.catalog else DEFAULT_CATALOG)
    quality = {
        tier_name(t): q
        for t, q in load_policy(Path(args.policy) if args.policy else DEFAULT_POLICY).tier_quality.items()
    }
    ops = Ops(Decimal(args.ops_hours), Decimal(args.ops_rate))
    print_advice(advise(catalog, workload, ops, quality, args.min_replicas), quality, ops)
    return 0


def print_advice(advice: Advice, quality: dict[str, float], ops: Ops) -> None:
    print("API models at this volume:")
    for a in advice.api:
        print(
            f"  {a.model.id:<34} {a.model.tier:<12} quality {quality[a.model.tier]:.2f} "
            f"{a.monthly_usd:>14,.2f} USD/month"
        )
    print("self-hosted:")
    for o in advice.self_hosted:
        print(_self_hosted_lines(o, quality, ops))
    print(f"recommendation: {advice.recommendation}")
    print("  quality is each tier's expected quality from the policy: measure a model on this workload (tierlift eval)")


def _self_hosted_lines(o: SelfHostedOption, quality: dict[str, float], ops: Ops) -> str:
    assert o.model.price.self_hosted is not None
    hardware = o.model.price.self_hosted.hardware
    lines = [
        f"  {o.model.id} ({o.model.tier}, quality {quality[o.model.tier]:.2f}): {o.replicas} replica(s) of {hardware} "
        f"= {o.hosting_usd:,.2f} USD + ops {o.ops_usd:,.2f} USD ({ops.hours_per_month} h x {ops.usd_per_hour} USD) "
        f"= {o.monthly_usd:,.2f} USD/month"
    ]
    if o.against is not None:
        a = o.against
        lines.append(
            f"    against {a.model.id} ({a.model.tier}, quality {quality[a.model.tier]:.2f}): "
            f"{a.monthly_usd:,.2f} USD/month"
        )
    if o.crossover is not None:
        c = o.crossover
        lines.append(
            f"    crossover: {c.tokens_per_day:,.0f} tokens/day = {c.requests_per_month:,.0f} requests/month "
            f"(on {c.replicas} replica(s))"
        )
    else:
        lines.append(f"    crossover: {o.why_no_crossover}")
    return "\n".join(lines)


def register(sub: Any, ledger: Stub) -> None:
    adv = sub.add_parser("advise", help="self-host or API: monthly costs and each self-hosted model's crossover volume")
    adv.add_argument("--tenant")
    adv.add_argument("--workload")
    adv.add_argument("--tokens-per-day", type=_count(1), help="what if: this volume at the measured mix")
    adv.add_argument(
        "--input-share",
        type=_number(Decimal(0), Decimal(1)),
        default=Decimal("0.75"),
        help="share of input tokens when nothing is measured",
    )
    adv.add_argument(
        "--tokens-per-request",
        type=_number(Decimal(1)),
        default=Decimal(1000),
        help="tokens per request when nothing is measured",
    )
    adv.add_argument(
        "--peak-factor",
        type=_number(Decimal(1)),
        default=Decimal(3),
        help="peak hour rate / average rate (sizes the replicas)",
    )
    adv.add_argument("--min-replicas", type=_count(0), default=1, help="replicas a self-hosted model never goes below")
    adv.add_argument(
        "--ops-hours", type=_number(Decimal(0)), default=Decimal(20), help="operations hours a month for a fleet"
    )
    adv.add_argument("--ops-rate", type=_number(Decimal(0)), default=Decimal(100), help="USD per operations hour")
    adv.add_argument("--catalog", help="catalog YAML (default: the packaged one)")
    adv.add_argument("--policy", help="policy YAML whose tier_quality ranks the tiers (default: the packaged one)")
    adv.add_argument("--ledger", help=LEDGER_HELP)
    adv.add_argument("--key", help=KEY_HELP)
    adv.set_defaults(func=lambda args: cmd_advise(args, ledger))

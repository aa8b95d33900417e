"""`tierlift quality`, `tierlift feedback` and `tierlift suite run`: the quality loop from the
command line. The table
is per workload and model path, from the ledger's GetQuality; CSV and an HTML chart like
`report`'s."""

from __future__ import annotations

import argparse
import csv
import html
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc

from tierlift.devstack import StackError
from tierlift.v1 import assessor_pb2, ledger_pb2, router_pb2

COLUMNS = ["workload", "model", "tier", "requests", "share", "scored", "agreement", "feedback", "feedback_score",
           "regeneration_rate", "escalation_rate", "p50_latency_ms", "p95_latency_ms", "cost_usd",
           "cost_per_quality_point", "suite_score"]  # fmt: skip
# how long `tierlift feedback` waits for the ledger to store a request it does not have yet
LEDGER_LAG_S = 3.0


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


def cmd_quality(args: argparse.Namespace, ledger: Callable[[argparse.Namespace], Any]) -> int:
    query = ledger_pb2.QualityQuery(tenant=args.tenant or "", workload=args.workload or "", since=args.since or "")
    report = ledger(args).GetQuality(query, timeout=30)
    print(table(report))
    if args.csv:
        write_csv(report, Path(args.csv))
        print(f"wrote {args.csv}")
    if args.html:
        write_html(report, Path(args.html), f"Tierlift quality {args.workload or 'all workloads'}")
        print(f"wrote {args.html}")
    return 0


def cmd_feedback(
    args: argparse.Namespace, router: Callable[[argparse.Namespace], Any], ledger: Callable[[argparse.Namespace], Any]
) -> int:
    rating = {"good": 1, "bad": -1, "none": 0}[args.rating]
    request = router_pb2.FeedbackRequest(request_id=args.request_id, tenant=args.tenant or "", rating=rating,
                                         regenerated=args.regenerated, comment=args.comment or "")  # fmt: skip
    if not _ledger_knows(args, ledger):
        print(f"tierlift: NOT_FOUND: request_id: the ledger has no request {args.request_id} "
              "(the id `tierlift ask` prints after `request`)", file=sys.stderr)  # fmt: skip
        return 1
    ack = router(args).Feedback(request, timeout=10)
    print(f"recorded {ack.event_id}")
    return 0


def _ledger_knows(args: argparse.Namespace, ledger: Callable[[argparse.Namespace], Any]) -> bool:
    """Whether the ledger holds the request (any attempt of it, in the key's tenant). The router
    takes feedback without asking, as the ledger stores requests a moment after they are answered;
    a person typing an id has waited that moment. True when the ledger cannot be asked (no
    stack, an app key that may not read it): the router then takes the verdict as before."""
    try:
        uuid.UUID(args.request_id)
    except ValueError:
        return True  # not an id at all: the router refuses it, naming the field
    query = ledger_pb2.AttemptQuery(request_id=args.request_id)
    deadline = time.monotonic() + LEDGER_LAG_S  # an answer of a moment ago may still be on its way
    try:
        stub = ledger(args)
        while not stub.ListAttempts(query, timeout=10).attempts:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)
    except StackError:
        return True
    except grpc.RpcError as exc:
        if exc.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAVAILABLE):
            return True
        raise
    return True


def cmd_suite(args: argparse.Namespace, assessor: Callable[[argparse.Namespace], Any]) -> int:
    models = [m for m in (args.models or "").split(",") if m]
    report = assessor(args).RunSuite(assessor_pb2.SuiteRequest(workload=args.workload, models=models), timeout=600)
    for p in report.paths:
        baseline = "sets the baseline" if p.baseline < 0 else f"baseline {p.baseline:.1%}"
        flag = "  REGRESSED: alert published" if p.regressed else ""
        print(f"{report.workload}  {p.model:<28} {p.passed}/{p.items} passed ({p.score:.1%}), {baseline}{flag}")
        for failure in p.failures:
            print(f"    {failure}")
    return 0


def register(
    sub: Any,
    ledger: Callable[[argparse.Namespace], Any],
    router: Callable[[argparse.Namespace], Any],
    assessor: Callable[[argparse.Namespace], Any],
    key_help: str,
) -> None:
    q = sub.add_parser(
        "quality", help="per workload and model path: agreement, feedback, latency, cost per quality point"
    )
    q.add_argument("--tenant")
    q.add_argument("--workload")
    q.add_argument("--since", help="RFC 3339 timestamp (default: 7 days ago)")
    q.add_argument("--csv", help="also write the rows to this CSV file")
    q.add_argument("--html", help="also write a chart to this HTML file")
    q.add_argument("--ledger", help="ledger address (default: TIERLIFT_LEDGER_ADDRESS or the running stack)")
    q.add_argument("--key", help=key_help)
    q.set_defaults(func=lambda args: cmd_quality(args, ledger))
    fb = sub.add_parser("feedback", help="rate an answer by its request id")
    fb.add_argument("request_id")
    fb.add_argument("rating", choices=["good", "bad", "none"])
    fb.add_argument("--regenerated", action="store_true", help="the user asked for another answer")
    fb.add_argument("--comment")
    fb.add_argument("--tenant")
    fb.add_argument("--router", help="router address (default: TIERLIFT_ADDRESS or the running stack)")
    fb.add_argument(
        "--ledger", help="ledger that checks the request exists (default: TIERLIFT_LEDGER_ADDRESS or the stack's)"
    )
    fb.add_argument("--key", help=key_help)
    fb.set_defaults(func=lambda args: cmd_feedback(args, router, ledger))
    suite = sub.add_parser("suite", help="run a workload's golden set on model paths now (admin)")
    suite.add_argument("suite_command", choices=["run"])
    suite.add_argument("--workload", required=True)
    suite.add_argument(
        "--models",
        help="model paths, comma-separated (default: the assessor's TIERLIFT_SUITE_MODELS, "
        "else the workload's live path: each item routed as its traffic is)",
    )
    suite.add_argument("--assessor", help="assessor address (default: TIERLIFT_ASSESSOR_ADDRESS or the running stack)")
    suite.add_argument("--key", help=key_help)
    suite.set_defaults(func=lambda args: cmd_suite(args, assessor))

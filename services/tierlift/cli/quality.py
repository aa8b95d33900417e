"""`tierlift quality`, `tierlift feedback` and `tierlift suite run`: the quality loop from the
command line. The table is per workload and model path, from the ledger's GetQuality; CSV and
an HTML chart like `report`'s (`tierlift.quality`)."""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import grpc

from tierlift.cli._connect import ASSESSOR_HELP, KEY_HELP, LEDGER_HELP, ROUTER_HELP, Stub
from tierlift.devstack import StackError
from tierlift.quality import table, write_csv, write_html
from tierlift.v1 import assessor_pb2, ledger_pb2, router_pb2

# how long `tierlift feedback` waits for the ledger to store a request it does not have yet
LEDGER_LAG_S = 3.0


def cmd_quality(args: argparse.Namespace, ledger: Stub) -> int:
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


def _request_id(text: str) -> str:
    """An argparse `type=`: a request id as every answer carries it (a UUID, written as
    `tierlift ask` prints it); argparse names the argument in its error and exits 2."""
    try:
        if str(uuid.UUID(text)) == text.lower():
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a request id (a UUID, the id `tierlift ask` prints after `request`)"
    )


def cmd_feedback(args: argparse.Namespace, router: Stub, ledger: Stub) -> int:
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


def _ledger_knows(args: argparse.Namespace, ledger: Stub) -> bool:
    """Whether the ledger holds the request (any attempt of it, in the key's tenant). The router
    takes feedback without asking, as the ledger stores requests a moment after they are answered;
    a person typing an id has waited that moment. True when the ledger cannot be asked (no
    stack, an app key that may not read it): the router then takes the verdict as before."""
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


def cmd_suite(args: argparse.Namespace, assessor: Stub) -> int:
    models = [m for m in (args.models or "").split(",") if m]
    report = assessor(args).RunSuite(assessor_pb2.SuiteRequest(workload=args.workload, models=models), timeout=600)
    for p in report.paths:
        baseline = "sets the baseline" if p.baseline < 0 else f"baseline {p.baseline:.1%}"
        flag = "  REGRESSED: alert published" if p.regressed else ""
        print(f"{report.workload}  {p.model:<28} {p.passed}/{p.items} passed ({p.score:.1%}), {baseline}{flag}")
        for failure in p.failures:
            print(f"    {failure}")
    return 0


def register(sub: Any, ledger: Stub, router: Stub, assessor: Stub) -> None:
    q = sub.add_parser(
        "quality", help="per workload and model path: agreement, feedback, latency, cost per quality point"
    )
    q.add_argument("--tenant")
    q.add_argument("--workload")
    q.add_argument("--since", help="RFC 3339 timestamp (default: 7 days ago)")
    q.add_argument("--csv", help="also write the rows to this CSV file")
    q.add_argument("--html", help="also write a chart to this HTML file")
    q.add_argument("--ledger", help=LEDGER_HELP)
    q.add_argument("--key", help=KEY_HELP)
    q.set_defaults(func=lambda args: cmd_quality(args, ledger))
    fb = sub.add_parser("feedback", help="rate an answer by its request id")
    fb.add_argument("request_id", type=_request_id)
    fb.add_argument("rating", choices=["good", "bad", "none"])
    fb.add_argument("--regenerated", action="store_true", help="the user asked for another answer")
    fb.add_argument("--comment")
    fb.add_argument("--tenant")
    fb.add_argument("--router", help=ROUTER_HELP)
    fb.add_argument(
        "--ledger", help="ledger that checks the request exists (default: TIERLIFT_LEDGER_ADDRESS or the stack's)"
    )
    fb.add_argument("--key", help=KEY_HELP)
    fb.set_defaults(func=lambda args: cmd_feedback(args, router, ledger))
    suite = sub.add_parser("suite", help="run a workload's golden set on model paths now (admin)")
    suite.add_argument("suite_command", choices=["run"])
    suite.add_argument("--workload", required=True)
    suite.add_argument(
        "--models",
        help="model paths, comma-separated (default: the assessor's TIERLIFT_SUITE_MODELS, "
        "else the workload's live path: each item routed as its traffic is)",
    )
    suite.add_argument("--assessor", help=ASSESSOR_HELP)
    suite.add_argument("--key", help=KEY_HELP)
    suite.set_defaults(func=lambda args: cmd_suite(args, assessor))

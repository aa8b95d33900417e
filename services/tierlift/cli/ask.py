"""`tierlift ask` (route one request, print the answer and how it was reached) and `tierlift
plan` (the ladder it would climb, without calling a model)."""

from __future__ import annotations

import argparse
from typing import Any

from google.protobuf import json_format

from tierlift.cli import _connect
from tierlift.client import Completion
from tierlift.core.catalog import TIERS, tier_name
from tierlift.v1 import common_pb2, router_pb2


def _constraints(args: argparse.Namespace) -> dict[str, Any]:
    return {"max_tokens": args.max_tokens, "idempotency_key": args.idempotency_key or None,
            "data_class": args.data_class, "region": args.region, "allowed_tiers": args.tiers}  # fmt: skip


def tiers(text: str) -> list[str]:
    """`--tiers local,closed` -> ["LOCAL", "CLOSED"]; argparse prints the error with the flag's name."""
    names = [t.strip().upper() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in TIERS]
    if unknown or not names:
        choices = ", ".join(TIERS).lower()
        raise argparse.ArgumentTypeError(f"{', '.join(unknown) or repr(text)}: choose from {choices}")
    return names


def cmd_ask(args: argparse.Namespace) -> int:
    with _connect.client(args) as tl:
        if args.stream:
            reply = router_pb2.CompleteResponse()
            for piece in tl.stream(args.prompt, **_constraints(args)):
                if isinstance(piece, str) and not args.json:
                    print(piece, end="", flush=True)
                elif isinstance(piece, Completion):
                    reply = piece.response
            if not args.json:
                print()
        else:
            reply = tl.complete(args.prompt, **_constraints(args)).response
            if not args.json:
                print(reply.text)
    if args.json:
        print(json_format.MessageToJson(reply))
        return 0
    print(
        f"\n-- {tier_name(reply.tier)} / {reply.model}  confidence {reply.confidence:.3f}  "
        f"cost {reply.total_cost_usd} USD  request {reply.request_id}"
    )
    for a in reply.attempts:
        outcome = router_pb2.Outcome.Name(a.outcome).removeprefix("OUTCOME_")
        print(
            f"   attempt {a.index}: {tier_name(a.tier)}/{a.model} {outcome}  confidence {a.confidence:.3f}  "
            f"{a.latency_ms:.0f} ms  tokens {a.usage.input_tokens}+{a.usage.output_tokens}  "
            f"cost {a.cost_usd or '0'} USD"
        )
        print(f"      {a.reason}{a.error}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    with _connect.client(args) as tl:
        plan = tl.plan(args.prompt, **_constraints(args))
    if args.json:
        print(json_format.MessageToJson(plan))
        return 0
    c = plan.classification
    findings = ", ".join(c.data_finding_fields or c.data_findings) or "none"
    print(
        f"task {common_pb2.TaskType.Name(c.task_type).removeprefix('TASK_TYPE_')}, "
        f"P(small model suffices) {c.small_model_ok:.2f}, "
        f"data class {common_pb2.DataClass.Name(c.data_class).removeprefix('DATA_CLASS_')} (found: {findings}), "
        f"~{c.token_estimate} tokens"
    )
    for reason in plan.reasons:
        print(f"  why: {reason}")
    for n, rung in enumerate(plan.ladder, start=1):
        print(f"  rung {n}: {tier_name(rung.tier)}/{rung.model} -- {rung.reason}")
    for excluded in plan.excluded:
        print(f"  not {excluded.model}: {excluded.reason}")
    return 0


def register(sub: Any) -> None:
    for name, func in (("ask", cmd_ask), ("plan", cmd_plan)):
        p = sub.add_parser(name, help="route one request" if name == "ask" else "dry run: show the ladder")
        p.add_argument("prompt")
        p.add_argument("--tenant", help="the tenant an admin key acts for (default: the key's own tenant)")
        p.add_argument("--workload", default="cli")
        p.add_argument("--data-class", choices=["public", "internal", "confidential", "regulated"])
        p.add_argument("--region")
        p.add_argument("--tiers", type=tiers, default=[], help="allowed tiers, e.g. local,closed (default: all)")
        if name == "ask":
            p.add_argument("--stream", action="store_true", help="print the answer as it is generated")
        p.add_argument("--max-tokens", type=int, default=64)
        p.add_argument("--idempotency-key")
        p.add_argument("--router", help=_connect.ROUTER_HELP)
        p.add_argument("--key", help=_connect.KEY_HELP)
        p.add_argument("--timeout", type=float, default=120.0)
        p.add_argument("--json", action="store_true", help="print the whole response as JSON")
        p.set_defaults(func=func)

"""`tierlift budget set|list|delete`: a tenant's (or one workload's) daily or monthly limit."""

from __future__ import annotations

import argparse
from typing import Any

from tierlift.cli._connect import KEY_HELP, LEDGER_HELP, Stub
from tierlift.v1 import ledger_pb2


def cmd_budget(args: argparse.Namespace, ledger: Stub) -> int:
    if args.budget_command == "delete" and not args.tenant:
        raise ValueError("--tenant: budget delete needs the tenant whose budget it is")
    stub = ledger(args)
    if args.budget_command == "set":
        budget = ledger_pb2.Budget(tenant=args.tenant, workload=args.workload or "", period=args.period,
                                   limit_usd=args.limit, soft_ratio=args.soft_ratio, action=args.action,
                                   strict=args.strict)  # fmt: skip
        budgets = [stub.SetBudget(budget, timeout=10)]
    elif args.budget_command == "delete":
        which = ledger_pb2.Budget(tenant=args.tenant, workload=args.workload or "", period=args.period)
        deleted = stub.DeleteBudget(which, timeout=10)
        print(f"deleted the {args.period} budget of {deleted.tenant} {deleted.workload or '(all workloads)'}: "
              f"{deleted.spent_usd} of {deleted.limit_usd} USD, at limit: {deleted.action}")  # fmt: skip
        return 0
    else:
        budgets = list(stub.ListBudgets(ledger_pb2.BudgetQuery(tenant=args.tenant or ""), timeout=10).budgets)
    for b in budgets:
        print(f"{b.tenant:<12} {b.workload or '(all)':<12} {b.period:<6} {b.spent_usd} of {b.limit_usd} USD  "
              f"{b.state}  at limit: {b.action}" + ("  strict" if b.strict else ""))  # fmt: skip
    return 0


def register(sub: Any, ledger: Stub) -> None:
    budget = sub.add_parser("budget", help="set, list or delete budgets")
    budget.add_argument("budget_command", choices=["set", "list", "delete"])
    budget.add_argument("--tenant")
    budget.add_argument("--workload", help="default: every workload of the tenant")
    budget.add_argument("--period", choices=["day", "month"], default="month")
    budget.add_argument("--limit", help="USD, e.g. 250.00")
    budget.add_argument("--soft-ratio", type=float, default=0.8, help="warn at this share of the limit")
    budget.add_argument("--action", choices=["local_only", "reject"], default="local_only")
    budget.add_argument(
        "--strict", action="store_true", help="reserve each request with the ledger: spend never passes the limit"
    )
    budget.add_argument("--ledger", help=LEDGER_HELP)
    budget.add_argument("--key", help=KEY_HELP)
    budget.set_defaults(func=lambda args: cmd_budget(args, ledger))

"""The `tierlift` command: run the embedded stack and talk to it.

tierlift up                      start everything, serve until Ctrl-C
tierlift ask "question"          route one request, show the answer and its story
tierlift plan "question"         show the ladder without calling a model
tierlift spend                   spend by tenant, workload, tier and model
tierlift keys create|list|revoke|rotate  manage API keys (admin)
tierlift audit                   admin actions: keys and budgets
tierlift rollout start|status|pause|resume|promote|abort   move a workload between models safely
tierlift migrate                 apply the ledger migrations
tierlift bus-bootstrap           create the stream, buckets and consumers (deployments)
tierlift eval-classifier         task type and data class accuracy on labelled rows
tierlift eval-routing            the learned router's cost/quality curve
tierlift eval                    the local tier's accuracy and the AUROC of its confidence
tierlift calibrate               fit confidence and a workload's threshold into a policy
"""

from __future__ import annotations

import argparse
import sys

import grpc

from tierlift.cli import (
    _connect,
    advise,
    ask,
    budgets,
    deploy,
    evaluate,
    keys,
    quality,
    reconcile,
    rollout,
    spend,
    stack,
)
from tierlift.client import TierliftError
from tierlift.core.entry import StartupError
from tierlift.core.extras import MissingExtra
from tierlift.devstack import StackError
from tierlift.router._policy_source import PolicyError
from tierlift.v1 import assessor_pb2_grpc, ledger_pb2_grpc, router_pb2_grpc

__all__ = ["main"]


# The stubs every command is given, looked up here when the parser is built: tests replace them.
def _ledger(args: argparse.Namespace) -> ledger_pb2_grpc.LedgerStub:
    return _connect.ledger(args)


def _router(args: argparse.Namespace) -> router_pb2_grpc.RouterStub:
    return _connect.router(args)


def _assessor(args: argparse.Namespace) -> assessor_pb2_grpc.AssessorStub:
    return _connect.assessor(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tierlift", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    stack.register(sub)
    ask.register(sub)
    spend.register(sub, _ledger)
    budgets.register(sub, _ledger)
    keys.register_keys(sub, _ledger)
    keys.register_audit(sub, _ledger)
    advise.register(sub, _ledger)
    quality.register(sub, _ledger, _router, _assessor)
    rollout.register(sub, _assessor)
    deploy.register(sub)
    evaluate.register(sub, _ledger)
    reconcile.register(sub, _ledger)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (StackError, StartupError, PolicyError, FileNotFoundError, ValueError, MissingExtra) as exc:
        # bad input files (eval data, policies), stack problems and a missing extra: one line, naming the fix
        print(f"tierlift: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:
        print(f"tierlift: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except TierliftError as exc:
        print(f"tierlift: {exc}", file=sys.stderr)
        return 1

"""How a command reaches the running stack: each service's address (its flag, else the client's
variable, else the stack `tierlift up` started in STATE_DIR) and the caller's API key."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

from tierlift.client import Tierlift
from tierlift.client._inputs import ADDRESS_VARIABLES, env_address
from tierlift.core.identity import with_key
from tierlift.devstack import read_keys, read_state
from tierlift.v1 import assessor_pb2_grpc, ledger_pb2_grpc, router_pb2_grpc

STATE_DIR = Path(os.environ.get("TIERLIFT_STATE_DIR", ".tierlift"))
KEY_HELP = "API key (default: TIERLIFT_API_KEY, or the key `tierlift up` wrote)"
ROUTER_HELP = "router address (default: TIERLIFT_ADDRESS or the running stack)"
LEDGER_HELP = "ledger address (default: TIERLIFT_LEDGER_ADDRESS or the running stack)"
ASSESSOR_HELP = "assessor address (default: TIERLIFT_ASSESSOR_ADDRESS or the running stack)"

Stub = Callable[[argparse.Namespace], Any]  # a service's stub, made from a command's arguments


def address(explicit: str | None, service: str) -> str:
    """--router/--ledger/--assessor, else the client's variable (TIERLIFT_ADDRESS,
    TIERLIFT_LEDGER_ADDRESS, TIERLIFT_ASSESSOR_ADDRESS; the old *_ADDR names with a warning),
    else the running stack's."""
    if explicit:
        return explicit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DeprecationWarning)
        from_env = env_address(ADDRESS_VARIABLES[service])
    for warning in caught:
        print(f"tierlift: warning: {warning.message}", file=sys.stderr)
    return from_env or read_state(STATE_DIR)[service]


def _key(args: argparse.Namespace, service: str) -> str:
    """--key, TIERLIFT_API_KEY, or the key `tierlift up` wrote (the app key for the router, the
    admin key for the ledger and the assessor)."""
    return (
        args.key
        or os.environ.get("TIERLIFT_API_KEY")
        or read_keys(STATE_DIR).get("app" if service == "router" else "admin", "")
    )


def channel(args: argparse.Namespace, service: str) -> grpc.Channel:
    """A channel to the router, the ledger or the assessor with the caller's key."""
    return with_key(grpc.insecure_channel(address(getattr(args, service, None), service)), _key(args, service))


def ledger(args: argparse.Namespace) -> ledger_pb2_grpc.LedgerStub:
    return ledger_pb2_grpc.LedgerStub(channel(args, "ledger"))


def router(args: argparse.Namespace) -> router_pb2_grpc.RouterStub:
    return router_pb2_grpc.RouterStub(channel(args, "router"))


def assessor(args: argparse.Namespace) -> assessor_pb2_grpc.AssessorStub:
    return assessor_pb2_grpc.AssessorStub(channel(args, "assessor"))


def client(args: argparse.Namespace) -> Tierlift:
    """The client library, as every app calls the router: one way to call it, not two."""
    return Tierlift(address(args.router, "router"), api_key=_key(args, "router"), tenant=args.tenant,
                    workload=args.workload, timeout_s=args.timeout)  # fmt: skip

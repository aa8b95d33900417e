"""`tierlift up` (the embedded stack until Ctrl-C) and `tierlift serve` (several components in
one process, the combined topology)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from tierlift.cli import _connect
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.deployment import Deployment, probe_provider
from tierlift.devstack import StackRunning, lock_state_dir, stack_from_environment
from tierlift.router._policy_source import load_policy


def cmd_up(args: argparse.Namespace) -> int:
    state_dir = _connect.STATE_DIR
    catalog_path = Path(args.catalog) if args.catalog else DEFAULT_CATALOG
    policy_path = Path(args.policy) if args.policy else None
    if policy_path is not None:
        load_policy(policy_path)  # a bad policy stops here, naming the file, before anything starts
    try:
        lock = lock_state_dir(state_dir)  # before anything in the folder is written
    except StackRunning as exc:
        print(f"tierlift: {exc}", file=sys.stderr)
        return 1
    stack, deployment = stack_from_environment(
        state_dir, catalog_path, dict(os.environ), probe_provider, args.region or "", policy_path, args.port,
        args.topology,
    )  # fmt: skip
    stack.lock = lock
    started = time.perf_counter()
    stack.start()
    print(f"tierlift is up in {time.perf_counter() - started:.1f}s")
    print(f'  router  {stack.addrs["router"]}   (tierlift ask "...")')
    print(f"  ledger  {stack.addrs['ledger']}   (tierlift spend)")
    print(f"  nats    {stack.nats_url}   logs in {state_dir / 'logs'}")
    print("OpenAI-compatible edge, for any OpenAI SDK (paste into a shell):")
    print(f"  export OPENAI_BASE_URL={stack.openai_base_url}")
    print(f"  export OPENAI_API_KEY={stack.keys['app']}")
    print(f"Web console: {stack.console_url}   (log in with the admin key in {state_dir / 'keys.json'})")
    print(banner(deployment))
    print("Ctrl-C stops everything; a service that exits is restarted.")
    stack.serve_until_signalled(lambda line: print(f"tierlift: {line}", file=sys.stderr, flush=True))
    codes = stack.stop()
    print("stopped: " + ", ".join(f"{n}={c}" for n, c in codes.items()))
    return 0 if all(c == 0 for c in codes.values()) else 1


def banner(deployment: Deployment) -> str:
    """What `up` deployed, where each model is served, and what it left out and why."""
    lines = ["deployed:"]
    for d in deployment.deployed:
        in_process = "MiniLM static vectors" if d.model.capabilities.embeddings else "llama.cpp"
        where = d.endpoint or (
            f"in process ({in_process}, CPU)"
            if d.model.adapter.startswith("llamacpp")
            else f"the SDK's default endpoint for {d.model.cloud_region or 'the provider'}"
        )
        note = f"  {d.note}" if d.note else ""
        lines.append(f"  {d.model.tier:<12} {d.model.id:<34} adapter {d.model.adapter} -> {where}{note}")
    if deployment.skipped:
        lines.append("skipped:")
    for s in deployment.skipped:
        lines.append(f"  {s.model.tier:<12} {s.model.id:<34} {s.reason}")
    return "\n".join(lines)


def cmd_serve(args: argparse.Namespace) -> int:
    from tierlift.combined import run
    from tierlift.core.entry import run_service

    run_service(lambda: run(args.components))
    return 0


def register(sub: Any) -> None:
    up = sub.add_parser("up", help="run the embedded stack until Ctrl-C")
    up.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("TIERLIFT_ROUTER_PORT", "0")),
        help="router port on 127.0.0.1 (default: a free one)",
    )
    up.add_argument(
        "--topology",
        choices=("microservices", "combined"),
        default=os.environ.get("TIERLIFT_TOPOLOGY", "microservices"),
        help="a process per component (default), or the request path in one process (docs/operations/topologies.md)",
    )
    up.add_argument("--catalog", help="catalog YAML of one's own (default: the packaged dev catalog)")
    up.add_argument("--policy", help="routing policy YAML of one's own (default: the packaged dev policy)")
    up.add_argument("--region", help="the region this stack serves: models outside it are left out")
    up.set_defaults(func=cmd_up)
    serve = sub.add_parser("serve", help="host several components in one process (the combined topology)")
    serve.add_argument(
        "--components",
        default="all",
        help="all, or router,classifier,gateway,adapter:<name>[=<backend>],... (default: all)",
    )
    serve.set_defaults(func=cmd_serve)

"""The `tierlift` command: run the embedded stack and talk to it.

tierlift up                      start everything, serve until Ctrl-C
tierlift ask "question"          route one request, show the answer and its story
tierlift plan "question"         show the ladder without calling a model
tierlift spend                   spend by tenant, workload, tier and model
tierlift keys create|list|revoke|rotate  manage API keys (admin)
tierlift audit                   admin actions: keys and budgets
tierlift rollout start|status|pause|resume|promote|abort   move a workload between models safely
tierlift migrate                 apply the ledger migrations
tierlift bus-bootstrap           create the bus's stream, buckets and consumers (deployments)
tierlift eval-classifier         task type and data class accuracy on labelled rows
tierlift eval-routing            the learned router's cost/quality curve
tierlift eval                    the local tier's accuracy and the AUROC of its confidence
tierlift calibrate               fit confidence and a workload's threshold into a policy
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from tierlift import advise, quality, reports, rollout
from tierlift.client import Completion, Tierlift, TierliftError
from tierlift.client._inputs import ADDRESS_VARIABLES, env_address
from tierlift.core.catalog import TIERS, tier_name
from tierlift.core.config import DEFAULT_CATALOG, secret
from tierlift.core.entry import StartupError
from tierlift.core.extras import MissingExtra
from tierlift.core.identity import with_key
from tierlift.deployment import Deployment, probe_provider
from tierlift.devstack import (
    StackError,
    StackRunning,
    lock_state_dir,
    read_keys,
    read_state,
    stack_from_environment,
)
from tierlift.evaluation import commands as evaluation_commands
from tierlift.reconcile import commands as reconcile_commands
from tierlift.router._policy_source import PolicyError, load_policy
from tierlift.v1 import assessor_pb2_grpc, common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc

STATE_DIR = Path(os.environ.get("TIERLIFT_STATE_DIR", ".tierlift"))
KEY_HELP = "API key (default: TIERLIFT_API_KEY, or the key `tierlift up` wrote)"


def _channel(args: argparse.Namespace, service: str) -> grpc.Channel:
    """A channel to the router or the ledger with the caller's key: --key, TIERLIFT_API_KEY, or
    the key `tierlift up` wrote (the app key for the router, the admin key for the ledger)."""
    address = _address(getattr(args, service, None), service)
    key = (
        args.key
        or os.environ.get("TIERLIFT_API_KEY")
        or read_keys(STATE_DIR).get("app" if service == "router" else "admin", "")
    )
    return with_key(grpc.insecure_channel(address), key)


def _address(explicit: str | None, service: str) -> str:
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


def cmd_up(args: argparse.Namespace) -> int:
    catalog_path = Path(args.catalog) if args.catalog else DEFAULT_CATALOG
    policy_path = Path(args.policy) if args.policy else None
    if policy_path is not None:
        load_policy(policy_path)  # a bad policy stops here, naming the file, before anything starts
    try:
        lock = lock_state_dir(STATE_DIR)  # before anything in the folder is written
    except StackRunning as exc:
        print(f"tierlift: {exc}", file=sys.stderr)
        return 1
    stack, deployment = stack_from_environment(
        STATE_DIR, catalog_path, dict(os.environ), probe_provider, args.region or "", policy_path, args.port,
        args.topology,
    )  # fmt: skip
    stack.lock = lock
    started = time.perf_counter()
    stack.start()
    print(f"tierlift is up in {time.perf_counter() - started:.1f}s")
    print(f'  router  {stack.addrs["router"]}   (tierlift ask "...")')
    print(f"  ledger  {stack.addrs['ledger']}   (tierlift spend)")
    print(f"  nats    {stack.nats_url}   logs in {STATE_DIR / 'logs'}")
    print("OpenAI-compatible edge, for any OpenAI SDK (paste into a shell):")
    print(f"  export OPENAI_BASE_URL={stack.openai_base_url}")
    print(f"  export OPENAI_API_KEY={stack.keys['app']}")
    print(f"Web console: {stack.console_url}   (log in with the admin key in {STATE_DIR / 'keys.json'})")
    print(_banner(deployment))
    print("Ctrl-C stops everything; a service that exits is restarted.")
    stack.serve_until_signalled(lambda line: print(f"tierlift: {line}", file=sys.stderr, flush=True))
    codes = stack.stop()
    print("stopped: " + ", ".join(f"{n}={c}" for n, c in codes.items()))
    return 0 if all(c == 0 for c in codes.values()) else 1


def _banner(deployment: Deployment) -> str:
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


def _client(args: argparse.Namespace) -> Tierlift:
    """The client library, as every app calls the router: one way to call it, not two."""
    address = _address(args.router, "router")
    key = args.key or os.environ.get("TIERLIFT_API_KEY") or read_keys(STATE_DIR).get("app", "")
    return Tierlift(address, api_key=key, tenant=args.tenant, workload=args.workload, timeout_s=args.timeout)


def _constraints(args: argparse.Namespace) -> dict[str, Any]:
    return {"max_tokens": args.max_tokens, "idempotency_key": args.idempotency_key or None,
            "data_class": args.data_class, "region": args.region, "allowed_tiers": args.tiers}  # fmt: skip


def _tiers(text: str) -> list[str]:
    """`--tiers local,closed` -> ["LOCAL", "CLOSED"]; argparse prints the error with the flag's name."""
    names = [t.strip().upper() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in TIERS]
    if unknown or not names:
        choices = ", ".join(TIERS).lower()
        raise argparse.ArgumentTypeError(f"{', '.join(unknown) or repr(text)}: choose from {choices}")
    return names


def cmd_ask(args: argparse.Namespace) -> int:
    with _client(args) as tl:
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
    with _client(args) as tl:
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


def cmd_spend(args: argparse.Namespace) -> int:
    query = ledger_pb2.SpendQuery(tenant=args.tenant or "", workload=args.workload or "")
    report = _ledger(args).GetSpend(query, timeout=10)
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


def _ledger(args: argparse.Namespace) -> ledger_pb2_grpc.LedgerStub:
    return ledger_pb2_grpc.LedgerStub(_channel(args, "ledger"))


def cmd_keys(args: argparse.Namespace) -> int:
    if args.keys_command == "create" and (args.database_url or os.environ.get("TIERLIFT_DATABASE_URL_FILE")):
        return _create_key_in_database(args)
    ledger = _ledger(args)
    if args.keys_command == "create":
        workloads = [w for w in (args.workloads or "").split(",") if w]
        request = ledger_pb2.KeyRequest(tenant=args.tenant or "", role=args.role, workloads=workloads,
                                        expires_at=args.expires or "", description=args.description or "")  # fmt: skip
        created = ledger.CreateKey(request, timeout=10)
        print(f"{created.secret}\n(shown once: store it now) key id {created.key.key_id}, role {created.key.role}, "
              f"tenant {created.key.tenant or '(all)'}")  # fmt: skip
        return 0
    if args.keys_command in ("revoke", "rotate") and not args.key_id:
        raise ValueError(f"keys {args.keys_command}: name the key id (`tierlift keys list` shows them)")
    if args.keys_command == "revoke":
        revoked = ledger.RevokeKey(ledger_pb2.KeyId(key_id=args.key_id), timeout=10)
        print(f"revoked {revoked.key_id} at {revoked.revoked_at}")
        return 0
    if args.keys_command == "rotate":
        grace_s = int(rollout.duration_s(args.grace, "--grace"))
        if grace_s < 1:
            raise ValueError("--grace: at least 1s (to stop a key now, revoke it)")
        rotated = ledger.RotateKey(ledger_pb2.KeyRotation(key_id=args.key_id, grace_s=grace_s), timeout=10)
        print(f"{rotated.secret}\n(shown once: store it now) key id {rotated.key.key_id} replaces {args.key_id}, "
              f"which keeps working for {args.grace}")  # fmt: skip
        return 0
    for k in ledger.ListKeys(ledger_pb2.KeyQuery(tenant=args.tenant or ""), timeout=10).keys:
        state = f"revoked {k.revoked_at}" if k.revoked_at else f"expires {k.expires_at or 'never'}"
        print(f"{k.key_id}  {k.role:<8} {k.tenant or '(all)':<12} {','.join(k.workloads) or '*':<16} "
              f"created {k.created_at}  last used {k.last_used_at or 'never'}  {state}  {k.description}")  # fmt: skip
    return 0


def _create_key_in_database(args: argparse.Namespace) -> int:
    """The first admin key of a deployment, written straight into the ledger's database (the
    running ledger publishes it within seconds)."""
    from tierlift.ledger._keys import KeyStore, key_row
    from tierlift.ledger._store import make_engine

    workloads = [w for w in (args.workloads or "").split(",") if w]
    request = ledger_pb2.KeyRequest(tenant=args.tenant or "", role=args.role, workloads=workloads,
                                    expires_at=args.expires or "", description=args.description or "")  # fmt: skip
    row, key = key_row(request, datetime.now(UTC))
    engine = make_engine(args.database_url or secret("TIERLIFT_DATABASE_URL"))
    try:
        KeyStore(engine).create(row)
    finally:
        engine.dispose()
    print(f"{key}\n(shown once: store it now) key id {row['key_id']}, role {row['role']}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    entries = _ledger(args).ListAudit(ledger_pb2.AuditQuery(since=args.since or "", limit=args.limit), timeout=10)
    for e in entries.entries:
        print(f"{e.occurred_at}  {e.actor:<14} {e.action:<12} {e.target}  {e.detail}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    query = ledger_pb2.SpendQuery(tenant=args.tenant or "", workload=args.workload or "", since=args.since or "")
    report = _ledger(args).GetReport(query, timeout=30)
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


def cmd_budget(args: argparse.Namespace) -> int:
    ledger = _ledger(args)
    if args.budget_command == "delete" and not args.tenant:
        raise ValueError("--tenant: budget delete needs the tenant whose budget it is")
    if args.budget_command == "set":
        budget = ledger_pb2.Budget(tenant=args.tenant, workload=args.workload or "", period=args.period,
                                   limit_usd=args.limit, soft_ratio=args.soft_ratio, action=args.action,
                                   strict=args.strict)  # fmt: skip
        budgets = [ledger.SetBudget(budget, timeout=10)]
    elif args.budget_command == "delete":
        which = ledger_pb2.Budget(tenant=args.tenant, workload=args.workload or "", period=args.period)
        deleted = ledger.DeleteBudget(which, timeout=10)
        print(f"deleted the {args.period} budget of {deleted.tenant} {deleted.workload or '(all workloads)'}: "
              f"{deleted.spent_usd} of {deleted.limit_usd} USD, at limit: {deleted.action}")  # fmt: skip
        return 0
    else:
        budgets = list(ledger.ListBudgets(ledger_pb2.BudgetQuery(tenant=args.tenant or ""), timeout=10).budgets)
    for b in budgets:
        print(f"{b.tenant:<12} {b.workload or '(all)':<12} {b.period:<6} {b.spent_usd} of {b.limit_usd} USD  "
              f"{b.state}  at limit: {b.action}" + ("  strict" if b.strict else ""))  # fmt: skip
    return 0


def cmd_nats_users(args: argparse.Namespace) -> int:
    """Fresh NATS users for a deployment: the seeds go in a Secret, the public keys in values
    and in the NATS servers' authorization block."""
    from tierlift.core.nats_access import new_seed, public_key, server_authorization

    seeds = {role: new_seed() for role in ("router", "ledger", "assessor", "bootstrap", "observer")}
    keys = {role: public_key(seed) for role, seed in seeds.items()}
    print("# 1. the seeds, as a Secret (nats.auth.existingSecret); keep the observer's for read-only tools")
    print(f"kubectl create secret generic {args.secret} \\")
    print(f"  --from-literal=ROUTER_NATS_SEED={seeds['router']} --from-literal=LEDGER_NATS_SEED={seeds['ledger']} \\")
    print(f"  --from-literal=ASSESSOR_NATS_SEED={seeds['assessor']} \\")
    print(f"  --from-literal=BOOTSTRAP_NATS_SEED={seeds['bootstrap']}")
    print(f"# observer seed (not in the Secret): {seeds['observer']}")
    print("\n# 2. values (public keys, not secret)")
    print(f"nats:\n  auth:\n    enabled: true\n    existingSecret: {args.secret}")
    for role, key in keys.items():
        print(f"    {role}Nkey: {key}")
    print("\n# 3. an external NATS server's authorization block (the chart's own NATS renders it)")
    print(server_authorization({key: role for role, key in keys.items()}), end="")
    return 0


def cmd_bus_bootstrap(args: argparse.Namespace) -> int:
    """Create the stream, key-value buckets and durable consumers (core/bus_layout.py) as the
    bootstrap identity: TIERLIFT_NATS_URL, TIERLIFT_NATS_SEED (its seed), TLS as for a service."""
    from tierlift.core.config import BusSettings, load_settings
    from tierlift.devstack import run_bootstrap

    settings = load_settings(BusSettings)
    run_bootstrap(settings.nats_url, settings.nats_seed(), settings.tls(), settings.stream_replicas)
    print(f"bus ready at {settings.nats_url}: stream, buckets and durable consumers configured")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from tierlift.core import migrations

    url = args.database_url or secret("TIERLIFT_DATABASE_URL")
    if not url:
        STATE_DIR.mkdir(exist_ok=True)
        url = f"sqlite:///{STATE_DIR / 'ledger.db'}"
    migrations.upgrade(url)
    print(f"migrated {url}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from tierlift.combined import run
    from tierlift.core.entry import run_service

    run_service(lambda: run(args.components))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tierlift", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
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
    for name, func in (("ask", cmd_ask), ("plan", cmd_plan)):
        p = sub.add_parser(name, help="route one request" if name == "ask" else "dry run: show the ladder")
        p.add_argument("prompt")
        p.add_argument("--tenant", help="the tenant an admin key acts for (default: the key's own tenant)")
        p.add_argument("--workload", default="cli")
        p.add_argument("--data-class", choices=["public", "internal", "confidential", "regulated"])
        p.add_argument("--region")
        p.add_argument("--tiers", type=_tiers, default=[], help="allowed tiers, e.g. local,closed (default: all)")
        if name == "ask":
            p.add_argument("--stream", action="store_true", help="print the answer as it is generated")
        p.add_argument("--max-tokens", type=int, default=64)
        p.add_argument("--idempotency-key")
        p.add_argument("--router", help="router address (default: TIERLIFT_ADDRESS or the running stack)")
        p.add_argument("--key", help=KEY_HELP)
        p.add_argument("--timeout", type=float, default=120.0)
        p.add_argument("--json", action="store_true", help="print the whole response as JSON")
        p.set_defaults(func=func)
    spend = sub.add_parser("spend", help="spend by tenant, workload, tier and model")
    spend.add_argument("--tenant")
    spend.add_argument("--workload")
    spend.add_argument("--ledger", help="ledger address (default: TIERLIFT_LEDGER_ADDRESS or the running stack)")
    spend.add_argument("--key", help=KEY_HELP)
    spend.set_defaults(func=cmd_spend)
    ledger_help = "ledger address (default: TIERLIFT_LEDGER_ADDRESS or the running stack)"
    report = sub.add_parser("report", help="spend by day and tier, routing distribution, escalation rate")
    report.add_argument("--tenant")
    report.add_argument("--workload")
    report.add_argument("--since", help="RFC 3339 timestamp")
    report.add_argument("--csv", help="also write the rows to this CSV file")
    report.add_argument("--html", help="also write a chart of spend over time by tier to this HTML file")
    report.add_argument("--ledger", help=ledger_help)
    report.add_argument("--key", help=KEY_HELP)
    report.set_defaults(func=cmd_report)
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
    budget.add_argument("--ledger", help=ledger_help)
    budget.add_argument("--key", help=KEY_HELP)
    budget.set_defaults(func=cmd_budget)
    keys = sub.add_parser("keys", help="create, list, revoke or rotate API keys (admin)")
    keys.add_argument("keys_command", choices=["create", "list", "revoke", "rotate"])
    keys.add_argument("key_id", nargs="?", help="revoke, rotate: the key id")
    keys.add_argument("--grace", default="24h", help="rotate: how long the old key keeps working (default 24h)")
    keys.add_argument("--tenant")
    keys.add_argument("--role", choices=["app", "viewer", "finance", "admin"], default="app")
    keys.add_argument("--workloads", help="app keys: comma-separated workloads it may use (default: all)")
    keys.add_argument("--expires", help="RFC 3339 time the key stops working (default: never)")
    keys.add_argument("--description")
    keys.add_argument("--database-url", help="create: write the key straight into this database (the first admin key)")
    keys.add_argument("--ledger", help=ledger_help)
    keys.add_argument("--key", help=KEY_HELP)
    keys.set_defaults(func=cmd_keys)
    audit = sub.add_parser("audit", help="admin actions: keys created and revoked, budgets set")
    audit.add_argument("--since", help="RFC 3339 timestamp")
    audit.add_argument("--limit", type=int, default=100)
    audit.add_argument("--ledger", help=ledger_help)
    audit.add_argument("--key", help=KEY_HELP)
    audit.set_defaults(func=cmd_audit)
    advise.register(sub, _ledger, ledger_help)
    quality.register(
        sub,
        _ledger,
        lambda args: router_pb2_grpc.RouterStub(_channel(args, "router")),
        lambda args: assessor_pb2_grpc.AssessorStub(_channel(args, "assessor")),
        KEY_HELP,
    )
    rollout.register(sub, lambda args: assessor_pb2_grpc.AssessorStub(_channel(args, "assessor")), KEY_HELP)
    nats_users = sub.add_parser("nats-users", help="make NATS user seeds and their permissions for a deployment")
    nats_users.add_argument("--secret", default="tierlift-nats-users", help="the Secret's name")
    nats_users.set_defaults(func=cmd_nats_users)
    bus = sub.add_parser("bus-bootstrap", help="create the stream, buckets and consumers (the bootstrap identity)")
    bus.set_defaults(func=cmd_bus_bootstrap)
    migrate = sub.add_parser("migrate", help="apply the ledger's Alembic migrations")
    migrate.add_argument("--database-url")
    migrate.set_defaults(func=cmd_migrate)
    evaluation_commands.register(sub, _ledger)
    reconcile_commands.register(sub, _ledger, ledger_help, KEY_HELP)
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


if __name__ == "__main__":
    sys.exit(main())

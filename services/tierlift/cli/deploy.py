"""Commands for a deployment rather than the embedded stack: `tierlift nats-users` (NATS user
seeds and permissions), `bus-bootstrap` (the stream, buckets and consumers) and `migrate` (the
ledger's database)."""

from __future__ import annotations

import argparse
from typing import Any

from tierlift.cli import _connect
from tierlift.core.config import secret


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
        _connect.STATE_DIR.mkdir(exist_ok=True)
        url = f"sqlite:///{_connect.STATE_DIR / 'ledger.db'}"
    migrations.upgrade(url)
    print(f"migrated {url}")
    return 0


def register(sub: Any) -> None:
    nats_users = sub.add_parser("nats-users", help="make NATS user seeds and their permissions for a deployment")
    nats_users.add_argument("--secret", default="tierlift-nats-users", help="the Secret's name")
    nats_users.set_defaults(func=cmd_nats_users)
    bus = sub.add_parser("bus-bootstrap", help="create the stream, buckets and consumers (the bootstrap identity)")
    bus.set_defaults(func=cmd_bus_bootstrap)
    migrate = sub.add_parser("migrate", help="apply the ledger's Alembic migrations")
    migrate.add_argument("--database-url")
    migrate.set_defaults(func=cmd_migrate)

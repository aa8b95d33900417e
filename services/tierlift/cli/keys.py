"""`tierlift keys create|list|revoke|rotate` (API keys, admin) and `tierlift audit` (the admin
actions on keys and budgets)."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from typing import Any

from tierlift import rollout
from tierlift.cli._connect import KEY_HELP, LEDGER_HELP, Stub
from tierlift.core.config import secret
from tierlift.v1 import ledger_pb2


def _key_request(args: argparse.Namespace) -> ledger_pb2.KeyRequest:
    workloads = [w for w in (args.workloads or "").split(",") if w]
    return ledger_pb2.KeyRequest(tenant=args.tenant or "", role=args.role, workloads=workloads,
                                 expires_at=args.expires or "", description=args.description or "")  # fmt: skip


def cmd_keys(args: argparse.Namespace, ledger: Stub) -> int:
    if args.keys_command == "create" and (args.database_url or os.environ.get("TIERLIFT_DATABASE_URL_FILE")):
        return _create_key_in_database(args)
    if args.keys_command in ("revoke", "rotate") and not args.key_id:
        raise ValueError(f"keys {args.keys_command}: name the key id (`tierlift keys list` shows them)")
    stub = ledger(args)
    if args.keys_command == "create":
        created = stub.CreateKey(_key_request(args), timeout=10)
        print(f"{created.secret}\n(shown once: store it now) key id {created.key.key_id}, role {created.key.role}, "
              f"tenant {created.key.tenant or '(all)'}")  # fmt: skip
        return 0
    if args.keys_command == "revoke":
        revoked = stub.RevokeKey(ledger_pb2.KeyId(key_id=args.key_id), timeout=10)
        print(f"revoked {revoked.key_id} at {revoked.revoked_at}")
        return 0
    if args.keys_command == "rotate":
        grace_s = int(rollout.duration_s(args.grace, "--grace"))
        if grace_s < 1:
            raise ValueError("--grace: at least 1s (to stop a key now, revoke it)")
        rotated = stub.RotateKey(ledger_pb2.KeyRotation(key_id=args.key_id, grace_s=grace_s), timeout=10)
        print(f"{rotated.secret}\n(shown once: store it now) key id {rotated.key.key_id} replaces {args.key_id}, "
              f"which keeps working for {args.grace}")  # fmt: skip
        return 0
    for k in stub.ListKeys(ledger_pb2.KeyQuery(tenant=args.tenant or ""), timeout=10).keys:
        state = f"revoked {k.revoked_at}" if k.revoked_at else f"expires {k.expires_at or 'never'}"
        print(f"{k.key_id}  {k.role:<8} {k.tenant or '(all)':<12} {','.join(k.workloads) or '*':<16} "
              f"created {k.created_at}  last used {k.last_used_at or 'never'}  {state}  {k.description}")  # fmt: skip
    return 0


def _create_key_in_database(args: argparse.Namespace) -> int:
    """The first admin key of a deployment, written straight into the ledger's database (the
    running ledger publishes it within seconds)."""
    from tierlift.ledger._keys import KeyStore, key_row
    from tierlift.ledger._store import make_engine

    row, key = key_row(_key_request(args), datetime.now(UTC))
    engine = make_engine(args.database_url or secret("TIERLIFT_DATABASE_URL"))
    try:
        KeyStore(engine).create(row)
    finally:
        engine.dispose()
    print(f"{key}\n(shown once: store it now) key id {row['key_id']}, role {row['role']}")
    return 0


def cmd_audit(args: argparse.Namespace, ledger: Stub) -> int:
    entries = ledger(args).ListAudit(ledger_pb2.AuditQuery(since=args.since or "", limit=args.limit), timeout=10)
    for e in entries.entries:
        print(f"{e.occurred_at}  {e.actor:<14} {e.action:<12} {e.target}  {e.detail}")
    return 0


def register_keys(sub: Any, ledger: Stub) -> None:
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
    keys.add_argument("--ledger", help=LEDGER_HELP)
    keys.add_argument("--key", help=KEY_HELP)
    keys.set_defaults(func=lambda args: cmd_keys(args, ledger))


def register_audit(sub: Any, ledger: Stub) -> None:
    audit = sub.add_parser("audit", help="admin actions: keys created and revoked, budgets set")
    audit.add_argument("--since", help="RFC 3339 timestamp")
    audit.add_argument("--limit", type=int, default=100)
    audit.add_argument("--ledger", help=LEDGER_HELP)
    audit.add_argument("--key", help=KEY_HELP)
    audit.set_defaults(func=lambda args: cmd_audit(args, ledger))

"""A policy change on a router is an audited admin action: applied or refused, it appears in
the ledger's audit trail (`tierlift audit`), through JetStream, on the real processes."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from tierlift.core.config import DEFAULT_CATALOG
from tierlift.devstack import Stack
from tierlift.v1 import ledger_pb2, ledger_pb2_grpc

POLICY = DEFAULT_CATALOG.parent.parent / "policy" / "dev.yaml"


def audit_actions(stack: Stack) -> list[tuple[str, str]]:
    with stack.channel("ledger") as channel:
        entries = ledger_pb2_grpc.LedgerStub(channel).ListAudit(ledger_pb2.AuditQuery(), timeout=10).entries
    return [(e.action, e.target) for e in entries]


def wait_for(stack: Stack, wanted: tuple[str, str]) -> None:
    deadline = time.monotonic() + 20
    while wanted not in audit_actions(stack):
        assert time.monotonic() < deadline, f"{wanted} not in {audit_actions(stack)}"
        time.sleep(0.2)


def test_policy_changes_applied_or_refused_are_audited(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy = yaml.safe_load(POLICY.read_text())
    policy_file.write_text(yaml.safe_dump(policy))
    stack = Stack(
        tmp_path / "stack", extra_env={"TIERLIFT_POLICY": str(policy_file), "TIERLIFT_POLICY_RELOAD_S": "0.2"}
    )
    stack.start()
    try:
        policy_file.write_text(yaml.safe_dump(policy | {"version": "dev-2", "confidence_threshold": 0.4}))
        wait_for(stack, ("policy.applied", "dev-2"))
        policy_file.write_text(yaml.safe_dump(policy | {"version": "dev-3", "confidence_threshold": 7}))
        wait_for(stack, ("policy.refused", "dev-2"))  # the version that stays in force
    finally:
        stack.stop()

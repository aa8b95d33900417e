"""Identity on the real stack: every RPC of every service wants a credential; the tenant comes
from the key; roles decide who may read, budget and manage keys; only routers may call the
classifier and the adapters; a revoked key stops working within seconds; admin actions are
audited."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import grpc
import pytest

from tests.stack_keys import app_key, wait_until_router_knows
from tests.topology import own_process
from tierlift.core.identity import with_key
from tierlift.devstack import Stack
from tierlift.v1 import (
    adapter_pb2,
    adapter_pb2_grpc,
    classifier_pb2,
    classifier_pb2_grpc,
    common_pb2,
    ledger_pb2,
    ledger_pb2_grpc,
    router_pb2,
    router_pb2_grpc,
)

HELLO = [common_pb2.Message(role="user", content="What is the capital of France?")]


def code_of(call: Callable[[], Any]) -> grpc.StatusCode:
    try:
        result = call()
        if hasattr(result, "__iter__") and not hasattr(result, "ListFields"):
            list(result)  # a server stream: the status comes with the first read
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return,attr-defined]
    return grpc.StatusCode.OK


def create_key(stack: Stack, **fields: Any) -> str:
    with stack.channel("ledger") as channel:
        created = ledger_pb2_grpc.LedgerStub(channel).CreateKey(ledger_pb2.KeyRequest(**fields), timeout=10)
    # the ledger knows the key before CreateKey returns; the routers learn it through JetStream
    if created.key.role == "app":
        wait_until_router_knows(stack, created.secret, created.key.tenant)
    return str(created.secret)


def test_every_rpc_of_every_service_wants_a_credential(stack: Stack) -> None:
    own_process(stack, "classifier")  # combined: the classifier and the adapters have no address to call

    def open_channel(name: str) -> grpc.Channel:
        return grpc.insecure_channel(stack.addrs[name])

    router = router_pb2_grpc.RouterStub(open_channel("router"))
    ledger = ledger_pb2_grpc.LedgerStub(open_channel("ledger"))
    classifier = classifier_pb2_grpc.ClassifierStub(open_channel("classifier"))
    adapter = adapter_pb2_grpc.ModelAdapterStub(open_channel("adapter-llamacpp-local"))
    request = router_pb2.CompleteRequest(tenant="dev", workload="cli", messages=HELLO)
    generate = adapter_pb2.GenerateRequest(model="gemma-3-270m-cpu", messages=HELLO)
    calls = {
        "Router.Complete": lambda: router.Complete(request, timeout=10),
        "Router.CompleteStream": lambda: router.CompleteStream(request, timeout=10),
        "Router.Plan": lambda: router.Plan(request, timeout=10),
        "Ledger.GetSpend": lambda: ledger.GetSpend(ledger_pb2.SpendQuery(), timeout=10),
        "Ledger.ListAttempts": lambda: ledger.ListAttempts(ledger_pb2.AttemptQuery(request_id="x"), timeout=10),
        "Ledger.GetReport": lambda: ledger.GetReport(ledger_pb2.SpendQuery(), timeout=10),
        "Ledger.SetBudget": lambda: ledger.SetBudget(ledger_pb2.Budget(tenant="dev"), timeout=10),
        "Ledger.ListBudgets": lambda: ledger.ListBudgets(ledger_pb2.BudgetQuery(), timeout=10),
        "Ledger.CreateKey": lambda: ledger.CreateKey(ledger_pb2.KeyRequest(role="admin"), timeout=10),
        "Ledger.ListKeys": lambda: ledger.ListKeys(ledger_pb2.KeyQuery(), timeout=10),
        "Ledger.RevokeKey": lambda: ledger.RevokeKey(ledger_pb2.KeyId(key_id="x"), timeout=10),
        "Ledger.RotateKey": lambda: ledger.RotateKey(ledger_pb2.KeyRotation(key_id="x"), timeout=10),
        "Ledger.DeleteBudget": lambda: ledger.DeleteBudget(ledger_pb2.Budget(tenant="dev"), timeout=10),
        "Ledger.ListAudit": lambda: ledger.ListAudit(ledger_pb2.AuditQuery(), timeout=10),
        "Classifier.Classify": lambda: classifier.Classify(classifier_pb2.ClassifyRequest(messages=HELLO), timeout=10),
        "ModelAdapter.Generate": lambda: adapter.Generate(generate, timeout=10),
        "ModelAdapter.GenerateStream": lambda: adapter.GenerateStream(generate, timeout=10),
        "ModelAdapter.Describe": lambda: adapter.Describe(adapter_pb2.DescribeRequest(), timeout=10),
    }
    codes = {name: code_of(call) for name, call in calls.items()}
    assert codes == {name: grpc.StatusCode.UNAUTHENTICATED for name in calls}
    forged = with_key(open_channel("router"), "tl_000000000000_not-a-real-key")
    assert (
        code_of(lambda: router_pb2_grpc.RouterStub(forged).Plan(request, timeout=10)) == grpc.StatusCode.UNAUTHENTICATED
    )


def test_the_tenant_comes_from_the_key(stack: Stack) -> None:
    key = app_key(stack, "tenant-a")
    with stack.channel("router", key) as channel:
        router = router_pb2_grpc.RouterStub(channel)
        plan = router.Plan(router_pb2.CompleteRequest(workload="faq", messages=HELLO), timeout=30)  # no tenant named
        assert plan.request_id
        other = router_pb2.CompleteRequest(tenant="tenant-b", workload="faq", messages=HELLO)
        with pytest.raises(grpc.RpcError) as err:
            router.Complete(other, timeout=30)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert "tenant-a" in err.value.details()  # type: ignore[attr-defined]


def test_an_app_key_limited_to_workloads_cannot_use_others(stack: Stack) -> None:
    key = create_key(stack, tenant="tenant-w", role="app", workloads=["faq"])
    with stack.channel("router", key) as channel:
        router = router_pb2_grpc.RouterStub(channel)
        router.Plan(router_pb2.CompleteRequest(tenant="tenant-w", workload="faq", messages=HELLO), timeout=30)
        refused = router_pb2.CompleteRequest(tenant="tenant-w", workload="payroll", messages=HELLO)
        assert code_of(lambda: router.Plan(refused, timeout=30)) == grpc.StatusCode.PERMISSION_DENIED


def test_roles_decide_who_reads_budgets_and_manages_keys(stack: Stack) -> None:
    viewer = create_key(stack, tenant="tenant-a", role="viewer")
    finance = create_key(stack, role="finance")
    with stack.channel("ledger", viewer) as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        assert (
            code_of(lambda: ledger.GetSpend(ledger_pb2.SpendQuery(tenant="tenant-a"), timeout=10)) == grpc.StatusCode.OK
        )
        assert code_of(lambda: ledger.GetSpend(ledger_pb2.SpendQuery(tenant="tenant-b"), timeout=10)) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        budget = ledger_pb2.Budget(tenant="tenant-b", period="day", limit_usd="0", action="reject")
        assert code_of(lambda: ledger.SetBudget(budget, timeout=10)) == grpc.StatusCode.PERMISSION_DENIED
        assert code_of(lambda: ledger.ListKeys(ledger_pb2.KeyQuery(), timeout=10)) == grpc.StatusCode.PERMISSION_DENIED
    with stack.channel("ledger", finance) as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        assert code_of(lambda: ledger.GetSpend(ledger_pb2.SpendQuery(), timeout=10)) == grpc.StatusCode.OK  # all
        assert code_of(lambda: ledger.ListAudit(ledger_pb2.AuditQuery(), timeout=10)) == grpc.StatusCode.OK
        budget = ledger_pb2.Budget(tenant="tenant-b", period="day", limit_usd="1", action="reject")
        assert code_of(lambda: ledger.SetBudget(budget, timeout=10)) == grpc.StatusCode.PERMISSION_DENIED
    with stack.channel("ledger", app_key(stack, "tenant-a")) as channel:  # an app key reads nothing
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        assert (
            code_of(lambda: ledger.GetSpend(ledger_pb2.SpendQuery(), timeout=10)) == grpc.StatusCode.PERMISSION_DENIED
        )


def test_only_routers_may_call_the_classifier_and_the_adapters(stack: Stack) -> None:
    own_process(stack, "adapter-llamacpp-local")
    key = app_key(stack, "tenant-a")
    with stack.channel("adapter-llamacpp-local", key) as channel:
        generate = adapter_pb2.GenerateRequest(model="gemma-3-270m-cpu", messages=HELLO)
        code = code_of(lambda: adapter_pb2_grpc.ModelAdapterStub(channel).Generate(generate, timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    with stack.channel("classifier", stack.keys["admin"]) as channel:
        request = classifier_pb2.ClassifyRequest(messages=HELLO)
        code = code_of(lambda: classifier_pb2_grpc.ClassifierStub(channel).Classify(request, timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED


def test_a_revoked_key_stops_working_within_seconds_and_the_audit_says_who_did_what(stack: Stack) -> None:
    key = create_key(stack, tenant="tenant-r", role="app", description="to revoke")
    plan = router_pb2.CompleteRequest(tenant="tenant-r", workload="faq", messages=HELLO)
    with stack.channel("router", key) as channel:
        router = router_pb2_grpc.RouterStub(channel)
        assert code_of(lambda: router.Plan(plan, timeout=30)) == grpc.StatusCode.OK
        key_id = key.split("_")[1]
        with stack.channel("ledger") as admin:
            ledger_pb2_grpc.LedgerStub(admin).RevokeKey(ledger_pb2.KeyId(key_id=key_id), timeout=10)
        revoked_at = time.monotonic()
        while code_of(lambda: router.Plan(plan, timeout=30)) != grpc.StatusCode.UNAUTHENTICATED:
            assert time.monotonic() - revoked_at < 5, "the router still accepts a revoked key"
            time.sleep(0.05)
    with stack.channel("ledger") as admin:
        entries = ledger_pb2_grpc.LedgerStub(admin).ListAudit(ledger_pb2.AuditQuery(), timeout=10).entries
    actions = [(e.action, e.target) for e in entries]
    assert ("key.revoked", key_id) in actions and ("key.created", key_id) in actions


def test_the_ledger_learns_when_each_key_was_last_used(stack: Stack) -> None:
    used = create_key(stack, tenant="tenant-u", role="app", description="used")
    idle = create_key(stack, tenant="tenant-u", role="viewer", description="never presented")
    before = time.time()
    with stack.channel("router", used) as channel:
        plan = router_pb2.CompleteRequest(tenant="tenant-u", workload="faq", messages=HELLO)
        router_pb2_grpc.RouterStub(channel).Plan(plan, timeout=30)

    def listed() -> dict[str, ledger_pb2.ApiKey]:
        with stack.channel("ledger") as admin:
            keys = ledger_pb2_grpc.LedgerStub(admin).ListKeys(ledger_pb2.KeyQuery(tenant="tenant-u"), timeout=10).keys
        return {k.key_id: k for k in keys}

    deadline = time.monotonic() + 15  # the routers report every TIERLIFT_KEY_USE_REPORT_S (1 s here)
    while not listed()[used.split("_")[1]].last_used_at:
        assert time.monotonic() < deadline, "the key's use never reached the ledger"
        time.sleep(0.2)
    last_used = datetime.fromisoformat(listed()[used.split("_")[1]].last_used_at)
    assert before - 1 <= last_used.timestamp() <= time.time()
    assert listed()[idle.split("_")[1]].last_used_at == ""

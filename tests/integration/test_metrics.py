"""Every service of the real stack serves Prometheus /metrics (TIERLIFT_METRICS_LISTEN), with the
GenAI semantic conventions' names and Tierlift's own once requests have gone through."""

from __future__ import annotations

import time
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.topology import process_of
from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2, router_pb2_grpc

from .test_stack import ask


def scrape(stack: Stack, service: str) -> dict[str, list[Sample]]:
    """The samples of `service`'s /metrics by metric family name, parsed as Prometheus parses them."""
    with urllib.request.urlopen(f"http://{stack.metrics_addrs[service]}/metrics", timeout=10) as reply:
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def wait_for(stack: Stack, service: str, family: str, timeout_s: float = 20) -> list[Sample]:
    deadline = time.monotonic() + timeout_s
    while True:
        found = scrape(stack, service).get(family)
        if found or time.monotonic() > deadline:
            assert found, f"{service} has no {family} within {timeout_s}s"
            return found
        time.sleep(0.2)


def test_every_service_serves_metrics_on_a_port_of_its_own(stack: Stack) -> None:
    assert set(stack.metrics_addrs) == set(stack.services)
    assert len(set(stack.metrics_addrs.values())) == len(stack.services)
    for service in stack.services:
        families = scrape(stack, service)
        assert "process_cpu_seconds" in families  # the process collector, in the service's own registry
        for info in families.get("target_info", []):  # there once the service has measured something
            assert info.labels["service_name"] == f"tierlift-{service}"


def test_a_request_shows_in_the_genai_and_tierlift_metrics(
    stack: Stack, router: router_pb2_grpc.RouterStub, ledger: ledger_pb2_grpc.LedgerStub
) -> None:
    reply = router.Complete(ask("What is the capital of France?"), timeout=120)
    # refused: regulated data may only go to the local tier, and the caller allows only frontier
    refused = ask("my records", constraints=router_pb2.Constraints(
        data_class=common_pb2.DATA_CLASS_REGULATED, allowed_tiers=[common_pb2.TIER_FRONTIER]))  # fmt: skip
    with pytest.raises(grpc.RpcError) as failed:
        router.Plan(refused, timeout=30)
    assert failed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    ledger.SetBudget(ledger_pb2.Budget(tenant="metricsprobe", period="day", limit_usd="5", action="reject"), timeout=10)

    router_metrics = scrape(stack, "router")
    tokens = {
        s.labels["gen_ai_token_type"] for s in router_metrics["gen_ai_client_token_usage"] if s.name.endswith("_count")
    }
    assert tokens >= {"input", "output"}
    assert any(s.labels["tierlift_outcome"] == "answered" for s in router_metrics["tierlift_requests"])
    [cost] = [s for s in router_metrics["tierlift_cost_USD"] if s.labels["gen_ai_request_model"] == reply.model]
    assert cost.labels["tierlift_tier"] == "LOCAL" and cost.value >= 0
    routed = router_metrics["tierlift_routed"]
    assert any(
        s.labels["tierlift_data_class"] == "REGULATED" and s.labels["tierlift_refused"] == "true" for s in routed
    )
    excluded = router_metrics["tierlift_data_class_exclusions"]
    assert {s.labels["tierlift_tier"] for s in excluded if s.labels["tierlift_data_class"] == "REGULATED"} >= {
        "FRONTIER"
    }
    assert "tierlift_request_duration_seconds" in router_metrics

    adapter = scrape(stack, process_of(stack, "adapter-llamacpp-local"))["gen_ai_client_operation_duration_seconds"]
    [count] = [s for s in adapter if s.name.endswith("_count") and s.labels["gen_ai_request_model"] == reply.model]
    assert count.value >= 1 and count.labels["gen_ai_provider_name"] == "llamacpp"
    assert count.labels["gen_ai_response_model"] == reply.model

    spend = wait_for(stack, "ledger", "tierlift_ledger_cost_USD")
    assert any(s.labels["gen_ai_request_model"] == reply.model and s.labels["tierlift_kind"] == "live" for s in spend)
    states = wait_for(stack, "ledger", "tierlift_budget_state")
    mine = {s.labels["tierlift_budget_state"]: s.value for s in states if s.labels["tierlift_tenant"] == "metricsprobe"}
    assert mine == {"ok": 1, "soft_exceeded": 0, "hard_exceeded": 0}

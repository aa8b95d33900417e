"""Prometheus /metrics (core/telemetry.py): the names the services export, and the Grafana
dashboards of the chart (helm/tierlift/dashboards) reading only those names."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client.parser import text_string_to_metric_families

from tests.metric_names import exported_types
from tierlift.core.entry import StartupError
from tierlift.core.telemetry import histogram_views, parse_listen, prometheus_reader

DASHBOARDS = Path(__file__).resolve().parents[2] / "helm" / "tierlift" / "dashboards"
METRIC = re.compile(r"\b((?:tierlift|gen_ai)_[a-zA-Z0-9_]+)\b")
LABELS = re.compile(r"\b(?:by|without|on|ignoring) \([^)]*\)|\{[^}]*\}")  # label names, not metrics
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


@pytest.fixture(scope="module")
def exported() -> dict[str, str]:
    return exported_types()


def test_the_genai_and_tierlift_names_are_exported(exported: dict[str, str]) -> None:
    assert exported["gen_ai_client_token_usage"] == "histogram"
    assert exported["gen_ai_client_operation_duration_seconds"] == "histogram"
    assert exported["gen_ai_client_operation_time_to_first_chunk_seconds"] == "histogram"
    for counter in ("tierlift_cost_USD_total", "tierlift_ledger_cost_USD_total", "tierlift_escalations_total",
                    "tierlift_routed_total", "tierlift_data_class_exclusions_total"):  # fmt: skip
        assert exported[counter] == "counter", counter
    for gauge in ("tierlift_budget_state", "tierlift_budget_spent_USD", "tierlift_rollout_percent"):
        assert exported[gauge] == "gauge", gauge


def test_a_reader_serves_the_sdk_meters_with_genai_buckets() -> None:
    reader, server, address = prometheus_reader("127.0.0.1:0")
    try:
        meter = MeterProvider(metric_readers=[reader], views=histogram_views()).get_meter("test")
        meter.create_histogram("gen_ai.client.token.usage", unit="{token}").record(10, {"gen_ai.token.type": "input"})
        meter.create_histogram("gen_ai.client.operation.duration", unit="s").record(0.3)
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as reply:
            families = {f.name: f for f in text_string_to_metric_families(reply.read().decode())}
    finally:
        server.shutdown()
    bounds = {s.labels["le"] for s in families["gen_ai_client_token_usage"].samples if "le" in s.labels}
    assert {"1", "16", "67108864", "+Inf"} <= bounds
    seconds = {s.labels["le"] for s in families["gen_ai_client_operation_duration_seconds"].samples if "le" in s.labels}
    assert {"0.01", "81.92"} <= seconds
    assert "process_cpu_seconds" in families


@pytest.mark.parametrize("value", ["", "host:port", "0.0.0.0:70000", "0.0.0.0:"])
def test_a_malformed_metrics_listen_fails_naming_the_variable(value: str) -> None:
    with pytest.raises(StartupError, match="TIERLIFT_METRICS_LISTEN"):
        parse_listen(value)


def test_metrics_listen_takes_host_and_port() -> None:
    assert parse_listen("0.0.0.0:9464") == ("0.0.0.0", 9464)
    assert parse_listen(":9464") == ("0.0.0.0", 9464)
    assert parse_listen("[::1]:9464") == ("::1", 9464)


def dashboards() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def test_there_is_an_overview_and_a_rollouts_and_budgets_dashboard() -> None:
    assert [p.name for p in dashboards()] == ["overview.json", "rollouts-budgets.json"]


@pytest.mark.parametrize("path", dashboards(), ids=lambda p: p.stem)
def test_every_dashboard_panel_queries_exported_metrics(path: Path, exported: dict[str, str]) -> None:
    board = json.loads(path.read_text())
    assert board["uid"].startswith("tierlift-") and board["panels"]
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource"]
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = METRIC.findall(LABELS.sub("", target["expr"]))
            assert names, (panel["title"], target["expr"])
            for name in names:
                family = next((name.removesuffix(s) for s in HISTOGRAM_SUFFIXES if name.endswith(s)), name)
                assert name in exported or exported.get(family) == "histogram", (panel["title"], name)


RECORDED = """
import json
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
from tierlift.assessor._metrics import record_rollout
from tierlift.core.catalog import load_catalog
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.ledger._metrics import record_budget, record_rows
from tierlift.router._metrics import record_plan
from tierlift.v1 import common_pb2, events_pb2, router_pb2
from decimal import Decimal
state = events_pb2.RolloutState(rollout_id="r1", workload="faq", to_model="m2", stages=[0, 5, 25], stage_index=1,
                                status="running")
record_rollout(state)
state.status = "paused"
record_rollout(state)
budget = {"tenant": "acme", "workload": "", "period": "day", "limit_usd": Decimal("2")}
record_budget(budget, Decimal("1.7"), "soft_exceeded")
attempt = {"attempt_index": 0, "tier": "LOCAL", "model": "m", "kind": "live", "cost_usd": Decimal("0.5")}
record_rows([{"attempts": [attempt], "request": {"cost_usd": Decimal("0.5")}}])
plan = router_pb2.RoutingPlan()
plan.classification.data_class = common_pb2.DATA_CLASS_REGULATED
catalog = load_catalog(DEFAULT_CATALOG)
frontier = next(m.id for m in catalog.models if m.tier == "FRONTIER")
plan.excluded.add(model=frontier, reason="data class REGULATED may not be sent to tier FRONTIER")
record_plan(plan, catalog)
points = []
for rm in reader.get_metrics_data().resource_metrics:
    for sm in rm.scope_metrics:
        for m in sm.metrics:
            points += [[m.name, dict(p.attributes), getattr(p, "value", None)] for p in m.data.data_points]
print(json.dumps(points))
"""


def recorded() -> list[tuple[str, dict[str, object], object]]:
    run = subprocess.run([sys.executable, "-c", RECORDED], check=True, capture_output=True, text=True, timeout=60)
    return [(name, labels, value) for name, labels, value in json.loads(run.stdout)]


def test_rollouts_budgets_spend_and_refusals_are_measured_where_they_happen() -> None:
    points = recorded()

    def value(name: str, **labels: object) -> object:
        [found] = [v for n, a, v in points if n == name and labels.items() <= a.items()]
        return found

    rollout = {"tierlift.rollout.id": "r1", "tierlift.workload": "faq", "tierlift.rollout.candidate": "m2"}
    assert value("tierlift.rollout.percent", **rollout) == 5 and value("tierlift.rollout.stage", **rollout) == 1
    statuses = {a["tierlift.rollout.status"]: v for n, a, v in points if n == "tierlift.rollout.status"}
    assert statuses == {"running": 0, "paused": 1, "completed": 0, "rolled_back": 0, "aborted": 0}
    budget = {"tierlift.tenant": "acme", "tierlift.workload": "_all", "tierlift.budget.period": "day"}
    assert value("tierlift.budget.spent", **budget) == 1.7 and value("tierlift.budget.limit", **budget) == 2.0
    states = {a["tierlift.budget.state"]: v for n, a, v in points if n == "tierlift.budget.state"}
    assert states == {"ok": 0, "soft_exceeded": 1, "hard_exceeded": 0}
    # a settled row's attempts are counted, its request row (the same money) is not
    assert value("tierlift.ledger.cost", **{"tierlift.tier": "LOCAL", "tierlift.kind": "live"}) == 0.5
    assert value("tierlift.routed", **{"tierlift.data_class": "REGULATED", "tierlift.refused": True}) == 1
    assert value("tierlift.data_class.exclusions", **{"tierlift.tier": "FRONTIER"}) == 1

"""The chart's Prometheus and Grafana side (metrics.*) and the web console on the gateway
(gateway.console.*): metrics ports and their scrape policy, the opt-in ServiceMonitor and
dashboard ConfigMaps, and the console's addresses, secret and NetworkPolicies."""

from __future__ import annotations

import json
from typing import Any

import helm_python as helm
import kubernetes_validate

from tests.unit.test_helm_chart import CHART, KUBE_VERSION, of_kind, overlay, render, values_for

COMPONENTS = ["router", "classifier", "ledger", "assessor", "gateway", "adapter-llamacpp-local"]
MONITORED = {
    "metrics": {
        "enabled": True,
        "port": 9464,
        "serviceMonitor": {"enabled": True, "labels": {"release": "kps"}},
        "dashboards": {"enabled": True, "annotations": {"grafana_folder": "Tierlift"}},
    }
}


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def peer_components(peer: dict[str, Any]) -> list[str]:
    return list(peer["podSelector"]["matchExpressions"][1]["values"])


def test_every_service_serves_metrics_on_a_named_port_by_default() -> None:
    docs = render({})
    deployments, services = of_kind(docs, "Deployment"), of_kind(docs, "Service")
    for component in COMPONENTS:
        name = f"sy-tierlift-{component}"
        assert env_of(deployments[name])["TIERLIFT_METRICS_LISTEN"] == "0.0.0.0:9464", name
        ports = deployments[name]["spec"]["template"]["spec"]["containers"][0]["ports"]
        assert {"name": "metrics", "containerPort": 9464, "protocol": "TCP"} in ports, name
        assert any(p["name"] == "metrics" and p["targetPort"] == "metrics" for p in services[name]["spec"]["ports"])
    assert not of_kind(docs, "ServiceMonitor")  # the CRD may be missing: opt-in
    assert not [d for d in docs if d["kind"] == "ConfigMap" and "dashboard" in d["metadata"]["name"]]


def test_only_the_scrapers_reach_the_metrics_port() -> None:
    scrapers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}]
    policy = of_kind(render({"metrics": {"enabled": True, "port": 9100, "scrapers": scrapers}}), "NetworkPolicy")[
        "sy-tierlift-metrics"
    ]["spec"]
    assert sorted(policy["podSelector"]["matchExpressions"][1]["values"]) == sorted(COMPONENTS)
    assert policy["ingress"] == [{"from": scrapers, "ports": [{"protocol": "TCP", "port": 9100}]}]


def test_metrics_off_leaves_no_port_variable_or_policy() -> None:
    docs = render({"metrics": {"enabled": False, "port": 9464, "serviceMonitor": {"enabled": True}}})
    assert "TIERLIFT_METRICS_LISTEN" not in env_of(of_kind(docs, "Deployment")["sy-tierlift-router"])
    assert "sy-tierlift-metrics" not in of_kind(docs, "NetworkPolicy")
    assert not of_kind(docs, "ServiceMonitor")


def test_the_service_monitor_selects_every_components_metrics_port() -> None:
    docs = render(overlay("values-prod.yaml") | MONITORED)
    [monitor] = of_kind(docs, "ServiceMonitor").values()
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["llm"]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("metrics", "/metrics", "30s")
    selected = monitor["spec"]["selector"]["matchExpressions"][2]["values"]
    services = {
        name.removeprefix("sy-tierlift-")
        for name, s in of_kind(docs, "Service").items()
        if any(p["name"] == "metrics" for p in s["spec"]["ports"])
    }
    assert set(selected) == services and "router" in services and "adapter-openai" in services
    for doc in docs:  # everything else still validates; the ServiceMonitor is a CRD's
        if doc["kind"] != "ServiceMonitor":
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


def test_in_combined_the_request_path_process_is_scraped_once() -> None:
    """One process serves one /metrics (the router's): its own Service has the metrics port, the
    router's and the gateway's Services (the same pods) have none, so no pod is scraped twice."""
    docs = render(values_for("values-dev.yaml", "combined") | MONITORED)
    [monitor] = of_kind(docs, "ServiceMonitor").values()
    selected = monitor["spec"]["selector"]["matchExpressions"][2]["values"]
    services = of_kind(docs, "Service")
    scraped = {
        name.removeprefix("sy-tierlift-")
        for name, s in services.items()
        if any(p["name"] == "metrics" for p in s["spec"]["ports"])
    }
    assert set(selected) == scraped == {"requestpath", "ledger", "assessor", "adapter-llamacpp-local"}
    pods = {s["spec"]["selector"]["app.kubernetes.io/component"] for n, s in services.items() if "-nats" not in n}
    assert pods == scraped  # the router's and the gateway's Services select the request-path pods
    request_path = of_kind(docs, "Deployment")["sy-tierlift-requestpath"]
    assert env_of(request_path)["TIERLIFT_METRICS_LISTEN"] == "0.0.0.0:9464"
    policy = of_kind(docs, "NetworkPolicy")["sy-tierlift-metrics"]["spec"]
    assert sorted(peer_components(policy)) == sorted(scraped)


def test_dashboards_are_config_maps_for_grafanas_sidecar() -> None:
    maps = {
        name: m
        for name, m in of_kind(render(MONITORED), "ConfigMap").items()
        if m["metadata"]["labels"].get("grafana_dashboard") == "1"
    }
    assert set(maps) == {"sy-tierlift-dashboard-overview", "sy-tierlift-dashboard-rollouts-budgets"}
    for name, config_map in maps.items():
        assert config_map["metadata"]["annotations"] == {"grafana_folder": "Tierlift"}
        [(key, text)] = config_map["data"].items()
        board = json.loads(text)
        assert key == f"tierlift-{name.removeprefix('sy-tierlift-dashboard-')}.json"
        assert board == json.loads((CHART / "dashboards" / key.removeprefix("tierlift-")).read_text())


def test_the_console_reads_the_ledger_and_assessor_with_a_generated_secret() -> None:
    docs = render({})
    gateway = of_kind(docs, "Deployment")["sy-tierlift-gateway"]
    env = env_of(gateway)
    assert env["TIERLIFT_LEDGER_ADDR"] == "dns:///sy-tierlift-ledger:50051"
    assert env["TIERLIFT_ASSESSOR_ADDR"] == "dns:///sy-tierlift-assessor:50051"
    assert env["TIERLIFT_CONSOLE_SECRET_FILE"] == "/var/run/secrets/tierlift/console/CONSOLE_SECRET"
    assert env["TIERLIFT_CONSOLE_SESSION_S"] == "28800"
    volumes = {v["name"]: v for v in gateway["spec"]["template"]["spec"]["volumes"]}
    assert volumes["console-secret"]["secret"]["secretName"] == "sy-tierlift-console"
    secret = of_kind(docs, "Secret")["sy-tierlift-console"]
    assert len(secret["data"]["CONSOLE_SECRET"]) >= 48
    policies = of_kind(docs, "NetworkPolicy")
    gateway_egress = policies["sy-tierlift-gateway"]["spec"]["egress"]
    assert [peer_components(rule["to"][0]) for rule in gateway_egress] == [["router"], ["ledger", "assessor"]]
    assert "gateway" in peer_components(policies["sy-tierlift-ledger"]["spec"]["ingress"][0]["from"][0])
    assert ["gateway"] in [
        peer_components(p) for p in policies["sy-tierlift-assessor"]["spec"]["ingress"][0]["from"] if "podSelector" in p
        and "matchExpressions" in p["podSelector"]
    ]  # fmt: skip


def test_the_console_takes_your_secret_or_can_be_switched_off() -> None:
    docs = render({"gateway": {"console": {"enabled": True, "existingSecret": "mine"}}})
    gateway = of_kind(docs, "Deployment")["sy-tierlift-gateway"]
    volumes = {v["name"]: v for v in gateway["spec"]["template"]["spec"]["volumes"]}
    assert volumes["console-secret"]["secret"]["secretName"] == "mine"
    assert "sy-tierlift-console" not in of_kind(docs, "Secret")

    off = render({"gateway": {"console": {"enabled": False}}})
    env = env_of(of_kind(off, "Deployment")["sy-tierlift-gateway"])
    assert not {"TIERLIFT_LEDGER_ADDR", "TIERLIFT_ASSESSOR_ADDR", "TIERLIFT_CONSOLE_SECRET_FILE"} & env.keys()
    assert "sy-tierlift-console" not in of_kind(off, "Secret")
    policies = of_kind(off, "NetworkPolicy")
    assert len(policies["sy-tierlift-gateway"]["spec"]["egress"]) == 1
    assert "gateway" not in peer_components(policies["sy-tierlift-ledger"]["spec"]["ingress"][0]["from"][0])


def test_monitoring_values_are_checked_by_the_schema() -> None:
    report = helm.lint(str(CHART), {"metrics": {"enabled": True, "port": 9464, "serviceMonitr": {}}}, strict=True)
    assert any("serviceMonitr" in e for e in report["errors"])
    report = helm.lint(str(CHART), {"gateway": {"console": {"enabled": True, "sessionHours": 0}}}, strict=True)
    assert report["errors"]

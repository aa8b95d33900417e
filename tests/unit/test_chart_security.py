"""What a cluster with "restricted" pod security and a security review expects of the chart:
NetworkPolicies per component (default deny), secrets mounted as files, restricted pod security
for every workload (vLLM included), CPU and memory limits, explicit namespaces, images by
digest when given; and Checkov 3.3.30 finds nothing on any rendered environment beyond skips
that say why."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.test_helm_chart import ENVIRONMENTS, TOPOLOGIES, of_kind, overlay, render, values_for

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = Path(os.environ.get("TIERLIFT_CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov"))
DIGEST = "sha256:" + "ab" * 32
PROD_PINNED = {
    **overlay("values-prod.yaml"),
    "image": {"repository": "registry.example.com/tierlift", "tag": "0.1.0", "digest": DIGEST},
    "vllm": {**overlay("values-prod.yaml")["vllm"], "image": f"vllm/vllm-openai@{DIGEST}"},
}
# and with the opt-in ServiceMonitor and Grafana dashboards (tests/unit/test_chart_monitoring.py)
MONITORED = {"metrics": {"enabled": True, "port": 9464, "serviceMonitor": {"enabled": True},
                         "dashboards": {"enabled": True}}}  # fmt: skip
VARIANTS = {env: overlay(env) for env in ENVIRONMENTS} | {
    "values-prod.yaml + digests": PROD_PINNED,
    "values-prod.yaml + monitoring": overlay("values-prod.yaml") | MONITORED,
    # the request path in one Deployment (topology combined)
    "values-dev.yaml + combined": values_for("values-dev.yaml", "combined"),
    "values-prod.yaml + combined + monitoring": values_for("values-prod.yaml", "combined") | MONITORED,
}


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    pod = workload["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_workload_fits_the_restricted_pod_security_standard(variant: str) -> None:
    for w in workloads(render(VARIANTS[variant])):
        pod = w["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"], w["metadata"]
        assert pod["automountServiceAccountToken"] is False, w["metadata"]["name"]
        for c in containers(w):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], c["name"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert {"cpu", "memory"} <= c["resources"]["limits"].keys(), c["name"]
            assert {"cpu", "memory"} <= c["resources"]["requests"].keys(), c["name"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_secrets_are_files_never_variables_and_every_object_has_a_namespace(variant: str) -> None:
    docs = render(VARIANTS[variant])
    for d in docs:
        assert d["metadata"]["namespace"] == "llm", (d["kind"], d["metadata"]["name"])
    for w in workloads(docs):
        for c in containers(w):
            assert "envFrom" not in c, c["name"]
            assert not [e for e in c.get("env", []) if "valueFrom" in e], c["name"]


def test_images_are_pinned_by_digest_when_one_is_given() -> None:
    for w in workloads(render(PROD_PINNED)):
        for c in containers(w):
            assert "@sha256:" in c["image"] and c["imagePullPolicy"] == "IfNotPresent", c["image"]


def _policies(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name.removeprefix("sy-tierlift-"): p["spec"] for name, p in of_kind(render(values), "NetworkPolicy").items()
    }


def test_every_provider_api_adapter_may_reach_the_internet_and_self_hosted_ones_may_not() -> None:
    values = overlay("values-prod.yaml")
    extra = {"azure-openai": "azure", "gemini": "gemini", "vertex-gemini": "vertex", "bedrock": "bedrock"}
    values["adapters"] |= {name: values["adapters"]["openai"] | {"backend": b} for name, b in extra.items()}
    selected = _policies(values)["to-providers"]["podSelector"]["matchExpressions"][1]["values"]
    assert selected == sorted(["adapter-anthropic", "adapter-openai", *(f"adapter-{name}" for name in extra)])


def test_network_policies_deny_by_default_and_open_only_what_each_component_needs() -> None:
    policies = _policies(overlay("values-prod.yaml"))
    deny = policies["default-deny"]
    assert deny["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "tierlift",
        "app.kubernetes.io/instance": "sy",
    }
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny
    assert [p["port"] for p in deny["egress"][0]["ports"]] == [53, 53]  # DNS only
    internet = policies["to-providers"]
    assert internet["podSelector"]["matchExpressions"][1]["values"] == ["adapter-anthropic", "adapter-openai"]
    assert internet["egress"] == [
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]}
    ]
    assert policies["vllm"]["policyTypes"] == ["Ingress"]  # and no egress rule of its own: DNS only
    assert policies["vllm"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][1]["values"] == [
        "adapter-vllm-local"
    ]
    backends = policies["from-router"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][1]["values"]
    assert backends == ["router"]
    apps = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"tierlift.io/client": "true"}}}
    gateway_and_assessor = {"podSelector": {"matchExpressions": [
        {"key": "app.kubernetes.io/instance", "operator": "In", "values": ["sy"]},
        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["gateway", "assessor"]}]}}  # fmt: skip
    assert policies["router"]["ingress"][0]["from"] == [apps, gateway_and_assessor]
    assessor = policies["assessor"]
    gateway = {"podSelector": {"matchExpressions": [
        {"key": "app.kubernetes.io/instance", "operator": "In", "values": ["sy"]},
        {"key": "app.kubernetes.io/component", "operator": "In", "values": ["gateway"]}]}}  # fmt: skip
    assert assessor["ingress"][0]["from"] == [  # admins, and the web console's rollouts page
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"tierlift.io/admin": "true"}}},
        gateway,
    ]
    assert [rule["ports"][0]["port"] for rule in assessor["egress"]] == [4222, 50051]
    assert policies["gateway"]["ingress"][0]["from"] == [apps]
    assert policies["gateway"]["egress"][0]["ports"] == [{"protocol": "TCP", "port": 50051}]


def test_network_policies_follow_the_combined_topology() -> None:
    """One policy for the request-path pods, with the ports they serve and what they call; the
    others name those pods where they named a component it hosts; none names a hosted one."""
    policies = _policies(values_for("values-prod.yaml", "combined"))
    assert {"router", "gateway", "from-router"}.isdisjoint(policies)  # every adapter is hosted
    apps = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"tierlift.io/client": "true"}}}

    def peer(*components: str) -> dict[str, Any]:
        return {"podSelector": {"matchExpressions": [
            {"key": "app.kubernetes.io/instance", "operator": "In", "values": ["sy"]},
            {"key": "app.kubernetes.io/component", "operator": "In", "values": list(components)}]}}  # fmt: skip

    request_path = policies["requestpath"]
    assert request_path["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "requestpath"
    assert request_path["ingress"] == [
        {"from": [apps, peer("assessor")], "ports": [{"protocol": "TCP", "port": 50051}]},  # the router's gRPC
        {"from": [apps], "ports": [{"protocol": "TCP", "port": 8080}]},  # the gateway's HTTP
    ]
    assert [r["ports"][0]["port"] for r in request_path["egress"]] == [4222, 50051]  # NATS; the console's reads
    assert request_path["egress"][1]["to"] == [peer("ledger", "assessor")]
    selected = {name: p["podSelector"]["matchExpressions"][1]["values"] for name, p in policies.items()
                if "matchExpressions" in p["podSelector"]}  # fmt: skip
    assert selected["to-providers"] == selected["vllm-adapters"] == ["requestpath"]
    assert policies["vllm"]["ingress"][0]["from"] == [peer("requestpath")]
    assert policies["ledger"]["ingress"][0]["from"][0] == peer("requestpath", "assessor")
    assert policies["assessor"]["egress"][1]["to"] == [peer("requestpath", "ledger")]
    assert selected["metrics"] == ["requestpath", "ledger", "assessor"]

    dev = _policies(values_for("values-dev.yaml", "combined"))  # llama.cpp's adapter stays its own pod
    assert dev["requestpath"]["egress"][0]["to"] == [peer("adapter-llamacpp-local")]
    assert dev["from-router"]["ingress"][0]["from"] == [peer("requestpath")]
    assert dev["nats"]["ingress"][0]["from"] == [peer("requestpath", "ledger", "assessor", "bus-bootstrap")]


def test_network_policies_can_be_switched_off_for_clusters_without_a_controller() -> None:
    assert _policies({"networkPolicy": {"enabled": False}}) == {}


@pytest.mark.parametrize("variant", VARIANTS)
def test_checkov_finds_nothing_but_justified_skips(variant: str, tmp_path: Path) -> None:
    assert CHECKOV.exists(), f"{CHECKOV} is missing: `make test` installs Checkov into .venv-checkov"
    manifest = tmp_path / "chart.yaml"
    manifest.write_text(yaml.safe_dump_all(render(VARIANTS[variant])))
    run = subprocess.run(
        [str(CHECKOV), "-f", str(manifest), "--framework", "kubernetes", "--compact", "-o", "json"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    report = json.loads(run.stdout)
    failed = [(f["check_id"], f["resource"]) for f in report["results"]["failed_checks"]]
    assert failed == [], failed
    assert report["summary"]["passed"] > 100 and report["summary"]["parsing_errors"] == 0
    for skipped in report["results"]["skipped_checks"]:
        assert len(skipped["check_result"]["suppress_comment"]) > 20, skipped  # every skip says why


@pytest.mark.parametrize("topology", TOPOLOGIES)
def test_router_classifier_and_adapters_share_one_router_key_and_the_ledger_has_none(topology: str) -> None:
    docs = render(values_for("values-prod.yaml", topology))
    [secret] = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "sy-tierlift-router-key"]
    assert len(secret["data"]["ROUTER_KEY"]) >= 48
    for name, deployment in of_kind(docs, "Deployment").items():
        if "vllm" in name or name.endswith(("-gateway", "-assessor")):  # they call no classifier or adapter
            continue
        pod = deployment["spec"]["template"]["spec"]
        env = {e["name"] for e in pod["containers"][0]["env"]}
        mounted = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        shares = "TIERLIFT_ROUTER_KEY_FILE" in env and "sy-tierlift-router-key" in mounted
        assert shares == (not name.endswith("-ledger")), name


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    expressions = selector.get("matchExpressions", [])
    assert all(e["operator"] == "In" for e in expressions), expressions  # the only operator the chart writes
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()) and all(
        labels.get(e["key"]) in e["values"] for e in expressions
    )


def _peer_matches(peer: dict[str, Any], pod: dict[str, str] | None) -> bool:
    """Whether a NetworkPolicyPeer admits `pod` (a pod of the release's namespace, by its labels)
    or, for None, an address outside the cluster."""
    if pod is None:
        return "ipBlock" in peer
    if "ipBlock" in peer:
        return False  # pod addresses are not matched by ipBlock (implementation-defined in Kubernetes)
    return _selects(peer.get("podSelector", {}), pod)  # a namespaceSelector {} or none: this namespace too


def _admitted(rules: list[dict[str, Any]], peers_key: str, other: dict[str, str] | None, port: int) -> bool:
    for rule in rules:
        ports = rule.get("ports")
        if ports and port not in [p["port"] for p in ports]:
            continue
        peers = rule.get(peers_key)
        if not peers or any(_peer_matches(p, other) for p in peers):
            return True
    return False


def may_connect(docs: list[dict[str, Any]], source: dict[str, str], dest: dict[str, str] | None, port: int) -> bool:
    """Whether the chart's NetworkPolicies let a pod labelled `source` open a connection to a pod
    labelled `dest` (None: outside the cluster) on `port`: the egress of every policy that
    isolates the source and the ingress of every policy that isolates the destination, as
    Kubernetes reads them (a pod no policy isolates is open that way)."""
    policies = [p["spec"] for p in of_kind(docs, "NetworkPolicy").values()]

    def open_to(pod: dict[str, str], kind: str, other: dict[str, str] | None) -> bool:
        rules, peers = ("egress", "to") if kind == "Egress" else ("ingress", "from")
        isolating = [p for p in policies if kind in p["policyTypes"] and _selects(p["podSelector"], pod)]
        return not isolating or any(_admitted(p.get(rules, []), peers, other, port) for p in isolating)

    return open_to(source, "Egress", dest) and (dest is None or open_to(dest, "Ingress", source))


def holders_of(env_name: str, topology: str) -> set[str]:
    """The components the production values hand `env_name` (a credential's file)."""
    return {
        w["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        for w in workloads(render(values_for("values-prod.yaml", topology)))
        if any(e["name"] == env_name for c in containers(w) for e in c.get("env", []))
    }


@pytest.mark.parametrize("topology", ["microservices", "combined"])
@pytest.mark.parametrize("env", ["values-dev.yaml", "values-prod.yaml"])
def test_every_workload_holding_a_nats_identity_may_reach_nats_and_no_other_may(env: str, topology: str) -> None:
    """Who connects to NATS is whoever the chart hands a NATS identity (a seed file, with NATS
    authorisation on: the production values); the policies must let each of them through, the
    Job that creates the bus's stream included, and nobody else."""
    holders = holders_of("TIERLIFT_NATS_SEED_FILE", topology)
    assert {"bus-bootstrap", "ledger", "assessor"} < holders
    docs = render(values_for(env, topology))
    nats = next(
        (
            w["spec"]["template"]["metadata"]["labels"]
            for w in workloads(docs)
            if w["metadata"]["name"] == "sy-tierlift-nats"
        ),
        None,
    )  # the chart's own NATS (dev), else the one outside (prod)
    for w in workloads(docs):
        labels = w["spec"]["template"]["metadata"]["labels"]
        component = labels["app.kubernetes.io/component"]
        if component == "nats":
            continue
        assert may_connect(docs, labels, nats, 4222) == (component in holders), (component, nats is not None)


@pytest.mark.parametrize("topology", ["microservices", "combined"])
def test_only_the_workloads_holding_the_database_url_may_reach_the_database(topology: str) -> None:
    holders = holders_of("TIERLIFT_DATABASE_URL_FILE", topology)
    assert holders == {"ledger", "migrate"}
    docs = render(values_for("values-prod.yaml", topology))
    for w in workloads(docs):
        labels = w["spec"]["template"]["metadata"]["labels"]
        component = labels["app.kubernetes.io/component"]
        assert may_connect(docs, labels, None, 5432) == (component in holders), component


def declared_calls(docs: list[dict[str, Any]]) -> list[tuple[str, dict[str, str], dict[str, str], int]]:
    """Every connection a workload is configured to open to another of the release: the gRPC
    addresses in its environment, and each catalog model's endpoint (from the pod that hosts the
    model's adapter: its own, or in `combined` the request path). (caller, its pod labels, the
    callee's pod labels, port)."""
    pods = {w["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: w for w in workloads(docs)}
    services = {name: s["spec"]["selector"] for name, s in of_kind(docs, "Service").items()}
    calls = []
    for component, w in pods.items():
        labels = w["spec"]["template"]["metadata"]["labels"]
        for c in containers(w):
            for e in c.get("env", []):
                for name, port in re.findall(r"dns:///([a-z0-9-]+):(\d+)", str(e.get("value", ""))):
                    calls.append((f"{component} {e['name']}", labels, services[name], int(port)))
    catalog = yaml.safe_load(of_kind(docs, "ConfigMap")["sy-tierlift-config"]["data"].get("catalog.yaml", "{}"))
    for model in catalog.get("models", []):  # (no catalog of its own: the packaged one names no pod)
        if match := re.match(r"https?://([a-z0-9-]+):(\d+)", model.get("endpoint", "")):
            host = pods.get(f"adapter-{model['adapter']}") or pods["requestpath"]
            labels = host["spec"]["template"]["metadata"]["labels"]
            calls.append((f"{model['id']} endpoint", labels, services[match[1]], int(match[2])))
    return calls


@pytest.mark.parametrize("topology", ["microservices", "combined"])
@pytest.mark.parametrize("env", ["values-dev.yaml", "values-prod.yaml"])
def test_every_call_a_workload_is_configured_to_make_is_let_through(env: str, topology: str) -> None:
    """Least privilege must not cut what the release itself wires: each address a component is
    given (and each self-hosted model's endpoint) passes the NetworkPolicies."""
    docs = render(values_for(env, topology))
    calls = declared_calls(docs)
    assert len(calls) >= 3
    for what, source, dest, port in calls:
        assert may_connect(docs, source, dest, port), (what, dest["app.kubernetes.io/component"], port)

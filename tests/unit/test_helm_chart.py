"""The chart lints and renders for every values file, and every rendered object validates
against the Kubernetes API schemas (offline, strict: unknown fields fail)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "helm" / "tierlift"
ENVIRONMENTS = ["values.yaml", "values-dev.yaml", "values-staging.yaml", "values-prod.yaml"]
KUBE_VERSION = "1.33.0"


def overlay(name: str) -> dict[str, Any]:
    return {} if name == "values.yaml" else yaml.safe_load((CHART / name).read_text())


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    manifests = helm.Chart.load(str(CHART)).render(values, name="sy", namespace="llm", is_install=True)
    docs = []
    for path, text in manifests.items():
        if path.endswith(".yaml"):
            docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_chart_lints_strictly(env: str) -> None:
    report = helm.lint(str(CHART), overlay(env), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_rendered_object_validates_against_kubernetes_schemas(env: str) -> None:
    for doc in render(overlay(env)):
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_service_pod_is_probed_non_root_and_bounded(env: str) -> None:
    for name, deployment in of_kind(render(overlay(env)), "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            assert {"readinessProbe", "livenessProbe", "startupProbe"} <= container.keys(), name
            assert container["resources"]["requests"] and container["resources"]["limits"], name


def test_unknown_values_are_rejected_by_the_schema() -> None:
    report = helm.lint(str(CHART), {"router": {"replicaz": 2}}, strict=True)
    assert any("replicaz" in e for e in report["errors"])


def test_dev_runs_nats_in_the_chart_and_sqlite_on_a_volume() -> None:
    docs = render(overlay("values-dev.yaml"))
    assert "sy-tierlift-nats" in of_kind(docs, "StatefulSet")
    ledger = of_kind(docs, "Deployment")["sy-tierlift-ledger"]["spec"]["template"]["spec"]
    assert ledger["initContainers"][0]["command"] == ["tierlift", "migrate"]
    # no external database to migrate from a hook; the bus bootstrap runs after every install
    assert list(of_kind(docs, "Job")) == ["sy-tierlift-bus-bootstrap-1"]


def test_prod_is_replicated_disruption_safe_and_schedules_vllm_on_gpus() -> None:
    docs = render(overlay("values-prod.yaml"))
    deployments = of_kind(docs, "Deployment")
    hpas = of_kind(docs, "HorizontalPodAutoscaler")
    assert set(hpas) == {"sy-tierlift-router", "sy-tierlift-classifier", "sy-tierlift-gateway"}
    # the assessor is off every request's path and keeps drift windows in memory: one replica,
    # whose JetStream consumer resumes where it stopped after a disruption
    serving = {name: d for name, d in deployments.items() if name != "sy-tierlift-assessor"}
    assert deployments["sy-tierlift-assessor"]["spec"]["replicas"] == 1
    for name, d in serving.items():
        replicas = d["spec"].get("replicas") or hpas[name]["spec"]["minReplicas"]
        assert replicas >= 2, name
    assert set(of_kind(docs, "PodDisruptionBudget")) == set(serving)
    assert not of_kind(docs, "StatefulSet")  # NATS is external

    vllm = deployments["sy-tierlift-vllm-llama-8b"]["spec"]["template"]["spec"]
    assert vllm["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert vllm["nodeSelector"] and vllm["tolerations"]
    assert vllm["containers"][0]["startupProbe"]["failureThreshold"] * 10 >= 600  # room to load weights

    jobs = of_kind(docs, "Job")
    assert jobs["sy-tierlift-migrate-1"]["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    bootstrap = jobs["sy-tierlift-bus-bootstrap-1"]
    assert bootstrap["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    [seed] = bootstrap["spec"]["template"]["spec"]["volumes"][0]["secret"]["items"]
    assert seed["key"] == "BOOTSTRAP_NATS_SEED"  # the only identity that configures JetStream
    ledger = deployments["sy-tierlift-ledger"]["spec"]["template"]["spec"]["containers"][0]
    trusted = {e["name"]: e.get("value") for e in ledger["env"]}["TIERLIFT_TRUSTED_PRODUCERS"]
    assert trusted.startswith("router=U") and ",assessor=U" in trusted

    catalog = yaml.safe_load(of_kind(docs, "ConfigMap")["sy-tierlift-config"]["data"]["catalog.yaml"])
    vllm_model = next(m for m in catalog["models"] if m["adapter"] == "vllm-local")
    assert vllm_model["endpoint"] == "http://sy-tierlift-vllm-llama-8b:8000/v1"  # the in-chart Service


def test_grpc_callers_reach_every_replica_of_their_callee() -> None:
    """Headless Services and dns:/// targets: each caller resolves every ready replica and its
    round_robin channel spreads calls over them (one HTTP/2 connection to a ClusterIP would pin
    it to one pod, and the classifier's and routers' autoscaling would add idle pods)."""
    docs = render(overlay("values-prod.yaml"))
    services = of_kind(docs, "Service")
    grpc_services = {n for n, s in services.items() if s["spec"]["ports"][0]["name"] == "grpc"}
    assert {"sy-tierlift-router", "sy-tierlift-classifier", "sy-tierlift-ledger"} <= grpc_services
    assert all(services[n]["spec"]["clusterIP"] == "None" for n in grpc_services)
    assert "clusterIP" not in services["sy-tierlift-gateway"]["spec"]  # HTTP: kube-proxy balances connections
    deployments = of_kind(docs, "Deployment")
    targets = {}
    for name, d in deployments.items():
        for e in d["spec"]["template"]["spec"]["containers"][0].get("env", []):
            if e["name"] in ("TIERLIFT_CLASSIFIER_ADDR", "TIERLIFT_ROUTER_ADDR", "TIERLIFT_LEDGER_ADDR"):
                targets[f"{name} {e['name']}"] = e["value"]
            if e["name"] == "TIERLIFT_ADAPTERS":
                targets |= {f"{name} {pair}": pair.split("=", 1)[1] for pair in e["value"].split(",")}
    assert len(targets) >= 5  # the router's classifier and adapters, the gateway's and assessor's router
    for caller, target in targets.items():
        assert target.startswith("dns:///sy-tierlift-"), caller
        assert target.removeprefix("dns:///").rsplit(":", 1)[0] in grpc_services, caller


def test_prod_policy_reaches_the_routers_and_parses() -> None:
    from tierlift.router._policy_source import parse_policy

    docs = render(overlay("values-prod.yaml"))
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-config"))
    policy = parse_policy(config["data"]["policy.yaml"], "values-prod.yaml")
    assert policy.version == "prod-1"
    assert policy.default_limits.concurrent == 64 and policy.default_limits.prompt_tokens_per_minute == 2_000_000
    router = of_kind(docs, "Deployment")["sy-tierlift-router"]
    env = {e["name"]: e.get("value") for e in router["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["TIERLIFT_POLICY"] == "/etc/tierlift/policy.yaml"


def test_golden_sets_in_values_reach_the_assessor_as_jsonl() -> None:
    item = {"prompt": "What is 2 + 2?", "reference": "4", "check": "normalised"}
    values = {
        "assessor": {"enabled": True, "suites": {"faq": [item]}, "suiteModels": ["gpt-5-mini"], "suiteEveryHours": 6}
    }
    docs = render(values)
    suites = of_kind(docs, "ConfigMap")["sy-tierlift-suites"]["data"]["faq.jsonl"]
    assert [json.loads(line) for line in suites.splitlines() if line.strip()] == [item]
    assessor = of_kind(docs, "Deployment")["sy-tierlift-assessor"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in assessor["env"]}
    assert env["TIERLIFT_SUITES_DIR"] == "/etc/tierlift-suites" and env["TIERLIFT_SUITE_MODELS"] == "gpt-5-mini"
    assert env["TIERLIFT_SUITE_EVERY_S"] == "21600"


def test_the_rollout_controller_reaches_the_ledger_with_the_assessor_key() -> None:
    docs = render({"assessor": {"enabled": True}})
    deployments = of_kind(docs, "Deployment")
    assessor = deployments["sy-tierlift-assessor"]["spec"]["template"]["spec"]["containers"][0]
    assert {e["name"]: e.get("value") for e in assessor["env"]}[
        "TIERLIFT_LEDGER_ADDR"
    ] == "dns:///sy-tierlift-ledger:50051"
    ledger = deployments["sy-tierlift-ledger"]["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in ledger["containers"][0]["env"]}
    assert env["TIERLIFT_ASSESSOR_KEY_FILE"].endswith("/assessor-key/ASSESSOR_KEY")
    assert any(v.get("secret", {}).get("secretName") == "sy-tierlift-assessor-key" for v in ledger["volumes"])
    policies = of_kind(docs, "NetworkPolicy")
    ledger_from = str(policies["sy-tierlift-ledger"]["spec"]["ingress"])
    assessor_to = str(policies["sy-tierlift-assessor"]["spec"]["egress"])
    assert "'assessor'" in ledger_from and "'ledger'" in assessor_to


def test_the_routers_classification_cache_is_set_from_values() -> None:
    docs = render({"router": {"classificationCache": {"size": 0, "ttlSeconds": 30}}})
    router = of_kind(docs, "Deployment")["sy-tierlift-router"]
    env = {e["name"]: e.get("value") for e in router["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["TIERLIFT_CLASSIFICATION_CACHE_SIZE"], env["TIERLIFT_CLASSIFICATION_TTL_S"]) == ("0", "30")
    with pytest.raises(Exception, match="size"):
        render({"router": {"classificationCache": {"size": -1, "ttlSeconds": 30}}})


def test_each_adapter_mounts_only_the_provider_keys_of_its_own_models() -> None:
    """A process holds only its own component's secrets: the OpenAI adapter gets no Anthropic key."""
    deployments = of_kind(render(overlay("values-prod.yaml")), "Deployment")

    def keys(name: str) -> list[str] | None:
        volumes = deployments[name]["spec"]["template"]["spec"]["volumes"]
        [secret] = [v["secret"] for v in volumes if v["name"] == "provider-keys"]
        return [item["key"] for item in secret.get("items", [])] or None

    assert keys("sy-tierlift-adapter-openai") == ["OPENAI_API_KEY"]
    assert keys("sy-tierlift-adapter-anthropic") == ["ANTHROPIC_API_KEY"]
    for name, deployment in deployments.items():  # the vLLM adapter's models need no key either
        if name not in ("sy-tierlift-adapter-openai", "sy-tierlift-adapter-anthropic"):
            volumes = deployment["spec"]["template"]["spec"].get("volumes", [])
            assert all(v["name"] != "provider-keys" for v in volumes), name

"""The chart lints and renders for every values file in both topologies (`topology:
microservices | combined`), and every rendered object validates against the Kubernetes API
schemas (offline, strict: unknown fields fail)."""

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
TOPOLOGIES = ["microservices", "combined"]


def overlay(name: str) -> dict[str, Any]:
    return {} if name == "values.yaml" else yaml.safe_load((CHART / name).read_text())


def values_for(env: str, topology: str) -> dict[str, Any]:
    """An environment's values in a topology (microservices: the values file as it is, the default)."""
    return overlay(env) | ({"topology": topology} if topology != "microservices" else {})


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    manifests = helm.Chart.load(str(CHART)).render(values, name="sy", namespace="llm", is_install=True)
    docs = []
    for path, text in manifests.items():
        if path.endswith(".yaml"):
            docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_chart_lints_strictly(env: str, topology: str) -> None:
    report = helm.lint(str(CHART), values_for(env, topology), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_rendered_object_validates_against_kubernetes_schemas(env: str, topology: str) -> None:
    for doc in render(values_for(env, topology)):
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_service_pod_is_probed_non_root_and_bounded(env: str, topology: str) -> None:
    for name, deployment in of_kind(render(values_for(env, topology)), "Deployment").items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            assert {"readinessProbe", "livenessProbe", "startupProbe"} <= container.keys(), name
            assert container["resources"]["requests"] and container["resources"]["limits"], name


def test_unknown_values_are_rejected_by_the_schema() -> None:
    report = helm.lint(str(CHART), {"router": {"replicaz": 2}}, strict=True)
    assert any("replicaz" in e for e in report["errors"])
    report = helm.lint(str(CHART), {"topology": "monolith"}, strict=True)
    assert any("topology" in e for e in report["errors"])


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


# -- topology: combined ---------------------------------------------------------------------------

REQUEST_PATH = "sy-tierlift-requestpath"
HOSTED = ["router", "classifier", "gateway", "adapter-anthropic", "adapter-openai", "adapter-vllm-local"]


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def secrets_of(deployment: dict[str, Any]) -> dict[str, set[str] | None]:
    """secretName -> the keys a pod mounts (None: every key of the Secret)."""
    mounted: dict[str, set[str] | None] = {}
    for volume in pod_spec(deployment).get("volumes", []):
        if secret := volume.get("secret"):
            keys = {item["key"] for item in secret["items"]} if "items" in secret else None
            mounted[secret["secretName"]] = keys
    return mounted


def component_of(selector: dict[str, Any]) -> list[str]:
    """The components a podSelector names (none: it names pods by other labels)."""
    if "app.kubernetes.io/component" in selector.get("matchLabels", {}):
        return [selector["matchLabels"]["app.kubernetes.io/component"]]
    return [v for e in selector.get("matchExpressions", []) if e["key"].endswith("/component") for v in e["values"]]


def test_combined_runs_the_request_path_in_one_deployment_scaled_by_an_hpa() -> None:
    docs = render(values_for("values-prod.yaml", "combined"))
    deployments = of_kind(docs, "Deployment")
    apart = {"ledger", "assessor", "vllm-llama-8b", "vllm-bge-m3"}  # and NATS, PostgreSQL outside the chart
    assert set(deployments) == {REQUEST_PATH} | {f"sy-tierlift-{c}" for c in apart}
    [container] = pod_spec(deployments[REQUEST_PATH])["containers"]
    components = "router,classifier,gateway,adapter:anthropic=anthropic,adapter:openai=openai,adapter:vllm-local=vllm"
    assert container["command"] == ["tierlift", "serve", "--components", components]
    assert [p["name"] for p in container["ports"]] == ["http", "grpc", "health", "metrics"]
    env = {e["name"]: e["value"] for e in container["env"]}
    # the classifier and every adapter are in the process: nothing to find by address
    assert "TIERLIFT_CLASSIFIER_ADDR" not in env and "TIERLIFT_ADAPTERS" not in env
    assert env["TIERLIFT_HTTP_LISTEN"] == "0.0.0.0:8080" and env["TIERLIFT_LISTEN"] == "0.0.0.0:50051"
    assert "TIERLIFT_ROUTER_ADDR" not in env  # `tierlift serve` points the gateway at its own router
    # ready on the router's gRPC health (NOT_SERVING while it drains), started once the gateway serves
    assert container["readinessProbe"]["grpc"] == {"port": 50052}
    assert container["startupProbe"]["httpGet"]["path"] == "/health"

    [hpa] = of_kind(docs, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == REQUEST_PATH and "replicas" not in deployments[REQUEST_PATH]["spec"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert of_kind(docs, "PodDisruptionBudget")[REQUEST_PATH]["spec"]["minAvailable"] == 2


def test_combined_keeps_the_service_names_other_components_call() -> None:
    docs = render(values_for("values-prod.yaml", "combined"))
    services, deployments = of_kind(docs, "Service"), of_kind(docs, "Deployment")
    served = {p["name"] for p in pod_spec(deployments[REQUEST_PATH])["containers"][0]["ports"]}
    for name, port in (("sy-tierlift-router", "grpc"), ("sy-tierlift-gateway", "http")):
        spec = services[name]["spec"]
        assert spec["selector"]["app.kubernetes.io/component"] == "requestpath", name
        assert [p["targetPort"] for p in spec["ports"]] == [port] and port in served, name
    assert services["sy-tierlift-router"]["spec"]["clusterIP"] == "None"  # headless, as before
    # one process, one /metrics: scraped through its own Service only
    assert [p["name"] for p in services[REQUEST_PATH]["spec"]["ports"]] == ["metrics"]
    # every address a pod is given names a Service of the release
    for name, deployment in deployments.items():
        for e in pod_spec(deployment)["containers"][0]["env"]:
            if e["name"].endswith("_ADDR") and e["value"].startswith("dns:///"):
                assert e["value"].removeprefix("dns:///").rsplit(":", 1)[0] in services, (name, e)


@pytest.mark.parametrize("env", ["values-dev.yaml", "values-prod.yaml"])
def test_combined_mounts_every_secret_and_setting_of_the_components_it_hosts(env: str) -> None:
    """What the router, classifier, gateway and hosted adapters each mount in `microservices`,
    the request-path pod mounts in `combined` (and so holds all of it)."""
    apart = of_kind(render(values_for(env, "microservices")), "Deployment")
    together = of_kind(render(values_for(env, "combined")), "Deployment")
    hosted = [f"sy-tierlift-{c}" for c in HOSTED if f"sy-tierlift-{c}" in apart and f"sy-tierlift-{c}" not in together]
    assert len(hosted) == (6 if env == "values-prod.yaml" else 3)  # dev's llama.cpp adapter stays apart
    needed: dict[str, set[str] | None] = {}
    for name in hosted:
        for secret, keys in secrets_of(apart[name]).items():
            needed[secret] = None if keys is None else (needed.get(secret) or set()) | keys
    assert secrets_of(together[REQUEST_PATH]) == needed
    if env == "values-prod.yaml":
        assert needed["tierlift-provider-keys"] == {"OPENAI_API_KEY", "ANTHROPIC_API_KEY"}
        assert needed["tierlift-nats-users"] == {"ROUTER_NATS_SEED"}  # it publishes as the router
    combined_env = {e["name"]: e["value"] for e in pod_spec(together[REQUEST_PATH])["containers"][0]["env"]}
    mounts = [m["mountPath"] for m in pod_spec(together[REQUEST_PATH])["containers"][0]["volumeMounts"]]
    for name in hosted:
        for e in pod_spec(apart[name])["containers"][0]["env"]:
            if e["name"].endswith("_FILE") or e["name"] in ("TIERLIFT_SECRETS_DIR", "TIERLIFT_TRUSTED_PRODUCERS"):
                assert combined_env.get(e["name"]) == e["value"], (name, e["name"])
            if e["name"].endswith("_FILE") or e["name"] == "TIERLIFT_SECRETS_DIR":
                assert any(e["value"].startswith(m + "/") or e["value"] == m for m in mounts), (name, e)


def test_combined_gives_each_hosted_adapter_its_own_settings_and_refuses_disagreeing_shared_ones() -> None:
    values = values_for("values-prod.yaml", "combined")
    values["adapters"]["openai"]["env"] = {"TIERLIFT_UPSTREAM_TIMEOUT_S": 20}
    values["adapters"]["anthropic"]["env"] = {"TIERLIFT_UPSTREAM_TIMEOUT_S": 45, "HTTPS_PROXY": "http://proxy:3128"}
    [container] = pod_spec(of_kind(render(values), "Deployment")[REQUEST_PATH])["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["TIERLIFT_ADAPTER_OPENAI__UPSTREAM_TIMEOUT_S"] == "20"  # as adapters/main.py reads them
    assert env["TIERLIFT_ADAPTER_ANTHROPIC__UPSTREAM_TIMEOUT_S"] == "45"
    assert "TIERLIFT_UPSTREAM_TIMEOUT_S" not in env and env["HTTPS_PROXY"] == "http://proxy:3128"
    values["adapters"]["openai"]["env"] = {"HTTPS_PROXY": "http://another:3128"}
    with pytest.raises(Exception, match="one process has one environment"):
        render(values)


def test_combined_without_the_gateway_serves_the_routers_grpc_only() -> None:
    values = values_for("values-prod.yaml", "combined") | {"gateway": {"enabled": False}}
    docs = render(values)
    [container] = pod_spec(of_kind(docs, "Deployment")[REQUEST_PATH])["containers"]
    assert container["command"][-1].startswith("router,classifier,adapter:")
    assert [p["name"] for p in container["ports"]] == ["grpc", "health", "metrics"]
    assert container["startupProbe"] == container["readinessProbe"] | {"periodSeconds": 2, "failureThreshold": 60}
    assert "sy-tierlift-gateway" not in of_kind(docs, "Service")


@pytest.mark.parametrize("topology", TOPOLOGIES)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_network_policies_select_only_pods_that_exist(env: str, topology: str) -> None:
    docs = render(values_for(env, topology))
    pods = {
        d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet", "Job")
    }
    named: set[str] = set()
    for policy in of_kind(docs, "NetworkPolicy").values():
        spec = policy["spec"]
        named |= set(component_of(spec["podSelector"]))
        for rule in spec.get("ingress", []) + spec.get("egress", []):
            for peer in rule.get("from", []) + rule.get("to", []):
                named |= set(component_of(peer.get("podSelector", {})))
    # the ledger's policy also covers the migration Job, which runs only against an external database
    assert named - pods <= ({"migrate"} if env in ("values.yaml", "values-dev.yaml") else set())
    assert "requestpath" in named if topology == "combined" else "requestpath" not in named


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_microservices_is_the_default_and_renders_no_request_path(env: str) -> None:
    def without_generated_keys(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [d for d in docs if d["kind"] != "Secret" or "stringData" in d]

    default = render(overlay(env))
    explicit = render(overlay(env) | {"topology": "microservices"})
    assert without_generated_keys(default) == without_generated_keys(explicit)
    assert "requestpath" not in json.dumps(default)
    deployments = of_kind(default, "Deployment")
    assert {"sy-tierlift-router", "sy-tierlift-classifier", "sy-tierlift-gateway"} <= set(deployments)

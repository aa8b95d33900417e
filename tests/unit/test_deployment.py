"""What `tierlift up` deploys from the catalog and the environment, with a scripted probe."""

from __future__ import annotations

from pathlib import Path

import pytest

from tierlift.cli import main
from tierlift.core.catalog import load_catalog
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.deployment import ProbeResult, plan_deployment

CATALOG = load_catalog(DEFAULT_CATALOG)


def probe_serving(*served: str) -> ProbeResult:
    return ProbeResult(served=served)


def test_without_keys_only_the_local_tier_is_deployed_and_every_other_model_says_why() -> None:
    d = plan_deployment(CATALOG, {}, "", lambda *_: pytest.fail("nothing to probe without keys"))
    assert d.adapters == {"llamacpp-local": "llamacpp"}
    reasons = {s.model.id: s.reason for s in d.skipped}
    assert reasons["gpt-5-mini"] == "no key: set OPENAI_API_KEY"
    assert reasons["claude-opus-4-5"] == "no key: set ANTHROPIC_API_KEY"
    assert reasons["llama-3.3-70b-groq"] == "no key: set GROQ_API_KEY"
    assert reasons["llama-3.3-70b-instruct-fireworks"] == "no key: set FIREWORKS_API_KEY"
    assert len(d.deployed) + len(d.skipped) == len(CATALOG.models)


def test_each_provider_with_a_key_gets_its_adapter_at_the_catalog_endpoint() -> None:
    probed: list[tuple[str, str, str]] = []

    def probe(family: str, endpoint: str, key: str) -> ProbeResult:
        probed.append((family, endpoint, key))
        return probe_serving("gpt-5-mini", "gpt-5", "claude-haiku-4-5", "claude-opus-4-5", "llama-3.3-70b-versatile")

    env = {"OPENAI_API_KEY": "sk-1", "ANTHROPIC_API_KEY": "sk-2", "GROQ_API_KEY": "gsk"}
    d = plan_deployment(CATALOG, env, "", probe)
    assert d.adapters == {"llamacpp-local": "llamacpp", "openai": "openai", "anthropic": "anthropic",
                          "openai-groq": "openai"}  # fmt: skip
    # one probe per (endpoint, key), not per model
    assert sorted(probed) == [
        ("anthropic", "https://api.anthropic.com", "sk-2"),
        ("openai", "https://api.groq.com/openai/v1", "gsk"),
        ("openai", "https://api.openai.com/v1", "sk-1"),
    ]
    assert d.adapter_env == {}


def test_base_url_stand_in_serves_the_catalog_models_under_its_own_model_name() -> None:
    env = {"OPENAI_API_KEY": "x", "OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"}
    d = plan_deployment(CATALOG, env, "", lambda *_: probe_serving("llama3.2:1b", "qwen3"))
    deployed = {x.model.id: x for x in d.deployed}
    assert deployed["gpt-5-mini"].endpoint == "http://127.0.0.1:8000/v1"
    assert d.adapter_env == {"openai": {"TIERLIFT_UPSTREAM_MODEL": "llama3.2:1b"}}
    assert "priced as gpt-5" in deployed["gpt-5"].note


def test_a_provider_that_does_not_serve_the_model_is_skipped_not_silently_substituted() -> None:
    d = plan_deployment(CATALOG, {"OPENAI_API_KEY": "x"}, "", lambda *_: probe_serving("gpt-4o"))
    reasons = {s.model.id: s.reason for s in d.skipped}
    assert reasons["gpt-5-mini"] == "https://api.openai.com/v1 does not serve gpt-5-mini"
    assert "openai" not in d.adapters


def test_rejected_key_and_unlisted_models() -> None:
    env = {"OPENAI_API_KEY": "x", "ANTHROPIC_API_KEY": "y"}

    def probe(family: str, endpoint: str, key: str) -> ProbeResult:
        if family == "anthropic":
            return ProbeResult(problem=f"key rejected by {endpoint} (HTTP 401)")
        return ProbeResult()  # the endpoint lists no models: deployed, nothing assumed

    d = plan_deployment(CATALOG, env, "", probe)
    reasons = {s.model.id: s.reason for s in d.skipped}
    assert reasons["claude-haiku-4-5"] == "key rejected by https://api.anthropic.com (HTTP 401)"
    assert {"gpt-5-mini", "gpt-5"} <= {x.model.id for x in d.deployed}


def test_region_and_licence_leave_models_out() -> None:
    gemma = CATALOG.models[0]
    eu_less = gemma.model_copy(
        update={"id": "eu-less", "licence": gemma.licence.model_copy(update={"excluded_regions": ("eu",)})}
    )
    catalog = CATALOG.model_copy(update={"models": (*CATALOG.models, eu_less)})
    d = plan_deployment(catalog, {"TOGETHER_API_KEY": "t"}, "eu", lambda *_: probe_serving())
    reasons = {s.model.id: s.reason for s in d.skipped}
    assert reasons["llama-3.3-70b-instruct-together"] == "runs in us only; this stack serves region eu"
    assert reasons["eu-less"] == "licence gemma excludes region eu"
    # the served catalog holds only what is deployed
    assert [m.id for m in d.catalog(catalog).models] == ["gemma-3-270m-cpu", "minilm-l6-static-cpu"]


def test_bad_tiers_and_bad_policy_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["ask", "hi", "--tiers", "local,cheap"])
    assert exit_.value.code == 2
    assert "CHEAP: choose from local, hosted_open, closed, frontier" in capsys.readouterr().err
    bad = tmp_path / "policy.yaml"
    bad.write_text("version: x\nconfidence_threshold: 2\n")
    assert main(["up", "--policy", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tierlift: {bad}") and len(err.strip().splitlines()) == 1


def test_azure_openai_is_picked_up_from_its_variables_and_an_eu_stack_leaves_llama_4_out() -> None:
    probed: list[tuple[str, str, str]] = []

    def probe(family: str, endpoint: str, key: str) -> ProbeResult:
        probed.append((family, endpoint, key))
        return ProbeResult(served=None)  # Azure lists base models, not deployments

    env = {"AZURE_OPENAI_API_KEY": "az-key", "AZURE_OPENAI_ENDPOINT": "https://acme.openai.azure.com",
           "TOGETHER_API_KEY": "tg-key"}  # fmt: skip
    d = plan_deployment(CATALOG, env, "eu", probe)
    assert d.adapters["azure-openai"] == "azure"
    assert ("azure", "https://acme.openai.azure.com", "az-key") in probed
    reasons = {s.model.id: s.reason for s in d.skipped}
    assert "llama-4-maverick-together" in reasons and "eu" in reasons["llama-4-maverick-together"]


def test_gemini_bedrock_and_vertex_are_picked_up_from_their_variables() -> None:
    probed: list[tuple[str, str, str]] = []

    def probe(family: str, endpoint: str, key: str) -> ProbeResult:
        probed.append((family, endpoint, key))
        return ProbeResult(served=None)

    env = {"GEMINI_API_KEY": "gm-key", "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s",
           "AWS_REGION": "us-east-1", "GOOGLE_CLOUD_PROJECT": "acme",
           "GOOGLE_APPLICATION_CREDENTIALS": "/sa.json"}  # fmt: skip
    d = plan_deployment(CATALOG, env, "", probe)
    deployed = {x.model.id for x in d.deployed}
    assert {"gemini-2.5-flash", "gemini-2.5-pro", "claude-sonnet-4-5-bedrock-us", "gemini-2.5-flash-vertex-eu",
            "gemini-2.5-flash-vertex-us"} <= deployed  # fmt: skip
    assert (d.adapters["gemini"], d.adapters["bedrock"], d.adapters["vertex-gemini"]) == ("gemini", "bedrock", "vertex")
    # the regional clouds are never probed over the network: credentials are read from the environment
    assert {family for family, _, _ in probed} == {"gemini"}
    reasons = {s.model.id: s.reason for s in d.skipped}
    assert reasons["claude-sonnet-4-5-bedrock-eu"] == "in AWS region eu-central-1; AWS_REGION is us-east-1"
    endpoints = {x.model.id: x.endpoint for x in d.deployed}  # what the banner shows
    assert endpoints["claude-sonnet-4-5-bedrock-us"] == "https://bedrock-runtime.us-east-1.amazonaws.com"
    assert endpoints["gemini-2.5-flash-vertex-eu"] == "https://europe-west4-aiplatform.googleapis.com"

    # an EU stack: the EU endpoints of Bedrock and Vertex AI, not the Gemini API (US only)
    del env["AWS_REGION"]
    d = plan_deployment(CATALOG, env, "eu", probe)
    deployed = {x.model.id for x in d.deployed}
    assert {"claude-sonnet-4-5-bedrock-eu", "gemini-2.5-flash-vertex-eu", "gemini-2.5-pro-vertex-eu"} <= deployed
    assert not deployed & {"claude-sonnet-4-5-bedrock-us", "gemini-2.5-flash-vertex-us", "gemini-2.5-flash"}

    # without credentials, each says what to set
    reasons = {s.model.id: s.reason for s in plan_deployment(CATALOG, {}, "", probe).skipped}
    assert reasons["claude-sonnet-4-5-bedrock-us"].startswith("no AWS credentials: set AWS_ACCESS_KEY_ID")
    assert reasons["gemini-2.5-flash-vertex-us"].startswith("no Google Cloud project: set GOOGLE_CLOUD_PROJECT")
    assert reasons["gemini-2.5-flash"] == "no key: set GEMINI_API_KEY"


def test_the_banners_exports_pasted_back_do_not_make_tierlift_its_own_provider(tmp_path: Path) -> None:
    from tierlift.devstack import Stack, StackError, lock_state_dir

    # `export OPENAI_BASE_URL=http://127.0.0.1:<edge>/v1` and `export OPENAI_API_KEY=tl_...` from the banner
    env = {"OPENAI_API_KEY": "tl_0a1b2c3d4e5f_secret", "OPENAI_BASE_URL": "http://127.0.0.1:43210/v1"}
    d = plan_deployment(CATALOG, env, "", lambda *_: pytest.fail("Tierlift's own edge was probed as a provider"))
    reasons = {s.model.id: s.reason for s in d.skipped}
    assert reasons["gpt-5-mini"].startswith(
        "OPENAI_BASE_URL=http://127.0.0.1:43210/v1, OPENAI_API_KEY is a Tierlift API key: that is Tierlift's own"
    )
    assert "unset OPENAI_BASE_URL and OPENAI_API_KEY" in reasons["gpt-5-mini"]
    assert "openai" not in d.adapters
    # the stack itself refuses an adapter endpoint at its own edge's address, before starting anything
    port = 43210
    edge = f"http://localhost:{port}/v1"
    stack = Stack(tmp_path / "state", gateway_port=port, adapters={"openai": "openai"},
                  service_extra_env={"adapter-openai": {"OPENAI_BASE_URL": edge}})  # fmt: skip
    with pytest.raises(StackError, match=f"OPENAI_BASE_URL={edge} is this stack's own OpenAI-compatible edge"):
        stack.start()
    assert stack.procs == {} and not (tmp_path / "state" / "nats.conf").exists()
    lock_state_dir(tmp_path / "state").close()  # and the folder is free again

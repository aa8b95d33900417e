from switchyard.core.catalog import load_catalog
from switchyard.core.config import DEFAULT_CATALOG
from switchyard.router import Policy, build_plan
from switchyard.v1 import classifier_pb2, common_pb2, router_pb2

CATALOG = load_catalog(DEFAULT_CATALOG)
EVERY_ADAPTER = {m.adapter for m in CATALOG.models}
T = common_pb2


def request(**constraints: object) -> router_pb2.CompleteRequest:
    return router_pb2.CompleteRequest(
        tenant="acme",
        workload="w1",
        messages=[T.Message(role="user", content="hi")],
        constraints=router_pb2.Constraints(**constraints),  # type: ignore[arg-type]
    )


def labels(data_class: int = T.DATA_CLASS_PUBLIC, tokens: int = 10) -> classifier_pb2.Classification:
    return classifier_pb2.Classification(data_class=data_class, token_estimate=tokens)


def test_ladder_runs_cheapest_tier_first() -> None:
    plan = build_plan(request(), labels(), CATALOG, EVERY_ADAPTER, Policy())
    tiers = [r.tier for r in plan.ladder]
    assert tiers == sorted(tiers)
    assert plan.ladder[0].tier == T.TIER_LOCAL
    assert plan.ladder[-1].tier == T.TIER_FRONTIER


def test_regulated_data_stays_on_local_tier() -> None:
    plan = build_plan(request(), labels(T.DATA_CLASS_REGULATED), CATALOG, EVERY_ADAPTER, Policy())
    assert {r.tier for r in plan.ladder} == {T.TIER_LOCAL}
    assert any("may not be sent to tier FRONTIER" in e.reason for e in plan.excluded)


def test_confidential_data_skips_hosted_open_providers() -> None:
    plan = build_plan(request(), labels(T.DATA_CLASS_CONFIDENTIAL), CATALOG, EVERY_ADAPTER, Policy())
    assert T.TIER_HOSTED_OPEN not in {r.tier for r in plan.ladder}


def test_models_without_a_deployed_adapter_are_excluded_with_a_reason() -> None:
    plan = build_plan(request(), labels(), CATALOG, {"llamacpp-local"}, Policy())
    assert [r.model for r in plan.ladder] == ["gemma-3-270m-cpu"]
    assert {e.reason for e in plan.excluded if e.model == "gpt-5"} == {"adapter openai is not deployed here"}


def test_region_outside_the_model_residency_is_excluded() -> None:
    plan = build_plan(request(region="eu"), labels(), CATALOG, EVERY_ADAPTER, Policy())
    assert "llama-3.3-70b-instruct-together" not in [r.model for r in plan.ladder]


def test_prompt_larger_than_context_window_is_excluded() -> None:
    plan = build_plan(request(), labels(tokens=5_000), CATALOG, EVERY_ADAPTER, Policy())
    assert "gemma-3-270m-cpu" not in [r.model for r in plan.ladder]


def test_quality_bar_drops_weak_tiers_but_keeps_the_strongest() -> None:
    plan = build_plan(request(quality_bar=0.9), labels(), CATALOG, EVERY_ADAPTER, Policy())
    assert {r.tier for r in plan.ladder} == {T.TIER_FRONTIER}
    plan = build_plan(request(quality_bar=0.99), labels(), CATALOG, {"llamacpp-local"}, Policy())
    assert [r.model for r in plan.ladder] == ["gemma-3-270m-cpu"]


def test_cost_cap_excludes_expensive_models() -> None:
    plan = build_plan(request(max_cost_usd="0.001"), labels(tokens=1_000), CATALOG, EVERY_ADAPTER, Policy())
    assert "claude-opus-4-5" not in [r.model for r in plan.ladder]
    assert "gemma-3-270m-cpu" in [r.model for r in plan.ladder]

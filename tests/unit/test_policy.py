from tierlift.core.catalog import load_catalog
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.router import Policy, build_plan
from tierlift.router._policy import RoutingHead, embed_plan
from tierlift.v1 import classifier_pb2, common_pb2, router_pb2

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


def test_workload_threshold_overrides_the_default() -> None:
    policy = Policy(confidence_threshold=0.3, workload_thresholds={"w1": 0.6})
    assert build_plan(request(), labels(), CATALOG, EVERY_ADAPTER, policy).confidence_threshold == 0.6


def test_a_low_learned_prior_starts_the_ladder_above_the_open_tiers() -> None:
    hard = classifier_pb2.Classification(data_class=T.DATA_CLASS_PUBLIC, token_estimate=10, small_model_ok=0.05)
    plan = build_plan(request(), hard, CATALOG, EVERY_ADAPTER, Policy(open_tiers_min_prior=0.15))
    assert {r.tier for r in plan.ladder} == {T.TIER_CLOSED, T.TIER_FRONTIER}
    assert any("P(small model suffices) = 0.05 < 0.15" in r for r in plan.reasons)


def test_a_low_prior_never_leaves_a_regulated_request_without_its_local_rung() -> None:
    hard = classifier_pb2.Classification(data_class=T.DATA_CLASS_REGULATED, token_estimate=10, small_model_ok=0.05)
    plan = build_plan(request(), hard, CATALOG, EVERY_ADAPTER, Policy(open_tiers_min_prior=0.15))
    assert {r.tier for r in plan.ladder} == {T.TIER_LOCAL}


def test_easy_prompts_keep_the_open_tiers() -> None:
    easy = classifier_pb2.Classification(data_class=T.DATA_CLASS_PUBLIC, token_estimate=10, small_model_ok=0.8)
    plan = build_plan(request(), easy, CATALOG, EVERY_ADAPTER, Policy(open_tiers_min_prior=0.15))
    assert plan.ladder[0].tier == T.TIER_LOCAL


def test_latency_slo_drops_slow_rungs_and_says_why() -> None:
    req = request(max_latency_ms=2500)
    req.params.max_tokens = 100
    plan = build_plan(req, labels(), CATALOG, EVERY_ADAPTER, Policy())
    ladder = [r.model for r in plan.ladder]
    assert "gpt-5" not in ladder  # 4000 ms to the first token alone
    assert "gemma-3-270m-cpu" in ladder  # 120 ms + 100 / 58 tok/s = ~1.8 s
    assert any(e.model == "gpt-5" and "over the 2500 ms SLO" in e.reason for e in plan.excluded)


def test_an_impossible_slo_keeps_the_fastest_model() -> None:
    plan = build_plan(request(max_latency_ms=1), labels(), CATALOG, EVERY_ADAPTER, Policy())
    # 256 output tokens by default: Groq 200 ms + 256 / 275 tok/s = ~1.1 s; haiku 600 ms + 256 / 110 tok/s
    # = ~2.9 s; Gemma on 2 CPU cores ~4.5 s
    assert [r.model for r in plan.ladder] == ["llama-3.3-70b-groq"]


def test_a_workloads_own_routing_head_replaces_the_general_prior_and_floor() -> None:
    head = RoutingHead(weights=(-4.0, 0.0), bias=1.0, min_prior=0.5, fitted_on="test")
    policy = Policy(open_tiers_min_prior=0.15, routing_heads={"w1": head})
    general_says_easy = classifier_pb2.Classification(
        data_class=T.DATA_CLASS_PUBLIC, token_estimate=10, small_model_ok=0.9, prompt_form=[1.0, 0.0]
    )
    plan = build_plan(request(), general_says_easy, CATALOG, EVERY_ADAPTER, policy)
    assert plan.classification.small_model_ok == round(1 / (1 + 2.718281828459045**3), 4)  # sigmoid(1 - 4)
    assert {r.tier for r in plan.ladder} == {T.TIER_CLOSED, T.TIER_FRONTIER}  # 0.047 < its floor 0.5
    assert any("w1's own routing head (test)" in r for r in plan.reasons)
    other_classifier = classifier_pb2.Classification(
        data_class=T.DATA_CLASS_PUBLIC, token_estimate=10, small_model_ok=0.9, prompt_form=[1.0, 0.0, 3.0]
    )
    plan = build_plan(request(), other_classifier, CATALOG, EVERY_ADAPTER, policy)
    assert plan.classification.small_model_ok == 0.9 and plan.ladder[0].tier == T.TIER_LOCAL  # forms of another length


def test_a_json_object_is_asked_only_of_models_with_a_json_mode() -> None:
    asked = request()
    asked.params.response_format = "json_object"
    plan = build_plan(asked, labels(), CATALOG, EVERY_ADAPTER, Policy())
    chat = [m for m in CATALOG.models if not m.capabilities.embeddings]  # embedding models never answer
    without = {m.id for m in chat if not m.capabilities.json_mode}
    assert without and plan.ladder  # the catalog has models of both kinds
    assert not without & {r.model for r in plan.ladder}
    assert {e.model for e in plan.excluded if "JSON mode" in e.reason} == without
    plain = build_plan(request(), labels(), CATALOG, EVERY_ADAPTER, Policy())
    assert without & {r.model for r in plain.ladder}


def test_a_json_schema_is_given_only_to_models_with_structured_outputs() -> None:
    asked = request()
    asked.params.response_format = "json_schema"
    asked.params.json_schema = '{"name": "City", "schema": {"type": "object"}}'
    plan = build_plan(asked, labels(), CATALOG, EVERY_ADAPTER, Policy())
    takes = {m.id for m in CATALOG.models if m.capabilities.json_schema}
    embedders = {m.id for m in CATALOG.models if m.capabilities.embeddings}
    assert plan.ladder and {r.model for r in plan.ladder} <= takes
    assert all("structured outputs" in e.reason for e in plan.excluded if e.model not in takes | embedders)
    assert {e.model for e in plan.excluded if e.reason == "an embedding model"} == embedders


def test_an_embedding_models_context_window_holds_each_text_not_all_of_them() -> None:
    """Each text is embedded alone, with no output: many texts that each fit keep the model; one
    that does not fit excludes it, naming the longest text."""

    def texts(*sizes: int) -> router_pb2.CompleteRequest:
        return router_pb2.CompleteRequest(
            tenant="acme", workload="w1", messages=[T.Message(role="user", content="w" * 4 * n) for n in sizes]
        )

    fits = embed_plan(texts(*[8000] * 50), labels(tokens=400_000), CATALOG, EVERY_ADAPTER, Policy())
    assert "text-embedding-3-small" in [r.model for r in fits.ladder]
    too_long = embed_plan(texts(10, 9000), labels(tokens=9010), CATALOG, EVERY_ADAPTER, Policy())
    [reason] = [e.reason for e in too_long.excluded if e.model == "text-embedding-3-small"]
    assert reason == "the longest text (~9000 tokens) does not fit its context window (8191)"

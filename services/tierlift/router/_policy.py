"""Builds the escalation ladder for a request: hard constraints first (data class, region and
licence, allowed tiers, deployed adapters, budget), then preferences (cost cap, quality bar,
the learned prior's placement), then cheapest first. Pure: no I/O, so every decision is
testable and explainable."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from tierlift.core import money
from tierlift.core.catalog import Catalog, Model, tier_name
from tierlift.core.tokens import estimate_tokens
from tierlift.router._confidence import ConfidenceModel
from tierlift.router._fair_share import TenantLimits
from tierlift.v1 import classifier_pb2, common_pb2, events_pb2, router_pb2

T = common_pb2
# Which tiers may see data of each class. REGULATED data never leaves our own pods.
DEFAULT_TIERS_FOR_DATA_CLASS: dict[int, frozenset[int]] = {
    T.DATA_CLASS_PUBLIC: frozenset({T.TIER_LOCAL, T.TIER_HOSTED_OPEN, T.TIER_CLOSED, T.TIER_FRONTIER}),
    T.DATA_CLASS_INTERNAL: frozenset({T.TIER_LOCAL, T.TIER_HOSTED_OPEN, T.TIER_CLOSED, T.TIER_FRONTIER}),
    T.DATA_CLASS_CONFIDENTIAL: frozenset({T.TIER_LOCAL, T.TIER_CLOSED, T.TIER_FRONTIER}),
    T.DATA_CLASS_REGULATED: frozenset({T.TIER_LOCAL}),
}
# Expected share of answers acceptable per tier, before any model runs.
DEFAULT_TIER_QUALITY: dict[int, float] = {
    T.TIER_LOCAL: 0.60,
    T.TIER_HOSTED_OPEN: 0.75,
    T.TIER_CLOSED: 0.85,
    T.TIER_FRONTIER: 0.95,
}
DEFAULT_OUTPUT_TOKENS = 256  # output estimate for the cost cap when max_tokens is unset
OPEN_TIERS = frozenset({T.TIER_LOCAL, T.TIER_HOSTED_OPEN})


@dataclass(frozen=True)
class ExplorationPolicy:
    """Of a workload's requests that the learned router started above the cheapest rung their hard
    limits allow, run a `share` on that cheap rung too, as a shadow run whose answer is judged
    against the live one, so the learner sees the region above today's floor (router/_shadow.py).
    Stopped by its own daily cap, apart from the workload's shadows'."""

    share: float
    max_usd_per_day: Decimal
    judge: events_pb2.JudgeSpec = field(default_factory=lambda: events_pb2.JudgeSpec(method="normalised"))


@dataclass(frozen=True)
class ShadowPolicy:
    """Run a sample of a workload's requests again on reference models, off the hot path, for
    the assessor to compare (router/_shadow.py)."""

    sample: float
    models: tuple[str, ...]
    max_usd_per_day: Decimal
    judge: events_pb2.JudgeSpec
    keep_regulated_text: bool = False
    # a rollout's comparison of its candidate with its control (router/_rollouts.py)
    rollout_id: str = ""
    candidate_is_live: bool = False
    live_model: str = ""  # compare only answers this model gave ("" = any)
    spend_key: str = ""  # whose daily cap the runs count against ("" = the workload's)
    # the workload's exploration, decided per request with its plan (router/_shadow.py)
    exploration: ExplorationPolicy | None = None


# why `_apply_prior` leaves an open-tier rung off a ladder; exploration finds those rungs by it
PRIOR_EXCLUSION = "a small model is unlikely to suffice"


@dataclass(frozen=True)
class RoutingHead:
    """A workload's own learned router: logistic regression over the prompt's form (the
    classifier's `prompt_form`), fitted by `tierlift calibrate --from-ledger` on whether the
    workload's small model agreed with its shadow reference. For that workload it replaces the
    classifier's general `small_model_ok`, and `min_prior` its placement floor."""

    weights: tuple[float, ...]
    bias: float
    min_prior: float = 0.0
    fitted_on: str = ""

    def probability(self, form: Sequence[float]) -> float | None:
        """None when the form has another length (a classifier of another version)."""
        if len(form) != len(self.weights):
            return None
        z = self.bias + sum(w * x for w, x in zip(self.weights, form, strict=True))
        return 1 / (1 + math.exp(-max(-50.0, min(50.0, z))))


@dataclass(frozen=True)
class Policy:
    """See policy/dev.yaml for what each field means; `_policy_source` loads it from there."""

    tiers_for_data_class: dict[int, frozenset[int]] = field(default_factory=lambda: DEFAULT_TIERS_FOR_DATA_CLASS)
    tier_quality: dict[int, float] = field(default_factory=lambda: DEFAULT_TIER_QUALITY)
    confidence_threshold: float = 0.5
    workload_thresholds: dict[str, float] = field(default_factory=dict)
    open_tiers_min_prior: float = 0.0
    confidence_model: ConfidenceModel | None = None
    version: str = "built-in"
    # fair share per tenant and router replica (router/_fair_share.py); zeros = no limit
    default_limits: TenantLimits = field(default_factory=TenantLimits)
    tenant_limits: dict[str, TenantLimits] = field(default_factory=dict)
    key_limits: dict[str, TenantLimits] = field(default_factory=dict)
    shadows: dict[str, ShadowPolicy] = field(default_factory=dict)
    text_retention_s: float = 7 * 86_400.0
    routing_heads: dict[str, RoutingHead] = field(default_factory=dict)
    explorations: dict[str, ExplorationPolicy] = field(default_factory=dict)  # none: off

    def threshold_for(self, workload: str) -> float:
        return self.workload_thresholds.get(workload, self.confidence_threshold)

    def prior(self, tier: int, classification: classifier_pb2.Classification) -> float:
        """Expected P(acceptable) on `tier` before its answer is seen: the learned router's
        estimate on the open tiers (when the classifier gave one), the tier's quality above."""
        if tier in OPEN_TIERS and classification.small_model_ok:
            return classification.small_model_ok
        return self.tier_quality[tier]


def data_class_name(data_class: int) -> str:
    return T.DataClass.Name(data_class).removeprefix("DATA_CLASS_")


def _hard_exclusion(
    model: Model,
    allowed: frozenset[int],
    request: router_pb2.CompleteRequest,
    deployed: Collection[str],
    data_class: int,
    token_estimate: int,
    embedding: bool = False,
) -> str | None:
    """Why `model` may never serve this request (an answer, or with `embedding` its vectors), or None."""
    region = request.constraints.region
    if model.capabilities.embeddings != embedding:
        return "an embedding model" if model.capabilities.embeddings else "no embeddings (capabilities.embeddings)"
    if model.tier_value not in allowed:
        return f"data class {data_class_name(data_class)} may not be sent to tier {model.tier}"
    if request.constraints.allowed_tiers and model.tier_value not in request.constraints.allowed_tiers:
        return f"tier {model.tier} is not in the request's allowed tiers"
    if request.constraints.models and model.id not in request.constraints.models:
        return "not one of the models the request pinned"
    if region and region in model.licence.excluded_regions:
        return f"licence {model.licence.name} excludes region {region}"
    if region and "any" not in model.regions and region not in model.regions:
        return f"model runs in {list(model.regions)}, not in region {region}"
    if embedding and token_estimate > model.context_window:  # each text is embedded alone, with no output
        return f"the longest text (~{token_estimate} tokens) does not fit its context window ({model.context_window})"
    if not embedding and token_estimate + (request.params.max_tokens or DEFAULT_OUTPUT_TOKENS) > model.context_window:
        return f"prompt (~{token_estimate} tokens) plus output does not fit its context window ({model.context_window})"
    if model.adapter not in deployed:
        return f"adapter {model.adapter} is not deployed here"
    if request.params.response_format == "json_object" and not model.capabilities.json_mode:
        return "no JSON mode (its catalog entry's capabilities.json_mode), and the request asks for a JSON object"
    if request.params.response_format == "json_schema" and not model.capabilities.json_schema:
        return "no structured outputs (capabilities.json_schema), and the request gives a JSON Schema"
    if uses_tools(request) and not model.capabilities.tools:
        return "no tool calling (capabilities.tools), and the request gives tools or a tool conversation"
    if has_images(request) and not model.capabilities.vision:
        return "no vision (capabilities.vision), and the request holds an image"
    return None


def has_images(request: router_pb2.CompleteRequest) -> bool:
    return any(p.type == "image_url" for m in request.messages for p in m.parts)


def uses_tools(request: router_pb2.CompleteRequest) -> bool:
    """Tools offered, or a conversation that holds tool calls or results."""
    return bool(request.params.tools) or any(m.tool_calls or m.role == "tool" for m in request.messages)


def shadow_exclusion(
    model: Model,
    policy: Policy,
    request: router_pb2.CompleteRequest,
    deployed: Collection[str],
    data_class: int,
    token_estimate: int,
) -> str | None:
    """Why a shadow run may not send this request to `model`: the same hard limits as live
    traffic (data class, region, licence, the request's own tier and model limits)."""
    return _hard_exclusion(
        model, policy.tiers_for_data_class[data_class], request, deployed, data_class, token_estimate
    )


def _cost_exclusion(model: Model, request: router_pb2.CompleteRequest, token_estimate: int) -> str | None:
    if not request.constraints.max_cost_usd:
        return None
    cap = money.usd(request.constraints.max_cost_usd)
    estimate = model.cost(token_estimate, request.params.max_tokens or DEFAULT_OUTPUT_TOKENS)
    if estimate > cap:
        return f"estimated cost {money.to_wire(estimate)} USD is over the cap of {cap} USD"
    return None


def _blended_price(model: Model) -> Decimal:
    return model.price.input_per_million + model.price.output_per_million


def build_plan(
    request: router_pb2.CompleteRequest,
    classification: classifier_pb2.Classification,
    catalog: Catalog,
    deployed: Collection[str],
    policy: Policy,
    budget_block: str = "",
) -> router_pb2.RoutingPlan:
    """The ladder for `request`. `budget_block`, when set, is why paid tiers are closed."""
    data_class = classification.data_class
    allowed = policy.tiers_for_data_class[data_class]
    threshold = policy.threshold_for(request.workload)
    floor = policy.open_tiers_min_prior
    head = policy.routing_heads.get(request.workload)
    own = head.probability(classification.prompt_form) if head is not None else None
    if head is not None and own is not None:  # the workload's own learned router
        classification, floor = _with_prior(classification, own), head.min_prior
    plan = router_pb2.RoutingPlan(classification=classification, confidence_threshold=threshold)
    plan.reasons.append(f"policy {policy.version}; escalate below confidence {threshold:.2f}")
    if head is not None and own is not None:
        plan.reasons.append(f"workload {request.workload}'s own routing head ({head.fitted_on})")
    plan.reasons.append(
        f"data class {data_class_name(data_class)} allows tiers {sorted(tier_name(t) for t in allowed)}"
    )
    eligible: list[Model] = []
    for model in catalog.models:
        why = _hard_exclusion(model, allowed, request, deployed, data_class, classification.token_estimate)
        if not why and budget_block and model.tier_value != T.TIER_LOCAL:
            why = budget_block
        why = why or _cost_exclusion(model, request, classification.token_estimate)
        if why:
            plan.excluded.add(model=model.id, reason=why)
        else:
            eligible.append(model)
    eligible.sort(key=lambda m: (m.tier_value, _blended_price(m)))
    eligible = _apply_quality_bar(eligible, request.constraints.quality_bar, policy, plan)
    eligible = _apply_prior(eligible, classification, floor, plan)
    eligible = _apply_latency_slo(eligible, request, plan)
    for model in eligible:
        plan.ladder.add(
            tier=model.tier_value,
            model=model.id,
            adapter=model.adapter,
            reason=f"{model.tier} tier, expected quality {policy.tier_quality[model.tier_value]:.2f}, "
            f"{_blended_price(model):.4f} USD per 1M in+out tokens",
        )
    return plan


def embed_plan(
    request: router_pb2.CompleteRequest,
    classification: classifier_pb2.Classification,
    catalog: Catalog,
    deployed: Collection[str],
    policy: Policy,
    budget_block: str = "",
) -> router_pb2.RoutingPlan:
    """The ladder of embedding models for `request` (Router.Embed's texts as user messages): the
    same hard limits as an answer's (data class, tiers, region, licence, pinned models, context,
    budget), then the cheapest first; a fault falls back to the next."""
    data_class = classification.data_class
    allowed = policy.tiers_for_data_class[data_class]
    plan = router_pb2.RoutingPlan(classification=classification)
    plan.reasons.append(f"policy {policy.version}; embeddings: the cheapest allowed model answers")
    plan.reasons.append(
        f"data class {data_class_name(data_class)} allows tiers {sorted(tier_name(t) for t in allowed)}"
    )
    eligible: list[Model] = []
    longest = max((estimate_tokens(m.content) for m in request.messages), default=0)  # a text per message
    for model in catalog.models:
        why = _hard_exclusion(model, allowed, request, deployed, data_class, longest, True)
        if not why and budget_block and model.tier_value != T.TIER_LOCAL:
            why = budget_block
        if why:
            plan.excluded.add(model=model.id, reason=why)
        else:
            eligible.append(model)
    for model in sorted(eligible, key=lambda m: (m.price.input_per_million, m.tier_value)):
        price = f"{model.price.input_per_million:.4f} USD per 1M input tokens"
        plan.ladder.add(
            tier=model.tier_value, model=model.id, adapter=model.adapter, reason=f"{model.tier} tier, {price}"
        )
    return plan


def _with_prior(classification: classifier_pb2.Classification, small_model_ok: float) -> classifier_pb2.Classification:
    adjusted = classifier_pb2.Classification()
    adjusted.CopyFrom(classification)
    adjusted.small_model_ok, adjusted.complexity = round(small_model_ok, 4), round(1 - small_model_ok, 4)
    return adjusted


def _prefer(
    eligible: list[Model],
    keep: Callable[[Model], bool],
    why_not: Callable[[Model], str],
    fallback: list[Model],
    fallback_reason: str,
    plan: router_pb2.RoutingPlan,
) -> list[Model]:
    """A preference: drop the rungs `keep` rejects, saying why; if it rejects every one, keep
    `fallback` instead, so a preference never leaves a request without a rung."""
    kept = [m for m in eligible if keep(m)]
    if not kept:
        plan.reasons.append(fallback_reason)
        kept = fallback
    for m in eligible:
        if m not in kept:
            plan.excluded.add(model=m.id, reason=why_not(m))
    return kept


def _apply_quality_bar(eligible: list[Model], bar: float, policy: Policy, plan: router_pb2.RoutingPlan) -> list[Model]:
    """Drop rungs expected below the bar; the strongest rung always stays."""
    if not bar or not eligible:
        return eligible
    quality = policy.tier_quality
    return _prefer(
        eligible,
        keep=lambda m: quality[m.tier_value] >= bar,
        why_not=lambda m: f"expected quality {quality[m.tier_value]:.2f} is below the quality bar {bar:.2f}",
        fallback=[eligible[-1]],
        fallback_reason=f"no tier is expected to meet quality bar {bar:.2f}; keeping the strongest, {eligible[-1].id}",
        plan=plan,
    )


def _apply_prior(
    eligible: list[Model], classification: classifier_pb2.Classification, floor: float, plan: router_pb2.RoutingPlan
) -> list[Model]:
    """Start above the open tiers when the learned router expects a small model to fail, if a
    stronger rung is left: a preference, never a reason to leave the request with no rung."""
    p = classification.small_model_ok
    if not p:  # the classifier abstained (a prompt unlike its training data), or gave no prior
        plan.reasons.append("learned router: no estimate; neutral start (confidence escalation decides)")
        return eligible
    if not floor or p >= floor:
        plan.reasons.append(f"learned router: P(small model suffices) = {p:.2f}")
        return eligible
    if all(m.tier_value in OPEN_TIERS for m in eligible):
        plan.reasons.append(f"learned router: P(small model suffices) = {p:.2f}, but only open tiers may serve it")
        return eligible
    plan.reasons.append(
        f"learned router: P(small model suffices) = {p:.2f} < {floor:.2f}: starting above the open tiers"
    )
    for m in eligible:
        if m.tier_value in OPEN_TIERS:
            plan.excluded.add(model=m.id, reason=f"{PRIOR_EXCLUSION} (P = {p:.2f})")
    return [m for m in eligible if m.tier_value not in OPEN_TIERS]


def _apply_latency_slo(
    eligible: list[Model], request: router_pb2.CompleteRequest, plan: router_pb2.RoutingPlan
) -> list[Model]:
    """Drop rungs whose typical latency for this request exceeds max_latency_ms; models of
    unknown speed are kept, and if none is fast enough the fastest stays."""
    slo = request.constraints.max_latency_ms
    if not slo or not eligible:
        return eligible
    tokens = request.params.max_tokens or DEFAULT_OUTPUT_TOKENS
    estimates = {m.id: m.speed.estimate_ms(tokens) for m in eligible if m.speed}
    fastest = min(eligible, key=lambda m: estimates.get(m.id, 0))
    return _prefer(
        eligible,
        keep=lambda m: estimates.get(m.id, 0) <= slo,
        why_not=lambda m: f"typically ~{estimates[m.id]} ms for {tokens} tokens, over the {slo} ms SLO",
        fallback=[fastest],
        fallback_reason=f"no model is expected within {slo} ms; keeping the fastest, {fastest.id}",
        plan=plan,
    )


def explorable(plan: router_pb2.RoutingPlan, catalog: Catalog) -> Model | None:
    """The cheapest rung the learned router left off this plan's ladder (it expected a small model
    to fail), if it did: a rung the request's hard limits allowed, since the prior only orders what
    they left. None when the plan starts on the cheapest rung it was allowed."""
    skipped = [catalog.get(e.model) for e in plan.excluded if e.reason.startswith(PRIOR_EXCLUSION)]
    models = [m for m in skipped if m is not None]
    return min(models, key=lambda m: (m.tier_value, _blended_price(m))) if models else None

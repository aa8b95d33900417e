"""The advisor's arithmetic against figures worked by hand, and against a widely used
open-vs-closed planning table reproduced from its inputs."""

from decimal import Decimal

import pytest

from tierlift.core.catalog import Catalog
from tierlift.economics import DAYS_PER_MONTH, Ops, Workload, advise, crossover, replicas_needed

QUALITY = {"LOCAL": 0.60, "HOSTED_OPEN": 0.75, "CLOSED": 0.85, "FRONTIER": 0.95}
NO_OPS = Ops(Decimal(0), Decimal(0))


def catalog(*models: dict[str, object]) -> Catalog:
    base = {"provider": "p", "adapter": "a", "licence": {"name": "x"}, "context_window": 8192}
    return Catalog.model_validate({"version": "hand-worked", "models": [base | m for m in models]})


def api(model_id: str, tier: str, input_per_million: str, output_per_million: str) -> dict[str, object]:
    price = {"input_per_million": input_per_million, "output_per_million": output_per_million}
    return {"id": model_id, "tier": tier, "price": {"api": price}}


def self_hosted(
    model_id: str, hourly: str, tokens_in: str, tokens_out: str, hardware: str = "1 GPU"
) -> dict[str, object]:
    price = {
        "hardware": hardware,
        "hourly_usd": hourly,
        "input_tokens_per_s": tokens_in,
        "output_tokens_per_s": tokens_out,
    }
    return {"id": model_id, "tier": "LOCAL", "price": {"self_hosted": price}}


HAND = catalog(api("mini", "CLOSED", "0.25", "2.00"), self_hosted("llama", "2.00", "10000", "1000"))
OPS = Ops(hours_per_month=Decimal(20), usd_per_hour=Decimal(100))  # 2,000 USD a month


def test_small_workload_stays_on_the_api_and_the_crossover_is_worked_by_hand() -> None:
    # 300M in + 30M out a month in 330,000 requests (1,000 tokens each):
    #   API: 300 x 0.25 + 30 x 2.00 = 135 USD
    #   self-hosted: peak = (300e6 / 2,628,000 s x 3) / 10,000 + (30e6 / 2,628,000 x 3) / 1,000 = 0.068 replicas,
    #   so one replica: 2.00 x 730 = 1,460 USD + 2,000 ops = 3,460 USD
    workload = Workload(300_000_000, 30_000_000, 330_000)
    advice = advise(HAND, workload, OPS, QUALITY)
    (option,) = advice.self_hosted
    assert [(o.model.id, o.monthly_usd) for o in advice.api] == [("mini", Decimal("135"))]
    assert (option.replicas, option.hosting_usd, option.ops_usd) == (1, Decimal("1460"), Decimal("2000"))
    assert advice.recommendation.startswith("use the API: mini")
    # At this 10:1 mix the API costs (10/11 x 0.25 + 1/11 x 2.00) / 1e6 = 4.5/11e6 USD per token.
    #   1 replica (3,460 USD) matches it at 3,460 x 11 / 4.5 x 1e6 = 8.458B tokens, which needs 1.77 replicas: 2;
    #   2 replicas (4,920 USD) match it at 12.027B, which needs 2.51: 3;
    #   3 replicas (6,380 USD) match it at 15.596B, which needs 3.26: 4;
    #   4 replicas (7,840 USD) match it at 19,164,444,444 tokens/month, which 4 replicas carry (4.0 needed).
    assert option.crossover is not None and option.crossover.replicas == 4
    assert option.crossover.tokens_per_day * DAYS_PER_MONTH == pytest.approx(
        Decimal("19164444444"), rel=Decimal("1e-9")
    )
    # 1,000 tokens a request
    assert option.crossover.requests_per_month == pytest.approx(Decimal("19164444.444"), rel=Decimal("1e-9"))


def test_large_workload_is_self_hosted_on_enough_replicas() -> None:
    # 30B in + 3B out: API 30,000 x 0.25 + 3,000 x 2.00 = 13,500 USD.
    # peak = (30e9 / 2,628,000 x 3) / 10,000 + (3e9 / 2,628,000 x 3) / 1,000 = 3.42 + 3.42 = 6.85 -> 7 replicas
    # 7 x 2.00 x 730 + 2,000 = 12,220 USD
    workload = Workload(30_000_000_000, 3_000_000_000, 33_000_000)
    model = HAND.get("llama")
    assert model is not None and replicas_needed(model, workload) == 7
    advice = advise(HAND, workload, OPS, QUALITY)
    assert advice.self_hosted[0].monthly_usd == Decimal("12220")
    assert advice.recommendation == "self-host llama: 12,220.00 USD/month against 13,500.00"


def test_compares_with_the_cheapest_api_model_of_at_least_the_same_tier_quality() -> None:
    cheap_weak = api("tiny-api", "LOCAL", "0.01", "0.01")  # below nothing: same tier quality, so it counts
    models = catalog(api("mini", "CLOSED", "0.25", "2.00"), cheap_weak, {**self_hosted("big", "2", "1e4", "1e3"),
                     "tier": "HOSTED_OPEN"})  # fmt: skip
    advice = advise(models, Workload(1_000_000, 100_000, 1_000), NO_OPS, QUALITY)
    # tiny-api (LOCAL, 0.60) is cheaper but below HOSTED_OPEN's 0.75: the comparison is with mini
    assert advice.self_hosted[0].against is not None and advice.self_hosted[0].against.model.id == "mini"


def test_a_replica_dearer_per_token_than_the_api_never_pays() -> None:
    models = catalog(api("cheap", "CLOSED", "0.10", "0.10"), self_hosted("slow", "5.00", "100", "10"))
    model, cheap = models.get("slow"), models.get("cheap")
    assert model is not None and cheap is not None
    found, why = crossover(model, cheap, Workload(1_000_000, 1_000_000, 1_000), NO_OPS)
    assert found is None and why.startswith("never: a fully used replica costs")


# A widely used open-vs-closed planning table: a blended API price of ~75 USD a month per 100K
# tokens a day, against self-hosting on 2x A100 at ~3,000 USD a month ("roughly 3-5M tokens/day")
# or 1x A10G at ~400 USD a month ("under 500K tokens/day"). Its prices exclude operations.
TABLE_API_PER_MILLION = Decimal(75) / (Decimal("0.1") * DAYS_PER_MONTH)  # 75 USD per 100K/day x days = 24.66 USD/1M


@pytest.mark.parametrize(
    ("hardware", "monthly", "expected_tokens_per_day"),
    [
        ("2x A100", "3000", Decimal(3000) / 75 * 100_000),  # 4.0M: inside the table's 3-5M
        ("1x A10G", "400", Decimal(400) / 75 * 100_000),  # 533K: the table's "under 500K" rounds down
    ],
)
def test_reproduces_the_planning_tables_crossover(
    hardware: str, monthly: str, expected_tokens_per_day: Decimal
) -> None:
    blended = str(TABLE_API_PER_MILLION)
    hourly = str(Decimal(monthly) / Decimal(730))
    models = catalog(api("blended", "CLOSED", blended, blended), self_hosted("own", hourly, "5000", "1000", hardware))
    workload = Workload(800_000, 200_000, 1_000)  # the mix does not matter at one blended price
    (option,) = advise(models, workload, NO_OPS, QUALITY).self_hosted
    assert option.crossover is not None and option.crossover.replicas == 1
    assert option.crossover.tokens_per_day == pytest.approx(expected_tokens_per_day, rel=Decimal("1e-6"))
    # the arithmetic: 4,000,000 and 533,333 tokens/day
    assert round(option.crossover.tokens_per_day, -3) in {Decimal(4_000_000), Decimal(533_000)}


def test_embedding_models_are_never_the_advice_for_a_chat_workload() -> None:
    embedder = api("embed-small", "CLOSED", "0.02", "0.00") | {"capabilities": {"embeddings": True}}
    models = catalog(embedder, api("mini", "CLOSED", "0.25", "2.00"), self_hosted("llama", "2.00", "10000", "1000"))
    advice = advise(models, Workload(1_000_000, 100_000, 1_000), NO_OPS, QUALITY)
    assert [o.model.id for o in advice.api] == ["mini"]
    assert all(o.against is None or o.against.model.id == "mini" for o in advice.self_hosted)
    assert "embed-small" not in advice.recommendation

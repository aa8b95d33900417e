"""The advisor's arithmetic against figures worked by hand."""

from decimal import Decimal

from tierlift.core.catalog import Catalog
from tierlift.economics import Ops, Volume, advise, gpus_needed

CATALOG = Catalog.model_validate(
    {
        "version": "hand-worked",
        "models": [
            {"id": "mini", "tier": "CLOSED", "provider": "p", "adapter": "openai", "licence": {"name": "x"},
             "context_window": 8192, "price": {"api": {"input_per_million": "0.25", "output_per_million": "2.00"}}},
            {"id": "llama", "tier": "LOCAL", "provider": "self", "adapter": "vllm", "licence": {"name": "x"},
             "context_window": 8192, "price": {"self_hosted": {"hourly_usd": "2.00", "input_tokens_per_s": "10000",
                                                               "output_tokens_per_s": "1000"}}},
        ],
    }
)  # fmt: skip
OPS = Ops(hours_per_month=Decimal(20), usd_per_hour=Decimal(100))  # 2,000 USD a month


def test_small_workload_stays_on_the_api() -> None:
    # 300M in + 30M out a month:
    #   API: 300 x 0.25 + 30 x 2.00 = 135 USD
    #   self-hosted: peak load = (300e6 / 2,628,000 s x 3) / 10,000 + (30e6 / 2,628,000 x 3) / 1,000 = 0.068 GPU,
    #   so the minimum of 2 GPUs: 2 x 2.00 x 730 + 2,000 ops = 4,920 USD
    advice = advise(CATALOG, Volume(300_000_000, 30_000_000), OPS)
    costs = {o.model: o.monthly_usd for o in advice.options}
    assert costs == {"mini": Decimal("135"), "llama": Decimal("4920")}
    assert advice.recommendation == "use the API (mini)"
    # Crossover at this 10:1 input/output mix: the API costs (10/11 x 0.25 + 1/11 x 2.00) / 1e6 = 4.5/11 per 1M.
    #   2 GPUs (4,920 USD) match the API at 12.03B tokens, but that volume needs 2.5 GPUs: 3;
    #   3 GPUs (6,380 USD) match it at 15.60B, which needs 3.24 GPUs: 4;
    #   4 GPUs (7,840 USD) match it at 7,840 x 11 / 4.5 x 1e6 = 19,164,444,444 tokens, which 4 GPUs carry.
    assert advice.crossover_tokens_per_month == Decimal("19164444444")


def test_large_workload_is_self_hosted_on_enough_gpus() -> None:
    # 30B in + 3B out: API 30,000 x 0.25 + 3,000 x 2.00 = 13,500 USD.
    # peak = (30e9 / 2,628,000 x 3) / 10,000 + (3e9 / 2,628,000 x 3) / 1,000 = 3.42 + 3.42 = 6.85 -> 7 GPUs
    # 7 x 2.00 x 730 + 2,000 = 12,220 USD
    volume = Volume(30_000_000_000, 3_000_000_000)
    model = CATALOG.get("llama")
    assert model is not None and gpus_needed(model, volume) == 7
    advice = advise(CATALOG, volume, OPS)
    costs = {o.model: o.monthly_usd for o in advice.options}
    assert costs == {"mini": Decimal("13500"), "llama": Decimal("12220")}
    assert advice.recommendation == "self-host llama"
    assert any("7 GPUs" in r for r in advice.reasons)

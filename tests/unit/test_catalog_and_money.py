from decimal import Decimal
from pathlib import Path

import pytest

from tierlift.core import money
from tierlift.core.catalog import CatalogError, cloud_geography, load_catalog
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.ledger._schema import Money


def test_dev_catalog_loads_with_a_model_per_tier() -> None:
    catalog = load_catalog(DEFAULT_CATALOG)
    assert {m.tier for m in catalog.models} == {"LOCAL", "HOSTED_OPEN", "CLOSED", "FRONTIER"}


def test_a_model_is_found_by_id_in_the_catalog_it_is_in_and_only_there() -> None:
    catalog = load_catalog(DEFAULT_CATALOG)
    first, second = catalog.models[:2]
    assert catalog.get(first.id) is first and catalog.get("no-such-model") is None
    narrowed = catalog.model_copy(update={"models": catalog.models[1:]})  # as a deployment narrows it
    assert narrowed.get(first.id) is None and narrowed.get(second.id) is second
    assert catalog.get(first.id) is first
    assert catalog == load_catalog(DEFAULT_CATALOG)  # looking up leaves equal catalogs equal


def test_api_price_is_tokens_times_price_per_million() -> None:
    gpt = load_catalog(DEFAULT_CATALOG).get("gpt-5-mini")
    assert gpt is not None
    # 1,000 in at 0.25/M + 500 out at 2.00/M = 0.00025 + 0.001
    assert gpt.cost(1_000, 500) == Decimal("0.00125")


def test_self_hosted_price_derives_from_hourly_cost_and_throughput() -> None:
    gemma = load_catalog(DEFAULT_CATALOG).get("gemma-3-270m-cpu")
    assert gemma is not None
    # 0.10 USD/h at 58 output tokens/s: 0.10 / 3600 / 58 per token -> x 1e6 per million
    expected_out = Decimal("0.10") / 3600 / 58 * 1_000_000
    assert gemma.price.output_per_million == expected_out
    assert gemma.cost(0, 58 * 3600) == money.quantize(Decimal("0.10"))


def test_catalog_error_names_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.yaml"
    bad.write_text(
        "version: x\nmodels:\n  - id: m\n    tier: LOCAL\n    provider: p\n    adapter: a\n"
        "    licence: {name: l}\n    context_window: 0\n"
        "    price: {api: {input_per_million: '1', output_per_million: '1'}}\n"
    )
    with pytest.raises(CatalogError, match=r"catalog\.yaml: models\.0\.context_window"):
        load_catalog(bad)
    for unreadable in (b"version: \xff\xfe", b"[" * 100_000, b"version: " + b"9" * 5_000):  # a traceback before
        bad.write_bytes(unreadable)
        with pytest.raises(CatalogError, match=r"catalog\.yaml: YAML this loader cannot read"):
            load_catalog(bad)


def test_price_needs_exactly_one_kind(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.yaml"
    bad.write_text(
        "version: x\nmodels:\n  - id: m\n    tier: LOCAL\n    provider: p\n    adapter: a\n"
        "    licence: {name: l}\n    context_window: 10\n    price: {}\n"
    )
    with pytest.raises(CatalogError, match=r"exactly one of price\.api and price\.self_hosted"):
        load_catalog(bad)


def test_a_regional_cloud_entry_must_run_where_its_cloud_region_is(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.yaml"
    bad.write_text(
        "version: x\nmodels:\n  - id: m\n    tier: CLOSED\n    provider: bedrock\n    adapter: bedrock\n"
        "    cloud_region: us-east-1\n    regions: [us, eu]\n    licence: {name: l}\n    context_window: 10\n"
        "    price: {api: {input_per_million: '1', output_per_million: '1'}}\n"
    )
    with pytest.raises(CatalogError, match=r"cloud_region us-east-1 is in us: regions must be \[us\]"):
        load_catalog(bad)
    assert [cloud_geography(r) for r in ("eu-central-1", "europe-west4", "us-east-1", "us-central1")] == [
        "eu", "eu", "us", "us"
    ]  # fmt: skip
    regional = [m for m in load_catalog(DEFAULT_CATALOG).models if m.cloud_region]
    assert {m.provider for m in regional} == {"bedrock", "vertex"}


def test_money_refuses_floats_and_keeps_twelve_places() -> None:
    with pytest.raises(TypeError):
        money.usd(0.1)  # type: ignore[arg-type]
    assert money.to_wire(Decimal("1e-12")) == "0.000000000001"
    assert money.to_wire(Decimal("3")) == "3.000000000000"


def test_money_column_round_trips_exactly_as_picodollars() -> None:
    column = Money()
    amount = Decimal("1234.567890123456")
    stored = column.process_bind_param(amount, None)  # type: ignore[arg-type]
    assert stored == 1_234_567_890_123_456
    assert column.process_result_value(stored, None) == amount  # type: ignore[arg-type]

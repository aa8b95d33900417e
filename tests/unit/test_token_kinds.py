"""Every token kind priced: the ledger's cost of each kind (cache reads, 5-minute and 1-hour cache
writes, images, audio, reasoning, text) and of each attempt and request equals a Decimal sum
computed here from the catalog file's own numbers, apart from the code under test; rows stored
before kinds were kept keep their cost; the attempt span says what was used and what it cost."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from tierlift.core import migrations
from tierlift.core.catalog import Catalog, load_catalog
from tierlift.core.config import DEFAULT_CATALOG
from tierlift.core.entry import StartupError
from tierlift.ledger import LedgerStore, make_engine, price_attempt
from tierlift.ledger._kinds import kind_spend, summed_kinds
from tierlift.v1 import common_pb2, events_pb2, router_pb2

CATALOG = load_catalog(DEFAULT_CATALOG)
RAW_PRICES = {m["id"]: m["price"] for m in yaml.safe_load(DEFAULT_CATALOG.read_text())["models"]}
PICO = Decimal("1e-12")
MILLION = Decimal(1_000_000)
# the disjoint parts a usage is drawn as, and the catalog field each is priced at
PARTS = ("text_input", "cache_read", "cache_write_5m", "cache_write_1h", "image_input", "audio_input", "text_output",
         "reasoning")  # fmt: skip


def expected_price(model_id: str, part: str) -> Decimal:
    """USD per 1M tokens of `part`, from the catalog file and the rule core/catalog.py documents:
    cache and media kinds fall back to input, 1-hour writes to 5-minute writes, reasoning to output;
    a self-hosted pod costs its hour over its measured input or output rate."""
    raw = RAW_PRICES[model_id]
    if "self_hosted" in raw:
        pod = raw["self_hosted"]
        rate = pod["output_tokens_per_s"] if part in ("text_output", "reasoning") else pod["input_tokens_per_s"]
        return Decimal(pod["hourly_usd"]) / Decimal(3600) / Decimal(rate) * MILLION
    api = {k: Decimal(v) for k, v in raw["api"].items()}
    write_5m = api.get("cache_write_per_million", api["input_per_million"])
    return {
        "text_input": api["input_per_million"],
        "cache_read": api.get("cache_read_per_million", api["input_per_million"]),
        "cache_write_5m": write_5m,
        "cache_write_1h": api.get("cache_write_1h_per_million", write_5m),
        "image_input": api.get("image_input_per_million", api["input_per_million"]),
        "audio_input": api.get("audio_input_per_million", api["input_per_million"]),
        "text_output": api["output_per_million"],
        "reasoning": api.get("reasoning_per_million", api["output_per_million"]),
    }[part]


def expected_costs(model_id: str, parts: dict[str, int]) -> dict[str, Decimal]:
    """Each part's cost, rounded to the 1e-12 USD the ledger keeps."""
    return {p: (Decimal(n) * expected_price(model_id, p) / MILLION).quantize(PICO) for p, n in parts.items()}


def usage_of(parts: dict[str, int]) -> common_pb2.Usage:
    """The Usage a provider's adapter reports for these disjoint parts (common.proto's convention)."""
    writes = parts["cache_write_5m"] + parts["cache_write_1h"]
    inputs = parts["text_input"] + parts["cache_read"] + writes + parts["image_input"] + parts["audio_input"]
    return common_pb2.Usage(
        input_tokens=inputs, output_tokens=parts["text_output"] + parts["reasoning"],
        cache_read_input_tokens=parts["cache_read"], cache_write_input_tokens=writes,
        cache_write_1h_input_tokens=parts["cache_write_1h"], image_input_tokens=parts["image_input"],
        audio_input_tokens=parts["audio_input"], reasoning_output_tokens=parts["reasoning"],
    )  # fmt: skip


def attempt_event(request_id: str, index: int, tenant: str, model_id: str, usage: common_pb2.Usage) -> Any:
    model = CATALOG.get(model_id)
    assert model is not None
    event = events_pb2.AttemptFinished(
        event_id=f"{request_id}.attempt.{index}", request_id=request_id, tenant=tenant, workload="chat",
        attempt=router_pb2.Attempt(index=index, tier=model.tier_value, model=model_id, adapter=model.adapter,
                                   outcome=router_pb2.OUTCOME_ANSWERED, usage=usage),
    )  # fmt: skip
    event.occurred_at.FromDatetime(datetime(2026, 12, 7, 9, tzinfo=UTC))
    return event


# a provider's counts stay far below 2**31 in any one call; several parts of one attempt must
# still fit the 32-bit input_tokens column together
parts_strategy = st.fixed_dictionaries({p: st.integers(0, 2**27) for p in PARTS})
attempts_strategy = st.lists(
    st.tuples(st.sampled_from([m.id for m in CATALOG.models]), parts_strategy), min_size=1, max_size=6
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerStore]:
    url = f"sqlite:///{tmp_path_factory.mktemp('kinds') / 'ledger.db'}"
    migrations.upgrade(url)
    engine = make_engine(url)
    yield LedgerStore(engine)
    engine.dispose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attempts=attempts_strategy)
def test_each_kind_and_each_request_costs_the_independent_decimal_sum(
    store: LedgerStore, attempts: list[tuple[str, dict[str, int]]]
) -> None:
    tenant, request_id = f"t{uuid.uuid4().hex[:12]}", str(uuid.uuid4())
    rows, by_part = [], dict.fromkeys(PARTS, Decimal(0))
    for index, (model_id, parts) in enumerate(attempts):
        row = price_attempt(attempt_event(request_id, index, tenant, model_id, usage_of(parts)), CATALOG)
        want = expected_costs(model_id, parts)
        assert row["cost_usd"] == sum(want.values())  # the attempt
        assert row["cache_read_cost_usd"] == want["cache_read"]
        assert row["cache_write_cost_usd"] == want["cache_write_5m"] + want["cache_write_1h"]
        assert row["image_input_cost_usd"] == want["image_input"]
        assert row["audio_input_cost_usd"] == want["audio_input"]
        assert row["reasoning_cost_usd"] == want["reasoning"]
        assert (row["cache_write_input_tokens"], row["cache_write_1h_input_tokens"]) == (
            parts["cache_write_5m"] + parts["cache_write_1h"], parts["cache_write_1h"])  # fmt: skip
        rows.append(row)
        by_part = {p: by_part[p] + want[p] for p in PARTS}
    store.insert_attempts(rows)
    lines = store.spend(tenant, "", None, None)
    kinds = {k.kind: k for k in summed_kinds(kind_spend(line) for line in lines)}
    assert sum((line["cost_usd"] for line in lines), Decimal(0)) == sum(by_part.values())  # the request
    assert kinds["cache_read"].cost_usd == by_part["cache_read"]
    assert kinds["cache_write"].cost_usd == by_part["cache_write_5m"] + by_part["cache_write_1h"]
    assert kinds["image_input"].cost_usd == by_part["image_input"]
    assert kinds["audio_input"].cost_usd == by_part["audio_input"]
    assert kinds["reasoning"].cost_usd == by_part["reasoning"]
    assert kinds["text"].cost_usd == by_part["text_input"] + by_part["text_output"]
    assert kinds["text"].tokens == sum(p["text_input"] + p["text_output"] for _, p in attempts)


def test_a_cached_prompt_is_billed_at_the_cache_read_price() -> None:
    """claude-haiku-4-5: 1,000 prompt tokens read from the cache at 0.10 USD/M, not 1.00."""
    usage = common_pb2.Usage(input_tokens=1_200, output_tokens=100, cache_read_input_tokens=1_000)
    row = price_attempt(attempt_event("r1", 0, "acme", "claude-haiku-4-5", usage), CATALOG)
    assert row["cache_read_cost_usd"] == Decimal("0.0001")  # 1,000 x 0.10 / 1M
    assert row["cost_usd"] == Decimal("0.0001") + Decimal("0.0002") + Decimal("0.0005")  # + 200 in + 100 out


def test_counts_past_their_totals_are_capped_so_every_token_is_billed_once() -> None:
    """A broken producer's kinds that add up to more than the tokens: cache reads first, then
    writes, images, audio, each at what input is left; reasoning at output_tokens."""
    usage = common_pb2.Usage(input_tokens=100, output_tokens=10, cache_read_input_tokens=60,
                             cache_write_input_tokens=70, cache_write_1h_input_tokens=90, image_input_tokens=5,
                             reasoning_output_tokens=50)  # fmt: skip
    row = price_attempt(attempt_event("r2", 0, "acme", "claude-opus-4-5", usage), CATALOG)
    assert (row["cache_read_input_tokens"], row["cache_write_input_tokens"], row["cache_write_1h_input_tokens"],
            row["image_input_tokens"], row["reasoning_output_tokens"]) == (60, 40, 40, 0, 10)  # fmt: skip
    billed = {"cache_read": 60, "cache_write_1h": 40, "reasoning": 10}
    assert row["cost_usd"] == sum(expected_costs("claude-opus-4-5", billed).values()) == Decimal("0.00068")


def test_a_row_stored_before_kinds_were_kept_keeps_its_cost(tmp_path: Path) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(migrations.alembic_config(url), "0010")
    engine = make_engine(url)
    with engine.begin() as conn:  # 0.001234567891 USD as the old schema kept it: picodollars
        conn.execute(text(
            "INSERT INTO attempts (event_id, request_id, attempt_index, tenant, workload, tier, model, adapter, "
            "outcome, input_tokens, output_tokens, cost_usd, input_usd_per_million, output_usd_per_million, "
            "price_version, latency_ms, confidence, occurred_at, recorded_at) VALUES ('e1', 'r1', 0, 'acme', 'chat', "
            "'CLOSED', 'gpt-5-mini', 'openai', 'ANSWERED', 1000, 500, 1234567891, 250000000000, 2000000000000, "
            "'dev-old', 10, 0.9, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        ))  # fmt: skip
        conn.execute(text("INSERT INTO daily_spend VALUES ('2026-01-01', 'acme', 'chat', 'CLOSED', 'gpt-5-mini', "
                          "1, 1000, 500, 1234567891)"))  # fmt: skip
    migrations.upgrade(url)
    store = LedgerStore(engine)
    [line] = store.spend("acme", "", None, None)
    [attempt] = store.attempts_for("r1")
    [day] = store.daily("acme", "", None, None)
    engine.dispose()
    assert line["cost_usd"] == attempt["cost_usd"] == day["cost_usd"] == Decimal("0.001234567891")
    assert kind_spend(day) == kind_spend(line)
    kinds = {k.kind: k for k in kind_spend(line)}
    assert kinds["text"].cost_usd == Decimal("0.001234567891") and kinds["text"].tokens == 1_500
    assert all(k.tokens == 0 and k.cost_usd == 0 for name, k in kinds.items() if name != "text")


def _catalog_with(model_id: str, **prices: str) -> Catalog:
    raw = yaml.safe_load(DEFAULT_CATALOG.read_text())
    for m in raw["models"]:
        if m["id"] == model_id:
            m["price"]["api"].update(prices)
    return Catalog.model_validate(raw)


def test_a_kind_price_changed_under_the_same_catalog_version_is_refused(store: LedgerStore) -> None:
    store.record_prices(CATALOG)
    store.record_prices(CATALOG)  # the same prices again: fine
    with pytest.raises(StartupError, match="already recorded other prices for claude-haiku-4-5"):
        store.record_prices(_catalog_with("claude-haiku-4-5", cache_write_1h_per_million="2.50"))


def test_missing_kind_prices_fall_back_by_the_documented_rule() -> None:
    catalog = _catalog_with("gpt-5", cache_write_per_million="2.00")
    prices = catalog.get("gpt-5").price.per_million  # type: ignore[union-attr]
    assert prices["cache_read"] == Decimal("0.125")  # given
    assert prices["cache_write_1h"] == Decimal("2.00")  # the 5-minute write price
    assert prices["image_input"] == prices["audio_input"] == prices["text_input"] == Decimal("1.25")
    assert prices["reasoning"] == prices["text_output"] == Decimal("10.00")


def test_the_attempt_span_carries_the_kinds_and_the_cost() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tierlift.router._attempts import annotate

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    usage = common_pb2.Usage(input_tokens=1_200, output_tokens=300, cache_read_input_tokens=1_000,
                             cache_write_input_tokens=100, cache_write_1h_input_tokens=40,
                             reasoning_output_tokens=200)  # fmt: skip
    attempt = router_pb2.Attempt(model="gpt-5", tier=common_pb2.TIER_FRONTIER, outcome=router_pb2.OUTCOME_ANSWERED,
                                 usage=usage, cost_usd="0.003125000000")  # fmt: skip
    with provider.get_tracer("test").start_as_current_span("chat gpt-5") as span:
        annotate(span, attempt)
    (finished,) = exporter.get_finished_spans()
    attrs = dict(finished.attributes or {})
    assert {k: attrs[k] for k in (
        "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.reasoning.output_tokens",
        "tierlift.usage.cache_creation_1h.input_tokens")} == {
        "gen_ai.usage.input_tokens": 1_200, "gen_ai.usage.output_tokens": 300,
        "gen_ai.usage.cache_read.input_tokens": 1_000, "gen_ai.usage.cache_creation.input_tokens": 100,
        "gen_ai.usage.reasoning.output_tokens": 200, "tierlift.usage.cache_creation_1h.input_tokens": 40}  # fmt: skip
    assert attrs["gen_ai.usage.cost"] == pytest.approx(0.003125) and attrs["gen_ai.usage.currency"] == "USD"
    assert attrs["tierlift.cost_usd"] == "0.003125000000"


def test_the_gateway_answers_each_client_in_its_providers_convention() -> None:
    """OpenAI's clients get the kinds as parts of the totals; Anthropic's an input_tokens without the
    cache reads and writes, which its clients add back."""
    from tierlift.gateway import _anthropic, _openai

    usage = common_pb2.Usage(input_tokens=1_000, output_tokens=50, cache_read_input_tokens=600,
                             cache_write_input_tokens=300, cache_write_1h_input_tokens=100,
                             reasoning_output_tokens=20)  # fmt: skip
    reply = router_pb2.CompleteResponse(request_id="r1", model="claude-haiku-4-5", text="hi", usage=usage)
    openai = _openai.completion(reply)["usage"]
    assert (openai["prompt_tokens"], openai["prompt_tokens_details"]["cached_tokens"]) == (1_000, 600)
    assert openai["completion_tokens_details"]["reasoning_tokens"] == 20
    anthropic = _anthropic.message(reply)["usage"]
    by_lifetime = {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 100}
    assert anthropic == {"input_tokens": 100, "output_tokens": 50, "cache_read_input_tokens": 600,
                         "cache_creation_input_tokens": 300, "cache_creation": by_lifetime}  # fmt: skip


def test_the_csv_report_has_each_kinds_tokens_and_cost(tmp_path: Path) -> None:
    from tierlift.ledger._kinds import KindTotal
    from tierlift.ledger._servicer import build_report
    from tierlift.reports import write_csv

    day = {"day": datetime(2026, 12, 7, tzinfo=UTC).date(), "tier": "CLOSED", "attempts": 1, "input_tokens": 1_200,
           "output_tokens": 300, "cost_usd": Decimal("0.0031"), "cache_read_input_tokens": 1_000,
           "cache_write_input_tokens": 0, "cache_write_1h_input_tokens": 0, "image_input_tokens": 0,
           "audio_input_tokens": 0, "reasoning_output_tokens": 200, "cache_read_cost_usd": Decimal("0.0001"),
           "cache_write_cost_usd": Decimal(0), "image_input_cost_usd": Decimal(0),
           "audio_input_cost_usd": Decimal(0), "reasoning_cost_usd": Decimal("0.002")}  # fmt: skip
    assert kind_spend(day)[-1] == KindTotal("text", 300, Decimal("0.0010"))
    write_csv(build_report([day], []), tmp_path / "r.csv")
    header, row = (tmp_path / "r.csv").read_text().splitlines()
    columns = dict(zip(header.split(","), row.split(","), strict=True))
    assert (columns["cache_read_tokens"], columns["cache_read_cost_usd"]) == ("1000", "0.000100000000")
    assert (columns["reasoning_tokens"], columns["text_tokens"], columns["text_cost_usd"]) == (
        "200", "300", "0.001000000000")  # fmt: skip


def test_tierlift_spend_prints_the_kinds_that_were_used(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:

    from tierlift import cli
    from tierlift.v1 import ledger_pb2

    kinds = [ledger_pb2.KindSpend(kind="cache_read", tokens=1_000, cost_usd="0.000100000000"),
             ledger_pb2.KindSpend(kind="image_input", tokens=0, cost_usd="0.000000000000"),
             ledger_pb2.KindSpend(kind="text", tokens=500, cost_usd="0.001000000000")]  # fmt: skip
    line = ledger_pb2.SpendLine(tenant="acme", workload="chat", tier=common_pb2.TIER_CLOSED, model="gpt-5",
                                attempts=1, input_tokens=1_200, output_tokens=300, cost_usd="0.0011",
                                kinds=kinds)  # fmt: skip
    report = ledger_pb2.SpendReport(lines=[line], total_cost_usd="0.0011", total_attempts=1, kinds=kinds)

    class Ledger:
        def GetSpend(self, query: ledger_pb2.SpendQuery, timeout: float) -> ledger_pb2.SpendReport:
            return report

    monkeypatch.setattr(cli, "_ledger", lambda _args: Ledger())
    assert cli.main(["spend", "--tenant", "acme"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [o.split()[:2] for o in out if o.strip().startswith(("cache_read", "image_input", "text"))] == [
        ["cache_read", "1000"], ["text", "500"], ["cache_read", "1000"], ["text", "500"]]  # fmt: skip

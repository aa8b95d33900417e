"""The model catalog: every model described once (tier, adapter, region, licence, prices).

Loaded from YAML and validated at start. Prices are Decimal; a self-hosted model's per-token
price is derived from its hourly cost and measured throughput, so every model is priced the
same way: tokens x USD per 1M tokens.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tierlift.core import money, pricing
from tierlift.core.entry import StartupError
from tierlift.v1 import common_pb2

TierName = Literal["LOCAL", "HOSTED_OPEN", "CLOSED", "FRONTIER"]
TIERS: dict[str, common_pb2.Tier] = {
    "LOCAL": common_pb2.TIER_LOCAL,
    "HOSTED_OPEN": common_pb2.TIER_HOSTED_OPEN,
    "CLOSED": common_pb2.TIER_CLOSED,
    "FRONTIER": common_pb2.TIER_FRONTIER,
}


def tier_name(tier: int) -> str:
    """TIER_LOCAL -> "LOCAL"."""
    return common_pb2.Tier.Name(tier).removeprefix("TIER_")


class CatalogError(StartupError):
    """The catalog file is missing or invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ApiPrice(_Strict):
    """A provider's list prices, USD per 1M tokens. Only input and output are required; a kind
    priced apart (see tierlift.core.pricing) that is not given falls back to what the provider
    would otherwise bill: cache reads and cache writes to the input price (no discount is
    assumed), 1-hour cache writes to the 5-minute price, images and audio to the input price,
    reasoning to the output price."""

    input_per_million: Decimal = Field(ge=0)
    output_per_million: Decimal = Field(ge=0)
    cache_read_per_million: Decimal | None = Field(default=None, ge=0)
    cache_write_per_million: Decimal | None = Field(default=None, ge=0)  # 5-minute writes
    cache_write_1h_per_million: Decimal | None = Field(default=None, ge=0)
    image_input_per_million: Decimal | None = Field(default=None, ge=0)
    audio_input_per_million: Decimal | None = Field(default=None, ge=0)
    reasoning_per_million: Decimal | None = Field(default=None, ge=0)

    def kind_prices(self) -> dict[str, Decimal]:
        """Every kind's price, the fallbacks filled in."""
        cache_write = _given(self.cache_write_per_million, self.input_per_million)
        return {
            "cache_read": _given(self.cache_read_per_million, self.input_per_million),
            "cache_write_5m": cache_write,
            "cache_write_1h": _given(self.cache_write_1h_per_million, cache_write),
            "image_input": _given(self.image_input_per_million, self.input_per_million),
            "audio_input": _given(self.audio_input_per_million, self.input_per_million),
            "text_input": self.input_per_million,
            "reasoning": _given(self.reasoning_per_million, self.output_per_million),
            "text_output": self.output_per_million,
        }


def _given(price: Decimal | None, fallback: Decimal) -> Decimal:
    return fallback if price is None else price


class SelfHostedPrice(_Strict):
    hardware: str = "1 GPU"  # what one replica (pod) runs on, e.g. "2 vCPU", "2x A100 80GB"
    hourly_usd: Decimal = Field(ge=0)  # one replica's hour: its GPUs (or CPUs)
    input_tokens_per_s: Decimal = Field(gt=0)  # measured prefill throughput
    output_tokens_per_s: Decimal = Field(gt=0)  # measured decode throughput

    def per_million(self, tokens_per_s: Decimal) -> Decimal:
        return self.hourly_usd / Decimal(3600) / tokens_per_s * money.MILLION


class Price(_Strict):
    api: ApiPrice | None = None
    self_hosted: SelfHostedPrice | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Price:
        if (self.api is None) == (self.self_hosted is None):
            raise ValueError("give exactly one of price.api and price.self_hosted")
        return self

    @property
    def input_per_million(self) -> Decimal:
        if self.api is not None:
            return self.api.input_per_million
        assert self.self_hosted is not None
        return self.self_hosted.per_million(self.self_hosted.input_tokens_per_s)

    @property
    def output_per_million(self) -> Decimal:
        if self.api is not None:
            return self.api.output_per_million
        assert self.self_hosted is not None
        return self.self_hosted.per_million(self.self_hosted.output_tokens_per_s)

    @functools.cached_property
    def per_million(self) -> Mapping[str, Decimal]:
        """USD per 1M tokens of each kind (tierlift.core.pricing.KINDS). A self-hosted model's
        pod costs the same whatever its tokens are: input kinds at its input price, output kinds
        at its output price."""
        if self.api is not None:
            return MappingProxyType(self.api.kind_prices())
        prices = {kind: self.input_per_million for kind in pricing.INPUT_KINDS}
        return MappingProxyType(prices | {kind: self.output_per_million for kind in pricing.OUTPUT_KINDS})


class Licence(_Strict):
    name: str
    excluded_regions: tuple[str, ...] = ()  # e.g. a licence that excludes EU-domiciled users
    monthly_user_cap: int | None = None


class Capabilities(_Strict):
    streaming: bool = False
    logprobs: bool = False
    tools: bool = False
    json_mode: bool = False
    json_schema: bool = False  # structured outputs: the answer constrained to a JSON Schema
    vision: bool = False  # reads image parts
    embeddings: bool = False  # an embedding model: it serves Router.Embed, never a chat request


class Speed(_Strict):
    """Typical speed of one request (measured for our pods, published or observed for APIs):
    what the latency SLO is checked against before any call."""

    first_token_ms: int = Field(ge=0)
    output_tokens_per_s: Decimal = Field(gt=0)

    def estimate_ms(self, output_tokens: int) -> int:
        return self.first_token_ms + int(Decimal(output_tokens) / self.output_tokens_per_s * 1000)


# The geography (a request's `region`) of a cloud region, by the clouds' naming: AWS eu-central-1,
# Google Cloud europe-west4 -> "eu"; us-east-1, us-central1 -> "us".
_GEOGRAPHY_PREFIXES = {"eu": ("eu-", "europe-"), "us": ("us-",)}


def cloud_geography(cloud_region: str) -> str:
    """ "eu" for eu-central-1 and europe-west4, "us" for us-east-1; else the name's first part."""
    for geography, prefixes in _GEOGRAPHY_PREFIXES.items():
        if cloud_region.startswith(prefixes):
            return geography
    return cloud_region.split("-")[0]


class Model(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    tier: TierName
    provider: str
    adapter: str  # name of the adapter service that serves it
    upstream_model: str = ""  # the provider's own model name, if different
    endpoint: str = ""
    # A variable that, when set, replaces `endpoint` (OPENAI_BASE_URL, as the OpenAI SDK reads it):
    # how a local OpenAI-compatible server stands in for a provider.
    endpoint_env: str = ""
    regions: tuple[str, ...] = ("any",)  # where the model runs
    # The cloud region the adapter calls, for regional clouds: an AWS region for Bedrock
    # ("eu-central-1"), a Google Cloud location for Vertex AI ("europe-west4"). One catalog entry
    # per region, so the request's region constraint picks the endpoint.
    cloud_region: str = ""
    licence: Licence
    context_window: int = Field(gt=0)
    capabilities: Capabilities = Capabilities()
    price: Price
    api_key_env: str = ""
    speed: Speed | None = None

    @model_validator(mode="after")
    def _cloud_region_in_regions(self) -> Model:
        """A regional cloud's entry runs where its cloud region is, and nowhere else: the region
        limit then also decides which endpoint a request may reach."""
        if self.cloud_region and tuple(self.regions) != (cloud_geography(self.cloud_region),):
            raise ValueError(
                f"cloud_region {self.cloud_region} is in {cloud_geography(self.cloud_region)}: "
                f"regions must be [{cloud_geography(self.cloud_region)}], not {list(self.regions)}"
            )
        return self

    def resolved_endpoint(self, env: Mapping[str, str]) -> str:
        return (env.get(self.endpoint_env, "") if self.endpoint_env else "") or self.endpoint

    @property
    def tier_value(self) -> common_pb2.Tier:
        return TIERS[self.tier]

    def cost(self, input_tokens: int, output_tokens: int) -> Decimal:
        """Text tokens at the input and output prices (an estimate before a call; a call's own
        usage is priced by `usage_cost`)."""
        return money.token_cost(input_tokens, self.price.input_per_million) + money.token_cost(
            output_tokens, self.price.output_per_million
        )

    def usage_cost(self, usage: common_pb2.Usage) -> pricing.UsageCost:
        """A call's usage priced kind by kind (cache reads, writes, images, audio, reasoning, text)."""
        return pricing.price(usage, self.price.per_million)


class Catalog(_Strict):
    version: str = Field(min_length=1)  # the price version stored with every priced attempt
    models: tuple[Model, ...]

    @field_validator("models")
    @classmethod
    def _unique_ids(cls, models: tuple[Model, ...]) -> tuple[Model, ...]:
        seen: set[str] = set()
        for m in models:
            if m.id in seen:
                raise ValueError(f"duplicate model id {m.id!r}")
            seen.add(m.id)
        return models

    def get(self, model_id: str) -> Model | None:
        # a request looks models up several times (router, adapter, ledger), in catalogs of
        # hundreds: by an index of this `models` tuple, kept apart from the model so that equal
        # catalogs stay equal and a model_copy(update=) never reads a stale one
        index = _INDEXES.get(id(self.models))
        if index is None or index[0] is not self.models:
            if len(_INDEXES) >= 64:
                _INDEXES.clear()
            index = _INDEXES[id(self.models)] = (self.models, {m.id: m for m in self.models})
        return index[1].get(model_id)


_INDEXES: dict[int, tuple[tuple[Model, ...], dict[str, Model]]] = {}


def load_catalog(path: Path) -> Catalog:
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise CatalogError(f"catalog {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise CatalogError(f"catalog {path}: not valid YAML: {exc}") from None
    except (ValueError, RecursionError) as exc:  # not UTF-8, a 4,300+ digit number, nesting past the limit
        raise CatalogError(f"catalog {path}: YAML this loader cannot read: {str(exc)[:200]}") from None
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise CatalogError(f"catalog {path}: " + "; ".join(problems)) from None

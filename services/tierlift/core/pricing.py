"""Tokens by the kind they are priced as, and what they cost.

A `Usage` (protos/tierlift/v1/common.proto) counts every input and output token, and how many of
them were cache reads, cache writes (5 minutes or an hour), images, audio and reasoning. Here
they become disjoint kinds, each priced at its own price per million tokens: every token is
billed once, at one price. The catalog says what each kind costs (`catalog.Price.per_million`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal

from tierlift.core import money
from tierlift.v1 import common_pb2

# The disjoint kinds, in the order a usage's counts are taken (see `split`).
INPUT_KINDS = ("cache_read", "cache_write_5m", "cache_write_1h", "image_input", "audio_input", "text_input")
OUTPUT_KINDS = ("reasoning", "text_output")
KINDS = INPUT_KINDS + OUTPUT_KINDS


@dataclass(frozen=True)
class TokenKinds:
    """A usage's tokens by kind; no token is in two kinds."""

    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    image_input: int = 0
    audio_input: int = 0
    text_input: int = 0  # every other input token
    reasoning: int = 0
    text_output: int = 0  # every other output token

    def items(self) -> tuple[tuple[str, int], ...]:
        return tuple((f.name, getattr(self, f.name)) for f in fields(self))


def split(usage: common_pb2.Usage) -> TokenKinds:
    """The usage's tokens by kind. Counts a provider (or a broken producer) reports past what
    they are part of are capped, in the order of Usage's fields: cache reads at input_tokens,
    cache writes at what input is left, the 1-hour writes at the writes, images and then audio at
    what input is left, reasoning at output_tokens. So every token is priced exactly once, and
    no count can make a cost negative."""
    left = usage.input_tokens
    cache_read = min(usage.cache_read_input_tokens, left)
    left -= cache_read
    cache_write = min(usage.cache_write_input_tokens, left)
    left -= cache_write
    cache_write_1h = min(usage.cache_write_1h_input_tokens, cache_write)
    image = min(usage.image_input_tokens, left)
    left -= image
    audio = min(usage.audio_input_tokens, left)
    left -= audio
    reasoning = min(usage.reasoning_output_tokens, usage.output_tokens)
    return TokenKinds(
        cache_read=cache_read,
        cache_write_5m=cache_write - cache_write_1h,
        cache_write_1h=cache_write_1h,
        image_input=image,
        audio_input=audio,
        text_input=left,
        reasoning=reasoning,
        text_output=usage.output_tokens - reasoning,
    )


def normalised(usage: common_pb2.Usage) -> common_pb2.Usage:
    """The usage with its kinds capped as `split` caps them: what adapters send and the ledger stores."""
    kinds = split(usage)
    return common_pb2.Usage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_input_tokens=kinds.cache_read,
        cache_write_input_tokens=kinds.cache_write_5m + kinds.cache_write_1h,
        cache_write_1h_input_tokens=kinds.cache_write_1h,
        image_input_tokens=kinds.image_input,
        audio_input_tokens=kinds.audio_input,
        reasoning_output_tokens=kinds.reasoning,
    )


@dataclass(frozen=True)
class UsageCost:
    """A usage's tokens by kind and what each kind cost (each rounded to the 1e-12 USD kept);
    `total` is their sum."""

    tokens: TokenKinds
    by_kind: Mapping[str, Decimal]

    @property
    def total(self) -> Decimal:
        return sum(self.by_kind.values(), Decimal(0))


def price(usage: common_pb2.Usage, per_million: Mapping[str, Decimal]) -> UsageCost:
    """The usage priced at `per_million` (USD per 1M tokens for every kind in KINDS)."""
    tokens = split(usage)
    return UsageCost(tokens, {kind: money.token_cost(n, per_million[kind]) for kind, n in tokens.items()})


def span_attributes(usage: common_pb2.Usage) -> dict[str, int]:
    """A usage as span attributes: the OpenTelemetry GenAI semantic conventions' names where they
    have one (their input_tokens and output_tokens include the kinds, as ours do), tierlift's where
    they have none (1-hour cache writes, images, audio)."""
    return {
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cache_read_input_tokens,
        "gen_ai.usage.cache_creation.input_tokens": usage.cache_write_input_tokens,
        "gen_ai.usage.reasoning.output_tokens": usage.reasoning_output_tokens,
        "tierlift.usage.cache_creation_1h.input_tokens": usage.cache_write_1h_input_tokens,
        "tierlift.usage.image.input_tokens": usage.image_input_tokens,
        "tierlift.usage.audio.input_tokens": usage.audio_input_tokens,
    }

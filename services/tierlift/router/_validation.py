"""Checks a CompleteRequest before any work is done. Every error names the field."""

from __future__ import annotations

from tierlift.core import limits, money
from tierlift.core.ids import is_slug, shown
from tierlift.core.tokens import estimate_tokens
from tierlift.v1 import common_pb2, router_pb2

MAX_MESSAGES = 256
MAX_ALLOWED_TIERS = 4
MAX_MODELS = 16
MAX_IDEMPOTENCY_KEY = 128


class InvalidRequest(ValueError):
    """The request is malformed; str() is `field: what is wrong`."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


def validate(request: router_pb2.CompleteRequest, max_prompt_tokens: int) -> None:
    """Raise InvalidRequest for the first problem found. max_prompt_tokens is the largest
    context window any deployed model offers."""
    _check_slug("tenant", request.tenant)
    _check_slug("workload", request.workload)
    _check_messages(request, max_prompt_tokens)
    _check_params(request)
    _check_constraints(request.constraints)
    if len(request.idempotency_key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidRequest("idempotency_key", f"longer than {MAX_IDEMPOTENCY_KEY} characters")
    if len(request.cohort_key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidRequest("cohort_key", f"longer than {MAX_IDEMPOTENCY_KEY} characters")


def prompt_text(message: common_pb2.Message) -> str:
    """What a message adds to the prompt, for its size: text, text parts, tool calls."""
    calls = "".join(c.name + c.arguments for c in message.tool_calls)
    return message.content + "".join(p.text for p in message.parts) + calls


def validate_embed(request: router_pb2.EmbedRequest) -> None:
    """Router.Embed's request: the same rules as Complete's for tenant, workload and constraints."""
    _check_slug("tenant", request.tenant)
    _check_slug("workload", request.workload)
    if problem := limits.check_inputs(request.inputs):
        raise InvalidRequest(*problem)
    if request.dimensions > limits.MAX_EMBED_DIMENSIONS:
        raise InvalidRequest("dimensions", f"{request.dimensions} is over {limits.MAX_EMBED_DIMENSIONS}")
    _check_constraints(request.constraints)


def _check_slug(field: str, value: str) -> None:
    if not is_slug(value):
        raise InvalidRequest(
            field, f"{shown(value)} is not a lowercase slug (letters, digits, '-'; 2 to 63 characters)"
        )


def _check_messages(request: router_pb2.CompleteRequest, max_prompt_tokens: int) -> None:
    if not request.messages:
        raise InvalidRequest("messages", "must not be empty")
    if len(request.messages) > MAX_MESSAGES:
        raise InvalidRequest("messages", f"more than {MAX_MESSAGES} messages")
    if problem := limits.check_messages(request.messages):
        raise InvalidRequest(*problem)
    if request.messages[-1].role not in ("user", "tool"):
        raise InvalidRequest(
            f"messages[{len(request.messages) - 1}].role", "the last message must be from the user (or a tool's result)"
        )
    tokens = estimate_tokens("".join(prompt_text(m) for m in request.messages))
    if tokens > max_prompt_tokens:
        raise InvalidRequest(
            "messages",
            f"prompt is ~{tokens} tokens, more than the largest deployed context window ({max_prompt_tokens})",
        )


def _check_params(request: router_pb2.CompleteRequest) -> None:
    if problem := limits.check_params(request.params):
        raise InvalidRequest(*problem)


def _check_constraints(c: router_pb2.Constraints) -> None:
    if problem := limits.check_enum("constraints.data_class", c.data_class, common_pb2.DataClass, True):
        raise InvalidRequest(*problem)
    if len(c.allowed_tiers) > MAX_ALLOWED_TIERS:
        raise InvalidRequest("constraints.allowed_tiers", f"more than {MAX_ALLOWED_TIERS} entries")
    if len(c.models) > MAX_MODELS or any(not m or len(m) > 128 for m in c.models):
        raise InvalidRequest("constraints.models", f"at most {MAX_MODELS} catalog model ids of 1 to 128 characters")
    for i, tier in enumerate(c.allowed_tiers):
        if problem := limits.check_enum(f"constraints.allowed_tiers[{i}]", tier, common_pb2.Tier, False):
            raise InvalidRequest(*problem)
    if c.max_cost_usd:
        try:
            money.amount(c.max_cost_usd)
        except ValueError as exc:
            raise InvalidRequest("constraints.max_cost_usd", f"{shown(c.max_cost_usd)} {exc}") from None
    if not 0.0 <= c.quality_bar <= 1.0:
        raise InvalidRequest("constraints.quality_bar", f"{c.quality_bar} is outside [0, 1]")
    if c.region and not is_slug(c.region):
        raise InvalidRequest("constraints.region", f"{shown(c.region)} is not a region code like 'eu' or 'us'")

"""Limits on what a caller may send, shared by the router and the adapters (which can be called
directly). Each check returns the field at fault and what is wrong, or None; the protos
document the same limits beside each field."""

from __future__ import annotations

import math

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from tierlift.v1 import common_pb2

MAX_OUTPUT_TOKENS = 32_768
MAX_STOP_SEQUENCES = 16
MAX_STOP_CHARS = 256
RESPONSE_FORMATS = {"", "text", "json_object"}

Problem = tuple[str, str] | None


def check_params(p: common_pb2.GenerationParams, prefix: str = "params") -> Problem:
    if p.max_tokens > MAX_OUTPUT_TOKENS:
        return f"{prefix}.max_tokens", f"{p.max_tokens} is over the limit of {MAX_OUTPUT_TOKENS}"
    if not (math.isfinite(p.temperature) and 0.0 <= p.temperature <= 2.0):
        return f"{prefix}.temperature", f"{p.temperature} is outside [0, 2]"
    if not (math.isfinite(p.top_p) and 0.0 <= p.top_p <= 1.0):
        return f"{prefix}.top_p", f"{p.top_p} is outside [0, 1]"
    if len(p.stop) > MAX_STOP_SEQUENCES:
        return f"{prefix}.stop", f"{len(p.stop)} sequences, more than {MAX_STOP_SEQUENCES}"
    for i, stop in enumerate(p.stop):
        if not stop or len(stop) > MAX_STOP_CHARS:
            return f"{prefix}.stop[{i}]", f"must be 1 to {MAX_STOP_CHARS} characters, not {len(stop):,}"
    if p.response_format not in RESPONSE_FORMATS:
        return f"{prefix}.response_format", f"must be one of {sorted(RESPONSE_FORMATS)}"
    return None


def check_enum(field: str, value: int, enum: EnumTypeWrapper, allow_unspecified: bool) -> Problem:
    """A proto3 enum field keeps any integer it is sent: refuse the ones the API does not define."""
    allowed = {number: name for name, number in enum.items() if number or allow_unspecified}
    if value not in allowed:
        return field, f"{value} is not one of {list(allowed.values())}"
    return None

"""Limits on what a caller may send, shared by the router and the adapters (which can be called
directly). Each check returns the field at fault and what is wrong, or None; the protos
document the same limits beside each field."""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

import jsonschema
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from tierlift.v1 import common_pb2

MAX_OUTPUT_TOKENS = 32_768
MAX_STOP_SEQUENCES = 16
MAX_STOP_CHARS = 256
RESPONSE_FORMATS = {"", "text", "json_object", "json_schema"}
MAX_JSON_SCHEMA_BYTES = 64 * 1024
_SCHEMA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

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
    if (p.response_format == "json_schema") != bool(p.json_schema):
        return f"{prefix}.json_schema", 'is set exactly when response_format is "json_schema"'
    return check_json_schema(p.json_schema, f"{prefix}.json_schema") if p.json_schema else None


def check_json_schema(text: str, field: str) -> Problem:
    """OpenAI's json_schema object as JSON text: a name, a valid JSON Schema, optional strict
    and description. What the adapters pass on, so a provider never gets one we would refuse."""
    if len(text.encode()) > MAX_JSON_SCHEMA_BYTES:
        return field, f"is over {MAX_JSON_SCHEMA_BYTES:,} bytes"
    problem = _json_schema_problem(text)
    return (field + problem[0], problem[1]) if problem else None


def check_enum(field: str, value: int, enum: EnumTypeWrapper, allow_unspecified: bool) -> Problem:
    """A proto3 enum field keeps any integer it is sent: refuse the ones the API does not define."""
    allowed = {number: name for name, number in enum.items() if number or allow_unspecified}
    if value not in allowed:
        return field, f"{value} is not one of {list(allowed.values())}"
    return None


# Checking a schema against its metaschema costs ~2 ms (jsonschema) and the edge, the router and
# the adapter each check it; a client sends the same few schemas again and again.
@functools.lru_cache(maxsize=256)
def _json_schema_problem(text: str) -> tuple[str, str] | None:
    """(the part of the json_schema object at fault, e.g. ".schema", what is wrong) or None."""
    try:
        spec: Any = json.loads(text)
    except (ValueError, RecursionError):
        return "", "is not JSON"
    if not isinstance(spec, dict):
        return "", 'must be an object: {"name": ..., "schema": {...}}'
    unknown = set(spec) - {"name", "schema", "strict", "description"}
    if unknown:
        return f".{sorted(unknown)[0]}", "is not a json_schema field"
    if not isinstance(spec.get("name"), str) or not _SCHEMA_NAME.fullmatch(spec["name"]):
        return ".name", "must be 1 to 64 letters, digits, '_' or '-'"
    if not isinstance(spec.get("schema"), dict):
        return ".schema", "must be a JSON Schema object"
    if spec.get("strict") is not None and not isinstance(spec["strict"], bool):
        return ".strict", "must be true or false"
    if spec.get("description") is not None and not isinstance(spec["description"], str):
        return ".description", "must be a string"
    if (ref := _outside_ref(spec["schema"])) is not None:
        return ".schema", f"$ref {ref[:80]!r} points outside the schema: only '#...' references are followed"
    try:
        jsonschema.validators.validator_for(spec["schema"]).check_schema(spec["schema"])
    except jsonschema.SchemaError as exc:
        return ".schema", f"is not a valid JSON Schema: {exc.message[:200]}"
    except RecursionError:
        return ".schema", "nests too deep"
    return None


def _outside_ref(node: Any) -> str | None:
    """The first `$ref` that is not a reference inside the schema (a URL or a file): no backend
    fetches one, and llama.cpp leaves sampling unconstrained when it cannot follow it."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if ref is not None and not (isinstance(ref, str) and ref.startswith("#")):
                return str(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None

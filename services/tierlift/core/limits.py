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
MAX_TOOLS = 128
MAX_TOOL_DESCRIPTION = 4096
TOOL_CHOICES = {"", "auto", "none", "required"}
ROLES = {"system", "user", "assistant", "tool"}
PART_TYPES = {"text", "image_url"}
IMAGE_DETAILS = {"", "auto", "low", "high"}
MAX_TOOL_CALLS = 128

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
    if p.json_schema and (problem := check_json_schema(p.json_schema, f"{prefix}.json_schema")):
        return problem
    return check_tools(p, prefix)


def check_tools(p: common_pb2.GenerationParams, prefix: str = "params") -> Problem:
    """The tools a model may call, and how it may choose among them (OpenAI's rules)."""
    if len(p.tools) > MAX_TOOLS:
        return f"{prefix}.tools", f"{len(p.tools)} tools, more than {MAX_TOOLS}"
    names = set()
    for i, tool in enumerate(p.tools):
        where = f"{prefix}.tools[{i}]"
        if not _SCHEMA_NAME.fullmatch(tool.name):
            return f"{where}.name", "must be 1 to 64 letters, digits, '_' or '-'"
        if tool.name in names:
            return f"{where}.name", f"{tool.name!r} is given twice"
        names.add(tool.name)
        if len(tool.description) > MAX_TOOL_DESCRIPTION:
            return f"{where}.description", f"longer than {MAX_TOOL_DESCRIPTION} characters"
        if tool.parameters and (problem := _schema_problem(tool.parameters)):
            return f"{where}.parameters", problem
    if p.tool_choice not in TOOL_CHOICES and p.tool_choice not in names:
        return (
            f"{prefix}.tool_choice",
            f"must be auto, none, required or one of the tools' names, not {p.tool_choice[:64]!r}",
        )
    if p.tool_choice not in ("", "none") and not p.tools:
        return f"{prefix}.tool_choice", "asks for a tool call, and the request gives no tools"
    if p.HasField("parallel_tool_calls") and not p.tools:
        return f"{prefix}.parallel_tool_calls", "is set, and the request gives no tools"
    return None


MAX_EMBED_INPUTS = 2048
MAX_EMBED_INPUT_CHARS = 32_768
MAX_EMBED_DIMENSIONS = 16_384  # the router's limit; the gateway refuses more before the proto's uint32 overflows


def check_inputs(inputs: Any, prefix: str = "inputs") -> Problem:
    """The texts of an embeddings request: 1 to 2,048, each 1 to 32,768 characters."""
    if not 1 <= len(inputs) <= MAX_EMBED_INPUTS:
        return prefix, f"must hold 1 to {MAX_EMBED_INPUTS} texts, not {len(inputs)}"
    for i, text in enumerate(inputs):
        if not text.strip() or len(text) > MAX_EMBED_INPUT_CHARS:
            return f"{prefix}[{i}]", f"must be 1 to {MAX_EMBED_INPUT_CHARS} characters of text"
    return None


def check_messages(messages: Any, prefix: str = "messages") -> Problem:
    """Roles, content parts, tool calls and tool results, each naming the field at fault."""
    for i, m in enumerate(messages):
        where = f"{prefix}[{i}]"
        if m.role not in ROLES:
            return f"{where}.role", f"{m.role[:32]!r} is not one of {sorted(ROLES)}"
        if m.content and m.parts:
            return f"{where}.parts", "content is given as text and as parts: give one"
        for j, part in enumerate(m.parts):
            if part.type not in PART_TYPES:
                return f"{where}.parts[{j}].type", f"must be one of {sorted(PART_TYPES)}"
            if part.type == "text" and (not part.text or part.image_url):
                return f"{where}.parts[{j}].text", "a text part has text and nothing else"
            if part.type == "image_url" and (part.text or not part.image_url.startswith(("https://", "data:image/"))):
                return f"{where}.parts[{j}].image_url", "must be an https URL or a data:image/... URL"
            if part.detail not in IMAGE_DETAILS:
                return f"{where}.parts[{j}].detail", f"must be one of {sorted(IMAGE_DETAILS - {''})}"
        if m.tool_calls and m.role != "assistant":
            return f"{where}.tool_calls", "only an assistant message calls tools"
        if len(m.tool_calls) > MAX_TOOL_CALLS:
            return f"{where}.tool_calls", f"more than {MAX_TOOL_CALLS} calls"
        for j, call in enumerate(m.tool_calls):
            if not call.id or len(call.id) > 256:
                return f"{where}.tool_calls[{j}].id", "must be 1 to 256 characters"
            if not _SCHEMA_NAME.fullmatch(call.name):
                return f"{where}.tool_calls[{j}].name", "must be 1 to 64 letters, digits, '_' or '-'"
            if not _is_json_object(call.arguments):
                return f"{where}.tool_calls[{j}].arguments", "must be a JSON object as text"
        if (m.role == "tool") != bool(m.tool_call_id):
            return f"{where}.tool_call_id", "is set exactly on a tool message (the call it answers)"
        if not (m.content.strip() or m.parts or m.tool_calls):
            return f"{where}.content", "must not be empty"
    return None


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(_loads(text), dict)
    except (ValueError, RecursionError):
        return False


def _loads(text: str) -> Any:
    """JSON text, strictly: Python's reader takes NaN, Infinity and -Infinity, which are no JSON,
    and a provider sent them refuses the whole request."""
    return json.loads(text, parse_constant=_not_json)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


@functools.lru_cache(maxsize=256)
def _schema_problem(text: str) -> str | None:
    """What is wrong with a tool's parameters (a JSON Schema of an object, as JSON text), or None."""
    try:
        schema: Any = _loads(text)
    except (ValueError, RecursionError):
        return "is not JSON"
    if not isinstance(schema, dict):
        return "must be a JSON Schema object"
    if len(text.encode()) > MAX_JSON_SCHEMA_BYTES:
        return f"is over {MAX_JSON_SCHEMA_BYTES:,} bytes"
    if (ref := _outside_ref(schema)) is not None:
        return f"$ref {ref[:80]!r} points outside the schema: only '#...' references are followed"
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"is not a valid JSON Schema: {exc.message[:200]}"
    except RecursionError:
        return "nests too deep"
    return None


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
        spec: Any = _loads(text)
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

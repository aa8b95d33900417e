"""An answer that can be checked is checked: a tool call must name one of the request's tools
and its arguments must validate against that tool's JSON Schema; an answer asked to be JSON must
parse (and follow the request's schema). One that fails is the clearest low-confidence signal
there is: the router escalates it, or fails with the reason when no rung is left."""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema

from tierlift.v1 import adapter_pb2, router_pb2


def answer_problem(request: router_pb2.CompleteRequest, result: adapter_pb2.GenerateResponse) -> str:
    """Why the answer does not hold up ("" when it does)."""
    params = request.params
    tools = {t.name: t.parameters for t in params.tools}
    if result.tool_calls and params.tool_choice == "none":
        return "the model called a tool, and tool_choice is none"
    if not result.tool_calls and (params.tool_choice == "required" or params.tool_choice in tools):
        return f"tool_choice {params.tool_choice!r} asks for a tool call, and the model answered in text"
    for i, call in enumerate(result.tool_calls):
        if call.name not in tools:
            return f"tool_calls[{i}]: {call.name[:64]!r} is not one of the request's tools"
        if params.tool_choice in tools and call.name != params.tool_choice:
            return f"tool_calls[{i}]: called {call.name!r}, and tool_choice asks for {params.tool_choice!r}"
        if problem := _invalid(call.arguments, tools[call.name] or '{"type": "object"}'):
            return f"tool_calls[{i}].arguments: {problem}"
    if result.tool_calls:
        return ""
    if params.response_format == "json_object":
        return _invalid(result.text, '{"type": "object"}')
    if params.response_format == "json_schema":
        return _invalid(result.text, json.dumps(json.loads(params.json_schema)["schema"]))
    return ""


def _invalid(text: str, schema_text: str) -> str:
    try:
        value: Any = json.loads(text)
    except (ValueError, RecursionError):
        return "is not JSON"
    error = jsonschema.exceptions.best_match(_validator(schema_text).iter_errors(value))
    if error is None:
        return ""
    where = "/".join(str(p) for p in error.absolute_path)
    return f"does not follow the schema{f' at {where}' if where else ''}: {error.message[:160]}"


@functools.lru_cache(maxsize=256)
def _validator(schema_text: str) -> Any:
    """A validator per schema text (the request checked the schema itself already)."""
    schema = json.loads(schema_text)
    return jsonschema.validators.validator_for(schema)(schema)

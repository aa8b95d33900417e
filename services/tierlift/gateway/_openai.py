"""OpenAI's chat-completions protocol, mapped onto Tierlift's Router: request bodies and
`x-tierlift-*` headers to a `CompleteRequest`, answers to OpenAI's JSON and SSE chunks, gRPC
statuses to OpenAI's error schema with the HTTP status its SDKs expect.

A parameter the router cannot honour is refused with a 400 that names it, never dropped. A
parameter sent as null asks for nothing (clients that serialise every field send their unset
ones so) and is taken as absent, as is one at the value that changes nothing (`_NEUTRAL`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping
from typing import Any

import grpc

from tierlift.core.catalog import TIERS, tier_name
from tierlift.core.limits import MAX_OUTPUT_TOKENS, check_json_schema, check_tools
from tierlift.v1 import common_pb2, router_pb2

# Virtual models: what a caller asks for in `model`.
MODELS: dict[str, list[str]] = {
    "tierlift/auto": [],  # every tier the policy allows
    "tierlift/local-only": ["LOCAL"],
    "tierlift/open": ["LOCAL", "HOSTED_OPEN"],
    "tierlift/closed": ["CLOSED", "FRONTIER"],
}
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
# Accepted only at their neutral value: anything else would change the answer silently.
_NEUTRAL: dict[str, Any] = {"n": 1, "presence_penalty": 0, "frequency_penalty": 0, "logprobs": False,
                            "service_tier": None, "store": False, "logit_bias": {}}  # fmt: skip
_KNOWN = {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "stream",
          "stream_options", "user", "metadata", "response_format", "seed", "tools", "tool_choice",
          "parallel_tool_calls", *_NEUTRAL}  # fmt: skip


class OpenAIError(Exception):
    """An error in OpenAI's schema: HTTP status, type, code, the parameter at fault."""

    def __init__(self, status: int, message: str, kind: str, param: str | None = None, code: str | None = None,
                 retry_after: str | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.kind, self.param, self.code = status, message, kind, param, code
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def invalid(param: str, message: str) -> OpenAIError:
    return OpenAIError(400, f"{param}: {message}", "invalid_request_error", param)


def flag(value: Any, field: str) -> bool:
    """A JSON true or false, null being false: `bool()` would read "false", 1 or "no" as true."""
    if value is not None and not isinstance(value, bool):
        raise invalid(field, "must be true or false")
    return bool(value)


def number(value: Any, field: str) -> float | None:
    """A JSON number as a float, or None for null. An integer past a float's range (`1` and 400
    zeros reads as an int) would raise OverflowError, a 500; NaN and infinities pass, and the
    router's range check names them."""
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise invalid(field, "must be a number")
    try:
        return float(value)
    except OverflowError:
        raise invalid(field, "is too large a number") from None


def json_text(value: Any, field: str) -> str:
    """`value` as compact JSON text. Python's reader takes NaN and Infinity (and reads 1e999 as
    Infinity), which are no JSON: passed on, they would make the provider refuse the request."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        raise invalid(field, "is not JSON (NaN and Infinity are not JSON numbers)") from None
    except RecursionError:
        raise invalid(field, "nests too deep") from None


def metadata(value: Any) -> Mapping[str, Any]:
    """`metadata`, an object (null is none); `0` or `[]` are no object, though falsy."""
    if value is not None and not isinstance(value, dict):
        raise invalid("metadata", "must be an object of strings")
    return value or {}


def _content(content: Any, where: str, message: common_pb2.Message) -> None:
    """A string, or a list of text and image parts: the parts stay parts (each is classified on
    its own; joining them could glue a word to a number)."""
    if isinstance(content, str):
        message.content = content
        return
    if not isinstance(content, list):
        raise invalid(where, "must be a string or a list of content parts")
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            message.parts.add(type="text", text=part["text"])
        elif kind == "image_url" and isinstance(part.get("image_url"), dict | str):
            image = part["image_url"] if isinstance(part["image_url"], dict) else {"url": part["image_url"]}
            url, detail = image.get("url"), image.get("detail") or ""
            if not isinstance(url, str) or not isinstance(detail, str):
                raise invalid(f"{where}[{i}].image_url", "must be {'url': '...', 'detail': 'auto'}")
            message.parts.add(type="image_url", image_url=url, detail=detail)
        else:
            raise invalid(f"{where}[{i}]", "must be a text part or an image_url part")


def _messages(raw: Any) -> list[common_pb2.Message]:
    if not isinstance(raw, list) or not raw:
        raise invalid("messages", "must be a non-empty list")
    out = []
    for i, m in enumerate(raw):
        role = m.get("role") if isinstance(m, dict) else None
        if not isinstance(role, str) or role not in _ROLES:  # a list is no role (and no dict key)
            raise invalid(f"messages[{i}].role", f"must be one of {sorted(_ROLES)}")
        message = common_pb2.Message(role=_ROLES[role])
        calls = m.get("tool_calls")
        if calls is not None and not isinstance(calls, list):
            raise invalid(f"messages[{i}].tool_calls", "must be a list of tool calls")
        if m.get("content") is not None or not calls:  # an assistant turn may only call tools
            _content(m.get("content"), f"messages[{i}].content", message)
        for name in ("name", "tool_call_id"):
            if m.get(name) is not None:
                if not isinstance(m[name], str):
                    raise invalid(f"messages[{i}].{name}", "must be a string")
                setattr(message, name, m[name])
        _tool_calls(calls or [], f"messages[{i}].tool_calls", message)
        out.append(message)
    return out


def _tool_calls(calls: list[Any], where: str, message: common_pb2.Message) -> None:
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or call.get("type", "function") != "function":
            raise invalid(f"{where}[{j}]", "must be {'id', 'type': 'function', 'function': {...}}")
        if not all(isinstance(v, str) for v in (call.get("id"), function.get("name"), function.get("arguments"))):
            raise invalid(f"{where}[{j}]", "id, function.name and function.arguments are strings")
        message.tool_calls.add(id=call["id"], name=function["name"], arguments=function["arguments"])


def _tools(body: Mapping[str, Any], params: common_pb2.GenerationParams) -> None:
    """OpenAI's `tools`, `tool_choice` and `parallel_tool_calls` (function tools)."""
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise invalid("tools", "must be a list of function tools")
    for i, tool in enumerate(tools or []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or tool.get("type") != "function":
            raise invalid(f"tools[{i}]", "must be {'type': 'function', 'function': {'name': ..., 'parameters': ...}}")
        name, description = function.get("name"), function.get("description") or ""
        if not isinstance(name, str) or not isinstance(description, str):
            raise invalid(f"tools[{i}].function", "name and description are strings")
        strict = flag(function.get("strict"), f"tools[{i}].function.strict")
        added = params.tools.add(name=name, description=description, strict=strict)
        if function.get("parameters") is not None:
            if not isinstance(function["parameters"], dict):
                raise invalid(f"tools[{i}].function.parameters", "must be a JSON Schema object")
            added.parameters = json_text(function["parameters"], f"tools[{i}].function.parameters")
    params.tool_choice = _tool_choice(body.get("tool_choice"))
    parallel_then_check(body, params)


def _tool_choice(choice: Any) -> str:
    """auto, none, required, or {'type': 'function', 'function': {'name': ...}}: that name."""
    if choice is None or isinstance(choice, str):
        return choice or ""
    if not isinstance(choice, dict) or choice.get("type") != "function":
        raise invalid("tool_choice", "must be auto, none, required or {'type': 'function', 'function': {'name': ...}}")
    function = choice.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise invalid("tool_choice.function", "must be {'name': ...}, the tool's name a string")
    return str(function["name"])


def parallel_then_check(body: Mapping[str, Any], params: common_pb2.GenerationParams) -> None:
    """`parallel_tool_calls`, then the tools' own checks (names, schemas, choice), by field."""
    if body.get("parallel_tool_calls") is not None:
        if not isinstance(body["parallel_tool_calls"], bool):
            raise invalid("parallel_tool_calls", "must be true or false")
        params.parallel_tool_calls = body["parallel_tool_calls"]
    if problem := check_tools(params):
        raise invalid(problem[0].removeprefix("params."), problem[1])


def checked_body(body: Any, known: Collection[str]) -> dict[str, Any]:
    """A JSON object of known fields (a null one is absent) and valid Unicode, else a 400 naming
    what is wrong."""
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    if (where := _lone_surrogate(body, "")) is not None:  # "\ud800" parses, but is no Unicode text
        raise invalid(where or "body", "holds a lone surrogate (\\ud800-\\udfff): not valid Unicode text")
    for name, value in body.items():
        if name not in known and value is not None:
            raise invalid(name, "is not supported by Tierlift")
    return body


def _params(body: Mapping[str, Any]) -> common_pb2.GenerationParams:
    params = common_pb2.GenerationParams()
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        param = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise invalid(param, "must be a positive integer")
        if limit > MAX_OUTPUT_TOKENS:  # over 2^32 it did not fit the proto field: answered 500
            raise invalid(param, f"is over the limit of {MAX_OUTPUT_TOKENS}")
        params.max_tokens = limit
    for name in ("temperature", "top_p"):
        if (value := number(body.get(name), name)) is not None:
            setattr(params, name, value)
    stop = body.get("stop")
    if stop is not None:
        stops = [stop] if isinstance(stop, str) else stop
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise invalid("stop", "must be a string or a list of strings")
        params.stop.extend(stops)
    seed = body.get("seed")
    if seed is not None:
        if not isinstance(seed, int) or isinstance(seed, bool) or not -(2**63) <= seed < 2**63:
            raise invalid("seed", "must be a 64-bit integer")
        params.seed = seed
    fmt = body.get("response_format")
    if fmt is not None:
        response_format(fmt, params)
    _tools(body, params)
    return params


def response_format(fmt: Any, params: common_pb2.GenerationParams) -> None:
    """{'type': 'text'}, {'type': 'json_object'} or {'type': 'json_schema', 'json_schema': {...}}
    (structured outputs, as the SDKs' `parse` and LangChain's `with_structured_output` send)."""
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind in ("text", "json_object") and len(fmt) == 1:
        params.response_format = kind
        return
    if kind != "json_schema" or set(fmt) != {"type", "json_schema"}:
        raise invalid(
            "response_format",
            "must be {'type': 'text'}, {'type': 'json_object'} or {'type': 'json_schema', 'json_schema': {...}}",
        )
    json_schema_format(fmt["json_schema"], params, "response_format.json_schema")


def json_schema_format(spec: Any, params: common_pb2.GenerationParams, at: str) -> None:
    """Structured outputs: `spec` (name, schema, strict, description), checked and named `at`,
    as the caller's API places it (chat's `response_format.json_schema`, Responses' `text.format`)."""
    params.json_schema = json_text(spec, at)
    if problem := check_json_schema(params.json_schema, at):
        raise invalid(*problem)
    params.response_format = "json_schema"


def header_or(body_meta: Mapping[str, Any], headers: Mapping[str, str], name: str) -> str:
    value = headers.get(f"x-tierlift-{name}") or body_meta.get(name.replace("-", "_")) or ""
    return str(value)


def known_model(model: Any, catalog_models: Collection[str]) -> str:
    """`model` when it is a virtual model (MODELS) or a catalog model; else a 404 `model_not_found`
    (a missing or non-string `model` is a malformed request, a 400, not an unknown model)."""
    if model is None:
        raise invalid("model", "is required: a model's id (see GET /v1/models)")
    if not isinstance(model, str):
        raise invalid("model", "must be a string: a model's id (see GET /v1/models)")
    if model not in MODELS and model not in catalog_models:
        raise OpenAIError(404, f"model: {model[:64]!r} does not exist; see GET /v1/models",
                          "invalid_request_error", "model", "model_not_found")  # fmt: skip
    return model


def to_request(
    body: Any, headers: Mapping[str, str], catalog_models: Collection[str] = ()
) -> tuple[router_pb2.CompleteRequest, str, bool, bool]:
    """(the request, the model asked for, stream?, include usage in the stream?). `model` is a
    virtual model (MODELS) or a catalog model the caller pins."""
    body = checked_body(body, _KNOWN)
    for name, neutral in _NEUTRAL.items():
        value = body.get(name)
        # True == 1 and False == 0 in Python: `"n": true` is no count, `"logprobs": 0` no flag
        if value is not None and (value != neutral or isinstance(value, bool) != isinstance(neutral, bool)):
            raise invalid(name, f"only {neutral!r} is supported")
    model = known_model(body.get("model"), catalog_models)
    meta = metadata(body.get("metadata"))
    request = router_pb2.CompleteRequest(
        tenant=header_or(meta, headers, "tenant"),
        workload=header_or(meta, headers, "workload") or "default",
        messages=_messages(body.get("messages")),
        params=_params(body),
        idempotency_key=headers.get("idempotency-key") or header_or(meta, headers, "idempotency-key"),
        cohort_key=cohort(body.get("user"), header_or(meta, headers, "cohort")),
    )
    constraints(request.constraints, meta, headers, model)
    return request, model, flag(body.get("stream"), "stream"), _include_usage(body.get("stream_options"))


def _include_usage(options: Any) -> bool:
    """`stream_options`: {'include_usage': true | false}; another option is refused, never dropped."""
    if options is None:
        return False
    if not isinstance(options, dict):
        raise invalid("stream_options", "must be an object: {'include_usage': true}")
    for key, value in options.items():
        if key != "include_usage" and value is not None:
            raise invalid(f"stream_options.{key}", "is not supported by Tierlift")
    return flag(options.get("include_usage"), "stream_options.include_usage")


def _lone_surrogate(value: Any, where: str) -> str | None:
    """The path of the first string (or key) in a parsed JSON body that holds a lone surrogate."""
    if isinstance(value, str):
        return where if any("\ud800" <= ch <= "\udfff" for ch in value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            at = f"{where}.{key}" if where else str(key)
            if (found := _lone_surrogate(key, at)) is not None or (found := _lone_surrogate(item, at)) is not None:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            if (found := _lone_surrogate(item, f"{where}[{i}]")) is not None:
                return found
    return None


def cohort(user: Any, header: str) -> str:
    """OpenAI's `user` (an end-user id), else x-tierlift-cohort: one user stays in one arm of a rollout."""
    if user is not None and (not isinstance(user, str) or len(user) > MAX_COHORT):
        raise invalid("user", f"must be a string of at most {MAX_COHORT} characters")
    if len(header) > MAX_COHORT:
        raise invalid("x-tierlift-cohort", f"at most {MAX_COHORT} characters")
    return user or header


MAX_COHORT = 128  # as the router's cohort_key


def constraints(c: router_pb2.Constraints, meta: Mapping[str, Any], headers: Mapping[str, str], model: str) -> None:
    if data_class := header_or(meta, headers, "data-class"):
        name = f"DATA_CLASS_{data_class.upper()}"
        if name not in common_pb2.DataClass.keys():  # noqa: SIM118 (an enum wrapper, not a dict)
            raise invalid("x-tierlift-data-class", "must be public, internal, confidential or regulated")
        c.data_class = common_pb2.DataClass.Value(name)  # type: ignore[assignment]
    c.region = header_or(meta, headers, "region")
    c.max_cost_usd = header_or(meta, headers, "max-cost-usd")
    tiers = [t.strip().upper() for t in header_or(meta, headers, "allowed-tiers").split(",") if t.strip()]
    if model not in MODELS:
        c.models.append(model)  # pinned: this catalog model or nothing
    for tier in tiers or MODELS.get(model, []):
        if tier not in TIERS:
            raise invalid("x-tierlift-allowed-tiers", f"{tier.lower()!r} is not one of {[t.lower() for t in TIERS]}")
        c.allowed_tiers.append(TIERS[tier])


def _usage(usage: common_pb2.Usage) -> dict[str, Any]:
    """OpenAI's usage; its convention is ours (the details are parts of the totals)."""
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens,
                                      "audio_tokens": usage.audio_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_output_tokens}}  # fmt: skip


def tool_calls(calls: Any) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls]


def finish_reason(reply: router_pb2.CompleteResponse) -> str:
    return "tool_calls" if reply.tool_calls else (reply.finish_reason or "stop")


def completion(reply: router_pb2.CompleteResponse) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or (None if reply.tool_calls else "")}
    if reply.tool_calls:
        message["tool_calls"] = tool_calls(reply.tool_calls)
    return {
        "id": f"chatcmpl-{reply.request_id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(reply), "logprobs": None}],
        "usage": _usage(reply.usage),
    }


def chunk(request_id: str, model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip


def usage_chunk(reply: router_pb2.CompleteResponse) -> dict[str, Any]:
    return {"id": f"chatcmpl-{reply.request_id}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": reply.model, "choices": [], "usage": _usage(reply.usage)}  # fmt: skip


def story_headers(reply: router_pb2.CompleteResponse) -> dict[str, str]:
    escalated = any(a.outcome == router_pb2.OUTCOME_LOW_CONFIDENCE for a in reply.attempts)
    return {
        "x-tierlift-request-id": reply.request_id,
        "x-tierlift-tier": tier_name(reply.tier),
        "x-tierlift-model": reply.model,
        "x-tierlift-cost-usd": reply.total_cost_usd,
        "x-tierlift-attempts": str(len(reply.attempts)),
        "x-tierlift-escalated": str(escalated).lower(),
    }


# gRPC status -> (HTTP status, OpenAI error type)
_STATUS: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_request_error"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "authentication_error"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission_error"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found_error"),
    grpc.StatusCode.FAILED_PRECONDITION: (422, "unprocessable_entity_error"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "rate_limit_error"),
    grpc.StatusCode.UNAVAILABLE: (503, "service_unavailable_error"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "timeout_error"),
}


def from_grpc(code: grpc.StatusCode, details: str, retry_after: str | None = None) -> OpenAIError:
    """`retry_after`: the router's own hint (its fair share says how long), else one second."""
    status, kind = _STATUS.get(code, (500, "api_error"))
    field = details.split(":", 1)[0] if ":" in details else None
    if code == grpc.StatusCode.INVALID_ARGUMENT and field == "idempotency_key" and "used before" in details:
        status = 409  # the key was used for another request (a malformed key stays a 400)
    if code == grpc.StatusCode.INVALID_ARGUMENT and "context window" in details:
        status = 413
    retry_after = (retry_after or "1") if status in (429, 503) else None
    param = field if status in (400, 409, 413) else None
    return OpenAIError(status, details or code.name, kind, param, code.name.lower(), retry_after)

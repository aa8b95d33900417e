"""The gateway's translation without a server: headers passed on, parameters mapped or refused."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st

from tierlift.core import limits
from tierlift.gateway import _anthropic as ant
from tierlift.gateway import _embeddings as emb
from tierlift.gateway import _openai as oai
from tierlift.gateway import _responses as rsp
from tierlift.gateway._app import _metadata
from tierlift.v1 import common_pb2

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_the_callers_key_and_trace_context_go_to_the_router() -> None:
    headers = {"Authorization": "Bearer tl_a_b", "traceparent": TRACE, "x-other": "no"}
    request = make_mocked_request("POST", "/v1/chat/completions", headers=headers)
    assert dict(_metadata(request)) == {"authorization": "Bearer tl_a_b", "traceparent": TRACE}


def test_parameters_map_faithfully_and_the_model_can_pin_or_restrict() -> None:
    body = {"model": "tierlift/local-only", "messages": [{"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]}], "max_completion_tokens": 9,
            "temperature": 0.2, "top_p": 0.5, "stop": "\\n", "seed": 3, "response_format": {"type": "json_object"},
            "metadata": {"workload": "faq"}}  # fmt: skip
    request, model, stream, usage = oai.to_request(body, {"x-tierlift-data-class": "internal"}, ["gpt-5"])
    p = request.params
    assert (p.max_tokens, round(p.temperature, 2), p.top_p, list(p.stop), p.seed, p.response_format) == (
        9, 0.2, 0.5, ["\\n"], 3, "json_object")  # fmt: skip
    assert [m.role for m in request.messages] == ["system", "user"] and request.workload == "faq"
    assert list(request.constraints.allowed_tiers) == [1] and request.constraints.data_class == 2
    pinned, *_ = oai.to_request({"model": "gpt-5", "messages": [{"role": "user", "content": "x"}]}, {}, ["gpt-5"])
    assert list(pinned.constraints.models) == ["gpt-5"] and not stream and not usage and model == "tierlift/local-only"


def test_the_openai_user_keeps_one_user_in_one_rollout_arm() -> None:
    body = {"model": "tierlift/auto", "messages": [{"role": "user", "content": "x"}], "user": "user-42"}
    request, *_ = oai.to_request(body, {})
    assert request.cohort_key == "user-42"
    by_header, *_ = oai.to_request({**body, "user": None}, {"x-tierlift-cohort": "session-7"})
    assert by_header.cohort_key == "session-7"
    for bad in (42, "u" * 129):
        try:
            oai.to_request({**body, "user": bad}, {})
        except oai.OpenAIError as exc:
            assert exc.param == "user"
        else:
            raise AssertionError(f"user={bad!r} was taken")
    try:
        oai.to_request({**body, "user": None}, {"x-tierlift-cohort": "s" * 129})
    except oai.OpenAIError as exc:
        assert exc.param == "x-tierlift-cohort" and exc.status == 400
    else:
        raise AssertionError("a 129-character cohort header was taken")


def test_a_null_or_a_neutral_value_asks_for_nothing_and_is_taken() -> None:
    """Clients that serialise every field send their unset ones as null; others send the default."""
    body = {"model": "tierlift/auto", "messages": [{"role": "user", "content": "x"}], "tools": None,
            "tool_choice": None, "functions": None, "top_logprobs": None, "stop": None, "seed": None, "user": None,
            "n": 1, "store": False, "logit_bias": {}, "presence_penalty": 0.0, "logprobs": False}  # fmt: skip
    request, *_ = oai.to_request(body, {})
    assert not request.params.stop and not request.params.seed
    assert oai.to_request({**body, "tools": []}, {})[0].messages[0].content == "x"
    for name, value in (("tools", [{"type": "function"}]), ("tool_choice", "auto"), ("store", True),
                        ("logit_bias", {"50256": -100}), ("top_logprobs", 2), ("functions", []),
                        ("n", True), ("logprobs", 0), ("presence_penalty", False)):  # fmt: skip
        with pytest.raises(oai.OpenAIError) as raised:
            oai.to_request({**body, name: value}, {})
        assert raised.value.param in (name, f"{name}[0]") and raised.value.status == 400


HUGE = 10**400  # json.loads reads `1` and 400 zeros as an int, past a float's range
SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.sampled_from([HUGE, -HUGE]) | st.floats()
JSON = st.recursive(
    SCALARS | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
FIELDS = st.sampled_from(
    ["model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed", "n",
     "stream", "stream_options", "user", "metadata", "response_format", "tools"]
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(body=st.one_of(JSON, st.dictionaries(FIELDS, JSON, max_size=8)), usable=st.booleans())
def test_any_json_body_is_a_request_or_an_openai_error(body: Any, usable: bool) -> None:
    # anything else raised here is a 500 (max_tokens of 2^70 did not fit the proto field)
    if usable and isinstance(body, dict):
        body.setdefault("model", "tierlift/auto")
        body.setdefault("messages", [{"role": "user", "content": "hi"}])
    try:
        oai.to_request(body, {}, ("gpt-5-mini",))
    except oai.OpenAIError as exc:
        assert 400 <= exc.status < 500


def test_max_tokens_past_the_limit_names_the_parameter() -> None:
    body = {"model": "tierlift/auto", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2**70}
    with pytest.raises(oai.OpenAIError, match="over the limit of 32768") as raised:
        oai.to_request(body, {})
    assert raised.value.param == "max_tokens"


CITY = {"name": "City", "strict": True, "schema": {"type": "object", "properties": {"name": {"type": "string"}},
        "required": ["name"], "additionalProperties": False}}  # fmt: skip


def test_a_json_schema_travels_to_the_router_and_a_bad_one_is_refused_by_field() -> None:
    """Structured outputs, as `client.chat.completions.parse` and LangChain send them."""
    body = {"model": "tierlift/auto", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": CITY}}  # fmt: skip
    request, *_ = oai.to_request(body, {})
    assert request.params.response_format == "json_schema"
    assert json.loads(request.params.json_schema) == CITY
    for fmt, param in (
        ({"type": "json_schema"}, "response_format"),
        ({"type": "json_schema", "json_schema": {**CITY, "name": "a city"}}, "response_format.json_schema.name"),
        ({"type": "json_schema", "json_schema": {**CITY, "schema": {"type": "objekt"}}},
         "response_format.json_schema.schema"),
        ({"type": "json_schema", "json_schema": {"name": "City"}}, "response_format.json_schema.schema"),
        ({"type": "json_schema", "json_schema": {**CITY, "strict": "yes"}}, "response_format.json_schema.strict"),
        ({"type": "json_schema", "json_schema": {**CITY, "extra": 1}}, "response_format.json_schema.extra"),
        ({"type": "json_schema", "json_schema": {**CITY, "schema": {"properties": {"a": {"$ref": "https://x/s.json"}}}}},
         "response_format.json_schema.schema"),
        ({"type": "json_schema", "json_schema": {**CITY, "schema": {"maximum": float("nan")}}},
         "response_format.json_schema"),
        ({"type": "xml"}, "response_format"),
    ):  # fmt: skip
        with pytest.raises(oai.OpenAIError) as refused:
            oai.to_request({**body, "response_format": fmt}, {})
        assert refused.value.param == param and refused.value.status == 400, (fmt, refused.value.message)


HI = [{"role": "user", "content": "hi"}]
BODIES: dict[str, dict[str, Any]] = {
    "chat": {"model": "tierlift/auto", "messages": HI},
    "messages": {"model": "tierlift/auto", "max_tokens": 16, "messages": HI},
    "responses": {"model": "tierlift/auto", "input": "hi"},
    "embeddings": {"model": "tierlift/auto", "input": "hi"},
}
CALLS: dict[str, Callable[..., Any]] = {"chat": oai.to_request, "messages": ant.to_request, "responses": rsp.to_request,
         "embeddings": emb.to_request}  # fmt: skip
API_FIELDS = {
    "messages": ["model", "max_tokens", "messages", "system", "stop_sequences", "temperature", "top_p", "stream",
                 "tools", "tool_choice", "metadata"],
    "responses": ["model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "tools",
                  "tool_choice", "parallel_tool_calls", "stream", "store", "metadata", "user", "text", "include",
                  "truncation"],
    "embeddings": ["model", "input", "encoding_format", "dimensions", "user", "metadata"],
}  # fmt: skip


def refusal(api: str, changes: dict[str, Any]) -> tuple[int, str]:
    """(HTTP status, the field named) of the error that BODIES[api], changed so, gets; each in its
    protocol's schema: Anthropic's on /v1/messages, OpenAI's elsewhere."""
    try:
        CALLS[api]({**BODIES[api], **changes}, {})
    except ant.AnthropicError as exc:
        assert api == "messages" and exc.body()["type"] == "error", exc.message
        return exc.status, exc.message.split(": ", 1)[0]
    except oai.OpenAIError as exc:
        assert api != "messages" and exc.message.startswith(f"{exc.param}: "), exc.message
        return exc.status, str(exc.param)
    raise AssertionError(f"{api} took {changes!r}")


@settings(max_examples=300, deadline=None)
@given(api=st.sampled_from(sorted(API_FIELDS)), data=st.data(), usable=st.booleans())
def test_any_json_body_is_a_request_or_an_error_in_the_apis_schema(api: str, data: st.DataObject, usable: bool) -> None:
    # the OpenAI edge's property (above), on the other endpoints: anything else raised is a 500
    body = data.draw(st.one_of(JSON, st.dictionaries(st.sampled_from(API_FIELDS[api]), JSON, max_size=8)))
    if usable and isinstance(body, dict):
        body = {**BODIES[api], **body}
    try:
        CALLS[api](body, {})
    except (oai.OpenAIError, ant.AnthropicError) as exc:
        assert 400 <= exc.status < 500


@pytest.mark.parametrize("api", ["chat", "messages", "responses"])
@pytest.mark.parametrize("name", ["temperature", "top_p"])
def test_a_sampling_number_past_a_floats_range_is_refused_by_name(api: str, name: str) -> None:
    for value in (HUGE, -HUGE):  # float() raised OverflowError: a 500
        assert refusal(api, {name: value}) == (400, name)
    request, *_ = CALLS[api]({**BODIES[api], name: 1}, {})
    assert getattr(request.params, name) == 1.0


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])  # 1e999 reads as inf
def test_a_non_finite_sampling_number_still_reaches_the_routers_range_check(value: float) -> None:
    request, *_ = oai.to_request({**BODIES["chat"], "temperature": value}, {})
    assert limits.check_params(request.params)[0] == "params.temperature"  # type: ignore[index]


@pytest.mark.parametrize(
    ("api", "changes", "field"),
    [
        ("chat", {"messages": [{"role": ["user"], "content": "hi"}]}, "messages[0].role"),
        ("chat", {"messages": [*HI, {"role": {"user": 1}, "content": "hi"}]}, "messages[1].role"),
        ("responses", {"input": [{"role": ["user"], "content": "hi"}]}, "input[0].role"),
        ("responses", {"input": [{"type": "message", "role": {}, "content": "hi"}]}, "input[0].role"),
        ("responses", {"input": [{"role": "tool", "content": "hi"}]}, "input[0].role"),  # was named input[0].type
        ("messages", {"messages": [{"role": ["user"], "content": "hi"}]}, "messages.0.role"),
    ],
)  # fmt: skip
def test_a_role_that_is_no_known_string_is_refused_by_name(api: str, changes: dict[str, Any], field: str) -> None:
    assert refusal(api, changes) == (400, field)


@pytest.mark.parametrize("calls", [5, True, "call", {"id": "c1"}])
def test_tool_calls_that_are_not_a_list_are_refused_by_name(calls: Any) -> None:
    messages = [*HI, {"role": "assistant", "content": None, "tool_calls": calls}, *HI]
    assert refusal("chat", {"messages": messages}) == (400, "messages[1].tool_calls")


GET = [{"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize(
    ("choice", "field"),
    [
        ({"type": "function", "function": "get"}, "tool_choice.function"),
        ({"type": "function", "function": ["get"]}, "tool_choice.function"),
        ({"type": "function", "function": {"name": 5}}, "tool_choice.function"),
        ({"type": "function"}, "tool_choice.function"),
        ({"function": {"name": "get"}}, "tool_choice"),
        (5, "tool_choice"),
    ],
)
def test_a_tool_choice_that_names_no_function_is_refused_by_name(choice: Any, field: str) -> None:
    assert refusal("chat", {"tools": GET, "tool_choice": choice}) == (400, field)
    chosen = {"type": "function", "function": {"name": "get"}}
    assert oai.to_request({**BODIES["chat"], "tools": GET, "tool_choice": chosen}, {})[0].params.tool_choice == "get"


@pytest.mark.parametrize("api", ["chat", "messages", "responses"])
@pytest.mark.parametrize("tools", [5, True, "get", {"name": "get"}])
def test_tools_that_are_not_a_list_are_refused_by_name(api: str, tools: Any) -> None:
    assert refusal(api, {"tools": tools}) == (400, "tools")


TOOL_USE = {"type": "tool_use", "id": "c1", "name": "get", "input": {"city": "Paris"}}


def _tool_result(content: Any) -> list[dict[str, Any]]:
    result = {"type": "tool_result", "tool_use_id": "c1", "content": content}
    return [*HI, {"role": "assistant", "content": [TOOL_USE]}, {"role": "user", "content": [result]}]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"system": [{"type": "text", "text": 5}]}, "system.0.text"),
        ({"system": [{"type": "text", "text": "a"}, {"type": "text"}]}, "system.1.text"),
        ({"system": [{"type": "image", "source": {}}]}, "system.0.type"),  # refused, not dropped
        ({"system": [{"text": "no type"}]}, "system.0.type"),
        ({"messages": _tool_result([{"type": "text", "text": 5}])}, "messages.2.content.0.content.0.text"),
        ({"messages": _tool_result([{"type": "image", "source": {}}])}, "messages.2.content.0.content.0.type"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": ["hi"]}]}]}, "messages.0.content.0.text"),
    ],
)
def test_an_anthropic_text_block_holds_a_string_and_no_block_is_dropped(changes: dict[str, Any], field: str) -> None:
    assert refusal("messages", changes) == (400, field)
    request, _ = ant.to_request({**BODIES["messages"], "messages": _tool_result([{"type": "text", "text": "18C"}]),
                                 "system": [{"type": "text", "text": "Be brief."}]}, {})  # fmt: skip
    assert [(m.role, m.content) for m in request.messages if m.content] == [
        ("system", "Be brief."), ("user", "hi"), ("tool", "18C")]  # fmt: skip


@pytest.mark.parametrize("dimensions", [0, -1, True, 1.5, "8", 16_385, 2**32, 2**64, HUGE])
def test_embedding_dimensions_outside_the_accepted_range_are_refused_by_name(dimensions: Any) -> None:
    # 2^32 and more did not fit the proto's uint32: a 500
    with pytest.raises(oai.OpenAIError, match="from 1 to 16384") as refused:
        emb.to_request({**BODIES["embeddings"], "dimensions": dimensions}, {})
    assert (refused.value.status, refused.value.param) == (400, "dimensions")
    request, _ = emb.to_request({**BODIES["embeddings"], "dimensions": limits.MAX_EMBED_DIMENSIONS}, {})
    assert request.dimensions == limits.MAX_EMBED_DIMENSIONS


@pytest.mark.parametrize("api", ["chat", "embeddings"])
@pytest.mark.parametrize("user", [42, ["u"], "u" * 129])
def test_the_embeddings_user_is_checked_as_chats(api: str, user: Any) -> None:
    assert refusal(api, {"user": user}) == (400, "user")
    assert emb.to_request({**BODIES["embeddings"], "user": "u" * 128}, {})


SCHEMA_WITH = {"type": "object", "properties": {"n": {"type": "number", "maximum": float("nan")}}}


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])  # `NaN`, `Infinity`, 1e999 as read
@pytest.mark.parametrize(
    ("api", "tools", "field"),
    [
        ("chat", lambda schema: [{"type": "function", "function": {"name": "get", "parameters": schema}}],
         "tools[0].function.parameters"),
        ("messages", lambda schema: [{"name": "get", "input_schema": schema}], "tools.0.input_schema"),
        ("responses", lambda schema: [{"type": "function", "name": "get", "parameters": schema}],
         "tools[0].parameters"),
    ],
)  # fmt: skip
def test_nan_or_infinity_in_a_tool_schema_is_refused_as_no_json(api: str, tools: Any, field: str, bad: float) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "number", "maximum": bad}}}
    assert refusal(api, {"tools": tools(schema)}) == (400, field)  # it went to the provider as the token NaN


@pytest.mark.parametrize(("arguments", "field"), [({"a": float("nan")}, "messages.1.content.0.input"),
                                                  ({"a": [float("inf")]}, "messages.1.content.0.input"),
                                                  (5, "messages.1.content.0.input")])  # fmt: skip
def test_a_tool_use_input_is_a_json_object(arguments: Any, field: str) -> None:
    messages = [*HI, {"role": "assistant", "content": [{**TOOL_USE, "input": arguments}]}, *HI]
    assert refusal("messages", {"messages": messages}) == (400, field)


def test_the_router_refuses_nan_in_a_tools_schema_or_a_calls_arguments_too() -> None:
    """The router checks what gRPC callers send with the same limits: NaN is no JSON there either."""
    params = common_pb2.GenerationParams(tools=[common_pb2.Tool(name="get", parameters='{"maximum":NaN}')])
    assert limits.check_tools(params) == ("params.tools[0].parameters", "is not JSON")
    call = common_pb2.ToolCall(id="c1", name="get", arguments='{"a":Infinity}')
    message = common_pb2.Message(role="assistant", tool_calls=[call])
    assert limits.check_messages([message]) == ("messages[0].tool_calls[0].arguments", "must be a JSON object as text")


NOT_BOOLEANS: list[Any] = ["false", "no", 1, 0, [], {}]


@pytest.mark.parametrize(
    ("api", "changes", "field"),
    [
        *[(api, {"stream": value}, "stream") for api in ("chat", "messages", "responses")
          for value in NOT_BOOLEANS],
        ("chat", {"stream_options": 5}, "stream_options"),
        ("chat", {"stream_options": []}, "stream_options"),
        ("chat", {"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
        ("chat", {"stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
        ("chat", {"stream_options": {"include_obfuscation": True}}, "stream_options.include_obfuscation"),
        ("messages", {"tools": [{"name": "get"}], "tool_choice": {"type": "auto", "disable_parallel_tool_use": "true"}},
         "tool_choice.disable_parallel_tool_use"),
        ("responses", {"store": "false"}, "store"),
        ("responses", {"store": 0}, "store"),  # 0 == False in Python: it was taken
        ("responses", {"store": True}, "store"),
    ],
)  # fmt: skip
def test_a_flag_is_a_json_boolean(api: str, changes: dict[str, Any], field: str) -> None:
    """`bool()` read "false", 1 and "no" as true: the caller asking not to stream got a stream."""
    assert refusal(api, changes) == (400, field)


def test_a_boolean_stream_is_taken_as_sent() -> None:
    for stream in (True, False, None):
        streams = oai.to_request({**BODIES["chat"], "stream": stream, "stream_options": {"include_usage": stream}}, {})
        assert streams[2:] == (bool(stream), bool(stream))
        assert ant.to_request({**BODIES["messages"], "stream": stream}, {})[1] is bool(stream)
        assert rsp.to_request({**BODIES["responses"], "stream": stream, "store": False}, {})[1] is bool(stream)


@pytest.mark.parametrize("api", ["chat", "messages", "responses", "embeddings"])
@pytest.mark.parametrize(("model", "problem"), [(None, "is required"), (5, "must be a string"),
                                                (["tierlift/auto"], "must be a string")])  # fmt: skip
def test_a_missing_or_non_string_model_is_a_bad_request_and_an_unknown_one_is_not_found(
    api: str, model: Any, problem: str
) -> None:
    body = {k: v for k, v in BODIES[api].items() if k != "model"} | ({} if model is None else {"model": model})
    with pytest.raises((oai.OpenAIError, ant.AnthropicError), match=f"^model: {problem}") as refused:
        CALLS[api](body, {})
    assert getattr(refused.value, "status", None) == 400  # it was 404 model_not_found: "model: 'None' does not exist"
    assert refusal(api, {"model": "gpt-7"}) == (404, "model")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"include": ["message.output_text.logprobs"]}, "include[0]"),
        ({"include": ["reasoning.encrypted_content", ["x"]]}, "include[1]"),
        ({"include": "reasoning.encrypted_content"}, "include"),
        ({"truncation": "auto"}, "truncation"),
        ({"truncation": ["disabled"]}, "truncation"),
        ({"text": 5}, "text"),
        ({"text": "json"}, "text"),
        ({"text": {"verbosity": "low"}}, "text.verbosity"),
        ({"text": {"verbosity": ["high"]}}, "text.verbosity"),
        ({"text": {"format": {"type": "text"}, "tone": "dry"}}, "text.tone"),
        ({"text": {"format": {"type": "text", "strict": True}}}, "text.format.strict"),
        ({"text": {"format": {"type": ["text"]}}}, "text.format"),
        ({"text": {"format": {"type": "json_schema", "schema": {"type": "object"}}}}, "text.format.name"),
        ({"text": {"format": {"type": "json_schema", "name": "n", "schema": {}, "extra": 1}}}, "text.format.extra"),
    ],
)
def test_a_responses_option_tierlift_cannot_honour_is_refused_by_name(changes: dict[str, Any], field: str) -> None:
    assert refusal("responses", changes) == (400, field)


def test_the_responses_options_tierlift_honours_are_taken() -> None:
    body = {**BODIES["responses"], "include": ["reasoning.encrypted_content"], "truncation": "disabled",
            "text": {"verbosity": "medium", "format": {"type": "json_object"}}, "store": False}  # fmt: skip
    request, stream = rsp.to_request(body, {})
    assert request.params.response_format == "json_object" and not stream


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        (5, "metadata"),
        ("user-1", "metadata"),
        (["user-1"], "metadata"),
        ({"user_id": 5}, "metadata.user_id"),
        ({"user_id": "u" * 129}, "metadata.user_id"),
        ({"user_id": "u", "session": "s"}, "metadata.session"),
    ],
)
def test_anthropic_metadata_holds_only_a_string_user_id(metadata: Any, field: str) -> None:
    assert refusal("messages", {"metadata": metadata}) == (400, field)
    request, _ = ant.to_request({**BODIES["messages"], "metadata": {"user_id": "user-42"}}, {})
    assert request.cohort_key == "user-42"


@pytest.mark.parametrize(
    ("api", "changes", "field"),
    [
        ("chat", {"metadata": 0}, "metadata"),  # falsy, and no object
        ("chat", {"tools": [{"type": "function", "function": {"name": "get", "strict": "yes"}}]},
         "tools[0].function.strict"),
        ("responses", {"tools": [{"type": "function", "name": "get", "strict": 1}]}, "tools[0].strict"),
        ("responses", {"tools": [{"type": "function", "name": "get", "description": 5}]}, "tools[0].description"),
        ("responses", {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://x/y.png",
                                                               "detail": 5}]}]}, "input[0].content[0].detail"),
        ("messages", {"tools": [{"name": "get", "description": ["d"]}]}, "tools.0.description"),
        ("messages", {"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools.0.type"),
        ("messages", {"stop_sequences": ""}, "stop_sequences"),
    ],
)  # fmt: skip
def test_a_wrong_typed_field_is_refused_not_coerced(api: str, changes: dict[str, Any], field: str) -> None:
    """str() or `is True` turned these into something the caller did not send."""
    assert refusal(api, changes) == (400, field)

"""The gateway's translation without a server: headers passed on, parameters mapped or refused."""

import json
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st

from tierlift.gateway import _openai as oai
from tierlift.gateway._app import _metadata

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


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
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

import pytest

from tierlift.core.ids import nul_field
from tierlift.router import InvalidRequest, validate
from tierlift.router._feedback import feedback_event
from tierlift.v1 import common_pb2, events_pb2, ledger_pb2, router_pb2


def good_request(**overrides: object) -> router_pb2.CompleteRequest:
    request = router_pb2.CompleteRequest(
        tenant="acme", workload="support-bot", messages=[common_pb2.Message(role="user", content="Hello?")]
    )
    for key, value in overrides.items():
        if key == "messages":
            del request.messages[:]
            request.messages.extend(value)  # type: ignore[arg-type]
        elif key in ("constraints", "params"):
            getattr(request, key).CopyFrom(value)
        else:
            setattr(request, key, value)
    return request


def test_good_request_passes() -> None:
    validate(good_request(), max_prompt_tokens=2048)
    schema = '{"name": "City", "strict": true, "schema": {"type": "object"}}'
    validate(good_request(params=common_pb2.GenerationParams(response_format="json_schema", json_schema=schema)), 2048)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (good_request(messages=[]), "messages"),
        (good_request(tenant="Acme Corp"), "tenant"),
        (good_request(tenant=""), "tenant"),
        (good_request(workload="x"), "workload"),
        (good_request(tenant="acme\n"), "tenant"),  # `$` alone would match before the newline
        (good_request(workload="faq\n"), "workload"),
        (good_request(messages=[common_pb2.Message(role="robot", content="hi")]), r"messages\[0\]\.role"),
        (good_request(messages=[common_pb2.Message(role="user", content="  ")]), r"messages\[0\]\.content"),
        (good_request(messages=[common_pb2.Message(role="user", content="x" * 10_000)]), "messages"),
        (good_request(idempotency_key="k" * 129), "idempotency_key"),
        (good_request(constraints=router_pb2.Constraints(max_cost_usd="1e30")), r"constraints\.max_cost_usd"),
        (good_request(constraints=router_pb2.Constraints(data_class=99)), r"constraints\.data_class"),  # type: ignore[arg-type]
        (good_request(constraints=router_pb2.Constraints(allowed_tiers=[99])), r"constraints\.allowed_tiers\[0\]"),  # type: ignore[list-item]
        (good_request(params=common_pb2.GenerationParams(stop=["x"] * 100_000)), r"params\.stop"),
        (good_request(params=common_pb2.GenerationParams(stop=["x" * 1_000_000])), r"params\.stop\[0\]"),
        (good_request(params=common_pb2.GenerationParams(temperature=float("nan"))), r"params\.temperature"),
        (good_request(constraints=router_pb2.Constraints(max_cost_usd="1e-20")), r"constraints\.max_cost_usd"),
        # a JSON Schema only with its format, and a valid one (gRPC callers skip the edge's checks)
        (
            good_request(params=common_pb2.GenerationParams(json_schema='{"name": "a", "schema": {}}')),
            r"params\.json_schema",
        ),
        (good_request(params=common_pb2.GenerationParams(response_format="json_schema")), r"params\.json_schema"),
        (
            good_request(params=common_pb2.GenerationParams(response_format="json_schema", json_schema="{")),
            r"params\.json_schema",
        ),
        (
            good_request(
                params=common_pb2.GenerationParams(
                    response_format="json_schema", json_schema='{"name": "a", "schema": {"type": 5}}'
                )
            ),
            r"params\.json_schema\.schema",
        ),
        (
            good_request(
                params=common_pb2.GenerationParams(
                    response_format="json_schema",
                    json_schema='{"name": "a", "schema": {}, "x": "' + "y" * 70_000 + '"}',
                )
            ),
            r"params\.json_schema",
        ),
    ],
)
def test_bad_request_names_the_field(request_: router_pb2.CompleteRequest, field: str) -> None:
    with pytest.raises(InvalidRequest, match=f"^{field}: "):
        validate(request_, max_prompt_tokens=2048)


def test_bad_params_and_constraints_name_the_field() -> None:
    r = good_request()
    r.params.temperature = 3.0
    with pytest.raises(InvalidRequest, match=r"^params\.temperature: "):
        validate(r, 2048)
    r = good_request()
    r.constraints.max_cost_usd = "cheap"
    with pytest.raises(InvalidRequest, match=r"^constraints\.max_cost_usd: "):
        validate(r, 2048)
    r = good_request()
    r.constraints.quality_bar = 1.5
    with pytest.raises(InvalidRequest, match=r"^constraints\.quality_bar: "):
        validate(r, 2048)


def test_an_error_does_not_echo_a_huge_value() -> None:
    with pytest.raises(InvalidRequest) as err:
        validate(good_request(tenant="T" * 10_000), max_prompt_tokens=2048)
    assert len(str(err.value)) < 200 and "10,000 characters" in str(err.value)


def test_a_nul_anywhere_in_a_message_is_found_with_its_field() -> None:
    assert nul_field(ledger_pb2.KeyQuery(tenant="acme")) == ""
    assert nul_field(ledger_pb2.KeyQuery(tenant="ac\x00me")) == "tenant: contains a NUL character"
    nested = events_pb2.RequestSettled(
        attempts=[events_pb2.AttemptFinished(), events_pb2.AttemptFinished(tenant="\x00")]
    )
    assert nul_field(nested) == "attempts[1].tenant: contains a NUL character"
    used = events_pb2.KeysUsed(event_id="e")
    used.last_used["k\x00"].seconds = 1
    assert nul_field(used) == "last_used: a key contains a NUL character"


def test_feedback_the_ledger_could_not_store_is_refused_naming_the_field() -> None:
    good = router_pb2.FeedbackRequest(request_id=REQUEST_ID, tenant="acme", rating=-1, comment="wrong sum")
    assert feedback_event(good).comment == "wrong sum"
    with pytest.raises(InvalidRequest, match="comment"):  # accepted, then dead-lettered by the ledger
        feedback_event(router_pb2.FeedbackRequest(request_id=REQUEST_ID, tenant="acme", rating=-1, comment="a\x00b"))


REQUEST_ID = "0263f885-6b39-4c5e-9a57-4bb0f1d3f0a2"


@pytest.mark.parametrize("request_id", ["notauuid", "", "r-1", "0263f885-6b39-4c5e-9a57", "x" * 64])
def test_feedback_on_something_that_is_no_request_id_is_refused(request_id: str) -> None:
    """`tierlift feedback notauuid good` printed "recorded feedback": every answer's id is a UUID."""
    asked = router_pb2.FeedbackRequest(request_id=request_id, tenant="acme", rating=1)
    with pytest.raises(InvalidRequest, match=r"request_id: .* is not a request id"):
        feedback_event(asked)

"""The router's errors reach an HTTP caller naming the field as that caller sent it."""

from __future__ import annotations

import pytest

from tierlift.gateway._names import callers_terms


@pytest.mark.parametrize(
    ("path", "details", "expected"),
    [
        ("/v1/chat/completions", "params.temperature: 9 is outside 0..2", "temperature: 9 is outside 0..2"),
        ("/v1/chat/completions", "params.stop[2]: is empty", "stop[2]: is empty"),
        (
            "/v1/chat/completions",
            "params.json_schema.schema: is no object",
            "response_format.json_schema.schema: is no object",
        ),
        (
            "/v1/chat/completions",
            "messages[0].parts[1].image_url: not https",
            "messages[0].content[1].image_url: not https",
        ),
        ("/v1/chat/completions", "cohort_key: over 128 characters", "user: over 128 characters"),
        ("/v1/chat/completions", "constraints.max_cost_usd: is negative", "x-tierlift-max-cost-usd: is negative"),
        ("/v1/chat/completions", "tenant: '' is not a lowercase slug", "x-tierlift-tenant: '' is not a lowercase slug"),
        ("/v1/messages", "params.stop[0]: is empty", "stop_sequences[0]: is empty"),
        ("/v1/messages", "cohort_key: over 128 characters", "metadata.user_id: over 128 characters"),
        ("/v1/messages", "messages[1].parts[0].text: bad", "messages[1].parts[0].text: bad"),  # indexes differ: kept
        ("/v1/responses", "params.max_tokens: over the limit", "max_output_tokens: over the limit"),
        ("/v1/responses", "params.json_schema: is not JSON", "text.format: is not JSON"),
        ("/v1/embeddings", "inputs[3]: is empty", "input[3]: is empty"),
        ("/v1/embeddings", "constraints.data_class: unknown", "x-tierlift-data-class: unknown"),
        # not a field: as it came
        ("/v1/chat/completions", "no model may serve this request (a: b)", "no model may serve this request (a: b)"),
        ("/v1/chat/completions", "idempotency_key: used before", "idempotency_key: used before"),
        ("/v1/models", "params.temperature: x", "params.temperature: x"),
    ],
)
def test_a_routers_field_is_named_as_the_caller_of_the_route_sent_it(path: str, details: str, expected: str) -> None:
    assert callers_terms(path, details) == expected

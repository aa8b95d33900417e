"""One request through the real processes makes one trace: router -> classifier -> adapter ->
provider call -> JetStream publish -> ledger consume -> DB write, exported by OTLP to a real
OTLP/gRPC receiver on loopback; the router's metrics arrive the same way."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

from tests.stack_keys import tenant_router
from tests.topology import own_process
from tests.wire.server import WireServer
from tests.wire.stack import start_provider_stack, wire_model
from tierlift.devstack import Stack
from tierlift.v1 import common_pb2, router_pb2, router_pb2_grpc


@dataclass
class Span:
    service: str
    raw: trace_pb2.Span

    @property
    def name(self) -> str:
        return self.raw.name

    def attr(self, key: str) -> Any:
        for kv in self.raw.attributes:
            if kv.key == key:
                value = kv.value
                return getattr(value, value.WhichOneof("value"))
        return None


@dataclass
class OtlpReceiver(trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer):
    spans: list[Span] = field(default_factory=list)
    metric_names: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def Export(self, request: Any, context: grpc.ServicerContext) -> Any:
        with self.lock:
            if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
                for rs in request.resource_spans:
                    service = next(a.value.string_value for a in rs.resource.attributes if a.key == "service.name")
                    self.spans += [Span(service, s) for ss in rs.scope_spans for s in ss.spans]
                return trace_service_pb2.ExportTraceServiceResponse()
            for rm in request.resource_metrics:
                self.metric_names |= {m.name for sm in rm.scope_metrics for m in sm.metrics}
            return metrics_service_pb2.ExportMetricsServiceResponse()


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, OtlpReceiver]]:
    receiver = OtlpReceiver()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    upstream = WireServer(reasoning_tokens=3)  # a model that thinks: the spans count its reasoning apart
    upstream.start()
    stack = start_provider_stack(
        Path(tmp_path_factory.mktemp("traced")),
        [wire_model("wire-open", "HOSTED_OPEN", upstream.endpoint, "0.50")],
        TIERLIFT_OTLP_ENDPOINT=f"http://127.0.0.1:{port}",
        OTEL_BSP_SCHEDULE_DELAY="100",
        OTEL_METRIC_EXPORT_INTERVAL="300",
    )
    try:
        yield stack, receiver
    finally:
        stack.stop()
        upstream.stop()
        server.stop(None)


def _wait(receiver: OtlpReceiver, done: Any, what: str) -> None:
    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, f"no {what} within 30s"
        time.sleep(0.1)


def ask(stack: Stack, prompt: str = "Hi there?") -> router_pb2.CompleteResponse:
    with tenant_router(stack) as channel:
        return router_pb2_grpc.RouterStub(channel).Complete(
            router_pb2.CompleteRequest(
                tenant="acme", workload="traced", messages=[common_pb2.Message(role="user", content=prompt)]
            ),
            timeout=30,
        )


def test_one_request_is_one_trace_across_every_service(traced: tuple[Stack, OtlpReceiver]) -> None:
    own_process(traced[0], "adapter-openai-wire")  # each span's service is its process's
    stack, receiver = traced
    receiver.spans.clear()
    reply = ask(stack, "Hi there, traced?")  # a prompt of its own: a repeat skips the classifier

    def root() -> Span | None:
        return next((s for s in receiver.spans if s.name == "/tierlift.v1.Router/Complete"), None)

    def in_trace() -> list[Span]:
        r = root()
        return [s for s in receiver.spans if r and s.raw.trace_id == r.raw.trace_id]

    _wait(
        receiver,
        lambda: any(s.name == "INSERT attempts, requests" for s in in_trace()),
        "ledger DB write span in the trace",
    )
    spans = in_trace()
    by_id = {s.raw.span_id: s for s in spans}

    def parent(span: Span) -> Span:
        return by_id[span.raw.parent_span_id]

    def one(name: str, service: str) -> Span:
        [match] = [s for s in spans if s.name == name and s.service == service]
        return match

    assert {s.service for s in spans} >= {
        "tierlift-router", "tierlift-classifier", "tierlift-adapter-openai-wire", "tierlift-ledger"
    }  # fmt: skip
    classify = one("/tierlift.v1.Classifier/Classify", "tierlift-classifier")
    assert parent(classify).service == "tierlift-router"
    assert parent(parent(classify)).name == "/tierlift.v1.Router/Complete"

    attempt = one("chat wire-open", "tierlift-router")
    assert attempt.attr("gen_ai.request.model") == attempt.attr("gen_ai.response.model") == "wire-open"
    assert attempt.attr("gen_ai.provider.name") == "wire"  # the catalog's provider of the model
    assert attempt.attr("tierlift.tier") == "HOSTED_OPEN"
    assert attempt.attr("tierlift.escalated") is False
    assert attempt.attr("tierlift.cost_usd") == reply.total_cost_usd
    assert (attempt.attr("gen_ai.usage.cost"), attempt.attr("gen_ai.usage.currency")) == (
        pytest.approx(float(reply.total_cost_usd)), "USD")  # fmt: skip
    assert attempt.attr("gen_ai.usage.input_tokens") == reply.usage.input_tokens
    assert attempt.attr("gen_ai.usage.reasoning.output_tokens") == reply.usage.reasoning_output_tokens == 3
    assert attempt.attr("gen_ai.usage.cache_read.input_tokens") == 0
    adapter_server = one("/tierlift.v1.ModelAdapter/Generate", "tierlift-adapter-openai-wire")
    assert parent(parent(adapter_server)) is attempt  # via the router's gRPC client span
    provider_call = one("chat wire-open", "tierlift-adapter-openai-wire")
    assert provider_call.raw.kind == trace_pb2.Span.SPAN_KIND_CLIENT
    assert parent(provider_call) is adapter_server
    assert provider_call.attr("gen_ai.usage.output_tokens") == reply.usage.output_tokens
    assert provider_call.attr("gen_ai.provider.name") == "openai"  # the adapter's backend family
    assert provider_call.attr("gen_ai.response.model") == "wire-open"
    assert provider_call.attr("gen_ai.usage.reasoning.output_tokens") == 3

    publish = one("tierlift.request.settled publish", "tierlift-router")  # the answer and its attempt
    assert publish.raw.kind == trace_pb2.Span.SPAN_KIND_PRODUCER
    consume = one("tierlift.request.settled process", "tierlift-ledger")
    assert consume.raw.kind == trace_pb2.Span.SPAN_KIND_CONSUMER
    assert parent(consume) is publish
    assert [link.span_id for link in consume.raw.links] == [publish.raw.span_id]
    assert parent(one("INSERT attempts, requests", "tierlift-ledger")) is consume

    trace_id = root().raw.trace_id.hex()  # type: ignore[union-attr]
    assert trace_id in stack.log_path("router").read_text()  # logs carry the trace id


def test_a_repeated_request_is_labelled_without_calling_the_classifier(traced: tuple[Stack, OtlpReceiver]) -> None:
    """The router remembers the labels it was given: the same request again, within the minute,
    has no Classifier span in its trace (and is still routed, answered and billed)."""
    stack, receiver = traced
    own_process(stack, "classifier")
    receiver.spans.clear()
    first, again = ask(stack, "Is this asked twice?"), ask(stack, "Is this asked twice?")
    assert first.request_id != again.request_id and again.text

    def traces() -> list[set[str]]:
        """The services in each request's trace, oldest request first, once the ledger has each
        (a CONSUMER span per event; one batch's write is a child of its first event's only)."""
        roots = sorted(
            (s for s in receiver.spans if s.name == "/tierlift.v1.Router/Complete"),
            key=lambda s: s.raw.start_time_unix_nano,
        )
        written = {s.raw.trace_id for s in receiver.spans if s.name == "tierlift.request.settled process"}
        return [
            {s.service for s in receiver.spans if s.raw.trace_id == r.raw.trace_id}
            for r in roots
            if r.raw.trace_id in written
        ]

    _wait(receiver, lambda: len(traces()) == 2, "both requests' traces, each to the ledger")
    asked, remembered = traces()
    assert "tierlift-classifier" in asked
    assert "tierlift-classifier" not in remembered
    assert {"tierlift-router", "tierlift-adapter-openai-wire", "tierlift-ledger"} <= remembered


def test_router_metrics_are_exported(traced: tuple[Stack, OtlpReceiver]) -> None:
    stack, receiver = traced
    ask(stack)
    expected = {"tierlift.requests", "tierlift.attempts", "tierlift.request.duration", "gen_ai.client.token.usage",
                "tierlift.tokens", "tierlift.cost", "tierlift.classifications"}  # fmt: skip
    _wait(receiver, lambda: expected <= receiver.metric_names, f"metrics {expected}")

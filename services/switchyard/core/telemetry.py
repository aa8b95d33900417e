"""OpenTelemetry setup: a tracer provider per process, OTLP export when configured."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def configure_telemetry(service: str, otlp_endpoint: str) -> TracerProvider:
    """Install the global tracer provider. With no endpoint spans are made (so trace ids
    reach logs and event headers) but not exported."""
    provider = TracerProvider(resource=Resource.create({"service.name": f"switchyard-{service}"}))
    if otlp_endpoint:
        # Imported here: the exporter pulls in its own gRPC channel setup, needless without it.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    return provider

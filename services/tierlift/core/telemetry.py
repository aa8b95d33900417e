"""OpenTelemetry setup: tracer and meter providers per process, OTLP export when configured.

With no endpoint, spans are still made, for their ids (they reach logs, event headers and the
next service), but not recorded: attributes, events and span processors would cost CPU on every
request for nothing (`BENCH=profile make bench`). Metrics, which have no ids to give, are left to
OpenTelemetry's no-op meter (the SDK's aggregation cost the router ~27 µs a request). With an
endpoint, the sampler is the standard OTEL_TRACES_SAMPLER's (default: parent-based, always on).
Export intervals follow the standard OTEL_BSP_* and OTEL_METRIC_EXPORT_INTERVAL variables.
"""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF


@dataclass(frozen=True)
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider | None  # None: metrics are not exported

    def shutdown(self) -> None:
        """Flush and stop both providers (last step of a service's shutdown)."""
        self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


def configure_telemetry(service: str, otlp_endpoint: str) -> Telemetry:
    resource = Resource.create({"service.name": f"tierlift-{service}", "service.namespace": "tierlift"})
    if not otlp_endpoint:
        tracer_provider = TracerProvider(resource=resource, sampler=ALWAYS_OFF)
        trace.set_tracer_provider(tracer_provider)
        return Telemetry(tracer_provider, None)
    tracer_provider = TracerProvider(resource=resource)
    # Imported here: the exporters set up their own gRPC channels, needless without export.
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=otlp_endpoint))
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return Telemetry(tracer_provider, meter_provider)

"""OpenTelemetry setup: tracer and meter providers per process, OTLP export when configured,
and a Prometheus `/metrics` endpoint when TIERLIFT_METRICS_LISTEN is set.

With no endpoint, spans are still made, for their ids (they reach logs, event headers and the
next service), but not recorded: attributes, events and span processors would cost CPU on every
request for nothing (`BENCH=profile make bench`). Metrics, which have no ids to give, are left to
OpenTelemetry's no-op meter (the SDK's aggregation cost the router ~27 µs a request) unless OTLP or
Prometheus reads them. With an endpoint, the sampler is the standard OTEL_TRACES_SAMPLER's
(default: parent-based, always on). Export intervals follow the standard OTEL_BSP_* and
OTEL_METRIC_EXPORT_INTERVAL variables.

Prometheus reads the same meters as OTLP (the OpenTelemetry Prometheus exporter): dots become
underscores, counters end in `_total`, a unit in seconds adds `_seconds`
(`gen_ai.client.operation.duration` is `gen_ai_client_operation_duration_seconds`), and `{token}`
adds nothing. docs/operations/observability.md lists every name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from tierlift.core.entry import StartupError
from tierlift.core.logging import get_logger

log = get_logger(__name__)

# The GenAI semantic conventions' advised boundaries: durations in seconds, token counts
SECONDS_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = tuple(4**i for i in range(14))  # 1, 4, 16, ... 67108864


def histogram_views() -> list[View]:
    """Buckets that fit what is measured: seconds for every `s` histogram, tokens for token counts
    (the SDK's default, 0 to 10000 in steps for milliseconds, fits neither)."""
    return [
        View(instrument_type=Histogram, instrument_unit="s",
             aggregation=ExplicitBucketHistogramAggregation(SECONDS_BUCKETS)),
        View(instrument_type=Histogram, instrument_unit="{token}",
             aggregation=ExplicitBucketHistogramAggregation(TOKEN_BUCKETS)),
    ]  # fmt: skip


@dataclass(frozen=True)
class Telemetry:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider | None  # None: metrics are not exported
    # the /metrics listener, when TIERLIFT_METRICS_LISTEN is set: "host:port" as bound
    metrics_address: str = ""
    _metrics_server: Any = field(default=None, repr=False)

    def shutdown(self) -> None:
        """Flush and stop both providers (last step of a service's shutdown)."""
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


def parse_listen(value: str, variable: str = "TIERLIFT_METRICS_LISTEN") -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise StartupError(f"{variable}: {value!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


def prometheus_reader(listen: str) -> tuple[MetricReader, Any, str]:
    """A reader that Prometheus scrapes at http://<listen>/metrics (its own registry, with the
    process's CPU, memory and file descriptors), and the server it runs on a thread of its own."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server

    host, port = parse_listen(listen)
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    reader = PrometheusMetricReader(registry=registry)
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise StartupError(f"TIERLIFT_METRICS_LISTEN: cannot listen on {listen}: {exc.strerror}") from None
    shown = f"[{host}]" if ":" in host else host
    return reader, server, f"{shown}:{server.server_port}"  # the port bound, where 0 asked for any


def configure_telemetry(service: str, otlp_endpoint: str, metrics_listen: str = "") -> Telemetry:
    resource = Resource.create({"service.name": f"tierlift-{service}", "service.namespace": "tierlift"})
    readers: list[MetricReader] = []
    server, address = None, ""
    if metrics_listen:
        reader, server, address = prometheus_reader(metrics_listen)
        readers.append(reader)
        log.info("metrics_serving", listen=address, path="/metrics")
    if not otlp_endpoint:
        tracer_provider = TracerProvider(resource=resource, sampler=ALWAYS_OFF)
    else:
        tracer_provider = TracerProvider(resource=resource)
        # Imported here: the exporters set up their own gRPC channels, needless without export.
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(tracer_provider)
    if not readers:
        return Telemetry(tracer_provider, None)
    meter_provider = MeterProvider(resource=resource, metric_readers=readers, views=histogram_views())
    metrics.set_meter_provider(meter_provider)
    return Telemetry(tracer_provider, meter_provider, address, server)

"""OpenTelemetry setup: tracer and meter providers per process, OTLP export when configured,
and a Prometheus `/metrics` endpoint when TIERLIFT_METRICS_LISTEN is set.

With no endpoint, spans are still made, for their ids (they reach logs, event headers and the
next service), but not recorded: attributes, events and span processors would cost CPU on every
request for nothing (`BENCH=profile make bench`). Under a parent that is not sampled (every span
with no endpoint; most with a ratio sampler), a span is its parent (`ParentFirstTracer`): the
trace id travels on, and the spans nobody records are not made. Metrics, which have no ids to
give, are left to OpenTelemetry's no-op meter (the SDK's aggregation cost the router ~27 µs a
request) unless OTLP or Prometheus reads them. With an endpoint, the sampler is the standard
OTEL_TRACES_SAMPLER's (default: parent-based, always on). Export intervals follow the standard
OTEL_BSP_* and OTEL_METRIC_EXPORT_INTERVAL variables.

Prometheus reads the same meters as OTLP (the OpenTelemetry Prometheus exporter): dots become
underscores, counters end in `_total`, a unit in seconds adds `_seconds`
(`gen_ai.client.operation.duration` is `gen_ai_client_operation_duration_seconds`), and `{token}`
adds nothing. docs/operations/observability.md lists every name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, Sampler
from opentelemetry.util._decorator import _agnosticcontextmanager

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


class ParentFirstTracer(trace.Tracer):
    """The SDK's tracer, except under a parent that is not sampled, where the sampler (ALWAYS_OFF,
    or parent-based, which drops a child of a dropped parent) would make a non-recording span:
    there the "new" span is the parent itself, current as it was. Its ids are the parent's, so the
    trace id (logs, the ledger's rows, the next service) is what it would have been; only span ids
    that no one records are not minted. A request's inner spans (attempt, publish, provider call,
    in-process SERVER spans) cost the combined process ~6% of its CPU a request otherwise (1.19-1.23
    against 1.10-1.15 ms, 5,000 requests at 16 clients, three runs each, alternating)."""

    def __init__(self, sdk: trace.Tracer) -> None:
        self._sdk = sdk

    def start_span(self, name: str, context: Context | None = None, *args: Any, **kwargs: Any) -> trace.Span:
        parent = trace.get_current_span(context)
        return parent if _dropped(parent) else self._sdk.start_span(name, context, *args, **kwargs)

    @_agnosticcontextmanager
    def start_as_current_span(
        self, name: str, context: Context | None = None, *args: Any, **kwargs: Any
    ) -> Iterator[trace.Span]:
        parent = trace.get_current_span(context)
        if not _dropped(parent):
            with self._sdk.start_as_current_span(name, context, *args, **kwargs) as span:
                yield span
        elif context is None:
            yield parent  # current already
        else:
            with trace.use_span(parent, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                yield parent


def _dropped(span: trace.Span) -> bool:
    """A parent that is valid, not sampled and not recording: its children are dropped too. (A
    span recorded but not sampled, a custom sampler's RECORD_ONLY, is no stand-in: its child's
    attributes and end would be its own.)"""
    ctx = span.get_span_context()
    return ctx.is_valid and not ctx.trace_flags.sampled and not span.is_recording()


class ParentFirstTracerProvider(TracerProvider):
    """Hands out ParentFirstTracers where the sampler drops every child of a dropped parent."""

    def get_tracer(self, *args: Any, **kwargs: Any) -> trace.Tracer:
        sdk = super().get_tracer(*args, **kwargs)
        return ParentFirstTracer(sdk) if _drops_children_of_dropped(self.sampler) else sdk


def _drops_children_of_dropped(sampler: Sampler) -> bool:
    """ALWAYS_OFF, or parent-based with its defaults for a parent not sampled (ALWAYS_OFF, what
    every `parentbased_*` OTEL_TRACES_SAMPLER gets)."""
    if sampler is ALWAYS_OFF:
        return True
    if not isinstance(sampler, ParentBased):
        return False
    return all(getattr(sampler, f"_{side}_parent_not_sampled", None) is ALWAYS_OFF for side in ("remote", "local"))


def configure_telemetry(service: str, otlp_endpoint: str, metrics_listen: str = "") -> Telemetry:
    resource = Resource.create({"service.name": f"tierlift-{service}", "service.namespace": "tierlift"})
    readers: list[MetricReader] = []
    server, address = None, ""
    if metrics_listen:
        reader, server, address = prometheus_reader(metrics_listen)
        readers.append(reader)
        log.info("metrics_serving", listen=address, path="/metrics")
    if not otlp_endpoint:
        tracer_provider = ParentFirstTracerProvider(resource=resource, sampler=ALWAYS_OFF)
    else:
        tracer_provider = ParentFirstTracerProvider(resource=resource)
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

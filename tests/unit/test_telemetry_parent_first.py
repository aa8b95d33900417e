"""ParentFirstTracer (core/telemetry.py): under a parent that is not sampled, a span is its
parent, so nothing unrecorded is minted; everything a sampled trace records is unchanged."""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, DEFAULT_ON, Decision, Sampler, SamplingResult
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from tierlift.core.telemetry import ParentFirstTracer, ParentFirstTracerProvider

REMOTE_TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736


def _remote(sampled: bool) -> trace.Span:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return NonRecordingSpan(SpanContext(REMOTE_TRACE, 0x00F067AA0BA902B7, is_remote=True, trace_flags=flags))


def _provider(sampler: Sampler) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = ParentFirstTracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_with_nothing_sampled_a_root_has_fresh_ids_and_its_inner_spans_are_the_root() -> None:
    provider, _ = _provider(ALWAYS_OFF)
    tracer = provider.get_tracer("test")
    assert isinstance(tracer, ParentFirstTracer)
    with tracer.start_as_current_span("server") as root:
        ids = root.get_span_context()
        assert ids.is_valid and not ids.trace_flags.sampled
        with tracer.start_as_current_span("attempt") as inner:
            assert inner is root
            assert trace.get_current_span() is root
            assert tracer.start_span("publish") is root
        assert trace.get_current_span() is root  # the inner block restored nothing it did not set
    assert not trace.get_current_span().get_span_context().is_valid


def test_a_remote_parent_not_sampled_is_continued_and_made_current_for_the_block() -> None:
    provider, exporter = _provider(DEFAULT_ON)
    tracer = provider.get_tracer("test")
    remote = _remote(sampled=False)
    with tracer.start_as_current_span("consume", context=trace.set_span_in_context(remote)) as span:
        assert span is remote
        assert trace.get_current_span().get_span_context().trace_id == REMOTE_TRACE
        with tracer.start_as_current_span("insert") as inner:
            assert inner is remote
    assert not trace.get_current_span().get_span_context().is_valid
    assert exporter.get_finished_spans() == ()


def test_a_sampled_trace_records_every_span_with_its_own_parent_as_the_sdk_does() -> None:
    provider, exporter = _provider(DEFAULT_ON)
    tracer = provider.get_tracer("test")
    remote = trace.set_span_in_context(_remote(sampled=True))
    with (
        tracer.start_as_current_span("consume", context=remote) as outer,
        tracer.start_as_current_span("insert") as inner,
    ):
        assert inner is not outer
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"consume", "insert"}
    assert spans["consume"].context.trace_id == REMOTE_TRACE
    assert spans["consume"].parent is not None and spans["consume"].parent.span_id == 0x00F067AA0BA902B7
    assert spans["insert"].parent is not None and spans["insert"].parent.span_id == outer.get_span_context().span_id


def test_a_sampler_that_may_sample_a_child_of_a_dropped_parent_gets_the_sdks_own_tracer() -> None:
    provider, exporter = _provider(ALWAYS_ON)
    tracer = provider.get_tracer("test")
    assert not isinstance(tracer, ParentFirstTracer)
    with tracer.start_as_current_span("child", context=trace.set_span_in_context(_remote(sampled=False))):
        pass
    assert [s.name for s in exporter.get_finished_spans()] == ["child"]


class _RecordOnlyRoot(Sampler):
    """A root recorded but not sampled (a custom sampler's RECORD_ONLY); children dropped."""

    def should_sample(self, parent_context: Any, *_args: Any, **_kwargs: Any) -> SamplingResult:
        if trace.get_current_span(parent_context).get_span_context().is_valid:
            return SamplingResult(Decision.DROP)
        return SamplingResult(Decision.RECORD_ONLY)

    def get_description(self) -> str:
        return "record-only root"


def test_a_parent_recorded_but_not_sampled_is_never_its_childs_stand_in() -> None:
    from opentelemetry.sdk.trace.sampling import ParentBased

    provider, _ = _provider(ParentBased(_RecordOnlyRoot()))
    tracer = provider.get_tracer("test")
    assert isinstance(tracer, ParentFirstTracer)
    with tracer.start_as_current_span("root") as root:
        assert root.is_recording() and not root.get_span_context().trace_flags.sampled
        with tracer.start_as_current_span("child") as child:
            assert child is not root  # its end and attributes stay its own
            child.set_attribute("k", "v")
        assert root.is_recording()  # not ended by the child's block

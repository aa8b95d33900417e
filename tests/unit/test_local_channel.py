"""In-process calls (core/local_channel.py): a generated stub over a LocalChannel behaves as over
gRPC: the callee's own admission, status codes, deadlines, metadata, streams, cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from tierlift.core.identity import ROUTER, Authenticate, KeyBook, current_principal, digest, routers_only
from tierlift.core.local_channel import LocalChannel, LocalEndpoint, NotInProcess
from tierlift.v1 import adapter_pb2, adapter_pb2_grpc, classifier_pb2, classifier_pb2_grpc

ROUTER_KEY = "router-service-key"


class _Adapter(adapter_pb2_grpc.ModelAdapterServicer):
    """Answers by the model name it is asked for: what the tests need of a callee."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, float | None, tuple[tuple[str, str], ...]]] = []
        self.cancelled = asyncio.Event()
        self.stream_closed = asyncio.Event()

    async def Generate(
        self, request: adapter_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> adapter_pb2.GenerateResponse:
        self.seen.append((current_principal().role, context.time_remaining(), tuple(context.invocation_metadata())))
        if request.model == "abort":
            context.set_trailing_metadata((("retry-after", "1.00"),))
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down")
        if request.model == "crash":
            raise ValueError("boom")
        if request.model == "slow":
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        if request.model == "peer":
            context.peer_identities()  # not offered in-process
        return adapter_pb2.GenerateResponse(text=f"hello {request.model}")

    async def GenerateStream(
        self, request: adapter_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[adapter_pb2.GenerateChunk]:
        try:
            for i in range(3):
                if request.model == "slow" and i == 1:
                    await asyncio.sleep(10)
                yield adapter_pb2.GenerateChunk(text=str(i))
            if request.model == "abort":
                await context.abort(grpc.StatusCode.UNAVAILABLE, "gone")
            yield adapter_pb2.GenerateChunk(final=True)
        finally:
            self.stream_closed.set()


def _adapter(servicer: _Adapter) -> LocalEndpoint:
    endpoint = LocalEndpoint("adapter", routers_only([digest(ROUTER_KEY)]))
    adapter_pb2_grpc.add_ModelAdapterServicer_to_server(servicer, endpoint)
    return endpoint


def _stub(servicer: _Adapter, key: str = ROUTER_KEY) -> adapter_pb2_grpc.ModelAdapterStub:
    return adapter_pb2_grpc.ModelAdapterStub(_adapter(servicer).channel(key))


async def test_call_answers_with_the_callees_response_and_its_principal() -> None:
    servicer = _Adapter()
    reply = await _stub(servicer).Generate(adapter_pb2.GenerateRequest(model="m"), timeout=5)
    assert reply.text == "hello m"
    role, remaining, metadata = servicer.seen[0]
    assert role == ROUTER
    assert remaining is not None and 4 < remaining <= 5
    assert ("authorization", f"Bearer {ROUTER_KEY}") in metadata


async def test_callees_principal_does_not_leak_into_the_caller() -> None:
    await _stub(_Adapter()).Generate(adapter_pb2.GenerateRequest(model="m"))
    with pytest.raises(RuntimeError):
        current_principal()


async def test_caller_metadata_and_trace_context_reach_the_callee() -> None:
    servicer = _Adapter()
    given = (("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), ("x-tenant", "a"))
    await _stub(servicer).Generate(adapter_pb2.GenerateRequest(model="m"), metadata=given)
    metadata = servicer.seen[0][2]
    assert given[0] in metadata and given[1] in metadata
    assert [name for name, _ in metadata].count("traceparent") == 1


async def test_unknown_key_is_refused_as_over_grpc() -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await _stub(_Adapter(), key="someone-else").Generate(adapter_pb2.GenerateRequest(model="m"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED  # routers_only: others denied


async def test_missing_key_is_unauthenticated() -> None:
    keys = KeyBook()
    endpoint = LocalEndpoint("classifier", Authenticate(keys, {"*": frozenset({"app"})}))
    classifier_pb2_grpc.add_ClassifierServicer_to_server(classifier_pb2_grpc.ClassifierServicer(), endpoint)
    stub = classifier_pb2_grpc.ClassifierStub(endpoint.channel())
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Classify(classifier_pb2.ClassifyRequest())
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_role_not_allowed_is_permission_denied() -> None:
    keys = KeyBook()
    keys.trust_service(digest("viewer-ish"), "viewer")
    endpoint = LocalEndpoint("classifier", Authenticate(keys, {"*": frozenset({"app"})}))
    classifier_pb2_grpc.add_ClassifierServicer_to_server(classifier_pb2_grpc.ClassifierServicer(), endpoint)
    stub = classifier_pb2_grpc.ClassifierStub(endpoint.channel("viewer-ish"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Classify(classifier_pb2.ClassifyRequest())
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "viewer" in (refused.value.details() or "")


async def test_abort_reaches_the_caller_with_code_details_and_trailing_metadata() -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await _stub(_Adapter()).Generate(adapter_pb2.GenerateRequest(model="abort"))
    assert failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failed.value.details() == "slow down"
    assert ("retry-after", "1.00") in tuple(failed.value.trailing_metadata())


async def test_an_unexpected_exception_is_unknown() -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await _stub(_Adapter()).Generate(adapter_pb2.GenerateRequest(model="crash"))
    assert failed.value.code() == grpc.StatusCode.UNKNOWN
    assert "boom" in (failed.value.details() or "")


async def test_an_unimplemented_method_is_unimplemented() -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await _stub(_Adapter()).Describe(adapter_pb2.DescribeRequest())
    assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_deadline_cancels_the_callee_and_is_deadline_exceeded() -> None:
    servicer = _Adapter()
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await _stub(servicer).Generate(adapter_pb2.GenerateRequest(model="slow"), timeout=0.05)
    assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    await asyncio.wait_for(servicer.cancelled.wait(), 1)


async def test_a_cancelled_caller_cancels_the_callee() -> None:
    servicer = _Adapter()
    call = asyncio.ensure_future(_stub(servicer).Generate(adapter_pb2.GenerateRequest(model="slow")))
    await asyncio.sleep(0.05)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.wait_for(servicer.cancelled.wait(), 1)


async def test_a_shielded_call_finishes_after_its_caller_left() -> None:
    servicer = _Adapter()
    call = asyncio.ensure_future(_stub(servicer).Generate(adapter_pb2.GenerateRequest(model="m")))
    waiter = asyncio.ensure_future(asyncio.shield(call))
    waiter.cancel()
    assert (await call).text == "hello m"


async def test_stream_yields_every_message_then_ends() -> None:
    chunks = [c async for c in _stub(_Adapter()).GenerateStream(adapter_pb2.GenerateRequest(model="m"))]
    assert [c.text for c in chunks[:3]] == ["0", "1", "2"] and chunks[-1].final


async def test_stream_abort_comes_after_the_messages_sent() -> None:
    got: list[str] = []
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        async for chunk in _stub(_Adapter()).GenerateStream(adapter_pb2.GenerateRequest(model="abort")):
            got.append(chunk.text)
    assert got == ["0", "1", "2"]
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_stream_deadline_is_deadline_exceeded_and_closes_the_callee() -> None:
    servicer = _Adapter()
    got: list[str] = []
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        async for chunk in _stub(servicer).GenerateStream(adapter_pb2.GenerateRequest(model="slow"), timeout=0.1):
            got.append(chunk.text)
    assert got == ["0"]
    assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert servicer.stream_closed.is_set()


async def test_stream_cancel_closes_the_callee() -> None:
    servicer = _Adapter()
    call = _stub(servicer).GenerateStream(adapter_pb2.GenerateRequest(model="slow"))
    assert (await anext(aiter(call))).text == "0"
    assert call.cancel()
    await asyncio.wait_for(servicer.stream_closed.wait(), 1)


async def test_stream_reader_cancelled_while_waiting_cancels_the_callee() -> None:
    servicer = _Adapter()
    call = _stub(servicer).GenerateStream(adapter_pb2.GenerateRequest(model="slow"))

    async def read() -> list[str]:
        return [c.text async for c in call]

    reader = asyncio.ensure_future(read())
    await asyncio.sleep(0.05)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    await asyncio.wait_for(servicer.stream_closed.wait(), 1)


async def test_stream_refused_caller_gets_the_status_before_any_message() -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in _stub(_Adapter(), key="nope").GenerateStream(adapter_pb2.GenerateRequest(model="m")):
            pass
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_unoffered_features_fail_loudly() -> None:
    stub = _stub(_Adapter())
    with pytest.raises(NotInProcess):
        await stub.Generate(adapter_pb2.GenerateRequest(model="m"), wait_for_ready=True)
    with pytest.raises(grpc.aio.AioRpcError) as failed:  # a context feature: the servicer fails, UNKNOWN
        await stub.Generate(adapter_pb2.GenerateRequest(model="peer"))
    assert "peer_identities" in (failed.value.details() or "")
    with pytest.raises(NotInProcess):
        LocalChannel(_adapter(_Adapter())).stream_stream("/x/Y")
    unknown = LocalChannel(_adapter(_Adapter())).unary_unary("/tierlift.v1.Nothing/Here")
    with pytest.raises(NotInProcess):
        await unknown(adapter_pb2.GenerateRequest())


async def test_callees_server_span_joins_the_callers_trace_without_a_client_span(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tierlift.core import grpc_server

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    monkeypatch.setattr(grpc_server, "_tracer", tracer)  # no global provider set
    stub = _stub(_Adapter())
    with tracer.start_as_current_span("router attempt") as caller:
        await stub.Generate(adapter_pb2.GenerateRequest(model="m"))
    spans = {s.name: s for s in exporter.get_finished_spans()}
    served = spans["/tierlift.v1.ModelAdapter/Generate"]
    assert served.kind == trace.SpanKind.SERVER
    assert served.parent is not None and served.parent.span_id == caller.get_span_context().span_id
    assert served.context.trace_id == caller.get_span_context().trace_id
    assert not [s for s in spans.values() if s.kind == trace.SpanKind.CLIENT]

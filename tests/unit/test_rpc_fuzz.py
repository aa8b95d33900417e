"""Property: whatever a caller sends the Router and adapter RPCs (well-formed messages with any
field values, or bytes that are no message at all), the answer is a deliberate status, never
UNKNOWN or INTERNAL, and a refused request leaves no billable event. Messages are drawn from
the proto descriptors, so a new field is fuzzed without touching this file."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.router_harness import RecordingPublisher, ScriptedBackend, serve_router
from tierlift.router import Policy
from tierlift.router._policy_source import PolicySource
from tierlift.v1 import adapter_pb2, router_pb2

NEVER = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
F = FieldDescriptor
_HUGE = st.sampled_from(["x" * 100_000, "é" * 5_000, "a\n", "\x00", "acme\n", " ", ""])


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == F.TYPE_ENUM:
        return st.integers(-3, 120)
    if field.type in (F.TYPE_INT32, F.TYPE_SINT32):
        return st.integers(-(2**31), 2**31 - 1)
    if field.type in (F.TYPE_UINT32, F.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if field.type in (F.TYPE_INT64, F.TYPE_SINT64):
        return st.integers(-(2**63), 2**63 - 1)
    if field.type in (F.TYPE_UINT64, F.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    if field.type in (F.TYPE_FLOAT, F.TYPE_DOUBLE):
        return st.floats(allow_nan=True, allow_infinity=True, width=32 if field.type == F.TYPE_FLOAT else 64)
    if field.type == F.TYPE_BOOL:
        return st.booleans()
    if field.type == F.TYPE_STRING:
        return st.one_of(st.text(max_size=40), st.sampled_from(["acme", "faq", "user", "eu", "1e30", "NaN"]), _HUGE)
    if field.type == F.TYPE_BYTES:
        return st.binary(max_size=64)
    raise NotImplementedError(field.type)


def _field_value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any] | None:
    """One value of the field (None: a message nested too deep to draw)."""
    if field.type != F.TYPE_MESSAGE:
        return _scalar(field)
    return messages(field.message_type, field.message_type._concrete_class, depth + 1) if depth < 3 else None


def messages(descriptor: Descriptor, cls: type[Message], depth: int = 0) -> st.SearchStrategy[Message]:
    """Any message of this type: every field present or not, any value its wire type can carry."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        is_map = field.type == F.TYPE_MESSAGE and field.message_type.GetOptions().map_entry
        value = _field_value(field.message_type.fields_by_name["value"] if is_map else field, depth)
        if value is None:
            continue
        if is_map:
            fields[field.name] = st.dictionaries(_scalar(field.message_type.fields_by_name["key"]), value, max_size=10)
        else:
            fields[field.name] = st.lists(value, max_size=30) if field.is_repeated else value

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        message = cls()
        for name, strategy in fields.items():
            if not draw(st.booleans()):
                continue
            value = draw(strategy)
            target = getattr(message, name)
            if isinstance(value, dict):  # a map field
                for k, v in value.items():
                    target[k].CopyFrom(v) if isinstance(v, Message) else target.__setitem__(k, v)
            elif isinstance(value, list):
                for item in value:
                    target.add().CopyFrom(item) if isinstance(item, Message) else target.append(item)
            elif isinstance(value, Message):
                target.CopyFrom(value)
            else:
                setattr(message, name, value)
        return message

    return build()


def _run_fuzz(check: Any) -> None:
    publisher = RecordingPublisher()
    backends = [ScriptedBackend("llamacpp-local"), ScriptedBackend("openai")]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def start() -> Any:
        context = serve_router(backends, publisher=publisher, policy=PolicySource(Policy()), attempt_timeout_s=5)
        return context, await context.__aenter__()

    context, router = loop.run_until_complete(start())
    try:
        check(loop, router, publisher)
    finally:
        loop.run_until_complete(context.__aexit__(None, None, None))
        loop.close()
        asyncio.set_event_loop(None)


def _code(loop: asyncio.AbstractEventLoop, call: Any) -> grpc.StatusCode:
    async def inside_the_loop() -> None:  # gRPC's aio objects bind to the running loop
        await call()

    try:
        loop.run_until_complete(inside_the_loop())
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def test_any_complete_request_gets_a_deliberate_status_and_a_refusal_bills_nothing() -> None:
    def check(loop: asyncio.AbstractEventLoop, router: Any, publisher: RecordingPublisher) -> None:
        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(messages(router_pb2.CompleteRequest.DESCRIPTOR, router_pb2.CompleteRequest))
        def one(request: router_pb2.CompleteRequest) -> None:
            before = len(publisher.events)
            code = _code(loop, lambda: router.Complete(request, timeout=20))
            assert code not in NEVER, (code, request)
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                assert len(publisher.events) == before  # nothing billable from a refused request

        one()

    _run_fuzz(check)


def test_bytes_that_are_no_message_are_invalid_argument() -> None:
    def check(loop: asyncio.AbstractEventLoop, router: Any, _publisher: RecordingPublisher) -> None:
        async def send(address: str, method: str, body: bytes, stream: bool) -> None:
            async with grpc.aio.insecure_channel(address) as channel:
                if stream:
                    async for _ in channel.unary_stream(method)(body, timeout=10):
                        pass
                else:
                    await channel.unary_unary(method)(body, timeout=10)

        targets = [
            (router.addresses["RouterServicer"], "/tierlift.v1.Router/Complete", False),
            (router.addresses["RouterServicer"], "/tierlift.v1.Router/Plan", False),
            (router.addresses["RouterServicer"], "/tierlift.v1.Router/CompleteStream", True),
            (router.addresses["AdapterServicer"], "/tierlift.v1.ModelAdapter/Generate", False),
            (router.addresses["ClassifierServicer"], "/tierlift.v1.Classifier/Classify", False),
        ]
        for body in (b"\xff\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x12\x05abc"):
            for address, method, stream in targets:
                code = _code(loop, lambda a=address, m=method, b=body, s=stream: send(a, m, b, s))
                assert code == grpc.StatusCode.INVALID_ARGUMENT, (method, body, code)

    _run_fuzz(check)


def test_any_generate_request_to_an_adapter_gets_a_deliberate_status() -> None:
    def check(loop: asyncio.AbstractEventLoop, router: Any, _publisher: RecordingPublisher) -> None:
        async def generate(request: adapter_pb2.GenerateRequest) -> None:
            from tierlift.v1 import adapter_pb2_grpc

            async with grpc.aio.insecure_channel(router.addresses["AdapterServicer"]) as channel:
                await adapter_pb2_grpc.ModelAdapterStub(channel).Generate(request, timeout=10)

        @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
        @given(messages(adapter_pb2.GenerateRequest.DESCRIPTOR, adapter_pb2.GenerateRequest))
        def one(request: adapter_pb2.GenerateRequest) -> None:
            assert _code(loop, lambda: generate(request)) not in NEVER

        one()

    _run_fuzz(check)

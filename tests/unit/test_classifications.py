"""The router's memory of classifications: a repeat within the time-to-live skips the call, and
anything that could change the labels (or whose labels another tenant could time) asks again."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc
import pytest

from tierlift.router._classifications import Classifications
from tierlift.v1 import classifier_pb2, common_pb2


@dataclass
class CountingClassifier:
    """A stub whose answers name the call that made them; fails while `failing` is set."""

    asked: list[classifier_pb2.ClassifyRequest] = field(default_factory=list)
    failing: bool = False

    async def Classify(
        self,
        request: classifier_pb2.ClassifyRequest,
        timeout: float,  # noqa: ASYNC109 - the stub's signature
    ) -> classifier_pb2.Classification:
        if self.failing:
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata())
        self.asked.append(request)
        return classifier_pb2.Classification(classifier_version=f"call {len(self.asked)}")


def ask(text: str = "What is 2 + 2?", tenant: str = "acme", declared: int = 0) -> classifier_pb2.ClassifyRequest:
    return classifier_pb2.ClassifyRequest(
        messages=[common_pb2.Message(role="user", content=text)], declared_data_class=declared, tenant=tenant
    )


async def test_a_repeated_request_is_answered_from_memory() -> None:
    stub = CountingClassifier()
    labels = Classifications(stub, timeout_s=1.0)  # type: ignore[arg-type]
    first = await labels.classify(ask())
    again = await labels.classify(ask())
    assert (first.classifier_version, again.classifier_version) == ("call 1", "call 1")
    assert len(stub.asked) == 1


@pytest.mark.parametrize(
    "other",
    [
        ask(text="What is 2 + 3?"),
        ask(tenant="globex"),  # one tenant must not time another's prompts
        ask(declared=common_pb2.DATA_CLASS_CONFIDENTIAL),
        classifier_pb2.ClassifyRequest(
            messages=[
                common_pb2.Message(role="system", content="Be brief."),
                common_pb2.Message(role="user", content="What is 2 + 2?"),
            ],
            tenant="acme",
        ),
    ],
    ids=["other text", "other tenant", "other declaration", "one more message"],
)
async def test_anything_that_differs_asks_the_classifier(other: classifier_pb2.ClassifyRequest) -> None:
    stub = CountingClassifier()
    labels = Classifications(stub, timeout_s=1.0)  # type: ignore[arg-type]
    await labels.classify(ask())
    answer = await labels.classify(other)
    assert answer.classifier_version == "call 2"
    assert stub.asked == [ask(), other]


async def test_labels_are_asked_again_after_their_time_to_live() -> None:
    stub = CountingClassifier()
    labels = Classifications(stub, timeout_s=1.0, ttl_s=0.05)  # type: ignore[arg-type]
    await labels.classify(ask())
    await asyncio.sleep(0.1)
    assert (await labels.classify(ask())).classifier_version == "call 2"


async def test_a_size_of_zero_remembers_nothing() -> None:
    stub = CountingClassifier()
    labels = Classifications(stub, timeout_s=1.0, size=0)  # type: ignore[arg-type]
    await labels.classify(ask())
    await labels.classify(ask())
    assert len(stub.asked) == 2


async def test_the_oldest_labels_make_room() -> None:
    stub = CountingClassifier()
    labels = Classifications(stub, timeout_s=1.0, size=2)  # type: ignore[arg-type]
    for text in ("a?", "b?", "c?", "a?"):
        await labels.classify(ask(text))
    assert [r.messages[0].content for r in stub.asked] == ["a?", "b?", "c?", "a?"]


async def test_a_failed_call_is_not_remembered() -> None:
    stub = CountingClassifier(failing=True)
    labels = Classifications(stub, timeout_s=1.0)  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError):
        await labels.classify(ask())
    stub.failing = False
    assert (await labels.classify(ask())).classifier_version == "call 1"

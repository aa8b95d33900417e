"""The LLM judge: a catalog model compares the live answer with the reference, pairwise, twice
with the answers' positions swapped (judges favour a position), under the workload's rubric.
It is called through the router with the assessor's service key, so the request's data class
limits the judge model exactly as they limit live traffic, and its attempts are priced as kind
"judge". The score is the share of the two orders in which the live answer is judged at least
as good as the reference (a win or a tie)."""

from __future__ import annotations

import re

import grpc

from tierlift.assessor._judges import Verdict
from tierlift.v1 import common_pb2, events_pb2, router_pb2, router_pb2_grpc

_VERDICT = re.compile(r"\b(A|B|TIE)\b", re.IGNORECASE)


def judge_prompt(rubric: str, question: str, first: str, second: str) -> str:
    return (
        "You compare two answers to the same request.\n"
        f"Rubric: {rubric}\n\n"
        f"Request:\n{question}\n\n"
        f"Answer A:\n{first}\n\n"
        f"Answer B:\n{second}\n\n"
        "Reply with one word: A if answer A is better, B if answer B is better, TIE if they are equally good."
    )


def parse_verdict(text: str) -> str | None:
    found = _VERDICT.search(text)
    return found.group(1).upper() if found else None


class LlmJudge:
    def __init__(self, router: router_pb2_grpc.RouterStub, timeout_s: float = 60.0) -> None:
        self.router, self.timeout_s = router, timeout_s

    async def judge(self, shadow: events_pb2.ShadowFinished) -> Verdict:
        answers, spec = shadow.answers, shadow.judge
        if not answers.text_kept:
            return Verdict(None, "llm needs the texts, which the policy does not keep for this data class")
        question = "\n".join(f"{m.role}: {m.content}" for m in answers.messages)
        live, reference = answers.live_text, answers.shadow_text
        not_worse = 0
        for first, second, live_label in ((live, reference, "A"), (reference, live, "B")):
            request = router_pb2.CompleteRequest(
                tenant=shadow.tenant, workload=shadow.workload,
                messages=[common_pb2.Message(role="user", content=judge_prompt(spec.rubric, question, first, second))],
                params=common_pb2.GenerationParams(max_tokens=4, temperature=0.0),
                constraints=router_pb2.Constraints(models=[spec.model], data_class=shadow.data_class),
                idempotency_key=f"judge.{shadow.event_id}.{live_label}",
            )  # fmt: skip
            try:
                reply = await self.router.Complete(request, timeout=self.timeout_s)
            except grpc.aio.AioRpcError as exc:
                return Verdict(None, f"judge {spec.model}: {exc.code().name}: {exc.details()}")
            verdict = parse_verdict(reply.text)
            if verdict is None:
                return Verdict(None, f"judge {spec.model} gave no verdict: {reply.text[:80]!r}")
            not_worse += verdict in (live_label, "TIE")
        return Verdict(not_worse / 2, f"live not worse than the reference in {not_worse} of 2 orders")

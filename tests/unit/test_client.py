"""The client library against an in-process Router that fails on purpose: what is retried,
with which idempotency key, and what is not; deadlines; typed errors naming the field; and
that it imports without the server's dependencies."""

from __future__ import annotations

import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import pytest

from tierlift.client import DeadlineExceeded, InvalidRequest, Tierlift, Unavailable
from tierlift.v1 import common_pb2, router_pb2, router_pb2_grpc


@dataclass
class ScriptedRouter(router_pb2_grpc.RouterServicer):
    failures: list[grpc.StatusCode] = field(default_factory=list)
    delay_s: float = 0.0
    seen: list[router_pb2.CompleteRequest] = field(default_factory=list)
    metadata: list[dict[str, str]] = field(default_factory=list)

    def Complete(
        self, request: router_pb2.CompleteRequest, context: grpc.ServicerContext
    ) -> router_pb2.CompleteResponse:
        self.seen.append(request)
        self.metadata.append(dict(context.invocation_metadata()))
        time.sleep(self.delay_s)
        if self.failures:
            code = self.failures.pop(0)
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                context.set_trailing_metadata((("retry-after", "0.05"),))
            context.abort(
                code, "params.temperature: 9.0 is outside [0, 2]" if code.name == "INVALID_ARGUMENT" else "down"
            )
        return router_pb2.CompleteResponse(request_id="r-1", text="Paris", tier=common_pb2.TIER_LOCAL, model="m",
                                           confidence=0.9, total_cost_usd="0.000001000000")  # fmt: skip


@pytest.fixture
def router() -> Iterator[tuple[ScriptedRouter, str]]:
    servicer = ScriptedRouter()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    router_pb2_grpc.add_RouterServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(None)


def test_unavailable_and_rate_limits_are_retried_with_one_idempotency_key(router: tuple[ScriptedRouter, str]) -> None:
    servicer, address = router
    servicer.failures = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED]
    with Tierlift(address, api_key="tl_x_y", tenant="acme", workload="faq") as tl:
        answer = tl.complete("What is the capital of France?", max_tokens=8, allowed_tiers=["local"])
    assert answer.text == "Paris" and str(answer.cost_usd) == "0.000001000000"
    assert len(servicer.seen) == 3
    assert len({r.idempotency_key for r in servicer.seen}) == 1 and servicer.seen[0].idempotency_key
    assert servicer.seen[0].constraints.allowed_tiers == [common_pb2.TIER_LOCAL]
    assert all(m["authorization"] == "Bearer tl_x_y" for m in servicer.metadata)


def test_a_client_error_is_never_retried_and_names_the_field(router: tuple[ScriptedRouter, str]) -> None:
    servicer, address = router
    servicer.failures = [grpc.StatusCode.INVALID_ARGUMENT] * 4
    with Tierlift(address, tenant="acme") as tl, pytest.raises(InvalidRequest) as err:
        tl.complete("hi", temperature=9.0)
    assert len(servicer.seen) == 1 and err.value.field == "params.temperature"
    servicer.failures = [grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION]
    for _ in range(2):
        with Tierlift(address, tenant="acme") as tl, pytest.raises(Exception) as other:
            tl.complete("hi")
        assert not getattr(other.value, "retryable", True)
    assert len(servicer.seen) == 3


def test_retries_stop_at_the_deadline(router: tuple[ScriptedRouter, str]) -> None:
    servicer, address = router
    servicer.failures = [grpc.StatusCode.UNAVAILABLE] * 100
    started = time.monotonic()
    with Tierlift(address, tenant="acme", max_attempts=100) as tl, pytest.raises(Unavailable):
        tl.complete("hi", timeout_s=1.0)
    assert len(servicer.seen) > 2  # it did retry, and then gave up with the status it saw
    servicer.failures, servicer.delay_s = [], 2.0
    with Tierlift(address, tenant="acme") as tl, pytest.raises(DeadlineExceeded):
        tl.complete("hi", timeout_s=0.3)
    assert time.monotonic() - started < 10


def test_the_client_imports_without_the_server_dependencies() -> None:
    heavy = ["pydantic", "structlog", "sqlalchemy", "torch", "nats", "tierlift.core", "openai", "aiohttp"]
    code = f"import sys, tierlift.client; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_asyncio_client_retries_the_same_way(router: tuple[ScriptedRouter, str]) -> None:
    import asyncio

    from tierlift.client import AsyncTierlift

    servicer, address = router
    servicer.failures = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INVALID_ARGUMENT]

    async def run() -> None:
        async with AsyncTierlift(address, api_key="tl_x_y", tenant="acme") as tl:
            with pytest.raises(InvalidRequest):
                await tl.complete("hi")  # UNAVAILABLE retried, then INVALID_ARGUMENT raised at once
            answer = await tl.complete("What is the capital of France?")
            assert answer.text == "Paris"

    asyncio.run(run())
    assert len(servicer.seen) == 3
    assert servicer.seen[0].idempotency_key == servicer.seen[1].idempotency_key != servicer.seen[2].idempotency_key


def test_a_cohort_key_keeps_one_user_in_one_rollout_arm() -> None:
    with Tierlift("127.0.0.1:1", tenant="acme", workload="faq") as tl:  # building a request calls nothing
        request = tl.request("hi", cohort_key="user-42")
    assert request.cohort_key == "user-42" and request.idempotency_key


@pytest.mark.parametrize(
    ("argument", "value", "field"),
    [("max_tokens", -1, "params.max_tokens"), ("max_tokens", 10**12, "params.max_tokens"),
     ("max_tokens", "64", "params.max_tokens"), ("temperature", "hot", "params.temperature"),
     ("seed", 1.5, "params.seed"), ("stop", [1], "params.stop"), ("data_class", "secret", "constraints.data_class"),
     ("allowed_tiers", ["local", "cheap"], "constraints.allowed_tiers[1]"),
     ("quality_bar", "high", "constraints.quality_bar")],
)  # fmt: skip
def test_bad_arguments_are_the_clients_invalid_request_naming_the_field_before_any_call(
    router: tuple[ScriptedRouter, str], argument: str, value: object, field: str
) -> None:
    servicer, address = router
    with Tierlift(address, tenant="acme") as tl, pytest.raises(InvalidRequest) as err:
        tl.complete("hi", **{argument: value})
    assert err.value.field == field and err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert not servicer.seen


def test_the_address_variables_are_the_clients_and_the_old_names_still_work_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("TIERLIFT_ADDRESS", "TIERLIFT_ROUTER_ADDR", "TIERLIFT_LEDGER_ADDRESS", "TIERLIFT_LEDGER_ADDR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TIERLIFT_ROUTER_ADDR", "127.0.0.1:1")
    monkeypatch.setenv("TIERLIFT_LEDGER_ADDR", "127.0.0.1:2")
    with pytest.warns(DeprecationWarning) as caught, Tierlift() as tl:
        assert (tl.address, tl.ledger_address) == ("127.0.0.1:1", "127.0.0.1:2")
    assert [str(w.message) for w in caught] == [
        "TIERLIFT_ROUTER_ADDR is deprecated: set TIERLIFT_ADDRESS instead",
        "TIERLIFT_LEDGER_ADDR is deprecated: set TIERLIFT_LEDGER_ADDRESS instead",
    ]
    monkeypatch.setenv("TIERLIFT_ADDRESS", "127.0.0.1:3")
    monkeypatch.setenv("TIERLIFT_LEDGER_ADDRESS", "127.0.0.1:4")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names: no warning
        tl = Tierlift()
    with tl:
        assert (tl.address, tl.ledger_address) == ("127.0.0.1:3", "127.0.0.1:4")


def test_tierlift_ask_with_a_tenants_key_names_no_tenant_so_the_key_decides(
    router: tuple[ScriptedRouter, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tierlift ask --key <a key of tenant acme>` was refused: the CLI named the tenant "dev"."""
    from tierlift import cli

    servicer, address = router
    monkeypatch.delenv("TIERLIFT_TENANT", raising=False)
    assert cli.main(["ask", "hi", "--router", address, "--key", "tl_acme01_s3cret"]) == 0
    assert servicer.seen[-1].tenant == "" and servicer.seen[-1].workload == "cli"
    assert servicer.metadata[-1]["authorization"] == "Bearer tl_acme01_s3cret"
    assert capsys.readouterr().out.startswith("Paris\n")
    assert cli.main(["ask", "hi", "--router", address, "--key", "tl_admin1_s3cret", "--tenant", "acme"]) == 0
    assert servicer.seen[-1].tenant == "acme"  # an admin key acts for the tenant it names

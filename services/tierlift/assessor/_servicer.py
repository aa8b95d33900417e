"""The Assessor RPCs (admins): run a workload's golden set now (`tierlift suite run`), and start,
change and report rollouts (`tierlift rollout ...`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
import nats

from tierlift.assessor._rollouts import RolloutController, RolloutError
from tierlift.assessor._suite import SuiteError, SuiteMissing, SuiteRunner
from tierlift.core.identity import caller
from tierlift.v1 import assessor_pb2, assessor_pb2_grpc, events_pb2

T = TypeVar("T")


def _actor() -> str:
    principal = caller()
    return f"admin:{principal.key_id}" if principal is not None else "admin"


class AssessorServicer(assessor_pb2_grpc.AssessorServicer):
    def __init__(
        self, runner: SuiteRunner | None, default_models: list[str], rollouts: RolloutController | None
    ) -> None:
        self.runner, self.default_models, self.rollouts = runner, default_models, rollouts

    async def RunSuite(
        self, request: assessor_pb2.SuiteRequest, context: grpc.aio.ServicerContext
    ) -> assessor_pb2.SuiteReport:
        if self.runner is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "golden sets need TIERLIFT_ROUTER_ADDR")
            raise AssertionError("unreachable")
        try:
            return await self.runner.run(request.workload, list(request.models) or self.default_models)
        except SuiteMissing as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
            raise
        except SuiteError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise

    async def _rollout(self, context: grpc.aio.ServicerContext, work: Callable[[RolloutController], Awaitable[T]]) -> T:
        """One rollout RPC: a refused request gets its own code and the field; the ledger or the
        event bus away is UNAVAILABLE (nothing was published: the caller may retry)."""
        if self.rollouts is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "rollouts need TIERLIFT_LEDGER_ADDR")
            raise AssertionError("unreachable")
        try:
            return await work(self.rollouts)
        except RolloutError as exc:
            await context.abort(exc.code, str(exc))
        except grpc.aio.AioRpcError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"ledger: {exc.code().name}: {exc.details()}")
        except (nats.errors.Error, TimeoutError) as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"event bus: {exc!r}")
        raise AssertionError("unreachable")

    async def StartRollout(
        self, request: assessor_pb2.RolloutSpec, context: grpc.aio.ServicerContext
    ) -> events_pb2.RolloutState:
        return await self._rollout(context, lambda controller: controller.start(request, _actor()))

    async def ChangeRollout(
        self, request: assessor_pb2.RolloutChange, context: grpc.aio.ServicerContext
    ) -> events_pb2.RolloutState:
        return await self._rollout(context, lambda controller: controller.change(request, _actor()))

    async def GetRollout(
        self, request: assessor_pb2.RolloutQuery, context: grpc.aio.ServicerContext
    ) -> assessor_pb2.RolloutReport:
        return await self._rollout(context, lambda controller: controller.report(request))

    async def ListRollouts(
        self, request: assessor_pb2.RolloutListQuery, context: grpc.aio.ServicerContext
    ) -> assessor_pb2.RolloutList:
        async def listed(controller: RolloutController) -> assessor_pb2.RolloutList:
            return controller.listed(request)

        return await self._rollout(context, listed)

"""The Assessor RPCs (admins): run a workload's golden set now (`tierlift suite run`), and start,
change and report rollouts (`tierlift rollout ...`)."""

from __future__ import annotations

import grpc

from tierlift.assessor._rollouts import RolloutController, RolloutError
from tierlift.assessor._suite import SuiteError, SuiteMissing, SuiteRunner
from tierlift.core.identity import caller
from tierlift.v1 import assessor_pb2, assessor_pb2_grpc, events_pb2


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

    async def _controller(self, context: grpc.aio.ServicerContext) -> RolloutController:
        if self.rollouts is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "rollouts need TIERLIFT_LEDGER_ADDR")
            raise AssertionError("unreachable")
        return self.rollouts

    async def StartRollout(
        self, request: assessor_pb2.RolloutSpec, context: grpc.aio.ServicerContext
    ) -> events_pb2.RolloutState:
        controller = await self._controller(context)
        try:
            return await controller.start(request, _actor())
        except RolloutError as exc:
            await context.abort(exc.code, str(exc))
            raise

    async def ChangeRollout(
        self, request: assessor_pb2.RolloutChange, context: grpc.aio.ServicerContext
    ) -> events_pb2.RolloutState:
        controller = await self._controller(context)
        try:
            return await controller.change(request, _actor())
        except RolloutError as exc:
            await context.abort(exc.code, str(exc))
            raise

    async def GetRollout(
        self, request: assessor_pb2.RolloutQuery, context: grpc.aio.ServicerContext
    ) -> assessor_pb2.RolloutReport:
        controller = await self._controller(context)
        try:
            return await controller.report(request)
        except RolloutError as exc:
            await context.abort(exc.code, str(exc))
            raise
        except grpc.aio.AioRpcError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"ledger: {exc.code().name}: {exc.details()}")
            raise

"""Assessor.RunSuite: run a workload's golden set now (admins; `tierlift suite run`)."""

from __future__ import annotations

import grpc

from tierlift.assessor._suite import SuiteError, SuiteMissing, SuiteRunner
from tierlift.v1 import assessor_pb2, assessor_pb2_grpc


class AssessorServicer(assessor_pb2_grpc.AssessorServicer):
    def __init__(self, runner: SuiteRunner, default_models: list[str]) -> None:
        self.runner, self.default_models = runner, default_models

    async def RunSuite(
        self, request: assessor_pb2.SuiteRequest, context: grpc.aio.ServicerContext
    ) -> assessor_pb2.SuiteReport:
        try:
            return await self.runner.run(request.workload, list(request.models) or self.default_models)
        except SuiteMissing as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
            raise
        except SuiteError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise

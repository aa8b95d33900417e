"""Classifier service entry point: `python -m tierlift.classifier.main`."""

from __future__ import annotations

import sys

from tierlift.classifier._servicer import ClassifierServicer
from tierlift.core.config import ServiceSettings, load_settings
from tierlift.core.entry import run_service
from tierlift.core.grpc_server import GrpcServer
from tierlift.core.identity import routers_only
from tierlift.core.logging import configure_logging
from tierlift.core.telemetry import configure_telemetry
from tierlift.v1 import classifier_pb2, classifier_pb2_grpc


async def run() -> None:
    # spaCy's thinc imports torch whenever it is installed, as it is with the `minilm` extra (the
    # assessor's MiniLM, the distillation; the image has it). The classifier computes nothing with
    # it, and it would hold ~250 MB more in every replica: None here makes `import torch` fail.
    sys.modules.setdefault("torch", None)  # type: ignore[arg-type]
    settings = load_settings(ServiceSettings)
    configure_logging("classifier", settings.log_level)
    telemetry = configure_telemetry("classifier", settings.otlp_endpoint, settings.metrics_listen)

    server = GrpcServer.for_settings(
        "classifier", settings, routers_only(settings.trusted_router_hashes(), settings.tls_identities)
    )
    classifier_pb2_grpc.add_ClassifierServicer_to_server(ClassifierServicer(), server.server)
    server.add_service(classifier_pb2.DESCRIPTOR.services_by_name["Classifier"].full_name)

    await server.start()
    server.stop_on_signals()
    await server.serve_until_stopped(cleanups=[telemetry.shutdown])


if __name__ == "__main__":
    # asyncio's loop: under uvloop, new prompts (inference on a worker thread) measured 8-10%
    # slower at 16 and 128 clients (`BENCH=overhead make bench`, alternating, 2026-11-27)
    run_service(run, on_uvloop=False)

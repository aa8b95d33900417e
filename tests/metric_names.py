"""Every metric family the services export to Prometheus, by name and type: `python -m
tests.metric_names` records one value on every instrument of the services' metric modules (in a
process of its own: the global meter provider can be set once) and prints the exposition text."""

from __future__ import annotations

import importlib
import subprocess
import sys
import urllib.request

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider

METRIC_MODULES = (
    "tierlift.router._metrics",
    "tierlift.adapters._metrics",
    "tierlift.ledger._metrics",
    "tierlift.ledger._ingest",
    "tierlift.ledger._budgets",
    "tierlift.assessor._metrics",
)


def exposition() -> str:
    """Run in a fresh process: /metrics with one value on every instrument."""
    from tierlift.core.telemetry import histogram_views, prometheus_reader

    reader, server, address = prometheus_reader("127.0.0.1:0")
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader], views=histogram_views()))
    try:
        for module in METRIC_MODULES:
            for value in vars(importlib.import_module(module)).values():
                if isinstance(value, type) or not type(value).__module__.startswith("opentelemetry"):
                    continue
                for method in ("add", "record", "set"):
                    if hasattr(value, method):
                        getattr(value, method)(1)
                        break
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as reply:
            return str(reply.read().decode())
    finally:
        server.shutdown()


def exported_types() -> dict[str, str]:
    """Metric name -> Prometheus type, as the `# TYPE` lines give them (counters with _total)."""
    text = subprocess.run(
        [sys.executable, "-m", "tests.metric_names"], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return {line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("# TYPE ")}


if __name__ == "__main__":
    sys.stdout.write(exposition())

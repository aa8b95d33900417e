"""Start-up refusals and graceful shutdown of the real service processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tierlift.devstack import Stack


def test_ledger_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = {**os.environ, "TIERLIFT_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    proc = subprocess.run(
        [sys.executable, "-m", "tierlift.ledger.main"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert re.search(r"is at migration none, not \d{4}", proc.stderr)
    assert "make migrate" in proc.stderr


def test_bad_setting_stops_a_service_at_start_naming_the_variable() -> None:
    env = {**os.environ, "TIERLIFT_SHUTDOWN_GRACE_S": "-1"}
    proc = subprocess.run(
        [sys.executable, "-m", "tierlift.classifier.main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "TIERLIFT_SHUTDOWN_GRACE_S" in proc.stderr


def test_every_process_drains_and_exits_zero_on_sigterm(tmp_path: Path) -> None:
    stack = Stack(tmp_path)
    stack.start()
    codes = stack.stop()
    assert codes == dict.fromkeys([*stack.services, "nats"], 0)
    if stack.topology == "microservices":
        assert set(codes) == {"gateway", "router", "adapter-llamacpp-local", "classifier", "assessor", "ledger", "nats"}

"""Result files say how they were made, including how fast the machine ran Python then; a
service's CPU in them includes the processes it started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.benchmarks.cpu_profile import _cpu_s, _own_cpu_s
from tierlift.results import provenance, write_result


def test_a_result_names_its_command_commit_and_machine(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "result.json"
    write_result(path, "make bench", {"answered_per_s": 1.5})
    written = json.loads(path.read_text())
    assert written["command"] == "make bench"
    assert written["answered_per_s"] == 1.5
    assert set(written["machine"]) == {"platform", "python", "cpus", "cpu", "python_loop_ms"}
    assert written["machine"]["python_loop_ms"] > 0
    assert set(provenance("x")) == {"command", "commit", "machine", "when"}


def test_a_service_s_cpu_includes_the_processes_it_started() -> None:
    """The ledger verifies signatures in a helper process: `BENCH=profile` counts it as the ledger's."""
    # it burns 0.5 s and the test asks for 0.3: /proc counts whole clock ticks
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass\ntime.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", busy])
    try:
        deadline = time.monotonic() + 20
        while _own_cpu_s(child.pid) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _own_cpu_s(child.pid) >= 0.3
        assert _cpu_s(os.getpid()) - _own_cpu_s(os.getpid()) >= 0.3
    finally:
        child.kill()
        child.wait()

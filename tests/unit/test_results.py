"""Result files say how they were made, including how fast the machine ran Python then."""

from __future__ import annotations

import json
from pathlib import Path

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

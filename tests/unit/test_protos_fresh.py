"""The committed generated code must be what `make protos` produces from protos/."""

import filecmp
from pathlib import Path

from tools.gen_protos import ROOT, generate


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    fresh = generate(tmp_path)
    committed = ROOT / "services" / "tierlift" / "v1"
    fresh_files = sorted(p.name for p in fresh.iterdir() if p.is_file())
    committed_files = sorted(p.name for p in committed.iterdir() if p.is_file())
    assert fresh_files == committed_files, "run `make protos`: generated files differ"
    _, mismatch, errors = filecmp.cmpfiles(fresh, committed, fresh_files, shallow=False)
    assert not mismatch and not errors, f"run `make protos`: stale generated code in {mismatch + errors}"

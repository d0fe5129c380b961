"""benchmarks/gpu_check.sh runs end to end with --smoke (tiny sizes; on CPU here) and prints its table."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_check_smoke_runs_end_to_end():
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke"], capture_output=True,
                         text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = [line for line in run.stdout.splitlines() if line.startswith("| ") and "---" not in line][1:]
    kinds = [r.split("|")[1].strip() for r in rows]
    assert kinds.count("parity") == 4 and "update" in kinds and "pre-train" in kinds and "inference" in kinds
    assert all(r.rstrip().endswith("| ok |") for r in rows), rows
    written = (ROOT / "benchmarks" / "results" / "gpu_check_smoke.md").read_text().splitlines()
    assert [line for line in written if line.startswith("| ")][1:] == rows  # the table is also written

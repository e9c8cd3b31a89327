"""`python bench/slowloris.py` runs as bench/README.md shows (here with small, bounded
counts and times): both fronts, the hostile connections, the probes, the table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def test_the_slowloris_bench_prints_its_table() -> None:
    res = subprocess.run([sys.executable, "bench/slowloris.py", "--counts", "0,6",
                          "--seconds", "1", "--ramp", "0.5", "--probers", "1",
                          "--timeout", "2"], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [line.split() for line in res.stdout.splitlines() if " | " in line]
    assert [(r[0], r[-9]) for r in rows[1:]] == [
        ("previous", "0"), ("previous", "6"), ("kms-ws", "0"), ("kms-ws", "6")], res.stdout
    assert all(int(r[-7]) > 0 for r in rows[1:])  # probes were sent in every cell
    assert "target at 6 hostile" in res.stdout

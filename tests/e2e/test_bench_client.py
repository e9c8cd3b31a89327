"""`python bench/client.py` runs as bench/README.md shows (here with tiny durations and the
KmsClient rows only): both paths measured, the table and the target line printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def test_the_client_bench_prints_its_table() -> None:
    res = subprocess.run([sys.executable, "bench/client.py", "--duration", "0.5",
                          "--warmup", "0", "--clients", "1", "--rows", "fast,zeep"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:] + res.stdout[-3000:]
    rows = [line.split("|") for line in res.stdout.splitlines() if " | " in line]
    assert [r[0].strip() for r in rows[1:]] == ["row", "KmsClient fast", "KmsClient zeep"]
    for r in rows[2:]:
        rps, _, cpu = r[1].split()[:3]
        assert int(rps) > 0 and float(cpu) > 0  # calls were made and measured
    assert "(target <= 0.5 ms)" in res.stdout
    assert "fast / KmsClient zeep at 1 client(s)" in res.stdout

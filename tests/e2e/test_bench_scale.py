"""`python bench/scale.py` runs as bench/README.md shows (here with a tiny store and few
subscribers): start-up, rotation, backup and fan-out, each row of its table printed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
KEYS = 40


def test_the_scale_bench_prints_every_row() -> None:
    res = subprocess.run([sys.executable, "bench/scale.py", "--keys", str(KEYS),
                          "--subscribers", "3,5", "--baseline-subscribers", "1",
                          "--idle-seconds", "0.5"], cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"N = {KEYS} keys" in res.stdout
    rows = [line for line in res.stdout.splitlines()[2:] if line.strip()]
    labels = [re.split(r"\s{2,}", line.strip())[0] for line in rows]
    assert labels == [
        "start-up until /readyz, s", "start-up: server tree peak RSS, MB",
        "rotation: values re-sealed per s", "rotation: GetKey p99 during, ms",
        "backup: kms-ws backup, s", "backup: kms-ws backup, s", "backup: kms-ws backup, MB/s",
        *[row.format(n) for n in (3, 5) for row in (
            "fan-out to {}: s until all notified", "fan-out to {}: server CPU ms/notification",
            "fan-out to {}: server tree peak RSS, MB")]], res.stdout
    for line, label in zip(rows, labels, strict=True):
        value, baseline = line[len(label):].split()[:2]
        assert float(value.replace(",", "")) > 0, line
        if label != "rotation: values re-sealed per s":  # the only row without a baseline
            assert float(baseline.replace(",", "")) > 0, line
    # every bulk-loaded key was a real sealed value that the rotation opened and re-sealed
    rotated = re.search(r"rotation: ([\d,]+) values", res.stderr)
    assert rotated is not None and int(rotated.group(1).replace(",", "")) > KEYS, res.stderr

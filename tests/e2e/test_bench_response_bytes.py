"""`python bench/response_bytes.py` runs as bench/README.md shows: the GetKey response's
size and its parts, for a plain and a signed request, and (--show) the response itself,
which names the server's certificate rather than carrying it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def test_the_response_bytes_bench_prints_its_table() -> None:
    res = subprocess.run([sys.executable, "bench/response_bytes.py", "--show"], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:] + res.stdout[-3000:]
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["GetKey", "response", "bytes", "Security", "Key"]
    for line, name in zip(lines[1:3], ("plain (HTTP Basic)", "signed request"), strict=True):
        assert line.startswith(name)
        total, security, key = (int(v) for v in line[len(name):].split())
        assert 0 < key < total and 0 < security < total
    shown = "\n".join(lines[3:])
    assert "GetKeyResponse" in shown and "ThumbprintSHA1" in shown
    assert "BinarySecurityToken" not in shown

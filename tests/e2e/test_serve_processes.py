"""The processes of `kms-ws serve`: the one delivery child ends with the server, even
when the server is killed while the child is still starting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..support.server import kms

pytestmark = pytest.mark.e2e
WAIT_SECONDS = 30  # bound of each wait below; they end as soon as the effect is seen


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def _running(pid: int) -> bool:
    """Alive: exists and is not a zombie (an ended process nobody has reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


PARENT = """
import os, signal, sys
from pathlib import Path
from kms_ws.config import load
from kms_ws.server import start_delivery
child = start_delivery(load(Path(sys.argv[1])))
Path(sys.argv[2]).write_text(str(child.pid))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_delivery_child_ends_with_a_server_killed_as_it_starts(tmp_path: Path) -> None:
    """What `kms-ws serve` does first: start the delivery child. Then the server is killed
    at once, while the child is still starting; the child must end too."""
    data = tmp_path / "data"
    kms("init", "--data-dir", str(data))
    with open(tmp_path / "parent.out", "wb") as out:
        parent = subprocess.run([sys.executable, "-c", PARENT, str(data),
                                 str(tmp_path / "child.pid")], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=out, timeout=WAIT_SECONDS,
                                start_new_session=True)
    assert parent.returncode == -signal.SIGKILL, (tmp_path / "parent.out").read_text()
    child = int((tmp_path / "child.pid").read_text())
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while _running(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(child), "the delivery process outlived its server"
    finally:
        if _running(child) and "deliver" in _cmdline(child):
            os.kill(child, signal.SIGKILL)  # the child this test had started

"""A password asked on the terminal while standard input is redirected: getpass asks on
the controlling terminal, so `kms-ws client add NAME < file` (or `store-key --user U
--value-stdin < key.b64`) prompts there. The CLI refused it ("no terminal") whenever
standard input was not a terminal. Run in a real pseudo-terminal: the command's
controlling terminal is the pty, its standard input a file."""

from __future__ import annotations

import os
import pty
import select
import sys
import time
from pathlib import Path

from tests.support.server import kms

PASSWORD = "typed-on-the-tty-1"
DEADLINE_S = 60.0


def _run_on_a_terminal(argv: list[str], stdin_file: Path, answers: dict[bytes, bytes]
                       ) -> tuple[int, bytes]:
    """Run argv with a pty as its controlling terminal and stdin_file as its standard
    input; type each answer when its prompt shows. (exit status, what the tty showed)"""
    pid, master = pty.fork()
    if pid == 0:  # the child: its controlling terminal is the pty
        fd = os.open(stdin_file, os.O_RDONLY)
        os.dup2(fd, 0)
        os.execv(sys.executable, [sys.executable, *argv])
    shown, pending = b"", dict(answers)
    end = time.monotonic() + DEADLINE_S  # a bound only: the loop ends with the child
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            for prompt in [p for p in pending if shown.endswith(p)]:
                os.write(master, pending.pop(prompt))
    finally:
        os.close(master)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), shown


def test_a_password_is_asked_on_the_terminal_with_stdin_redirected(tmp_path: Path) -> None:
    data = tmp_path / "data"
    kms("init", "--data-dir", str(data))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    code, shown = _run_on_a_terminal(
        ["-m", "kms_ws.cli", "client", "add", "tty-client", "--data-dir", str(data)],
        empty, {b"password: ": PASSWORD.encode() + b"\n"})
    assert code == 0, shown.decode(errors="replace")
    assert b"no terminal" not in shown
    assert PASSWORD.encode() not in shown  # not echoed
    listed = kms("client", "list", "--data-dir", str(data)).stdout
    assert "tty-client" in listed

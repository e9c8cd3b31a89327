"""The commands the documentation shows (README.md, docs/*.md, bench/README.md), as a
shell runs them.

Every fenced block names its language. ```sh and ```python blocks are run, in document
order, by one bash script per document (so a variable, a file or a background server of
one block is there for the next), unless the line before the block says why not:

    <!-- not-run: why this block cannot run on a test machine -->
    <!-- run-by: tests/path/test_x.py (a test that runs it as written) -->

A line of a block that starts `kms-ws serve` in the background (`... &`) is followed by a
wait until that server answers GET /readyz; one that starts it in the foreground is run
in the background, waited for, and stopped (SIGTERM) at once. Every server still running
when the document ends is stopped the same way, and must exit with status 0.

Run as `python -m tests.support.doc_commands ready PID LINE` / `stop PID` by that script.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3

ROOT = Path(__file__).resolve().parents[2]
RUNNABLE = ("sh", "python")
LANGUAGES = (*RUNNABLE, "json", "text", "xml")
FENCE = re.compile(r"^```(\S*)\s*$")
MARK = re.compile(r"^<!-- (not-run|run-by):\s*(.*?)\s*-->$")
READY_SECONDS = 300.0  # a block may install the package before it serves
BLOCK = "@@kms-doc-block {}@@"
DONE = "@@kms-doc-done@@"


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
            ROOT / "bench" / "README.md"]


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    mark: tuple[str, str] | None  # ("not-run", why) or ("run-by", test file)

    @property
    def runs_here(self) -> bool:
        return self.lang in RUNNABLE and self.mark is None

    def where(self) -> str:
        shown = self.doc.relative_to(ROOT) if self.doc.is_relative_to(ROOT) else self.doc
        return f"{shown}:{self.line}"


def blocks(doc: Path) -> list[Block]:
    found: list[Block] = []
    lines = doc.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        mark = MARK.match(before.strip())
        found.append(Block(doc, i + 1, opening.group(1), "\n".join(lines[i + 1:end]) + "\n",
                           (mark.group(1), mark.group(2)) if mark else None))
        i = end + 1
    return found


def marks(doc: Path) -> list[tuple[int, str]]:
    """Every mark in the document, with its line."""
    return [(n, line) for n, line in enumerate(doc.read_text().splitlines(), 1)
            if line.strip().startswith(("<!-- not-run", "<!-- run-by"))]


def _logical_lines(text: str) -> list[str]:
    out: list[str] = []
    for line in text.splitlines():
        if out and out[-1].endswith("\\"):
            out[-1] += "\n" + line
        else:
            out.append(line)
    return out


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def serves(line: str) -> bool:
    """Does this command line start `kms-ws serve`?"""
    words = _tokens(line)
    return any(a == "kms-ws" and b == "serve" for a, b in zip(words, words[1:], strict=False))


def in_background(line: str) -> bool:
    words = _tokens(line)
    return bool(words) and words[-1] == "&"


PRELUDE = r"""set -eo pipefail
__kms_doc_servers=()
__kms_doc_started() {  # PID LINE: wait until the server that LINE started answers /readyz
  __kms_doc_servers+=("$1")
  "$KMS_DOC_PYTHON" -m tests.support.doc_commands ready "$1" "$2"
}
__kms_doc_stop() {  # PID: SIGTERM the server, wait for it; it must exit with status 0
  local status=0
  "$KMS_DOC_PYTHON" -m tests.support.doc_commands stop "$1"
  wait "$1" || status=$?
  if [ "$status" != 0 ]; then
    echo "kms-doc: the server started by '$2' exited with status $status" >&2
    return 1
  fi
}
__kms_doc_end() {
  local status=$? i
  set +e
  for i in "${!__kms_doc_servers[@]}"; do
    __kms_doc_stop "${__kms_doc_servers[$i]}" "${__kms_doc_lines[$i]}" || status=1
  done
  exit "$status"
}
__kms_doc_lines=()
trap __kms_doc_end EXIT
trap 'exit 143' TERM INT HUP  # through the EXIT trap: the servers are stopped
"""


def script(doc_blocks: list[Block]) -> str:
    """One bash script running every block that runs here, in order, with markers."""
    out = [PRELUDE]
    for n, block in enumerate(b for b in doc_blocks if b.runs_here):
        out.append(f"printf '\\n{BLOCK.format(n)}\\n'; printf '{BLOCK.format(n)}\\n' >&2")
        if block.lang == "python":
            out.append('"$KMS_DOC_PYTHON" - <<\'__KMS_DOC_PYTHON__\'\n' + block.text
                       + "__KMS_DOC_PYTHON__")
            continue
        for line in _logical_lines(block.text):
            if not serves(line):
                out.append(line)
                continue
            quoted = shlex.quote(line)
            if in_background(line):
                out.append(line)
            else:  # the foreground server a reader stops with Ctrl-C
                out.append("{ " + line + "\n} &")
            out.append(f"__kms_doc_lines+=({quoted}); __kms_doc_started $! {quoted}")
            if not in_background(line):
                out.append(f"unset '__kms_doc_servers[-1]' '__kms_doc_lines[-1]'; "
                           f"__kms_doc_stop $! {quoted}")
    out.append(f"printf '\\n{DONE}\\n'")
    return "\n".join(out) + "\n"


def outputs(printed: str) -> dict[int, str]:
    """What each run block printed on one stream (the script marks both), by its index
    among the blocks that ran."""
    parts = re.split(r"^@@kms-doc-block (\d+)@@$", printed.split(DONE)[0], flags=re.M)
    return {int(parts[i]): parts[i + 1] for i in range(1, len(parts), 2)}


# -- run by the script ------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, IndexError):
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def _serve_process(pid: int) -> int | None:
    """The `kms-ws serve` process: PID itself or its nearest descendant running serve."""
    tree, todo = _children(), [pid]
    while todo:
        p = todo.pop(0)
        try:
            argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if b"serve" in argv and _alive(p):
            return p
        todo.extend(tree.get(p, []))
    return None


def _url(line: str) -> str:
    words = _tokens(line)
    at = next(i for i, (a, b) in enumerate(zip(words, words[1:], strict=False))
              if a == "kms-ws" and b == "serve")
    parser = argparse.ArgumentParser(add_help=False)
    for option in ("--data-dir", "--host", "--port", "--tls-cert"):
        parser.add_argument(option)
    ns, _ = parser.parse_known_args(words[at + 2:])
    config_file = Path(ns.data_dir or "kms-data") / "kms-ws.json"
    config = json.loads(config_file.read_text()) if config_file.exists() else {}
    tls = ns.tls_cert or config.get("tls_cert")
    host = ns.host or config.get("host") or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    port = ns.port or config.get("port") or 5985
    return f"{'https' if tls else 'http'}://{host}:{port}/readyz"


def ready(pid: int, line: str) -> int:
    url = _url(line)
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if not _alive(pid):
            print(f"kms-doc: '{line}' ended before {url} answered", file=sys.stderr)
            return 1
        try:  # a probe of the server's readiness, not a check of its certificate
            if requests.get(url, timeout=2, verify=False).status_code == 200:  # noqa: S501
                return 0
        except requests.RequestException:
            pass
        time.sleep(0.1)  # the interval between probes
    print(f"kms-doc: {url} not ready after {READY_SECONDS:.0f} s ('{line}')", file=sys.stderr)
    return 1


def stop(pid: int) -> int:
    serve = _serve_process(pid)
    if serve is not None:
        os.kill(serve, signal.SIGTERM)
    return 0


if __name__ == "__main__":
    command, pid = sys.argv[1], int(sys.argv[2])
    sys.exit(ready(pid, sys.argv[3]) if command == "ready" else stop(pid))

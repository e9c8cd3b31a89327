"""The test prerequisites are stated once (docs/testing.md, tests/support/prerequisites.py)
and a missing one fails a run in one line that names it and its install command, instead
of a traceback per test; the tests that do not need it still run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from ..support.prerequisites import PREREQUISITES

ROOT = Path(__file__).resolve().parents[2]


def test_docs_testing_lists_every_prerequisite_and_the_readme_none() -> None:
    testing = (ROOT / "docs" / "testing.md").read_text()
    table = testing[testing.index("## Prerequisites"):testing.index("\n## ", testing.index(
        "## Prerequisites") + 1)]
    for need in PREREQUISITES.values():
        assert f"`{need.install}`" in table, need.name
    assert "apt-get" not in (ROOT / "README.md").read_text()  # stated once, linked


def _path_without(tool: str, into: Path) -> str:
    """A PATH with every command of this one but `tool`."""
    into.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            if entry.name != tool and not (into / entry.name).exists():
                (into / entry.name).symlink_to(entry.path)
    return str(into)


def test_a_missing_tool_fails_the_run_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": _path_without("xmlsec1", tmp_path / "bin"), "CI": "true"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/interop/test_xmlsec1.py", "tests/unit/test_backoff.py"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out and "ERROR" not in out, out
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and failed[0].startswith("FAILED prerequisite[xmlsec1] - "), out
    said = [line for line in out.splitlines() if "xmlsec1" in line and
            not line.startswith(("FAILED", "_"))]
    assert len(said) == 1, out
    assert re.fullmatch(r"missing xmlsec1 \(xmlsec1 not on the PATH\): apt-get install "
                        r"xmlsec1; (\d+) tests need it and did not run \(docs/testing.md\)",
                        said[0]), said[0]
    summary = out.strip().splitlines()[-1]
    ran = re.search(r"1 failed, (\d+) passed, (\d+) deselected", summary)
    assert ran, summary  # the tests that do not need xmlsec1 ran and passed
    assert f"; {ran.group(2)} tests need it" in said[0]
    assert len(out.splitlines()) < 15, out


# what a test module calls -> what it then needs (tests/support/prerequisites.py)
USES = {"softhsm.module_path(": "softhsm2", "xmlsec1(": "xmlsec1",
        "openssl_open(": "openssl", '"openssl"': "openssl", '_tool("systemd-': "systemd"}


# these name tools without calling them, or mark their tests from what the documents run
DERIVED = {"test_prerequisites.py", "test_documented_commands.py"}


def test_a_module_using_a_tool_says_it_needs_it() -> None:
    """So the one-line report covers it: a module calling a tool's helper carries the
    mark (on the module or on its tests)."""
    unmarked = []
    for module in sorted((ROOT / "tests").rglob("test_*.py")):
        text = module.read_text()
        for use, need in USES.items():
            if use in text and f'needs("{need}"' not in text and \
                    f"needs('{need}'" not in text and module.name not in DERIVED:
                unmarked.append(f"{module.relative_to(ROOT)}: {use} without needs({need!r})")
    assert not unmarked, unmarked

"""Every command the documentation shows runs as written (tests/support/doc_commands.py):
each ```sh and ```python block of README.md, docs/*.md and bench/README.md, in document
order, in a fresh working directory, with real servers on the documented default port;
exit status 0, every block reached, and what the documents promise each prints. A block
that cannot run on a test machine says why in the markdown (`<!-- not-run: why -->`) or
names the test that runs it as written (`<!-- run-by: tests/... -->`): a new block without
either fails here until it runs."""

from __future__ import annotations

import ast
import base64
import fcntl
import importlib
import inspect
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kms_ws.client import KmsClient
from kms_ws.config import Config, load

from ..support.doc_commands import (
    DONE,
    LANGUAGES,
    ROOT,
    Block,
    blocks,
    documents,
    marks,
    outputs,
    script,
    serves,
)
from ..support.server import _stop_with_the_tests

DOCS = documents()
RUN_SECONDS = 900
PORT = 5985  # the port the documents' commands use (kms-ws's default)


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(ROOT)) for p in paths]


@pytest.mark.parametrize("doc", DOCS, ids=_ids(DOCS))
def test_every_block_says_what_it_is_and_every_mark_why(doc: Path) -> None:
    check_blocks(doc)


def check_blocks(doc: Path) -> None:
    """Fences name a language (a command cannot hide in an unlabelled block); marks sit
    right before a runnable block and give their reason; run-by names an existing test
    that mentions this document."""
    found = blocks(doc)
    unlabelled = [b.where() for b in found if b.lang not in LANGUAGES]
    assert not unlabelled, f"fenced blocks need a language of {LANGUAGES}: {unlabelled}"
    marked_lines = {b.line for b in found if b.mark}
    for line, text in marks(doc):
        block = next((b for b in found if b.line > line), None)
        assert block is not None and block.line in marked_lines and block.lang in \
            ("sh", "python"), f"{doc.name}:{line}: a mark must come right before a sh or " \
            "python block"
        kind, reason = block.mark or ("", "")
        assert len(reason.split()) >= 3, f"{doc.name}:{line}: say why: {text}"
        if kind == "run-by":
            test = ROOT / reason.split()[0]
            assert test.is_file(), f"{doc.name}:{line}: no such test {test}"
            named = str(doc.relative_to(ROOT)) if doc.is_relative_to(ROOT) else doc.name
            assert named in test.read_text(), f"{test.name} does not name {named}"


def test_the_readme_keeps_its_two_commands_and_stays_short() -> None:
    readme = (ROOT / "README.md").read_text()
    sh = [b.text.strip() for b in blocks(ROOT / "README.md") if b.lang == "sh"]
    assert sh[:2] == ['pip install . && kms-ws serve',
                      'pip install ".[test]" && python -m pytest']
    assert len(readme.splitlines()) < 150


def test_a_command_hidden_in_an_unlabelled_block_or_a_bare_mark_is_found(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("```\nkms-ws serve\n```\n\n<!-- not-run: -->\n```sh\ntrue\n```\n")
    with pytest.raises(AssertionError, match="need a language"):
        check_blocks(doc)
    doc.write_text("<!-- not-run: -->\n```sh\ntrue\n```\n")
    with pytest.raises(AssertionError, match="say why"):
        check_blocks(doc)


def test_every_configuration_shown_is_accepted_and_the_full_one_is_the_defaults(
        tmp_path: Path) -> None:
    """The ```json blocks of docs/operations.md are kms-ws.json files: kms-ws loads each
    (a renamed or dropped setting fails here), and the one listing every setting shows
    the defaults."""
    shown = [b for b in blocks(ROOT / "docs" / "operations.md") if b.lang == "json"]
    assert len(shown) >= 5
    for n, block in enumerate(shown):
        data_dir = tmp_path / str(n)
        data_dir.mkdir()
        (data_dir / "kms-ws.json").write_text(block.text)
        loaded = load(data_dir)  # raises ConfigError naming the setting
        if block.text.startswith('{"host"'):
            assert loaded.master_key == {"provider": "file"}  # the default provider, named
            assert replace(loaded, master_key={}) == Config(data_dir=data_dir)


def api_problems(code: str) -> list[str]:
    """What a python block calls that the package does not have: names imported from
    kms_ws, methods of `kms`/`admin` (KmsClient in every document), and keyword
    arguments the callee does not take. (Fragments that do not run are checked too.)"""
    tree = ast.parse("def _fragment():\n" + textwrap.indent(code, "    "))  # (yield from)
    names: dict[str, Any] = {}
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kms_ws"):
            module = importlib.import_module(str(node.module))
            for alias in node.names:
                if hasattr(module, alias.name):
                    names[alias.asname or alias.name] = getattr(module, alias.name)
                else:
                    problems.append(f"{node.module} has no {alias.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f, owner, attr = node.func, None, ""
        if isinstance(f, ast.Name) and f.id in names:
            target = names[f.id]
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and \
                f.value.id in ("kms", "admin"):
            owner, attr = KmsClient, f.attr
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Call) and \
                isinstance(f.value.func, ast.Name) and f.value.func.id in names:
            owner, attr = names[f.value.func.id], f.attr
        else:
            continue
        if owner is not None:
            if not hasattr(owner, attr):
                problems.append(f"{owner.__name__} has no {attr}")
                continue
            target = getattr(owner, attr)
        params = inspect.signature(target).parameters
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            problems += [f"{getattr(target, '__qualname__', target)} takes no {k.arg}="
                         for k in node.keywords if k.arg and k.arg not in params]
    return problems


PYTHON = [b for d in DOCS for b in blocks(d) if b.lang == "python"]


@pytest.mark.parametrize("block", PYTHON, ids=[b.where() for b in PYTHON])
def test_python_blocks_call_what_the_package_has(block: Block) -> None:
    assert api_problems(block.text) == []


def test_a_python_block_calling_what_is_gone_is_found() -> None:
    assert api_problems("from kms_ws.client import KmsClient, Gone\n"
                        "with KmsClient(url, 'a', 'b', colour=1) as kms:\n"
                        "    kms.get_key(key_id, nonsense=1)\n    kms.fly()\n") == [
        "kms_ws.client has no Gone", "KmsClient takes no colour=",
        "KmsClient.get_key takes no nonsense=", "KmsClient has no fly"]


# -- running them -----------------------------------------------------------------------

@contextmanager
def _the_port() -> Iterator[None]:
    """The documents' servers listen on 5985: one run of them at a time on this machine,
    and a clear line when something else holds the port."""
    with open(Path(tempfile.gettempdir()) / "kms-ws-documented-commands.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds
            try:
                s.bind(("127.0.0.1", PORT))
            except OSError as e:
                pytest.fail(f"port {PORT} on 127.0.0.1 is taken ({e.strerror}): the "
                            "documented commands serve there", pytrace=False)
        yield


def _shims(bin_dir: Path) -> None:
    """`python`, `python3` and `kms-ws` as a reader has them: this interpreter."""
    bin_dir.mkdir()  # (scripts, not symlinks: a venv's python finds its venv by its path)
    for name, run in (("python", ""), ("python3", ""), ("kms-ws", " -m kms_ws.cli")):
        (bin_dir / name).write_text(f'#!/bin/sh\nexec "{sys.executable}"{run} "$@"\n')
        (bin_dir / name).chmod(0o755)


def _checkout(into: Path) -> Path:
    """A copy of the checkout (README's commands run from one: `pip install .`)."""
    skip = shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", "build", "dist",
                                  "node_modules", ".*_cache", ".benchmarks", ".venv*", "kms-data")
    return Path(shutil.copytree(ROOT, into / "kms-ws", ignore=skip))


Printed = dict[int, tuple[str, str]]  # block index -> (stdout, stderr)


def _venv(at: Path) -> Path:
    """A virtual environment for the README's `pip install .`: it sees this interpreter's
    packages (the dependencies are there: nothing to download), even when this
    interpreter is itself a virtual environment's, as CI's Python 3.13 is."""
    subprocess.run([sys.executable, "-m", "venv", str(at)], check=True, timeout=120)
    site = subprocess.run([at / "bin" / "python", "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"], check=True,
                          capture_output=True, text=True, timeout=60).stdout.strip()
    ours = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    Path(site, "kms_ws_tests_parent.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in ours))
    return at


def run_document(doc: Path, tmp_path: Path) -> tuple[list[Block], Printed]:
    found = blocks(doc)
    runs = [b for b in found if b.runs_here]
    bin_dir = tmp_path / "bin"
    _shims(bin_dir)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "KMS_DOC_PYTHON": sys.executable, "PYTHONPATH": str(ROOT),
           "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    if doc.name == "README.md" and doc.parent == ROOT:
        cwd = _checkout(tmp_path)
        venv = _venv(tmp_path / "venv")
        path = f"{venv / 'bin'}{os.pathsep}{path}"
        env["PIP_NO_BUILD_ISOLATION"] = "0"  # build with the setuptools the tests have
    else:
        cwd = tmp_path / "work"
        cwd.mkdir()
    env["PATH"] = path
    text = script(found)
    (tmp_path / "doc.sh").write_text(text)
    serving = any(serves(line) for b in runs for line in b.text.splitlines())
    with _the_port() if serving else nullcontext():
        # its own process group, SIGTERMed if this process dies: no server outlives the test
        bash = subprocess.Popen(["bash", str(tmp_path / "doc.sh")], cwd=cwd, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=_stop_with_the_tests)
        try:
            stdout, stderr = bash.communicate(timeout=RUN_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(bash.pid, signal.SIGTERM)  # the script's EXIT trap stops its servers
            stdout, stderr = bash.communicate(timeout=60)
    out, err = outputs(stdout), outputs(stderr)
    failed = runs[max(out, default=0)].where() if runs else "-"
    assert bash.returncode == 0, f"{failed}: exit {bash.returncode}\n{stderr[-6000:]}"
    assert DONE in stdout and sorted(out) == list(range(len(runs))), (sorted(out), runs)
    return runs, {n: (out[n], err.get(n, "")) for n in out}


def _json_docs(text: str) -> list[dict]:
    """The JSON documents a block printed, one after another."""
    decoder, found, i = json.JSONDecoder(), [], 0
    while (i := text.find("{", i)) != -1:
        doc, i = decoder.raw_decode(text, i)
        found.append(doc)
    return found


def _base64(line: str) -> bytes | None:
    """The bytes of a line that is base64 and nothing else (what `random` prints)."""
    try:
        return base64.b64decode(line, validate=True) if line.strip() else None
    except ValueError:
        return None


def _printed(runs: list[Block], printed: Printed, first_line: str, stream: int = 0) -> str:
    """What the block starting with `first_line` printed (0: stdout, 1: stderr)."""
    at = next(n for n, b in enumerate(runs) if b.text.startswith(first_line))
    return printed[at][stream]


def _readme(runs: list[Block], printed: Printed) -> None:
    """First steps: the key made, the same key back by its data set with its value, and
    32 random bytes (base64)."""
    out = _printed(runs, printed, "printf 'a-long-password")
    created, fetched = _json_docs(out)
    assert created["friendly_name"] == "tape-0001" and "value_b64" not in created
    assert fetched["key_id"] == created["key_id"]
    assert fetched["datasets"] == [["volume", "A00001"]]
    assert len(base64.b64decode(fetched["value_b64"], validate=True)) == 32
    assert len(base64.b64decode(out.strip().splitlines()[-1], validate=True)) == 32


def _cli(runs: list[Block], printed: Printed) -> None:
    """Administering online: the key of the template, compromised; bob's rotated
    password works (his 16 random bytes); his PEP proves itself with an HMAC secret."""
    out = _printed(runs, printed, "printf 'a-long-password")
    docs = _json_docs(out)
    template = next(d for d in docs if "TemplateId" in d and "KeyId" not in d)
    key = next(d for d in docs if "KeyId" in d)
    assert key["State"] == "Compromised" and key["TemplateId"] == template["TemplateId"]
    policy = [d for d in docs if d.get("Name") == "seven-years"][-1]
    assert policy["State"] == "Enforcing"
    assert 16 in {len(b) for b in map(_base64, out.splitlines()) if b is not None}
    pep = docs[-1]
    assert pep["Name"] == "drive-7" and pep["AuthenticationPolicy"] == "SymmetricKey"


def _operations(runs: list[Block], printed: Printed) -> None:
    """Operating kms-ws: what each step says it does."""
    assert "data directory kms-data ready" in _printed(runs, printed, "kms-ws --version")
    tls = _printed(runs, printed, "openssl req -x509")
    assert len(base64.b64decode(tls.strip().splitlines()[-1], validate=True)) == 16
    probes = _printed(runs, printed, "kms-ws serve --data-dir kms-data &\ncurl")
    assert probes.split() == ["ok", "ready"]
    logged = _printed(runs, printed, "kms-ws serve --data-dir kms-data --log-level", 1)
    logs = [json.loads(line) for line in logged.splitlines() if line.strip()]
    assert {"time", "pid", "level", "logger", "message"} <= set(logs[0])
    assert any(r["level"] == "DEBUG" and "GET /readyz" in r["message"] for r in logs)
    assert logs[-1]["message"] == "kms-ws stopped"
    assert "wrapped (passphrase-" in _printed(runs, printed, "(umask 077")
    assert "wrapped (escrow-rsa-oaep" in _printed(runs, printed, "# the escrow officer")
    assert "NOT included" in _printed(runs, printed, "kms-ws backup --data-dir kms-data kms-")
    checked = _printed(runs, printed, "kms-ws backup verify")
    assert checked.count(" verified\n") == 3 and "audit chain intact" in checked
    restored = _printed(runs, printed, "kms-ws restore --data-dir kms-restored --pass")
    assert "into kms-restored" in restored and "audit chain intact: records" in restored
    hsm = _printed(runs, printed, "mkdir -m 700 tokens")
    assert "(pkcs11 provider)" in hsm and '"friendly_name": "hsm-sealed"' in hsm


PROMISES: dict[str, Callable[[list[Block], Printed], None]] = {
    "README.md": _readme,
    "docs/cli.md": _cli,
    "docs/operations.md": _operations,
}

# the commands whose tools a test machine may lack (tests/support/prerequisites.py)
TOOLS = {"openssl": "openssl", "softhsm2-util": "softhsm2", "xmlsec1": "xmlsec1",
         "pg_dump": "postgresql", "pg_restore": "postgresql", "pip": "venv", "curl": "curl"}


def _needs(doc: Path) -> list[str]:
    words = {w for b in blocks(doc) if b.runs_here for w in b.text.replace("(", " ").split()}
    return sorted({need for tool, need in TOOLS.items() if tool in words})


TO_RUN = [pytest.param(d, marks=pytest.mark.needs(*_needs(d)), id=str(d.relative_to(ROOT)))
          for d in DOCS if any(b.runs_here for b in blocks(d))]


@pytest.mark.parametrize("doc", TO_RUN)
def test_the_documented_commands_run_as_written(doc: Path, tmp_path: Path) -> None:
    runs, printed = run_document(doc, tmp_path)
    # every block the document shows as runnable ran here, each to its end, in order
    assert runs == [b for b in blocks(doc) if b.runs_here] and runs
    assert sorted(printed) == list(range(len(runs))), (sorted(printed), len(runs))
    promise = PROMISES.get(str(doc.relative_to(ROOT)))
    if promise:
        promise(runs, printed)


def test_a_failing_command_fails_the_document_and_names_its_block(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("```sh\necho one\n```\n\n```sh\necho two\nfalse\necho not reached\n```\n\n"
                   "<!-- not-run: a block that would fail, marked -->\n```sh\nfalse\n```\n")
    with pytest.raises(AssertionError, match=re.escape(f"{doc}:5: exit 1")):
        run_document(doc, tmp_path)


def test_a_document_whose_commands_stop_early_fails(tmp_path: Path) -> None:
    """`exit 0` in a block would leave the blocks after it unrun: that fails too."""
    doc = tmp_path / "doc.md"
    doc.write_text("```sh\necho one\nexit 0\n```\n\n```python\nprint('two')\n```\n")
    with pytest.raises(AssertionError, match=r"\(\[0\],"):
        run_document(doc, tmp_path)
    doc.write_text("```sh\necho one\n```\n\n```python\nassert 1 + 1 == 2, 'math'\n"
                   "print('two')\n```\n")
    (tmp_path / "again").mkdir()
    runs, printed = run_document(doc, tmp_path / "again")
    assert [out.strip() for out, _ in printed.values()] == ["one", "two"]

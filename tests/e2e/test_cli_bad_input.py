"""Every `kms-ws` command, found by walking the argparse tree (a new command is covered
without touching this file), run as a real process with the mistakes a user makes:
missing arguments, a wrong type, an unknown flag, a data directory that is missing, a
file or holds a config file with a typo, a server that is down. Each must fail (exit
status not 0) with a clear error and never print a Python traceback; an error of the
command itself (not argparse's usage message) is one line on standard error."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from kms_ws.cli import build_parser

from ..support.server import free_port, kms

pytestmark = pytest.mark.e2e

TRACEBACK = "Traceback (most recent call last)"
# Commands that make what is missing (the data directory, the store): a missing data
# directory is no mistake for them.
MAKERS = {("init",), ("serve",), ("client", "add"), ("template", "add")}
STDIN = "password-123\nnew-client-password\n"


@dataclass(frozen=True)
class Leaf:
    path: tuple[str, ...]
    parser: argparse.ArgumentParser

    @property
    def name(self) -> str:
        return " ".join(self.path)

    def has(self, dest: str) -> bool:
        return any(a.dest == dest for a in self.parser._actions)

    @property
    def online(self) -> bool:
        return self.has("url")

    @property
    def offline(self) -> bool:
        return self.has("data_dir")

    def required(self) -> list[str]:
        """Plausible values for what the command requires (so that the run gets past
        argparse and reaches the command's own code)."""
        out: list[str] = []
        for a in self.parser._actions:
            if a.option_strings or a.dest == "help" or a.nargs in ("?", "*"):
                continue
            out.append(_value(a))
        for group in self.parser._mutually_exclusive_groups:
            if group.required:
                a = group._group_actions[0]
                out += [a.option_strings[0]] + ([] if a.nargs == 0 else [_value(a)])
        for a in self.parser._actions:
            if a.option_strings and a.required:
                out += [a.option_strings[0], _value(a)]
        return out

    def int_option(self) -> str | None:
        return next((a.option_strings[0] for a in self.parser._actions
                     if a.option_strings and a.type is int), None)

    def needs_something(self) -> bool:
        return bool(self.required())


def _value(a: argparse.Action) -> str:
    if a.choices:
        return str(next(iter(a.choices)))
    if a.type is int:
        return "16"
    return "00" * 32  # also a valid hex key, id-like and name-like enough


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[Leaf]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield Leaf(path, parser)
        return
    for name, sub in subs[0].choices.items():
        yield from _leaves(sub, (*path, name))


LEAVES = list(_leaves(build_parser()))


@dataclass
class Run:
    leaf: Leaf
    case: str
    argv: list[str]
    result: subprocess.CompletedProcess[str] | None = None

    def problems(self, one_line: bool) -> list[str]:
        r = self.result
        assert r is not None
        out = []
        if TRACEBACK in r.stdout + r.stderr:
            out.append("traceback")
        if r.returncode == 0:
            out.append("exit status 0")
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        if not lines:
            out.append("nothing on stderr")
        elif one_line and r.returncode != 2 and len(lines) != 1:
            out.append(f"{len(lines)} lines on stderr")
        return [f"{self.leaf.name} [{self.case}] {' '.join(self.argv)}: {p}\n"
                f"    stderr: {r.stderr.strip()[-600:]}" for p in out]


def _run_all(runs: Sequence[Run], one_line: bool = True) -> None:
    def go(run: Run) -> Run:
        run.result = kms(*run.argv, stdin=STDIN, check=False)
        return run
    with ThreadPoolExecutor(max_workers=3) as pool:
        done = list(pool.map(go, runs))
    failures = [p for run in done for p in run.problems(one_line)]
    assert not failures, f"{len(failures)} of {len(done)} runs failed:\n" + "\n".join(failures)


def _complete(leaf: Leaf) -> list[str]:
    """What some commands check before they connect, given, so that they connect."""
    if leaf.has("to_realm"):  # associate/disassociate: exactly one target
        return ["--realm", "realm://example.com/r"]
    if leaf.has("client_password_stdin"):
        return ["--client-password-stdin"]
    if leaf.path == ("client", "edit"):  # something to change
        return ["--state", "Active"]
    return []


@pytest.fixture(scope="module")
def signing_cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real server-signing.pem (from `kms-ws init`), to pin a server that is down."""
    d = tmp_path_factory.mktemp("pin") / "data"
    kms("init", "--data-dir", str(d))
    return d / "server-signing.pem"


def test_the_walk_finds_every_command() -> None:
    names = {leaf.name for leaf in LEAVES}
    assert {"init", "serve", "client add", "client unlock", "get-key", "admin pep add",
            "admin key add", "admin client edit", "audit verify", "wsdl"} <= names
    assert len(LEAVES) > 100


def test_argparse_mistakes_on_every_command(tmp_path: Path) -> None:
    """Each command: without what it requires, with a word where a number goes, with a
    flag it does not know. argparse answers (status 2, its usage line and the error)."""
    runs = []
    for leaf in LEAVES:
        if leaf.needs_something():
            runs.append(Run(leaf, "missing arguments", [*leaf.path]))
        opt = leaf.int_option()
        if opt:
            runs.append(Run(leaf, "wrong type", [*leaf.path, *leaf.required(), opt, "many"]))
        runs.append(Run(leaf, "unknown flag", [*leaf.path, *leaf.required(), "--no-such-flag"]))
    _run_all(runs)
    assert all(r.result is not None and r.result.returncode == 2 for r in runs)


def test_every_online_command_with_the_server_down(signing_cert: Path) -> None:
    """The server's certificate pinned (so no fetch comes first) and nothing listening:
    one line saying the server cannot be reached, never requests' ConnectionError."""
    url = f"http://127.0.0.1:{free_port()}/wsman"
    runs = [Run(leaf, "server down", [*leaf.path, *leaf.required(), *_complete(leaf), "--url",
                                      url, "--server-cert", str(signing_cert), "--user",
                                      "admin", "--password-stdin"])
            for leaf in LEAVES if leaf.online]
    assert len(runs) > 100
    _run_all(runs)
    reached = [r for r in runs if r.result and "cannot be reached" in r.result.stderr]
    # a few refuse their input before connecting (e.g. admin bindings without a selector)
    assert len(reached) > len(runs) * 0.9, [r.leaf.name for r in runs if r not in reached]


CONNECTION = {"url", "user", "ca", "signing_key", "signing_cert", "key_name", "server_cert"}


def test_every_free_text_option_with_garbage(signing_cert: Path) -> None:
    """Each online command with every option that takes text (not a number, not a
    choice, not a connection setting) given a word that is no time, no id, no pair, no
    hex: what the command converts itself (a time, NAME=VALUE, hex) must be refused in one
    line, never a traceback. The server is down, so nothing reaches a store."""
    url = f"http://127.0.0.1:{free_port()}/wsman"
    runs = []
    for leaf in LEAVES:
        if not leaf.online:
            continue
        garbage: list[str] = []
        for a in leaf.parser._actions:
            if (not a.option_strings or a.nargs == 0 or a.choices or a.type is int
                    or a.dest in CONNECTION or a.dest == "help"):
                continue
            garbage += [a.option_strings[0], "garbage"]
        if garbage:
            runs.append(Run(leaf, "garbage", [*leaf.path, *leaf.required(), *_complete(leaf),
                                              *garbage, "--url", url, "--server-cert",
                                              str(signing_cert), "--user", "admin",
                                              "--password-stdin"]))
    assert len(runs) > 50
    _run_all(runs)


def test_every_offline_command_with_a_bad_data_directory(tmp_path: Path) -> None:
    """A config file with a typo (named with the closest known key), bad JSON, a data
    directory that is a file, and — for the commands that do not make one — a data
    directory that does not exist."""
    typo = tmp_path / "typo"
    typo.mkdir()
    (typo / "kms-ws.json").write_text(json.dumps({"prot": 5985}))
    broken = tmp_path / "broken"
    broken.mkdir()
    bad_json = '{"port": 5985,\n}'
    (broken / "kms-ws.json").write_text(bad_json)
    try:  # where this Python's json places the error (3.13 names the trailing comma)
        json.loads(bad_json)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    runs = []
    for leaf in LEAVES:
        if not leaf.offline:
            continue
        for case, d in (("config typo", typo), ("bad JSON", broken), ("a file", a_file)):
            runs.append(Run(leaf, case, [*leaf.path, *leaf.required(), *_complete(leaf),
                                         "--data-dir", str(d)]))
        if leaf.path not in MAKERS:
            runs.append(Run(leaf, "no data directory", [*leaf.path, *leaf.required(),
                                                        *_complete(leaf), "--data-dir",
                                                        str(tmp_path / "none")]))
    _run_all(runs)
    for run in runs:
        assert run.result is not None
        if run.leaf.path == ("restore",) and run.case in ("config typo", "bad JSON"):
            # restore reads no configuration there: it refuses any directory holding data
            assert "is not empty: restore never writes into a data directory" in \
                run.result.stderr, run.result.stderr
            continue
        if run.case == "config typo":
            assert "kms-ws.json: unknown settings: prot (did you mean port?)" in \
                run.result.stderr, run.result.stderr
        if run.case == "bad JSON":
            assert "not valid JSON" in run.result.stderr and where in \
                run.result.stderr, run.result.stderr
    assert not (tmp_path / "none").exists()  # nothing made where nothing was


def test_wsdl_into_a_missing_directory(tmp_path: Path) -> None:
    r = kms("wsdl", "-o", str(tmp_path / "no" / "such" / "kms.wsdl"), check=False)
    assert r.returncode == 1 and TRACEBACK not in r.stderr
    assert r.stderr.startswith("kms-ws: ") and len(r.stderr.splitlines()) == 1


def test_serve_on_a_taken_port_says_so_before_serving(tmp_path: Path) -> None:
    """One line naming the port; no 'serving' line first, no gunicorn retries."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = kms("serve", "--data-dir", str(tmp_path / "d"), "--port", str(port), check=False)
    assert r.returncode == 1 and TRACEBACK not in r.stderr
    assert r.stderr.strip() == (f"kms-ws: cannot listen on 127.0.0.1:{port}: Address already "
                                'in use: another process listens there (choose a port with '
                                '--port or "port" in kms-ws.json)')
    assert "serving" not in r.stdout + r.stderr


@pytest.mark.parametrize(("doc", "message"), [
    ({"port": "5985"}, 'port is a whole number, not "5985"'),
    ({"security": {"allow_basic_over_http": "yes"}},
     'security.allow_basic_over_http is true/false, not "yes"'),
    ({"security": {"alow_basic_over_http": True}},
     "unknown settings: security.alow_basic_over_http (did you mean "
     "security.allow_basic_over_http?); known security settings: allow_basic_over_http, "),
    ({"security": 5}, "security is an object, not 5"),
    ({"notify_concurrency": 0}, "notify_concurrency is a whole number from 1 to 256, not 0"),
    ({"notify_concurrency": 2.5}, "notify_concurrency is a whole number, not 2.5"),
])
def test_config_values_of_the_wrong_type_are_named(tmp_path: Path, doc: dict,
                                                   message: str) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "kms-ws.json").write_text(json.dumps(doc))
    r = kms("init", "--data-dir", str(d), check=False)
    assert r.returncode == 1 and message in r.stderr and len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith(f"kms-ws: {d / 'kms-ws.json'}: ")
    assert not (d / "kms.db").exists()


"""What the tests need beyond the Python packages (docs/testing.md lists the same, which a
test checks). A test says what it needs with `@pytest.mark.needs("xmlsec1")`; tests on
the `postgres` fixture or a "postgresql" parameter need PostgreSQL without saying so.
When something a collected test needs is missing, tests/conftest.py runs none of the tests
that need it and fails the run with one line per missing prerequisite: what is missing,
how to install it, and how many tests it kept from running. Never a skip."""

from __future__ import annotations

import glob
import importlib.util
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .postgres import PostgresMissing, server_bindir
from .softhsm import MODULE_PATHS

ROOT = Path(__file__).resolve().parents[2]


def _commands(*names: str) -> Callable[[], str | None]:
    def check() -> str | None:
        missing = [n for n in names if shutil.which(n) is None]
        return f"{', '.join(missing)} not on the PATH" if missing else None
    return check


def _all(*checks: Callable[[], str | None]) -> Callable[[], str | None]:
    def check() -> str | None:
        return next((found for c in checks if (found := c()) is not None), None)
    return check


def _files(*patterns: str) -> Callable[[], str | None]:
    def check() -> str | None:
        missing = [p for p in patterns if not glob.glob(p)]
        return f"no {', '.join(missing)}" if missing else None
    return check


def _any_file(*paths: str) -> Callable[[], str | None]:
    def check() -> str | None:
        return None if any(Path(p).exists() for p in paths) else f"no {' or '.join(paths)}"
    return check


def _postgresql() -> str | None:
    try:
        bindir = server_bindir()
    except PostgresMissing:
        return "initdb and postgres not found (PATH, pg_config, /usr/lib/postgresql, " \
               "$KMS_WS_PG_BINDIR)"
    if not (bindir / "pg_dump").is_file() and shutil.which("pg_dump") is None:
        return "pg_dump not found"
    return None


def _venv() -> str | None:
    return None if importlib.util.find_spec("ensurepip") else \
        "this Python has no ensurepip: `python -m venv` makes no pip"


def _php_soap() -> str | None:
    if shutil.which("php") is None:
        return "php not on the PATH"
    done = subprocess.run(["php", "-r", 'exit(class_exists("SoapClient") ? 0 : 1);'],
                          capture_output=True, timeout=60)
    return None if done.returncode == 0 else "PHP has no SoapClient (the soap extension)"


def _node_soap() -> str | None:
    if shutil.which("node") is None:
        return "node not on the PATH"
    if not (ROOT / "tests" / "interop" / "node" / "node_modules" / "soap").is_dir():
        return "tests/interop/node/node_modules/soap is not installed"
    return None


@dataclass(frozen=True)
class Prerequisite:
    name: str  # as in @pytest.mark.needs(name)
    what: str
    install: str  # on Debian; .ci/run does the same
    check: Callable[[], str | None]  # None: present; else what is missing

    def missing(self) -> str | None:
        return self.check()


PREREQUISITES = {p.name: p for p in (
    Prerequisite("postgresql", "PostgreSQL server binaries (initdb, postgres, pg_dump)",
                 "apt-get install postgresql", _postgresql),
    Prerequisite("softhsm2", "SoftHSM2 (softhsm2-util and its PKCS#11 module)",
                 "apt-get install softhsm2",
                 _all(_commands("softhsm2-util"), _any_file(*MODULE_PATHS))),
    Prerequisite("venv", "Python's venv with pip (ensurepip)", "apt-get install python3-venv",
                 _venv),
    Prerequisite("xmlsec1", "xmlsec1", "apt-get install xmlsec1", _commands("xmlsec1")),
    Prerequisite("openssl", "OpenSSL's command line", "apt-get install openssl",
                 _commands("openssl")),
    Prerequisite("curl", "curl", "apt-get install curl", _commands("curl")),
    Prerequisite("systemd", "systemd-analyze and systemd-sysusers",
                 "apt-get install systemd", _commands("systemd-analyze", "systemd-sysusers")),
    Prerequisite("jaxws", "JAX-WS RI (wsimport) and a JDK",
                 "apt-get install default-jdk-headless jaxws libjaxws-java",
                 _all(_commands("wsimport", "javac", "java", "keytool"),
                      _files("/usr/share/java/jaxws-rt.jar"))),
    Prerequisite("gsoap", "gSOAP (wsdl2h, soapcpp2) with g++ and OpenSSL's headers",
                 "apt-get install gsoap libgsoap-dev g++ libssl-dev",
                 _all(_commands("wsdl2h", "soapcpp2", "g++"),
                      _files("/usr/share/gsoap/import", "/usr/include/openssl/ssl.h"))),
    Prerequisite("php-soap", "PHP with its SoapClient", "apt-get install php-cli php-soap",
                 _php_soap),
    Prerequisite("node-soap", "node and node-soap (the committed lockfile)",
                 "apt-get install nodejs npm && npm ci --prefix tests/interop/node",
                 _node_soap),
)}

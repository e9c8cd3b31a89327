"""The service files shipped for operators (docs/operations.md): the systemd unit and its
sysusers entry, checked by systemd's own tools, and the Dockerfile, parsed (no Docker
engine runs on the test machines: the image itself is not built here)."""

from __future__ import annotations

import configparser
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from kms_ws.cli import build_parser
from kms_ws.config import DEFAULT_PORT

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "kms-ws.service"
SYSUSERS = ROOT / "deploy" / "kms-ws.sysusers"
DOCKERFILE = ROOT / "Dockerfile"
OPERATIONS = ROOT / "docs" / "operations.md"
INSTALLED_AT = "/opt/kms-ws"  # the venv docs/operations.md installs kms-ws into


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:  # .ci/run installs it (Debian: systemd); never skip
        pytest.fail(f"{name} is not installed (Debian package: systemd)")
    return path


def _unit() -> configparser.RawConfigParser:
    """The unit as key -> last value (repeated keys such as SystemCallFilter= keep the
    last: the checks below only read single-valued ones)."""
    parser = configparser.RawConfigParser(strict=False, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


@pytest.mark.needs("systemd")
def test_systemd_analyze_verify_passes_on_the_shipped_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify deploy/kms-ws.service`, as documented, with kms-ws installed
    where the unit runs it: this test's kms-ws is mounted at /opt/kms-ws/bin in a private
    mount namespace (verify checks that ExecStart's program exists). Any warning fails."""
    analyze, unshare = _tool("systemd-analyze"), _tool("unshare")
    opt = tmp_path / "opt"
    (opt / "kms-ws" / "bin").mkdir(parents=True)
    (opt / "kms-ws" / "bin" / "kms-ws").symlink_to(Path(sys.executable).parent / "kms-ws")
    script = (f"mount --bind {shlex.quote(str(opt))} /opt && "
              f"{shlex.quote(analyze)} verify deploy/kms-ws.service")
    done = subprocess.run([unshare, "--mount", "--propagation", "private", "sh", "-c", script],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == "", done.stdout + done.stderr


@pytest.mark.needs("systemd")
def test_systemd_analyze_verify_reports_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt setting is reported."""
    broken = tmp_path / "kms-ws.service"
    broken.write_text(UNIT.read_text().replace("ProtectSystem=strict", "ProtectSytem=strict")
                      .replace(f"{INSTALLED_AT}/bin/kms-ws", sys.executable))
    done = subprocess.run([_tool("systemd-analyze"), "verify", str(broken)],
                          capture_output=True, text=True, timeout=120)
    assert "ProtectSytem" in done.stderr


@pytest.mark.needs("systemd")
def test_systemd_rates_the_units_exposure_low() -> None:
    """`systemd-analyze security --offline=yes deploy/kms-ws.service`, as documented:
    systemd's own score of the sandbox (0 fully confined .. 10 unprotected)."""
    done = subprocess.run([_tool("systemd-analyze"), "security", "--offline=yes",
                           "deploy/kms-ws.service"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    match = re.search(r"Overall exposure level for kms-ws\.service: (\d+\.\d+) (\w+)",
                      done.stdout)
    assert match is not None, done.stdout[-2000:]
    assert float(match.group(1)) <= 2.0 and match.group(2) == "OK", match.group(0)


def test_unit_runs_kms_ws_serve_hardened_as_its_own_user() -> None:
    service = _unit()["Service"]
    for key, value in {"User": "kms-ws", "Group": "kms-ws", "NoNewPrivileges": "yes",
                       "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                       "PrivateDevices": "yes", "StateDirectory": "kms-ws",
                       "StateDirectoryMode": "0700", "UMask": "0077",
                       "CapabilityBoundingSet": "", "Restart": "on-failure",
                       "KillMode": "mixed"}.items():
        assert service.get(key) == value, key
    program, *argv = shlex.split(service["ExecStart"])
    assert program == f"{INSTALLED_AT}/bin/kms-ws"
    args = build_parser().parse_args(argv)  # kms-ws's own parser accepts it as written
    assert args.command == "serve" and args.data_dir == "/var/lib/kms-ws"  # StateDirectory
    assert int(service["TimeoutStopSec"]) > 15 + 10  # gunicorn's grace, then the deliverer


@pytest.mark.needs("systemd")
def test_sysusers_entry_makes_the_units_user_without_a_login(tmp_path: Path) -> None:
    """What `systemd-sysusers` does with deploy/kms-ws.sysusers installed as documented,
    run on an empty root directory instead of the machine's own /etc."""
    conf = tmp_path / "etc" / "sysusers.d" / "kms-ws.conf"
    conf.parent.mkdir(parents=True)
    shutil.copyfile(SYSUSERS, conf)
    done = subprocess.run([_tool("systemd-sysusers"), "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    users = {line.split(":")[0]: line.split(":") for line in
             (tmp_path / "etc" / "passwd").read_text().splitlines()}
    name, _, uid, gid, _, home, shell = users["kms-ws"]
    assert 0 < int(uid) < 1000 and home == "/var/lib/kms-ws" and shell == "/usr/sbin/nologin"
    assert f"kms-ws:x:{gid}:" in (tmp_path / "etc" / "group").read_text()


def _final_stage() -> list[dict[str, str]]:
    """The instructions of the Dockerfile's last stage (the image that runs)."""
    structure = DockerfileParser(str(DOCKERFILE)).structure
    starts = [i for i, ins in enumerate(structure) if ins["instruction"] == "FROM"]
    return [ins for ins in structure[starts[-1]:] if ins["instruction"] != "COMMENT"]


def _last(stage: list[dict[str, str]], instruction: str) -> str | None:
    values = [ins["value"] for ins in stage if ins["instruction"] == instruction]
    return values[-1] if values else None


def test_dockerfile_runs_as_a_non_root_user_with_the_data_dir_as_a_volume() -> None:
    stage = _final_stage()
    user = _last(stage, "USER")
    assert user is not None and user.split(":")[0] not in ("root", "0"), user
    assert json.loads(_last(stage, "VOLUME") or "null") == ["/var/lib/kms-ws"]
    assert _last(stage, "EXPOSE") == str(DEFAULT_PORT)
    entrypoint = json.loads(_last(stage, "ENTRYPOINT") or "null")
    cmd = json.loads(_last(stage, "CMD") or "null")
    assert entrypoint == ["kms-ws"]
    args = build_parser().parse_args(cmd)
    assert args.command == "serve" and args.data_dir == "/var/lib/kms-ws"
    assert args.port == DEFAULT_PORT and args.host == "0.0.0.0"
    # the data directory is made private to that user, before USER switches to it
    setup = " ".join(ins["value"] for ins in stage if ins["instruction"] == "RUN")
    assert "useradd --system --uid 10001" in setup
    assert "install -d -m 0700 -o kms-ws -g kms-ws /var/lib/kms-ws" in setup
    assert user.split(":")[0] == "10001"


def test_dockerfile_healthcheck_follows_the_health_endpoint() -> None:
    """A HEALTHCHECK asks GET /healthz, which exists only once the server serves it: the
    Dockerfile must follow (this fails the day /healthz lands without a HEALTHCHECK)."""
    served = any('"/healthz"' in path.read_text() for path in (ROOT / "kms_ws").rglob("*.py"))
    healthcheck = _last(_final_stage(), "HEALTHCHECK")
    assert (healthcheck is not None) == served, healthcheck
    if healthcheck is not None:
        assert "/healthz" in healthcheck


def test_dockerignore_keeps_what_the_wheel_is_built_from() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for needed in ("setup.cfg", "pyproject.toml", "README.md", "kms_ws/cli.py",
                   "schemas/kms.xsd", "wsdl/kms.wsdl"):
        assert (ROOT / needed).exists()
        parts = needed.split("/")
        prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
        assert not any(fnmatch.fnmatch(p, pat) for p in prefixes for pat in patterns), needed


def test_operations_guide_shows_the_commands_the_tests_run() -> None:
    text = OPERATIONS.read_text()
    for command in ("systemd-analyze verify deploy/kms-ws.service",
                    "systemd-analyze security --offline=yes deploy/kms-ws.service",
                    "install -m 0644 deploy/kms-ws.sysusers /etc/sysusers.d/kms-ws.conf",
                    "docker build -t kms-ws .",
                    "-v kms-data:/var/lib/kms-ws"):
        assert command in text, command
    assert os.fspath(INSTALLED_AT) in text

"""A real SoftHSM2 token for tests: a private token directory (SOFTHSM2_CONF), tokens
initialised with softhsm2-util and found by label."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

MODULE_PATHS = ("/usr/lib/softhsm/libsofthsm2.so",
                "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
PIN, SO_PIN = "4711-pin", "9876-so-pin"


def module_path() -> str:
    for path in MODULE_PATHS:
        if Path(path).exists() and shutil.which("softhsm2-util"):
            return path
    # (tests marked needs("softhsm2") do not get here without it: tests/conftest.py)
    pytest.fail("SoftHSM2 is not installed: apt-get install softhsm2", pytrace=False)


def configure(directory: Path) -> Path:
    """Point this process and its children at a private token directory."""
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, exist_ok=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
                    "log.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    return conf


def new_token() -> str:
    label = f"kms-{uuid.uuid4().hex[:12]}"
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", label, "--pin", PIN,
                    "--so-pin", SO_PIN], check=True, capture_output=True, timeout=60)
    return label

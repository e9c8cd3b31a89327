"""The Python versions kms-ws supports (3.11, 3.12, 3.13), as the package metadata states
them to pip, and the benchmark's references (3.11 only) kept out of the way elsewhere."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from setuptools.config.setupcfg import read_configuration

ROOT = Path(__file__).resolve().parents[2]
SUPPORTED = ("3.11", "3.12", "3.13")
REFERENCES = {"spyne": "spyne echo", "pykmip": "PyKMIP Get"}  # bench extra -> getkey.py row


@pytest.fixture(scope="module")
def setup_cfg() -> dict[str, Any]:
    return read_configuration(ROOT / "setup.cfg")


@pytest.fixture(scope="module")
def getkey() -> ModuleType:
    """bench/getkey.py, imported as the script imports its siblings."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        return importlib.import_module("getkey")
    finally:
        sys.path.remove(str(ROOT / "bench"))


def test_python_requires_admits_every_supported_version(setup_cfg: dict[str, Any]) -> None:
    requires = SpecifierSet(setup_cfg["options"]["python_requires"])
    for version in SUPPORTED:
        for patch in ("0", "7", "20"):
            assert requires.contains(f"{version}.{patch}"), (version, str(requires))
    assert not requires.contains("3.10.13")  # what we never test is refused at install


def test_classifiers_name_exactly_the_supported_versions(setup_cfg: dict[str, Any]) -> None:
    prefix = "Programming Language :: Python :: 3."
    named = sorted(c.removeprefix("Programming Language :: Python :: ")
                   for c in setup_cfg["metadata"]["classifiers"] if c.startswith(prefix))
    assert named == list(SUPPORTED)
    assert "Programming Language :: Python :: 3 :: Only" in setup_cfg["metadata"]["classifiers"]


def test_no_runtime_or_test_dependency_is_limited_to_some_pythons(
        setup_cfg: dict[str, Any]) -> None:
    """What `pip install .` and `pip install ".[test]"` bring must be there on every
    supported Python: a marker that drops one on 3.13 would make the suite skip or fail."""
    options = setup_cfg["options"]
    for line in [*options["install_requires"], *options["extras_require"]["test"]]:
        requirement = Requirement(line)
        assert requirement.marker is None, line
        assert "spyne" not in requirement.name.lower()


def test_bench_references_install_only_where_they_run(setup_cfg: dict[str, Any],
                                                     getkey: ModuleType) -> None:
    """spyne 2.14 and PyKMIP 0.11 run on 3.11 only: the bench extra installs them there
    alone, and bench/getkey.py says so for their rows on the others (same cut-off)."""
    bench = {Requirement(line).name.lower(): Requirement(line)
             for line in setup_cfg["options"]["extras_require"]["bench"]}
    assert set(REFERENCES) <= bench.keys()
    for name, row in REFERENCES.items():
        marker = bench[name].marker
        assert marker is not None, f"{name} needs an environment marker"
        for version in SUPPORTED:
            python = tuple(int(part) for part in version.split("."))
            installs = marker.evaluate({"python_version": version})
            assert installs == (version == "3.11"), (name, version)
            why = getkey.reference_unavailable(row, python, lambda _module: True)
            assert (why is None) == installs, (name, version, why)
            if why is not None:
                assert f"Python {version}" in why and "3.11" in why and "--rows" in why


def test_bench_says_how_to_install_a_missing_reference(getkey: ModuleType) -> None:
    why = getkey.reference_unavailable("spyne echo", (3, 11), lambda module: module != "spyne")
    assert why is not None and "spyne 2.14 is not installed" in why
    assert "pip install -e '.[bench]'" in why

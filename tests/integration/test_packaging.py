"""`pip install .` ships the schemas and the WSDL inside the package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_carries_schemas_and_wsdl(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, timeout=300,
                   capture_output=True)
    wheel = next(tmp_path.glob("kms_ws-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("kms_ws/schemas/kms.xsd", "kms_ws/schemas/kms-messages.xsd",
                     "kms_ws/schemas/ws/all.xsd", "kms_ws/wsdl/kms.wsdl", "kms_ws/cli.py"):
        assert required in names
    for package in (ROOT / "kms_ws").rglob("*.py"):  # every module ships (no forgotten package)
        assert package.relative_to(ROOT).as_posix() in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "kms-ws = kms_ws.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()

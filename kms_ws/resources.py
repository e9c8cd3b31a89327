"""Where the schemas and WSDL are. An installed package carries them as kms_ws/schemas
and kms_ws/wsdl (setup.cfg maps the repository's schemas/ and wsdl/ there); a source
checkout or editable install uses the repository's own directories."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"kms-ws is installed without its {name}/ directory")


def schema_dir() -> Path:
    return _find("schemas")


def wsdl_dir() -> Path:
    return _find("wsdl")

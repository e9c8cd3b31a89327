"""Database URLs, without loading SQLAlchemy (the configuration and `kms-ws --help` need
them; store.engine re-exports them)."""

from __future__ import annotations

from pathlib import Path


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'kms.db'}"

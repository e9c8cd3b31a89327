"""A controllable clock for service tests (KmsService takes a clock callable)."""

from __future__ import annotations

from datetime import datetime


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 8, 0, 0)

    def __call__(self) -> datetime:
        return self.now

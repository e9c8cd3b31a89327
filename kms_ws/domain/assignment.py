"""§5.1 key-assignment policy: which key protects the data presented.

A policy is a set of name/value conditions plus a generation rule. It applies to data
when EVERY condition's name is presented with an equal value (extra presented
attributes do not matter). Among applicable policies the most specific (most
conditions) wins; two equally specific ones are an ambiguity the administrator must fix.

Generation:
  PerDataSet - one key per distinct data set (e.g. one per tape); scope DataSet.
  PerPeriod  - one key per period for the whole pool; scope Pool.
  Shared     - one key for the whole pool until it can no longer encrypt; scope Pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .durations import add_duration
from .errors import AmbiguousReference, InvalidParameter
from .model import DataSet, NameValue

GENERATIONS = ("PerDataSet", "PerPeriod", "Shared")


@dataclass(frozen=True)
class AssignmentPolicy:
    policy_id: str
    conditions: tuple[NameValue, ...]
    generation: str
    period: str | None = None
    template_id: str | None = None

    @property
    def scope(self) -> str:
        return "DataSet" if self.generation == "PerDataSet" else "Pool"


def check_policy(p: AssignmentPolicy) -> None:
    if p.generation not in GENERATIONS:
        raise InvalidParameter(f"unknown Generation {p.generation}", supported=GENERATIONS)
    if p.generation == "PerPeriod" and not p.period:
        raise InvalidParameter("a PerPeriod assignment policy needs a Period")
    names = [c.name for c in p.conditions]
    if not names or len(set(names)) != len(names):
        raise InvalidParameter("an assignment policy has conditions with distinct names")


def applies(p: AssignmentPolicy, presented: Mapping[str, str]) -> bool:
    return all(presented.get(c.name) == c.value for c in p.conditions)


def select_policy(policies: Iterable[AssignmentPolicy],
                  datasets: Sequence[DataSet]) -> AssignmentPolicy | None:
    presented = {d.name: d.value for d in datasets}
    matching = [p for p in policies if applies(p, presented)]
    if not matching:
        return None
    best = max(len(p.conditions) for p in matching)
    top = [p for p in matching if len(p.conditions) == best]
    if len(top) > 1:
        raise AmbiguousReference("several key-assignment policies apply equally: "
                                 + ", ".join(sorted(p.policy_id for p in top)))
    return top[0]


def pool_key_still_current(p: AssignmentPolicy, key_created: datetime, now: datetime) -> bool:
    """Whether the pool's newest key may still be handed out for new encryption."""
    if p.generation == "PerPeriod":
        assert p.period is not None
        return now < add_duration(key_created, p.period)
    return True

"""§5.1 key-assignment policy: which key protects the data presented.

A policy is a set of conditions plus a generation rule. A condition names a data-set
attribute and a selection rule (domain.selection: an exact value, a prefix, a glob, a
numeric or alphanumeric range, a CIDR network). A policy applies to data when EVERY
condition's attribute is presented with a value its rule selects (extra presented
attributes do not matter).

The most specific applicable policy wins: the one with more conditions; with as many,
the one whose conditions, compared from its most specific down, are more specific
(selection.specificity: exact > range/CIDR by fewer values covered > prefix/glob by
more literal characters); still equal, the oldest policy (created first, then the lower
id) — a deterministic rule, never a refusal, so a drive always gets its key.

Generation:
  PerDataSet - one key per distinct data set (e.g. one per tape); scope DataSet.
  PerPeriod  - one key per period for the whole pool; scope Pool.
  Shared     - one key for the whole pool until it can no longer encrypt; scope Pool.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from . import selection
from .durations import add_duration
from .errors import InvalidParameter
from .groups import attribute_map
from .model import DataSet

GENERATIONS = ("PerDataSet", "PerPeriod", "Shared")


@dataclass(frozen=True)
class Condition:
    name: str  # the data-set attribute (NAME)
    rule: selection.Selector

    def matches(self, presented: Mapping[str, Sequence[str]]) -> bool:
        return any(selection.matches(self.rule, v) for v in presented.get(self.name, ()))


def exact(name: str, value: str) -> Condition:
    return Condition(name, selection.Selector("Value", value))


@dataclass(frozen=True)
class AssignmentPolicy:
    policy_id: str
    conditions: tuple[Condition, ...]
    generation: str
    period: str | None = None
    template_id: str | None = None
    created_at: datetime | None = None  # breaks ties: the oldest policy wins

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
    for c in p.conditions:
        if c.rule.kind == "Pattern":
            raise InvalidParameter(f"condition {c.name}: an assignment policy selects by "
                                   "Value, Prefix, Glob, Range or Cidr")
        try:
            selection.check(c.rule)
        except InvalidParameter as exc:
            raise InvalidParameter(f"condition {c.name}: {exc.reason}",
                                   supported=exc.supported) from None


def applies(p: AssignmentPolicy, presented: Mapping[str, Sequence[str]]) -> bool:
    return all(c.matches(presented) for c in p.conditions)


def rank(p: AssignmentPolicy) -> tuple[object, ...]:
    """Sort key, most specific first (see the module's text)."""
    specific = sorted((selection.specificity(c.rule) for c in p.conditions), reverse=True)
    return (-len(p.conditions), [(-a, -b) for a, b in specific],
            p.created_at.timestamp() if p.created_at else float("inf"), p.policy_id)


def select_policy(policies: Iterable[AssignmentPolicy],
                  datasets: Sequence[DataSet]) -> AssignmentPolicy | None:
    presented = attribute_map((d.name, d.value) for d in datasets)
    matching = [p for p in policies if applies(p, presented)]
    return min(matching, key=rank) if matching else None


def pool_key_still_current(p: AssignmentPolicy, key_created: datetime, now: datetime) -> bool:
    """Whether the pool's newest key may still be handed out for new encryption."""
    if p.generation == "PerPeriod":
        assert p.period is not None
        return now < add_duration(key_created, p.period)
    return True

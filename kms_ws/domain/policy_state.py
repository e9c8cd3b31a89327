"""§5 policy states: Created -> Assigned -> Enforcing -> Disabled.

  Add                          -> Created
  Associate (with an object)   Created -> Assigned         (attached, not yet applied)
  Enforce (edit State)         Assigned -> Enforcing       (applied from now on)
  Disassociate (the last one)  Assigned | Enforcing -> Created
  Disable (edit State)         Assigned | Enforcing -> Disabled
  Delete                       Created | Disabled -> removed;
                               Assigned | Enforcing -> Disabled (kept for history,
                               associations dropped, never applied again)

Only an Enforcing policy is applied to requests. A Disabled policy cannot be
associated or re-enabled: add a new one.
"""

from __future__ import annotations

import enum

from .errors import InvalidParameter


class PolicyState(str, enum.Enum):  # noqa: UP042 - StrEnum would change str() and f"{}" of every member
    CREATED = "Created"
    ASSIGNED = "Assigned"
    ENFORCING = "Enforcing"
    DISABLED = "Disabled"


REMOVED = None


def on_associate(state: PolicyState) -> PolicyState:
    if state is PolicyState.DISABLED:
        raise InvalidParameter("a disabled policy cannot be associated")
    return PolicyState.ASSIGNED if state is PolicyState.CREATED else state


def on_disassociate(state: PolicyState, remaining: int) -> PolicyState:
    if remaining == 0 and state in (PolicyState.ASSIGNED, PolicyState.ENFORCING):
        return PolicyState.CREATED
    return state


def on_delete(state: PolicyState) -> PolicyState | None:
    """The state after Delete, or None when the policy is removed."""
    if state in (PolicyState.ASSIGNED, PolicyState.ENFORCING):
        return PolicyState.DISABLED
    return REMOVED


_EDITS = {
    (PolicyState.ASSIGNED, PolicyState.ENFORCING),
    (PolicyState.ENFORCING, PolicyState.ASSIGNED),
    (PolicyState.ASSIGNED, PolicyState.DISABLED),
    (PolicyState.ENFORCING, PolicyState.DISABLED),
}


def on_edit(state: PolicyState, wanted: PolicyState) -> PolicyState:
    if wanted is state:
        return state
    if (state, wanted) not in _EDITS:
        hint = " (associate it first)" if state is PolicyState.CREATED else ""
        raise InvalidParameter(f"a {state.value} policy cannot become {wanted.value}{hint}")
    return wanted

"""§5.5 access/distribution policy: which clients, client groups, PEPs and KM servers
may receive a key. Realms are checked as well, always; this narrows, never widens.

An empty list does not restrict its category, except that a policy must name at least
one client, client group or KM server (a policy naming nobody would lock the key away
silently). A PEP list, when present, restricts which PEPs a key may be delivered for;
a request for no PEP is then a delivery to the client itself and is allowed if the
client is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import InvalidParameter


@dataclass(frozen=True)
class AccessPolicy:
    policy_id: str
    clients: frozenset[str] = frozenset()
    client_groups: frozenset[str] = frozenset()
    peps: frozenset[str] = frozenset()
    km_servers: frozenset[str] = frozenset()


def check_policy(p: AccessPolicy) -> None:
    if not (p.clients or p.client_groups or p.km_servers):
        raise InvalidParameter("an access policy names at least one client, client group "
                               "or KM server")


def may_receive(p: AccessPolicy, client_id: str, pep_id: str | None,
                in_group: Callable[[str], bool], km_server: bool = False) -> bool:
    """`in_group(group_id)` says whether the client is a member (evaluated now).
    A KM server (§5.5) is admitted only by the KmServers list; an ordinary client only by
    Clients or ClientGroups, so neither list lets the other kind in implicitly."""
    if km_server:
        client_ok = client_id in p.km_servers
    else:
        client_ok = client_id in p.clients or any(in_group(g) for g in sorted(p.client_groups))
    if not client_ok:
        return False
    return pep_id is None or not p.peps or pep_id in p.peps

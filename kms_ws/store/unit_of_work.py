"""The store's unit of work: one transaction's connection and its repositories, one per
aggregate (service.ports.UnitOfWork). A repository is built the first time the unit of
work is asked for it."""

from __future__ import annotations

from functools import cached_property

from sqlalchemy import Connection

from .audit_log import SqlAudit
from .changes import SqlChanges
from .endpoints import SqlEndpoints
from .failures import SqlRefusals
from .generations import UnitState
from .keys import SqlKeys
from .objects import SqlObjects
from .replay import SqlReplayCache
from .sealed import SqlSealedValues
from .subscriptions import SqlSubscriptions
from .templates import SqlTemplates


class SqlUnitOfWork:
    """The repositories of one transaction (SQLite or PostgreSQL, through SQLAlchemy Core),
    sharing its connection and the store generations it read."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.state = UnitState()

    @cached_property
    def keys(self) -> SqlKeys:
        return SqlKeys(self.conn, self.state)

    @cached_property
    def endpoints(self) -> SqlEndpoints:
        return SqlEndpoints(self.conn, self.state)

    @cached_property
    def objects(self) -> SqlObjects:
        return SqlObjects(self.conn, self.state)

    @cached_property
    def templates(self) -> SqlTemplates:
        return SqlTemplates(self.conn, self.state)

    @cached_property
    def changes(self) -> SqlChanges:
        return SqlChanges(self.conn, self.state)

    @cached_property
    def audit(self) -> SqlAudit:
        return SqlAudit(self.conn, self.state)

    @cached_property
    def replay(self) -> SqlReplayCache:
        return SqlReplayCache(self.conn, self.state)

    @cached_property
    def refusals(self) -> SqlRefusals:
        return SqlRefusals(self.conn, self.state)

    @cached_property
    def subscriptions(self) -> SqlSubscriptions:
        return SqlSubscriptions(self.conn, self.state)

    @cached_property
    def sealed(self) -> SqlSealedValues:
        return SqlSealedValues(self.conn, self.state)

"""Subscriptions (WS-Eventing) and the outbox of their notifications: pending
UpdatePending deliveries and SubscriptionEnd messages waiting to be sent."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import (
    and_,
    case,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)

from ..domain.model import (
    Key,
)
from ..domain.records import Pending, Subscription, SubscriptionEnd
from . import tables as t
from .part import Part
from .updates import _subscription

CHUNK = 500  # subscriptions per statement (bound parameters stay well under the limits)


class SqlSubscriptions(Part):
    """Subscriptions and their outbox in one unit of work (service.ports.Subscriptions)."""

    def insert_subscription(self, s: Subscription, now: datetime) -> None:
        self.conn.execute(t.subscriptions.insert().values(
            id=s.subscription_id, endpoint_id=s.endpoint_id, notify_to=s.notify_to,
            mode=s.mode, update_type=s.update_type, pep_id=s.pep_id, expires_at=s.expires,
            created_at=now, origin=s.origin, end_to=s.end_to, realms=json.dumps(s.realms)))

    def get_subscription(self, subscription_id: str) -> Subscription | None:
        row = self.conn.execute(select(t.subscriptions).where(
            t.subscriptions.c.id == subscription_id)).first()
        return _subscription(row) if row else None

    def renew_subscription(self, subscription_id: str, expires: datetime) -> None:
        self.conn.execute(update(t.subscriptions).where(t.subscriptions.c.id == subscription_id)
                          .values(expires_at=expires))

    def delete_subscription(self, subscription_id: str) -> None:
        self.conn.execute(delete(t.pending_updates).where(
            t.pending_updates.c.subscription_id == subscription_id))
        self.conn.execute(delete(t.subscriptions).where(t.subscriptions.c.id == subscription_id))

    def end_subscription(self, sub: Subscription, status: str, reason: str,
                         now: datetime) -> None:
        """Remove the subscription and its pending notifications; queue a SubscriptionEnd
        to its EndTo, if it gave one, in the same transaction."""
        self.delete_subscription(sub.subscription_id)
        if sub.end_to:
            self.conn.execute(t.subscription_ends.insert().values(
                subscription_id=sub.subscription_id, end_to=sub.end_to, origin=sub.origin,
                status=status, reason=reason[:512], at=now))

    def subscriptions_of(self, endpoint_id: str | None = None,
                         pep_id: str | None = None) -> list[Subscription]:
        """Every subscription (live or not) made by an endpoint, or scoped to a PEP."""
        s = t.subscriptions.c
        cond = s.endpoint_id == endpoint_id if endpoint_id is not None else s.pep_id == pep_id
        return [_subscription(r) for r in self.conn.execute(
            select(t.subscriptions).where(cond).order_by(s.id)).all()]

    def subscription_ends(self, now: datetime | None = None,
                          limit: int = 100) -> list[SubscriptionEnd]:
        """Queued SubscriptionEnd messages, oldest first: those due at `now` (None: all)."""
        e = t.subscription_ends.c
        stmt = select(t.subscription_ends)
        if now is not None:
            stmt = stmt.where(or_(e.next_attempt_at.is_(None), e.next_attempt_at <= now))
        rows = self.conn.execute(stmt.order_by(e.id).limit(limit)).all()
        return [SubscriptionEnd(r.id, r.subscription_id, r.end_to, r.origin, r.status,
                                r.reason, r.at, r.attempts or 0) for r in rows]

    def retry_subscription_end(self, end_id: int, attempts: int, at: datetime) -> None:
        """Try the SubscriptionEnd again at `at`, its `attempts`-th attempt having failed."""
        self.conn.execute(update(t.subscription_ends).where(t.subscription_ends.c.id == end_id)
                          .values(attempts=attempts, next_attempt_at=at))

    def forget_subscription_end(self, end_id: int) -> None:
        self.conn.execute(delete(t.subscription_ends).where(t.subscription_ends.c.id == end_id))

    def subscriptions_for_key(self, key: Key, now: datetime) -> list[Subscription]:
        """Live subscriptions whose endpoint has a grant in one of the key's realms (and,
        for a PEP scope, whose PEP the key is destined for), or that the key was delivered
        to (USE_BY: the subscribing client, or the PEP of its scope). The right is checked
        by the caller."""
        s, er, u = t.subscriptions.c, t.realm_grants.c, t.key_use.c
        users = select(u.endpoint_id).where(u.key_id == key.key_id)
        rows = self.conn.execute(select(t.subscriptions).where(and_(
            s.expires_at > now, s.update_type.in_(("Keys", "AllKeys")),
            or_(and_(or_(s.pep_id.is_(None), s.pep_id == key.pep_id),
                     exists().where(and_(er.endpoint_id == s.endpoint_id,
                                         er.realm.in_(list(key.realms))))),
                s.pep_id.in_(users),
                and_(s.pep_id.is_(None), s.endpoint_id.in_(users)))))).all()
        return [_subscription(r) for r in rows]

    def subscriptions_for_object(self, types: Sequence[str], realms: Sequence[str],
                                 now: datetime) -> list[Subscription]:
        """Live subscriptions to one of `types` whose endpoint has a grant in one of the
        object's realms. The right is checked by the caller."""
        s, er = t.subscriptions.c, t.realm_grants.c
        rows = self.conn.execute(select(t.subscriptions).where(and_(
            s.expires_at > now, s.update_type.in_(list(types)),
            exists().where(and_(er.endpoint_id == s.endpoint_id,
                                er.realm.in_(list(realms))))))).all()
        return [_subscription(r) for r in rows]

    def expired_subscriptions(self, now: datetime, limit: int = 100) -> list[Subscription]:
        rows = self.conn.execute(select(t.subscriptions).where(
            t.subscriptions.c.expires_at <= now).limit(limit)).all()
        return [_subscription(r) for r in rows]

    def raise_pending(self, subscription_ids: Collection[str], token: int,
                      now: datetime) -> None:
        """Record that each of these subscribers must reach `token`; due at once. A few
        set-wise statements per chunk of subscriptions, whatever their number (one change
        may concern every subscriber)."""
        p = t.pending_updates.c
        ids = sorted(set(subscription_ids))
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            have = set(self.conn.execute(select(p.subscription_id).where(
                p.subscription_id.in_(chunk))).scalars())
            if have:
                self.conn.execute(update(t.pending_updates).where(
                    p.subscription_id.in_(sorted(have))).values(
                        token=case((p.token > token, p.token), else_=token), attempts=0,
                        next_attempt_at=now))
            self._insert_many(t.pending_updates, [
                {"subscription_id": sid, "token": token, "attempts": 0,
                 "next_attempt_at": now} for sid in chunk if sid not in have])

    def due_pending(self, now: datetime, limit: int = 50, exclude: Collection[str] = (),
                    exclude_endpoints: Collection[str] = ()) -> list[Pending]:
        """Notifications due at `now`, longest due first, but those of the `exclude`d
        subscriptions (being delivered) and of the subscribers in `exclude_endpoints`."""
        p, s = t.pending_updates.c, t.subscriptions.c
        cond = and_(p.next_attempt_at <= now, s.expires_at > now)
        if exclude:
            cond = and_(cond, p.subscription_id.not_in(sorted(exclude)))
        if exclude_endpoints:
            cond = and_(cond, s.endpoint_id.not_in(sorted(exclude_endpoints)))
        rows = self.conn.execute(
            select(t.subscriptions, p.token, p.attempts, p.failing_since)
            .join(t.pending_updates, p.subscription_id == s.id)
            .where(cond).order_by(p.next_attempt_at).limit(limit)).all()
        return [Pending(_subscription(r), r.token, r.attempts, r.failing_since) for r in rows]

    def retry_later(self, subscription_id: str, token: int, attempts: int,
                    at: datetime, failing_since: datetime | None = None) -> None:
        """Back off, unless a newer change has raised the notification meanwhile.
        failing_since: when delivery started failing (None: the subscriber answered)."""
        p = t.pending_updates.c
        self.conn.execute(update(t.pending_updates).where(
            p.subscription_id == subscription_id).values(
                failing_since=failing_since))
        self.conn.execute(update(t.pending_updates).where(and_(
            p.subscription_id == subscription_id, p.token == token)).values(
                attempts=attempts, next_attempt_at=at))

    def acknowledge(self, endpoint_id: str, reached: int, pep_id: str | None = None,
                    subscription_id: str | None = None,
                    types: Sequence[str] | None = None) -> int:
        """Drop pending notifications the endpoint has caught up with (token <= reached):
        of one subscription, of its subscriptions scoped to a PEP, or of all of them
        (of the update `types` given)."""
        p, s = t.pending_updates.c, t.subscriptions.c
        mine = select(s.id).where(s.endpoint_id == endpoint_id)
        if types is not None:
            mine = mine.where(s.update_type.in_(list(types)))
        if subscription_id is not None:
            mine = mine.where(s.id == subscription_id)
        if pep_id is not None:
            mine = mine.where(s.pep_id == pep_id)
        return int(self.conn.execute(delete(t.pending_updates).where(and_(
            p.token <= reached, p.subscription_id.in_(mine)))).rowcount)

    def pending_total(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(t.pending_updates))
                   .scalar_one())

    def pending_count(self, endpoint_id: str) -> int:
        p, s = t.pending_updates.c, t.subscriptions.c
        return int(self.conn.execute(select(func.count()).select_from(t.pending_updates).where(
            p.subscription_id.in_(select(s.id).where(s.endpoint_id == endpoint_id))))
            .scalar_one())

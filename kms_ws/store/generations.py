"""Per-process caches of rarely changing rows, tagged by a store generation.

A generation is a random token kept in kms_meta that every transaction changing the
rows a cache holds replaces, in that same transaction. A unit of work reads the
generations once (one query, in its own snapshot) and serves cached values only under
the generation it read, so every process and every node sharing the store sees a change
on its next request.

- objects_generation: administered objects and their associations; replaced by the
  objects repository's own writes (store.objects, Generations._bump_generation).
- endpoints_generation: endpoints and what authenticates and serves them (realm grants,
  capabilities, attributes, KM-server flag, signing credentials, wrapping keys);
  replaced by SQLite triggers on every INSERT, UPDATE and DELETE of those tables
  (schema 13), so no writer can forget it. Endpoints are cached only in read-only units
  of work on SQLite: a write transaction changing an endpoint must read it back as it
  now is, and other stores have no such triggers.
- strikes_generation: the backoff counts of failed authentications (auth_strikes,
  schema 15), read before every password check; replaced by the refusals repository's own
  writes to them (store.failures), so while nothing fails they are served from memory. Cached
  like endpoints: in read-only units of work on SQLite.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, update

from . import tables as t

OBJECTS = "objects_generation"
ENDPOINTS = "endpoints_generation"
STRIKES = "strikes_generation"
# The tables whose every change replaces the endpoints generation (triggers, schema 13).
ENDPOINT_TABLES = ("endpoints", "realm_grants", "endpoint_capabilities",
                   "endpoint_attributes", "km_servers", "endpoint_credentials",
                   "wrapping_keys")

F = TypeVar("F", bound=Callable[..., Any])


class GenerationCache:
    """Values computed under one generation. The (generation, entries) pair is swapped
    as one object, so a thread never pairs a generation with another's entries."""

    def __init__(self, max_entries: int = 20_000) -> None:
        self._max = max_entries
        self._state: tuple[str | None, dict[Any, Any]] = (None, {})

    def lookup(self, generation: str, key: Any, load: Callable[[], Any]) -> Any:
        current, entries = self._state
        if current != generation:
            entries = {}
            self._state = (generation, entries)
        try:
            return entries[key]
        except KeyError:
            pass
        if len(entries) >= self._max:
            entries.clear()
        value = entries[key] = load()
        return value

    def clear(self) -> None:
        self._state = (None, {})


ENDPOINT_CACHE = GenerationCache()
STRIKES_CACHE = GenerationCache()


def endpoint_cached(copy: Callable[[Any], Any] | None = None) -> Callable[[F], F]:
    """Serve a repository read of endpoint rows from ENDPOINT_CACHE where the unit of
    work allows it (positional arguments only); `copy` hands out a copy of a cached
    mutable value."""
    def decorate(method: F) -> F:
        name = method.__name__

        @functools.wraps(method)
        def wrapper(self: Generations, *args: Any) -> Any:
            generation = self._endpoints_generation()
            if generation is None:
                return method(self, *args)
            value = ENDPOINT_CACHE.lookup(generation, (name, args),
                                          lambda: method(self, *args))
            return copy(value) if copy is not None and value is not None else value
        return wrapper  # type: ignore[return-value]
    return decorate


class UnitState:
    """What the repositories of one unit of work share: the generations it read (once)
    and whether it may serve endpoints from memory."""

    __slots__ = ("generations", "endpoint_caching")

    def __init__(self) -> None:
        self.generations: dict[str, str] | None = None
        self.endpoint_caching: bool | None = None


class Generations:
    """A repository's view of the store generations (store.part.Part): read once per unit
    of work, shared by its repositories."""

    conn: Connection
    state: UnitState
    # prepared statements (store.part): a query's rows, a change's row count
    _run: Callable[[str, dict[str, Any]], list[Any]]
    _write: Callable[[str, dict[str, Any]], int]

    def _read_generations(self) -> dict[str, str]:
        if self.state.generations is None:
            found = {name: value for name, value in self._run("generations", {})}
            found.setdefault(OBJECTS, "0")  # no object written yet
            found.setdefault(STRIKES, "0")  # no failure counted yet
            self.state.generations = found
        return self.state.generations

    def _generation(self) -> str:
        """The objects generation this unit of work serves cached objects under."""
        return self._read_generations()[OBJECTS]

    def _endpoints_generation(self) -> str | None:
        """The endpoints generation, or None where endpoints are not cached."""
        # no generation (a store without the triggers): nothing is cached
        return self._read_generations().get(ENDPOINTS) if self._caching() else None

    def _strikes_generation(self) -> str | None:
        """The backoff counts' generation, or None where they are not cached."""
        return self._read_generations()[STRIKES] if self._caching() else None

    def _caching(self) -> bool:
        """Endpoints and backoff counts are cached in read-only units of work on SQLite."""
        if self.state.endpoint_caching is None:
            self.state.endpoint_caching = self.conn.dialect.name == "sqlite" and bool(
                self.conn.get_execution_options().get("kms_read_only"))
        return self.state.endpoint_caching

    def _bump_generation(self, name: str = OBJECTS) -> None:
        """Replace the objects generation (or another one the repository's own writes
        keep) in this transaction."""
        token = uuid.uuid4().hex
        m = t.meta.c
        if not self.conn.execute(update(t.meta).where(m.name == name)
                                 .values(value=token)).rowcount:
            self.conn.execute(t.meta.insert().values(name=name, value=token))
        self._read_generations()[name] = token

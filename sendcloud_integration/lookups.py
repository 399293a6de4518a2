"""``pk__any_of=[…]``: membership in a list, sent to PostgreSQL as one array parameter.

``pk__in`` with 10,000 ids sends 10,000 placeholders that PostgreSQL must parse one by one;
``= ANY(%s)`` sends one array. Other databases get the plain ``IN (…)``.

The array goes as one text parameter (``{1,2,3}``, built from ``int()`` values, so nothing but digits
and minus signs): psycopg's list adapter inspects and quotes-checks every element, which for 10,000 ids
costs more than the query. Pass the ids wrapped in :class:`Ids` so that Django does not walk the list
looking for expressions in it either (it does for a plain list or tuple).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.lookups import Lookup
from django.db.models.sql.compiler import SQLCompiler


class Ids:
    """A collection of ids for ``any_of``, opaque to Django's query building."""

    __slots__ = ("values",)

    def __init__(self, values: Iterable[int]) -> None:
        self.values = values

    def __iter__(self) -> Iterator[int]:
        return iter(self.values)


def bigint_array(values: Iterable[Any]) -> str:
    """PostgreSQL's text form of a ``bigint[]``; every value goes through ``int()`` first."""
    return "{" + ",".join(map(str, map(int, values))) + "}"


class AnyOf(Lookup):
    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [int(value) for value in self.rhs]
        if not values:
            return "1 = 0", []
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::bigint[])", [*lhs_params, bigint_array(values)]
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


models.BigAutoField.register_lookup(AnyOf)
models.BigIntegerField.register_lookup(AnyOf)

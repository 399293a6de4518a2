"""``pk__any_of=[…]``: membership in a list, sent to PostgreSQL as one array parameter.

``pk__in`` with 10,000 ids sends 10,000 placeholders that PostgreSQL must parse one by one;
``= ANY(%s)`` sends one array. Other databases get the plain ``IN (…)``.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.lookups import Lookup
from django.db.models.sql.compiler import SQLCompiler


class AnyOf(Lookup):
    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        values = [int(value) for value in self.rhs]
        if not values:
            return "1 = 0", []
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::bigint[])", [*lhs_params, values]
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*lhs_params, *values]


models.BigAutoField.register_lookup(AnyOf)
models.BigIntegerField.register_lookup(AnyOf)

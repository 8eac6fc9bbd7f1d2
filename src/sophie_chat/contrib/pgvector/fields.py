"""A vector column: pgvector's ``vector`` where the extension is installed, text elsewhere."""

from __future__ import annotations

import json
from typing import Any

from django.db import models


def has_pgvector(connection: Any) -> bool:
    """Whether ``connection`` is PostgreSQL with the ``vector`` extension installed."""
    if connection.vendor != "postgresql":
        return False
    cached = getattr(connection, "_sophie_has_pgvector", None)
    if cached is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")
            cached = cursor.fetchone() is not None
        connection._sophie_has_pgvector = cached
    return cached


def to_text(vector: list[float]) -> str:
    """pgvector's text form, which is also JSON: ``[0.1,0.2]``."""
    return "[" + ",".join(f"{float(x):.6g}" for x in vector) + "]"


class VectorField(models.Field):
    """A list of floats. Without pgvector (SQLite, or PostgreSQL without the
    extension) it is stored as text and compared in Python."""

    description = "A vector of floats"

    def db_type(self, connection: Any) -> str:
        return "vector" if has_pgvector(connection) else "text"

    def get_prep_value(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        return to_text(value)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> list[float] | None:
        if value is None:
            return None
        if isinstance(value, str):
            return [float(x) for x in json.loads(value)]
        return [float(x) for x in value]

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            return [float(x) for x in json.loads(value)]
        return value

"""What every role module runs its SQL through: transactions, rows by column name, frames and the clock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import duckdb
import polars as pl


def now() -> datetime:
    """The time in UTC without its zone, as the warehouse's TIMESTAMP columns hold it."""
    return datetime.now(UTC).replace(tzinfo=None)


@contextmanager
def transaction(connection: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Everything inside commits together or not at all."""
    connection.begin()
    try:
        yield connection
    except BaseException:
        connection.rollback()
        raise
    connection.commit()


def first_row(connection: duckdb.DuckDBPyConnection, sql: str, parameters: object = None) -> dict[str, Any] | None:
    """The first row of a query by column name; the whole result is consumed so the connection stays usable."""
    cursor = connection.execute(sql, parameters)
    rows = cursor.fetchall()
    if not rows:
        return None
    return dict(zip([column[0] for column in cursor.description], rows[0], strict=True))


def scalar(connection: duckdb.DuckDBPyConnection, sql: str, parameters: object = None) -> Any:
    """The first column of the first row of a query (None when it has no rows), the result consumed."""
    rows = connection.execute(sql, parameters).fetchall()
    return rows[0][0] if rows else None


def query_frame(connection: duckdb.DuckDBPyConnection, sql: str, parameters: object = None) -> pl.DataFrame:
    """The result of a query as a Polars frame, through Arrow."""
    result = pl.from_arrow(connection.sql(sql, params=parameters).to_arrow_table())
    assert isinstance(result, pl.DataFrame)
    return result

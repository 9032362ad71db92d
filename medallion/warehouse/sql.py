"""What every role module runs its SQL through: transactions, rows by column name, frames and the clock."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import duckdb
import polars as pl

# A table name the code writes itself: `table` or `schema.table`, lower case, nothing else; a column name is one
# such part.
_TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?")
_COLUMN_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def table_name(name: str) -> str:
    """`name`, once checked to be a plain table name; anything else (a quote, a space, a statement) is refused, so
    a name can go into SQL text where a `?` parameter cannot."""
    if not _TABLE_NAME.fullmatch(name):
        raise ValueError(f"not a plain table name: {name!r}")
    return name


def column_name(name: str) -> str:
    """`name`, once checked to be a plain column name (see `table_name`)."""
    if not _COLUMN_NAME.fullmatch(name):
        raise ValueError(f"not a plain column name: {name!r}")
    return name


def create_temp_table_as(
    connection: duckdb.DuckDBPyConnection, name: str, query: str, parameters: object = None
) -> None:
    """`CREATE OR REPLACE TEMP TABLE name AS query`: `query` is SQL the code builds from its own constants, its
    values passed as `parameters`."""
    connection.execute(f"CREATE OR REPLACE TEMP TABLE {table_name(name)} AS {query}", parameters)


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

"""The enrichment tables in the warehouse: one `Dimension` per source, the keys silver lacks, the enriched view."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import duckdb
import polars as pl
from pydantic import BaseModel

from enrichment.cache import SCHEMA_SQL as CACHE_SCHEMA_SQL
from enrichment.cache import naive_utc
from enrichment.countries import CountryRecord
from enrichment.lookup import Found
from enrichment.products import ProductKey
from enrichment.rates import RateKey
from medallion.warehouse.sql import transaction

K = TypeVar("K")

DIMENSION_SQL = (
    "CREATE SCHEMA IF NOT EXISTS enrichment",
    """CREATE TABLE IF NOT EXISTS enrichment.rates (
        currency VARCHAR NOT NULL, invoice_date DATE NOT NULL, rate_date DATE,
        usd DOUBLE, eur DOUBLE, cad DOUBLE, aud DOUBLE, jpy DOUBLE,
        source VARCHAR NOT NULL, enriched_at TIMESTAMP NOT NULL, expires_at TIMESTAMP,
        PRIMARY KEY (currency, invoice_date))""",
    """CREATE TABLE IF NOT EXISTS enrichment.countries (
        country VARCHAR PRIMARY KEY, iso2 VARCHAR, iso3 VARCHAR, official_name VARCHAR, common_name VARCHAR,
        region VARCHAR, subregion VARCHAR, continent VARCHAR, capital VARCHAR, population BIGINT, area DOUBLE,
        timezone VARCHAR, lat DOUBLE, lng DOUBLE, source VARCHAR NOT NULL, unmapped_reason VARCHAR,
        enriched_at TIMESTAMP NOT NULL, expires_at TIMESTAMP)""",
    """CREATE TABLE IF NOT EXISTS enrichment.products (
        stock_code VARCHAR, description VARCHAR, category VARCHAR NOT NULL, brand VARCHAR,
        is_seasonal BOOLEAN NOT NULL, complexity INTEGER NOT NULL, tags VARCHAR[] NOT NULL,
        source VARCHAR NOT NULL, enriched_at TIMESTAMP NOT NULL, expires_at TIMESTAMP)""",
)

ENRICHED_VIEW_SQL = """
CREATE OR REPLACE VIEW silver.transactions_enriched AS
SELECT
    t.*,
    t.line_amount * r.usd AS amount_usd,
    t.line_amount * r.eur AS amount_eur,
    t.line_amount * r.cad AS amount_cad,
    t.line_amount * r.aud AS amount_aud,
    t.line_amount * r.jpy AS amount_jpy,
    r.rate_date,
    r.source AS rate_source,
    c.iso2 AS country_iso2,
    c.iso3 AS country_iso3,
    c.region AS country_region,
    c.subregion AS country_subregion,
    c.continent AS country_continent,
    c.source AS country_source,
    p.category AS product_category,
    p.brand AS product_brand,
    p.is_seasonal AS product_is_seasonal,
    p.source AS product_source
FROM silver.transactions AS t
LEFT JOIN enrichment.rates AS r ON r.currency = t.currency AND r.invoice_date = t.invoice_date
LEFT JOIN enrichment.countries AS c ON c.country = t.country
LEFT JOIN enrichment.products AS p
    ON p.stock_code IS NOT DISTINCT FROM t.stock_code AND p.description IS NOT DISTINCT FROM t.description
"""


_ALL_ROWS = "silver.transactions"
_FILES_ROWS = "(SELECT * FROM silver.transactions WHERE list_contains($files, file_id))"


def silver_rows(file_ids: Sequence[str] | None) -> tuple[str, dict[str, Any]]:
    """The silver rows an enrichment run looks at, as a relation and its parameters: all of silver, or a file
    run's own rows (its keys are what it adds; the daily run refreshes what expired for everyone)."""
    if file_ids is None:
        return _ALL_ROWS, {}
    return _FILES_ROWS, {"files": list(file_ids)}


# Each dimension's distinct keys of the rows an enrichment run looks at, with their rows, from one grouping of them
# (`stage_keys`): the run reads this small table instead of the rows once per dimension and count.
KEYS_TABLE = "enrichment_keys"


def stage_keys(connection: duckdb.DuckDBPyConnection, file_ids: Sequence[str] | None = None) -> None:
    """Group silver's rows (or the files' rows) once into KEYS_TABLE, a temporary table of this connection."""
    rows, parameters = silver_rows(file_ids)
    connection.execute(
        f"""CREATE OR REPLACE TEMP TABLE {KEYS_TABLE} AS
            SELECT CASE WHEN GROUPING(currency) = 0 THEN 'rates' WHEN GROUPING(country) = 0 THEN 'countries'
                        ELSE 'products' END AS key_set,
                   currency, invoice_date, country, stock_code, description, count(*) AS row_count
            FROM {rows}
            GROUP BY GROUPING SETS ((currency, invoice_date), (country), (stock_code, description))""",  # noqa: S608
        parameters,
    )


def _staged_keys(key_set: str) -> str:
    return f"(SELECT * FROM {KEYS_TABLE} WHERE key_set = '{key_set}')"  # noqa: S608 - a dimension's constant name


@dataclass(frozen=True)
class Dimension(Generic[K]):
    """One enrichment table: the keys of silver it is missing, and how a run's records replace its rows."""

    name: str
    # The record's columns in the table's order; enriched_at and expires_at follow.
    columns: Mapping[str, pl.DataType | type[pl.DataType]]
    # Distinct keys of `{rows}` (its staged keys) with no row or an expired one, as of `$now`.
    pending_sql: str
    key_of: Callable[[tuple[Any, ...]], K]
    # The name the run's rows are registered under, and the statements that move them into the table.
    staged_as: str
    upsert_sql: tuple[str, ...]

    def pending_keys(self, connection: duckdb.DuckDBPyConnection, now: datetime) -> list[K]:
        """The keys to look up, of the rows whose keys `stage_keys` staged."""
        statement = self.pending_sql.format(rows=_staged_keys(self.name))
        return [self.key_of(row) for row in connection.execute(statement, {"now": now}).fetchall()]

    def frame(self, found: Sequence[Found[BaseModel]], now: datetime) -> pl.DataFrame:
        """The rows of the run's records, each stamped with the run's moment and its own expiry."""
        # Column by column: tens of thousands of products a run, where a dict per row costs several times more.
        columns: dict[str, list[Any] | pl.Series] = {}
        for name, dtype in self.columns.items():
            values = [getattr(item.record, name, None) for item in found]
            columns[name] = _text_lists(name, values) if dtype == pl.List(pl.String) else values
        columns["enriched_at"] = [now] * len(found)
        columns["expires_at"] = [item.expires_at for item in found]
        stamps = {"enriched_at": pl.Datetime("us"), "expires_at": pl.Datetime("us")}
        return pl.DataFrame(columns, schema={**self.columns, **stamps})


_UNIT_SEPARATOR = "\x1f"


def _text_lists(name: str, values: Sequence[Sequence[str] | None]) -> pl.Series:
    """A column of lists of text, built by splitting joined text: Polars builds lists from Python lists one element
    at a time, ten times slower for a dimension of tens of thousands of products."""
    if any(_UNIT_SEPARATOR in item for value in values if value for item in value):
        return pl.Series(name, values, dtype=pl.List(pl.String))
    joined = pl.Series(name, [None if value is None else _UNIT_SEPARATOR.join(value) for value in values], pl.String)
    empty = pl.Series(name, [value is not None and len(value) == 0 for value in values], pl.Boolean)
    return pl.select(
        pl.when(empty)
        .then(pl.lit([], dtype=pl.List(pl.String)))
        .otherwise(joined.str.split(_UNIT_SEPARATOR))
        .alias(name)
    ).to_series()


RATES = Dimension[RateKey](
    name="rates",
    columns={
        "currency": pl.String,
        "invoice_date": pl.Date,
        "rate_date": pl.Date,
        **dict.fromkeys(("usd", "eur", "cad", "aud", "jpy"), pl.Float64),
        "source": pl.String,
    },
    pending_sql="""SELECT DISTINCT s.currency, s.invoice_date FROM {rows} AS s
        WHERE s.currency IS NOT NULL AND s.invoice_date IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM enrichment.rates AS r
            WHERE r.currency = s.currency AND r.invoice_date = s.invoice_date
            AND (r.expires_at IS NULL OR r.expires_at > $now))
        ORDER BY 1, 2""",
    key_of=lambda row: RateKey(row[0], row[1]),
    staged_as="enrichment_new_rates",
    upsert_sql=("INSERT OR REPLACE INTO enrichment.rates SELECT * FROM enrichment_new_rates",),
)

_COUNTRY_TYPES: dict[str, pl.DataType | type[pl.DataType]] = {"population": pl.Int64}
_COUNTRY_TYPES.update(dict.fromkeys(("area", "lat", "lng"), pl.Float64))

COUNTRIES = Dimension[str](
    name="countries",
    columns={name: _COUNTRY_TYPES.get(name, pl.String) for name in CountryRecord.model_fields},
    pending_sql="""SELECT DISTINCT s.country FROM {rows} AS s
        WHERE s.country IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM enrichment.countries AS c WHERE c.country = s.country
            AND (c.expires_at IS NULL OR c.expires_at > $now))
        ORDER BY 1""",
    key_of=lambda row: str(row[0]),
    staged_as="enrichment_new_countries",
    upsert_sql=("INSERT OR REPLACE INTO enrichment.countries SELECT * FROM enrichment_new_countries",),
)

PRODUCTS = Dimension[ProductKey](
    name="products",
    columns={
        "stock_code": pl.String,
        "description": pl.String,
        "category": pl.String,
        "brand": pl.String,
        "is_seasonal": pl.Boolean,
        "complexity": pl.Int32,
        "tags": pl.List(pl.String),
        "source": pl.String,
    },
    pending_sql="""SELECT DISTINCT s.stock_code, s.description FROM {rows} AS s
        WHERE NOT EXISTS (
            SELECT 1 FROM enrichment.products AS p
            WHERE p.stock_code IS NOT DISTINCT FROM s.stock_code
            AND p.description IS NOT DISTINCT FROM s.description
            AND (p.expires_at IS NULL OR p.expires_at > $now))
        ORDER BY 1, 2""",
    key_of=lambda row: ProductKey(row[0], row[1]),
    staged_as="enrichment_new_products",
    # No primary key: a product's code or description may be NULL.
    upsert_sql=(
        """DELETE FROM enrichment.products AS p USING enrichment_new_products AS n
           WHERE p.stock_code IS NOT DISTINCT FROM n.stock_code
           AND p.description IS NOT DISTINCT FROM n.description""",
        "INSERT INTO enrichment.products SELECT * FROM enrichment_new_products",
    ),
)

DIMENSIONS: tuple[Dimension[Any], ...] = (RATES, COUNTRIES, PRODUCTS)


class UnmappedCountry(BaseModel):
    country: str
    rows: int
    reason: str | None


def ensure_dimension_tables(connection: duckdb.DuckDBPyConnection) -> None:
    """Create the enrichment schema, its three dimensions and the cache of live answers when missing."""
    for statement in (*DIMENSION_SQL, *CACHE_SCHEMA_SQL):
        connection.execute(statement)


def publish_dimensions(
    connection: duckdb.DuckDBPyConnection, found: Mapping[str, Sequence[Found[Any]]], now: datetime
) -> None:
    """Upsert every dimension's new rows and recreate the enriched view in one transaction."""
    frames = {dimension.staged_as: dimension.frame(found[dimension.name], now) for dimension in DIMENSIONS}
    try:
        with transaction(connection):
            for name, frame in frames.items():
                connection.register(name, frame)
            for dimension in DIMENSIONS:
                for statement in dimension.upsert_sql:
                    connection.execute(statement)
            connection.execute(ENRICHED_VIEW_SQL)
    finally:
        for name in frames:
            connection.unregister(name)


def distinct_key_counts(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Distinct keys of each dimension in the rows whose keys `stage_keys` staged."""
    row = connection.execute(
        f"""SELECT count(*) FILTER (WHERE key_set = 'rates' AND currency IS NOT NULL AND invoice_date IS NOT NULL),
                   count(*) FILTER (WHERE key_set = 'countries' AND country IS NOT NULL),
                   count(*) FILTER (WHERE key_set = 'products')
            FROM {KEYS_TABLE}"""  # noqa: S608 - constant
    ).fetchone()
    assert row is not None
    return {"rates": int(row[0]), "countries": int(row[1]), "products": int(row[2])}


def unmapped_countries(
    connection: duckdb.DuckDBPyConnection, file_ids: Sequence[str] | None = None
) -> list[UnmappedCountry]:
    """Countries of silver rows (or the files' rows) that have no ISO code, with their row counts and the reason."""
    ensure_dimension_tables(connection)
    stage_keys(connection, file_ids)
    return staged_unmapped_countries(connection)


def staged_unmapped_countries(connection: duckdb.DuckDBPyConnection) -> list[UnmappedCountry]:
    """`unmapped_countries` of the rows whose keys `stage_keys` staged."""
    rows = connection.execute(
        f"""SELECT s.country, s.row_count, c.unmapped_reason
           FROM {_staged_keys("countries")} AS s LEFT JOIN enrichment.countries AS c ON c.country = s.country
           WHERE s.country IS NOT NULL AND c.iso2 IS NULL
           ORDER BY s.row_count DESC, s.country"""  # noqa: S608 - constants
    ).fetchall()
    return [UnmappedCountry(country=row[0], rows=int(row[1]), reason=row[2]) for row in rows]


def pending_lookups(connection: duckdb.DuckDBPyConnection, now: datetime) -> dict[str, int]:
    """How many keys of each dimension are missing or expired: all zero means a run would look nothing up."""
    ensure_dimension_tables(connection)
    stage_keys(connection)
    moment = naive_utc(now)
    return {dimension.name: len(dimension.pending_keys(connection, moment)) for dimension in DIMENSIONS}


def enrichment_fingerprint(connection: duckdb.DuckDBPyConnection) -> str:
    """A digest of silver's keys and the dimensions' contents: equal digests mean nothing to look up."""
    ensure_dimension_tables(connection)
    row = connection.execute(
        """SELECT
               (SELECT count(*) FROM silver.transactions),
               (SELECT max(invoice_date) FROM silver.transactions),
               (SELECT count(*) FROM (SELECT DISTINCT stock_code, description FROM silver.transactions)),
               (SELECT count(DISTINCT country) FROM silver.transactions),
               (SELECT count(*) FROM enrichment.rates), (SELECT max(enriched_at) FROM enrichment.rates),
               (SELECT min(expires_at) FROM enrichment.rates),
               (SELECT count(*) FROM enrichment.countries),
               (SELECT max(enriched_at) FROM enrichment.countries),
               (SELECT min(expires_at) FROM enrichment.countries),
               (SELECT count(*) FROM enrichment.products), (SELECT max(enriched_at) FROM enrichment.products),
               (SELECT min(expires_at) FROM enrichment.products),
               (SELECT count(*) FROM duckdb_views()
                WHERE schema_name = 'silver' AND view_name = 'transactions_enriched')"""
    ).fetchone()
    return hashlib.sha256(repr(row).encode()).hexdigest()

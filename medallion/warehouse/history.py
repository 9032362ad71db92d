"""The series the dashboards draw: each file's quality score and the dataset's over time, and revenue by month."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

import duckdb
from pydantic import BaseModel


class QualityPoint(BaseModel):
    """One quality measurement: a file's (named) or the whole dataset's (`file_name` None)."""

    scope: Literal["file", "dataset"]
    file_name: str | None
    measured_at: datetime
    score: float
    threshold: float | None


class RevenueMonth(BaseModel):
    month_start: date
    net_revenue: float
    gross_revenue: float
    returns: float


def quality_points(connection: duckdb.DuckDBPyConnection) -> list[QualityPoint]:
    """Every file's latest score and every dataset score in `ops.quality`, oldest first."""
    rows = connection.execute(
        """SELECT q.scope, f.file_name, q.measured_at, q.score, q.threshold
           FROM ops.quality AS q LEFT JOIN ops.files AS f ON q.scope = 'file' AND f.file_id = q.file_id
           WHERE q.scope IN ('file', 'dataset') AND q.score IS NOT NULL
           ORDER BY q.measured_at, q.scope, f.file_name"""
    ).fetchall()
    return [
        QualityPoint(scope=scope, file_name=file_name, measured_at=measured_at, score=score, threshold=threshold)
        for scope, file_name, measured_at, score, threshold in rows
    ]


def revenue_months(connection: duckdb.DuckDBPyConnection) -> list[RevenueMonth]:
    """Revenue of each month in `gold.sales_by_month`, oldest first; none before gold is first built."""
    built = connection.execute(
        "SELECT 1 FROM duckdb_tables() WHERE schema_name = 'gold' AND table_name = 'sales_by_month'"
    ).fetchall()
    if not built:
        return []
    rows = connection.execute(
        """SELECT month_start, coalesce(net_revenue, 0), coalesce(gross_revenue, 0), coalesce(returns, 0)
           FROM gold.sales_by_month ORDER BY month_start"""
    ).fetchall()
    return [
        RevenueMonth(month_start=month_start, net_revenue=net, gross_revenue=gross, returns=returns)
        for month_start, net, gross, returns in rows
    ]

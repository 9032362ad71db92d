"""The DuckDB warehouse: `Warehouse` lends the run's connection; one module per role holds the SQL it runs."""

from medallion.warehouse.connection import DuckDBFile, Storage, Warehouse

__all__ = ["DuckDBFile", "Storage", "Warehouse"]

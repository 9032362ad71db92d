"""The medallion pipeline's pure core: reading, transforms, quality and the DuckDB warehouse (no Prefect here)."""

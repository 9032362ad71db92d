"""Thin Prefect task wrappers over the pure pipeline steps in `medallion.steps`."""

"""Prefect flows: they sequence tasks and pass parameters, nothing more."""

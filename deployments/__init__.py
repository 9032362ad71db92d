"""The long-running service: a local Prefect server, the served deployments, and the folder watchers."""

"""prefect.yaml (for work pools) must describe exactly the deployments `medallion up` serves."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

from deployments.definitions import SPECS

ROOT = Path(__file__).resolve().parents[2]


def _flow_name(entrypoint: str) -> str:
    module_name, function = entrypoint.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), function).name


def test_prefect_yaml_matches_the_served_deployments() -> None:
    document = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    from_yaml = {}
    for entry in document["deployments"]:
        crons = [schedule["cron"] for schedule in entry.get("schedules") or []]
        from_yaml[f"{_flow_name(entry['entrypoint'])}/{entry['name']}"] = {
            "entrypoint": entry["entrypoint"],
            "description": entry["description"],
            "parameters": entry.get("parameters") or {},
            "cron": crons[0] if crons else None,
            "tags": tuple(entry.get("tags") or ()),
            "schedules": len(crons),
        }
    served = {
        spec.name: {
            "entrypoint": spec.entrypoint,
            "description": spec.description,
            "parameters": spec.parameters,
            "cron": spec.cron,
            "tags": spec.tags,
            "schedules": 1 if spec.cron else 0,
        }
        for spec in SPECS
    }
    assert from_yaml == served


def test_every_deployment_entrypoint_is_a_flow_of_the_named_flow() -> None:
    for spec in SPECS:
        assert _flow_name(spec.entrypoint) == spec.flow_name

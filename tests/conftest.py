"""Shared fixtures: every test gets its own warehouse and folders; Prefect state lives in a throwaway home."""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

# Prefect reads its settings when first imported, so its home must be set before any test module imports it.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="medallion-tests-prefect-")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.pop("PREFECT_API_URL", None)

import pytest  # noqa: E402

from medallion.settings import Settings, load_settings  # noqa: E402
from medallion.warehouse import Warehouse  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_CSV = PROJECT_ROOT / "data" / "sample" / "online_retail_sample.csv"
UCI_HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"


def load_script(name: str) -> ModuleType:
    """A module of scripts/ (not a package), loaded from its file and registered under its name."""
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def warehouse_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point every path setting into tmp_path, through the environment as a user would."""
    values = {
        "RAW_DATA_PATH": str(tmp_path / "raw"),
        "PROCESSED_PATH": str(tmp_path / "processed"),
        "WAREHOUSE_PATH": str(tmp_path / "warehouse.duckdb"),
        "GOLD_EXPORT_PATH": str(tmp_path / "gold"),
        "STAGING_PATH": str(tmp_path / "staging"),
        "ENABLE_EXTERNAL_ENRICHMENT": "false",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "raw").mkdir()
    return values


@pytest.fixture
def settings(warehouse_env: dict[str, str]) -> Settings:
    return load_settings()


@pytest.fixture
def warehouse(settings: Settings) -> Iterator[Warehouse]:
    """The warehouse `settings` names in tmp_path, closed after the test (or earlier by `warehouse.close()`)."""
    with Warehouse(settings.pipeline) as opened:
        yield opened


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield


def write_csv(path: Path, *rows: str, header: str = UCI_HEADER, encoding: str = "utf-8") -> Path:
    """A small CSV in the UCI layout (or another header), one string per data row."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\n".join([header, *rows]) + "\n").encode(encoding))
    return path


# Tests sharing a costly module or session fixture run on one pytest-xdist worker, so each is started once.
_SHARED_FIXTURE_GROUPS = {"service": "service", "prefect_server": "prefect-server", "work_pool": "work-pool"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        for fixture, group in _SHARED_FIXTURE_GROUPS.items():
            if fixture in fixtures:
                item.add_marker(pytest.mark.xdist_group(group))
                break

# Every target installs what it needs first: a fresh clone needs nothing but python3.11 and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SAMPLE ?= data/sample/online_retail_sample.csv

.PHONY: install run test up bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/medallion run $(SAMPLE)

test: $(STAMP)
	$(BIN)/pytest -q

up: $(STAMP)
	$(BIN)/medallion up

bench: $(STAMP)
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check medallion flows tasks enrichment deployments tests scripts
	$(BIN)/mypy medallion flows tasks enrichment deployments

clean:
	rm -rf $(VENV) data/warehouse.duckdb data/gold data/staging .pytest_cache

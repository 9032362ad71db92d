# Every target installs what it needs first: a fresh clone needs nothing but python3.11 and make.
#
# requirements.lock pins every package, with hashes: `make install` makes .venv hold exactly those (uv pip sync).
# To move the pins, edit pyproject.toml if a range must change, then:
#   make lock                                      every package to the newest version pyproject.toml allows
#   make lock LOCK_ARGS="--upgrade-package polars"  one package (and what it needs)
#   make lock LOCK_ARGS=                           keep every pin, only add or drop what pyproject.toml changed
# and commit requirements.lock once `make lint test` passes on it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LOCK := requirements.lock
UV_VERSION := $(shell sed -n 's/^uv==\([^ ;]*\).*/\1/p' $(LOCK))
UV := $(BIN)/uv
COMPILE := $(UV) pip compile pyproject.toml --extra dev --python-version 3.11 --python-platform linux \
	--generate-hashes --custom-compile-command "make lock" --quiet
LOCK_ARGS ?= --upgrade
SOURCE := medallion flows tasks enrichment deployments
SAMPLE ?= data/sample/online_retail_sample.csv
PYTEST_ARGS ?=
# Two pytest-xdist workers (the machine has two cores); tests of one shared service stay on one worker.
PYTEST_WORKERS ?= 2

.PHONY: install lock check-lock run test up bench scale verify-monthly lint clean browser screenshots

# uv itself comes from the lock, installed by the venv's own pip; an existing venv is kept as it is.
$(UV):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# The venv holds exactly the lock (sync removes anything else), then the project itself; `pip check` fails on a
# dependency added to pyproject.toml but missing from the lock, instead of at import time.
$(STAMP): $(LOCK) pyproject.toml | $(UV)
	$(UV) pip sync --quiet --python $(BIN)/python --require-hashes $(LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	$(UV) pip check --quiet --python $(BIN)/python
	touch $(STAMP)

install: $(STAMP)

lock: | $(UV)
	$(COMPILE) $(LOCK_ARGS) -o $(LOCK)

# The lock resolves again to itself: nothing in pyproject.toml is missing from it or left over in it.
check-lock: | $(UV)
	@resolved=$$(mktemp) && cp $(LOCK) $$resolved && $(COMPILE) -o $$resolved \
		&& diff -u $(LOCK) $$resolved && rm -f $$resolved \
		|| { echo "$(LOCK) does not match pyproject.toml: run make lock LOCK_ARGS= and commit it" >&2; exit 1; }

run: $(STAMP)
	$(BIN)/medallion run $(SAMPLE)

# The UI test drives Debian's headless Chromium; it is installed here, as root, when missing.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# pytest's own exit code goes to make and CI: 5 (no test collected) fails like a failing test.
test: $(STAMP) browser
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The browser test again, keeping its screenshots for the README.
screenshots: $(STAMP) browser
	UI_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest -q tests/service/test_ui_browser.py

up: $(STAMP)
	$(BIN)/medallion up

bench: $(STAMP)
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

# Issue 15's scale figures (bench/scale.md), on the real UCI set in ../shared/data; tens of minutes on a quiet
# machine. SCALE_ARGS=--quick tries it out, SCALE_ARGS=--with-100x adds the 100x warehouse.
scale: $(STAMP)
	$(BIN)/python scripts/scale.py $(SCALE_ARGS)

# The real set loaded month by month, then rebuilt from bronze: the same silver and gold both ways (2 minutes).
verify-monthly: $(STAMP)
	$(BIN)/python scripts/verify_monthly.py ../shared/data/online_retail_uci.parquet

# Every check runs and reports before lint fails, so one run lists everything to mend.
lint: $(STAMP)
	@status=0; \
	echo "lint: lock"; $(MAKE) --no-print-directory check-lock || status=1; \
	echo "lint: ruff check"; $(BIN)/ruff check $(SOURCE) tests scripts || status=1; \
	echo "lint: ruff format"; $(BIN)/ruff format --check $(SOURCE) tests scripts || status=1; \
	echo "lint: mypy"; $(BIN)/mypy $(SOURCE) || status=1; \
	echo "lint: sizes"; $(BIN)/python scripts/check_size.py $(SOURCE) || status=1; \
	exit $$status

clean:
	rm -rf $(VENV) data/warehouse.duckdb data/gold data/staging .pytest_cache .mypy_cache .ruff_cache .hypothesis
